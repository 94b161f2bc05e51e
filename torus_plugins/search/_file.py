"""Index files: one code file (:mod:`torus_plugins.codes.file_format`: header, codes, CRC32) whose
JSON metadata holds the index's settings, ids and structure under ``"torus_index"`` (arrays as
base64 of little-endian bytes). Nothing is unpickled; every field is checked on read, and a file
whose CRC is valid but whose metadata is not raises
:class:`~torus_plugins.codes.CodeFileError` naming the field, the expected and the actual value.

Each index class writes and reads its own fields (``_file_fields`` / ``_from_file``);
:class:`PersistentIndex` gives them ``save`` / ``load``, and ``search.io`` dispatches a file to
its class by :func:`index_kind`.
"""

import base64
import builtins

import numpy as np

from ..codes.file_format import CodeFileError, load_codes, save_codes
from ._args import GEOMETRIES
from ._base import IndexBase

__all__ = ["FORMAT", "FileMeta", "b64", "open_index_file", "index_kind", "PersistentIndex"]

FORMAT = 1
KINDS = ("Flat", "BinaryFlat", "IVF")


def b64(arr: np.ndarray) -> str:
    """Base64 of the array's little-endian bytes."""
    return base64.b64encode(
        np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
    ).decode()


class FileMeta:
    """Checked access to the metadata dict: every failure is a CodeFileError naming the field."""

    def __init__(self, meta: dict, name: str):
        self.meta, self.name = meta, name

    def fail(self, field: str, expected: str, got):
        raise CodeFileError(
            f"{self.name}: bad index metadata: {field} must be {expected}, got {got!r:.80}"
        )

    def get(self, field: str, kinds, expected: str, required: bool = True, default=None):
        if field not in self.meta:
            if required:
                self.fail(field, expected, "<missing>")
            return default
        value = self.meta[field]
        allowed = kinds if isinstance(kinds, tuple) else (kinds,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in allowed):
            self.fail(field, expected, value)
        return value

    def int(
        self, field: str, lo: int, hi: int | None = None, required: bool = True, default=None
    ) -> int:
        value = self.get(field, int, f"an integer >= {lo}", required, default)
        if value is not None and (value < lo or (hi is not None and value > hi)):
            expected = f"an integer in [{lo}, {hi}]" if hi is not None else f"an integer >= {lo}"
            self.fail(field, expected, value)
        return value

    def array(self, field: str, dtype, count: builtins.int, nullable: bool = True):
        """An array of ``count`` values of ``dtype`` (base64), or None where allowed."""
        name = np.dtype(dtype).name
        value = self.get(field, (str, type(None)) if nullable else str, f"base64 of {count} {name}")
        if value is None:
            return None
        try:
            raw = base64.b64decode(value.encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError):
            self.fail(field, "base64 text", value)
        itemsize = np.dtype(dtype).itemsize
        if len(raw) != count * itemsize:
            self.fail(
                field, f"{count} values of {name} ({count * itemsize} bytes)", f"{len(raw)} bytes"
            )
        return np.frombuffer(raw, np.dtype(dtype).newbyteorder("<")).astype(dtype)

    def ids(self, field: str, count: builtins.int, nullable: bool = True):
        """An int64 id array (base64 of ``count`` values); ids are >= 0 (-1 marks no result)."""
        ids = self.array(field, np.int64, count, nullable)
        if ids is not None and ids.size and ids.min() < 0:
            self.fail(
                field,
                "ids >= 0 (-1 marks a missing result in search results)",
                f"{int((ids < 0).sum())} negative ids, e.g. {int(ids.min())}",
            )
        return ids


def open_index_file(path):
    """(code file, FileMeta or None for a plain code file) of ``path``."""
    f = load_codes(path)
    if f.geometry not in GEOMETRIES:
        raise CodeFileError(
            f"{path}: an index holds codes of one of the geometries "
            f"{', '.join(GEOMETRIES)}; this file's geometry is {f.geometry!r}"
        )
    meta = f.meta.get("torus_index") if isinstance(f.meta, dict) else None
    if meta is None:
        return f, None
    if not isinstance(meta, dict):
        raise CodeFileError(
            f"{path}: bad index metadata: torus_index must be an object, got {meta!r:.80}"
        )
    m = FileMeta(meta, str(path))
    if "format" in meta:
        m.int("format", FORMAT, FORMAT)
    return f, m


def index_kind(f, m: FileMeta | None) -> str:
    """The class of index a file holds: "Flat" (also any plain code file), "BinaryFlat" (faiss on
    Johnson codes; written as type Flat, backend johnson) or "IVF"."""
    if m is None:
        return "Flat"
    kind = m.get("type", str, "'Flat' or 'IVF'", required=False, default="Flat")
    if kind == "IVF":
        return kind
    if kind != "Flat":
        m.fail("type", "'Flat' or 'IVF'", kind)
    backend = m.get("backend", str, "'kernel' or 'johnson'", required=False, default="kernel")
    if backend not in ("kernel", "johnson") or (backend == "johnson" and f.bits > 4):
        m.fail("backend", "'kernel' (or 'johnson' with bits <= 4)", backend)
    return "Flat" if backend == "kernel" else "BinaryFlat"


class PersistentIndex(IndexBase):
    """An index held in this process, written whole to one file by ``save`` (``write_index``)."""

    #: The file kind this class writes and reads (see :func:`index_kind`).
    file_kind = ""

    def _file_fields(self) -> tuple:
        """(codes [n, n_angles] uint8, metadata dict) describing the whole index."""
        raise NotImplementedError

    @classmethod
    def _from_file(cls, f, m: FileMeta | None):
        """The index a checked file holds."""
        raise NotImplementedError

    def save(self, path) -> None:
        """Write the whole index to one CRC-checked file (as
        :func:`torus_plugins.search.write_index`).

        Args:
            path: the file to write (replaced atomically).

        Raises:
            OSError: the file cannot be written (a previous file at ``path`` stays intact).
        """
        codes, meta = self._file_fields()
        save_codes(
            path,
            codes,
            self.bits,
            geometry=self.geometry,
            meta={"torus_index": {"format": FORMAT, **meta}},
        )

    @classmethod
    def load(cls, path):
        """Read an index written by :meth:`save` / ``write_index``; it must be of this class.

        Args:
            path: a file written by ``save`` or ``write_index``.

        Returns:
            The index, of this class.

        Raises:
            CodeFileError: the file is damaged or its metadata is not valid.
            ValueError: the file holds another kind of index (use ``read_index``).
        """
        f, m = open_index_file(path)
        kind = index_kind(f, m)
        if kind != cls.file_kind:
            raise ValueError(
                f"{path} holds a {_CLASS_NAMES[kind]}, not a {cls.__name__}: use read_index()"
            )
        return cls._from_file(f, m)


_CLASS_NAMES = {
    "Flat": "TorusIndexFlat",
    "BinaryFlat": "TorusIndexBinaryFlat",
    "IVF": "TorusIndexIVF",
}
