"""Whole-index persistence (faiss-style ``write_index`` / ``read_index``) and a string constructor.

An index is written as one code file (:mod:`torus_plugins.codes.file_format`: header, packed codes, CRC32), its
settings, ids and IVF structure in the file's JSON metadata under ``"torus_index"`` (arrays as base64 of
little-endian bytes). Nothing is unpickled; every field is checked on read, and a file whose CRC is valid but whose
metadata is not raises :class:`~torus_plugins.codes.CodeFileError` naming the field, the expected and the actual
value. Any plain code file (``save_codes``) reads as a flat index.

Usage::

    index = index_factory("T64x8,IVF1024")      # 64 angles, 8 bits, 1024 lists ("T64x8,Flat": exact)
    write_index(index, "refs.tidx"); index = read_index("refs.tidx")
"""

import base64
import re

import numpy as np

from ..codes.file_format import CodeFileError, load_codes, save_codes
from ._base import empty_rows
from .flat import TorusIndexFlat
from .ivf import TorusIndexIVF

__all__ = ["write_index", "read_index", "index_factory"]

FORMAT = 1
MAX_NSEQ = 1 << 62   # insertion numbers stay int64 however many codes are added after reading
_FACTORY = re.compile(r"^T(\d+)x(\d+),(?:(Flat)|FlatJohnson|IVF(\d+))$")


def index_factory(spec: str, geometry: str = "torusN"):
    """Build an empty index from a faiss-like string: ``"T<angles>x<bits>,Flat"`` (exact, SAD kernel),
    ``"T<angles>x<bits>,FlatJohnson"`` (exact, faiss binary index on Johnson codes, bits <= 4) or
    ``"T<angles>x<bits>,IVF<nlist>"`` (train before add).

    Usage: ``index_factory("T64x8,IVF4096")``
    """
    m = _FACTORY.match(spec) if isinstance(spec, str) else None
    if m is None:
        raise ValueError(f"spec must look like 'T64x8,Flat', 'T64x4,FlatJohnson' or 'T64x8,IVF4096', got {spec!r}")
    n_angles, bits = int(m.group(1)), int(m.group(2))
    if m.group(4) is not None:
        return TorusIndexIVF(n_angles, bits, nlist=int(m.group(4)), geometry=geometry)
    return TorusIndexFlat(n_angles, bits, geometry=geometry, backend="kernel" if m.group(3) else "johnson")


def _b64(arr: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()).decode()


def write_index(index, path) -> None:
    """Write a TorusIndexFlat or TorusIndexIVF (codes, ids, settings, centroids) to one CRC-checked file."""
    if isinstance(index, TorusIndexFlat):
        st = index._state
        meta = {"format": FORMAT, "type": "Flat", "backend": index.backend,
                "ids": None if st.ids is None else _b64(st.ids[:st.n])}
        codes = index._rows_codes(st)
    elif isinstance(index, TorusIndexIVF):
        st = index._state  # one snapshot: centroids and the lists assigned by them
        lists, nseq, idmap = st.lists, st.nseq, st.idmap
        meta = {"format": FORMAT, "type": "IVF", "nlist": index.nlist, "nprobe": index.nprobe,
                "centroids": None if st.centroids is None else _b64(st.centroids),
                "list_sizes": [r.n for r in lists], "nseq": nseq,
                "seq": _b64(np.concatenate([np.zeros(0, np.int64)] + [r.ids[:r.n] for r in lists if r.n])),
                "idmap": None if idmap is None else _b64(idmap[:nseq])}
        codes = np.concatenate([np.zeros((0, index.n_angles), np.uint8)]
                               + [index._rows_codes(r) for r in lists if r.n])
    else:
        raise TypeError(f"index must be a TorusIndexFlat or TorusIndexIVF, got {type(index).__name__}")
    save_codes(path, codes, index.bits, geometry=index.geometry, meta={"torus_index": meta})


class _Meta:
    """Checked access to the metadata dict: every failure is a CodeFileError naming the field."""

    def __init__(self, meta, name: str):
        self.meta, self.name = meta, name

    def fail(self, field: str, expected: str, got):
        raise CodeFileError(f"{self.name}: bad index metadata: {field} must be {expected}, got {got!r:.80}")

    def get(self, field: str, kinds, expected: str, required: bool = True, default=None):
        if field not in self.meta:
            if required:
                self.fail(field, expected, "<missing>")
            return default
        value = self.meta[field]
        if not isinstance(value, kinds) or isinstance(value, bool) and bool not in (kinds if isinstance(
                kinds, tuple) else (kinds,)):
            self.fail(field, expected, value)
        return value

    def int(self, field: str, lo: int, hi: int | None = None, required: bool = True, default=None) -> int:
        value = self.get(field, int, f"an integer >= {lo}", required, default)
        if value is not None and (value < lo or (hi is not None and value > hi)):
            self.fail(field, f"an integer in [{lo}, {hi}]" if hi is not None else f"an integer >= {lo}", value)
        return value

    def array(self, field: str, dtype, count: int, nullable: bool = True):
        value = self.get(field, (str, type(None)) if nullable else str, f"base64 of {count} {np.dtype(dtype).name}")
        if value is None:
            return None
        try:
            raw = base64.b64decode(value.encode("ascii"), validate=True)
        except (ValueError, UnicodeEncodeError):
            self.fail(field, "base64 text", value)
        itemsize = np.dtype(dtype).itemsize
        if len(raw) != count * itemsize:
            self.fail(field, f"{count} values of {np.dtype(dtype).name} ({count * itemsize} bytes)",
                      f"{len(raw)} bytes")
        return np.frombuffer(raw, np.dtype(dtype).newbyteorder("<")).astype(dtype)

    def ids(self, field: str, count: int, nullable: bool = True):
        """An int64 id array (base64 of ``count`` values); ids are >= 0 (-1 marks no result)."""
        ids = self.array(field, np.int64, count, nullable)
        if ids is not None and ids.size and ids.min() < 0:
            self.fail(field, "ids >= 0 (-1 marks a missing result in search results)",
                      f"{int((ids < 0).sum())} negative ids, e.g. {int(ids.min())}")
        return ids


def read_index(path):
    """Read an index written by :func:`write_index` (or any code file, as a flat index).

    Usage: ``index = read_index("refs.tidx"); D, I = index.search(q, 10)``
    """
    f = load_codes(path)
    name = str(path)
    meta = f.meta.get("torus_index") if isinstance(f.meta, dict) else None
    if meta is None:
        index = TorusIndexFlat(f.n_angles, f.bits, geometry=f.geometry)
        return index.add(f.codes)
    if not isinstance(meta, dict):
        raise CodeFileError(f"{name}: bad index metadata: torus_index must be an object, got {meta!r:.80}")
    m = _Meta(meta, name)
    n = len(f)
    kind = m.get("type", str, "'Flat' or 'IVF'", required=False, default="Flat")
    if "format" in meta:
        m.int("format", FORMAT, FORMAT)
    if kind == "Flat":
        backend = m.get("backend", str, "'kernel' or 'johnson'", required=False, default="kernel")
        if backend not in ("kernel", "johnson") or (backend == "johnson" and f.bits > 4):
            m.fail("backend", "'kernel' (or 'johnson' with bits <= 4)", backend)
        index = TorusIndexFlat(f.n_angles, f.bits, geometry=f.geometry, backend=backend)
        ids = m.ids("ids", n) if "ids" in meta else None
        if ids is None:
            return index.add(f.codes)
        return index.add_with_ids(f.codes, ids)
    if kind != "IVF":
        m.fail("type", "'Flat' or 'IVF'", kind)
    # Every size is checked against data the file holds before anything is allocated: nlist against
    # the list sizes, the centroids and the id map against their bytes; nseq with no id map is only
    # a counter (the next implicit id).
    nlist = m.int("nlist", 1)
    sizes = m.get("list_sizes", list, f"a list of {nlist} sizes")
    if len(sizes) != nlist or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in sizes) \
            or sum(sizes) != n:
        m.fail("list_sizes", f"{nlist} integers >= 0 summing to the {n} codes in the file", sizes)
    nprobe = m.int("nprobe", 1)
    nseq = m.int("nseq", n, MAX_NSEQ)
    seq = m.array("seq", np.int64, n, nullable=False)
    if n and (seq.min() < 0 or seq.max() >= nseq or np.unique(seq).size != n):
        m.fail("seq", f"distinct insertion numbers in [0, {nseq})", "out-of-range or repeated values")
    centroids = m.array("centroids", np.uint8, nlist * f.n_angles)
    idmap = m.ids("idmap", nseq)
    index = TorusIndexIVF(f.n_angles, f.bits, nlist=nlist, nprobe=nprobe, geometry=f.geometry)
    if centroids is None:
        if n:
            m.fail("centroids", "present when the index holds codes", None)
        return index
    centroids = centroids.reshape(nlist, f.n_angles)
    if f.bits < 8 and centroids.max() >= (1 << f.bits):
        m.fail("centroids", f"codes < 2**bits = {1 << f.bits}", int(centroids.max()))
    lists, start = [], 0
    for size in sizes:
        rows = empty_rows(index.row_bytes)
        if size:
            part = seq[start:start + size]
            if np.any(np.diff(part) <= 0):
                m.fail("seq", "increasing within each list", "a list out of insertion order")
            rows = index._stored_rows(f.codes[start:start + size], part.copy())
        lists.append(rows)
        start += size
    index._state = index._new_state(centroids, tuple(lists), nseq, None if idmap is None else idmap.copy())
    return index
