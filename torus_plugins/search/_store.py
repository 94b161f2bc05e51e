"""Where the local indexes keep their codes: append-only row stores, published as snapshots.

A state is one immutable :class:`Rows` tuple (buffer, row count, ids) published by a single
attribute assignment. ``add`` only writes rows past every published count (or into a new buffer), so
a search reading an old state never sees a half-added row, and an added row is never lost. Rows are
laid out for the kernel (:class:`RowLayout`): ``width`` = n_angles rounded up to 32, one code per
byte, or two per byte at bits <= 4.

:class:`FlatStore` is a flat index's whole storage (codes, ids, faiss's ``add`` / ``add_with_ids``
/ ``remove_ids`` / ``reset``, the file fields); the flat index classes only search it.
"""

from typing import NamedTuple

import numpy as np

from ..codes.pack import nibble_pack, nibble_unpack
from ._file import FileMeta, PersistentIndex, b64
from ._kernel import padded_width

__all__ = ["Rows", "empty_rows", "append_rows", "keep_rows", "RowLayout", "FlatStore"]

CHUNK_ROWS = 1 << 16  # rows converted at a time by append_rows (bounds its temporaries)


class Rows(NamedTuple):
    """One published state of a row store: rows ``buf[:n]`` and their ids (None: 0..n-1)."""

    buf: np.ndarray
    n: int
    ids: np.ndarray | None

    def id_array(self) -> np.ndarray:
        return np.arange(self.n, dtype=np.int64) if self.ids is None else self.ids[: self.n]


def empty_rows(row_bytes: int) -> Rows:
    return Rows(np.zeros((0, row_bytes), np.uint8), 0, None)


def append_rows(rows: Rows, codes: np.ndarray, ids: np.ndarray | None, convert=None) -> Rows:
    """A new state with ``codes`` appended (the caller holds the lock). Rows past ``rows.n`` are
    written in place when the buffer has room (no reader looks there); otherwise a buffer 1.5x
    larger receives the old rows once. ``convert`` (e.g. nibble packing) maps a slice of codes to
    full stored rows, CHUNK_ROWS at a time."""
    m, k = codes.shape
    need = rows.n + m
    buf, cur_ids = rows.buf, rows.ids
    if ids is not None and cur_ids is None:  # first explicit ids: 0..n-1 for the rows already held
        cur_ids = np.arange(max(need, buf.shape[0]), dtype=np.int64)
    if need > buf.shape[0]:
        cap = need if rows.n == 0 else max(need, rows.n + rows.n // 2)
        new = np.empty((cap, buf.shape[1]), np.uint8)
        new[: rows.n] = buf[: rows.n]
        buf = new
    if cur_ids is not None and cur_ids.shape[0] < buf.shape[0]:
        grown = np.empty(buf.shape[0], np.int64)
        grown[: rows.n] = cur_ids[: rows.n]
        cur_ids = grown
    if convert is not None:
        for s in range(0, m, CHUNK_ROWS):
            buf[rows.n + s : rows.n + min(m, s + CHUNK_ROWS)] = convert(codes[s : s + CHUNK_ROWS])
    else:
        buf[rows.n : need, :k] = codes
        if buf.shape[1] > k:
            buf[rows.n : need, k:] = 0
    if cur_ids is not None:
        cur_ids[rows.n : need] = ids if ids is not None else np.arange(rows.n, need)
    return Rows(buf, need, cur_ids)


def keep_rows(rows: Rows, keep: np.ndarray, renumber: bool) -> Rows:
    """A new state holding the rows where ``keep`` is True (a fresh buffer: snapshots in use stay
    valid). ``renumber``: sequential ids shift down like faiss ``IndexFlat.remove_ids``; explicit
    ids are kept."""
    buf = np.ascontiguousarray(rows.buf[: rows.n][keep])
    ids = None if (renumber or rows.ids is None) else np.ascontiguousarray(rows.ids[: rows.n][keep])
    return Rows(buf, int(buf.shape[0]), ids)


class RowLayout:
    """How codes of ``n_angles`` angles are stored for the kernel: ``width`` codes per row (a
    multiple of 32, pads 0), one per byte, or two per byte when ``packed`` (bits <= 4: half the
    memory, unpacked by the kernel on the fly)."""

    def __init__(self, n_angles: int, packed: bool):
        self.n_angles = n_angles
        self.width = padded_width(n_angles)
        self.packed = packed
        self.row_bytes = self.width // 2 if packed else self.width

    def convert(self):
        """How added codes become stored rows (for append_rows): packed, or as they are (None)."""
        return (lambda c: nibble_pack(c, self.width)) if self.packed else None

    def codes(self, rows: Rows) -> np.ndarray:
        """[rows.n, n_angles] codes of a row store (unpacked when held packed)."""
        if self.packed:
            return nibble_unpack(rows.buf[: rows.n], self.n_angles)
        return rows.buf[: rows.n, : self.n_angles]

    def rows(self, codes: np.ndarray, ids) -> Rows:
        """A new row store holding ``codes`` (e.g. read from a file) in this layout."""
        return append_rows(empty_rows(self.row_bytes), codes, ids, self.convert())


class FlatStore(PersistentIndex):
    """Codes in one row store with sequential or explicit ids, as faiss's flat indexes hold them:
    ``add`` (ids continue from ntotal), ``add_with_ids``, ``remove_ids`` (sequential ids shift down
    as in faiss ``IndexFlat``; explicit ids stay, as in ``IndexIDMap``), ``reset``. Subclasses
    search the published state ``_state``."""

    file_kind = "Flat"
    #: Whether codes of 4 bits or fewer are held two per byte (the kernel reads them packed).
    packs_small_codes = False

    def __init__(self, n_angles: int, bits: int = 8, geometry: str = "torusN"):
        super().__init__(n_angles, bits, geometry)
        self.layout = RowLayout(self.n_angles, self.packs_small_codes and self.bits <= 4)
        self._state: Rows = empty_rows(self.layout.row_bytes)

    def _replaced(self) -> None:
        """Called under the lock after rows were removed (derived structures start over)."""

    # ------------------------------------------------------------------ contents
    @property
    def packed(self) -> bool:
        """Whether codes are held two per byte."""
        return self.layout.packed

    @property
    def ntotal(self) -> int:
        """Number of codes held."""
        return self._state.n

    @property
    def codes(self) -> np.ndarray:
        """All stored codes, [ntotal, n_angles] uint8, read-only (a view; a copy when packed)."""
        view = self.layout.codes(self._state).view()
        view.flags.writeable = False
        return view

    @property
    def ids(self) -> np.ndarray:
        """The id of every stored code, int64 [ntotal]."""
        return self._state.id_array()

    @property
    def nbytes(self) -> int:
        """Bytes held: the rows (padded to 32 angles; half a byte per angle when packed) and the
        ids if explicit."""
        st = self._state
        return int(st.n * st.buf.shape[1] + (0 if st.ids is None else 8 * st.n))

    # ------------------------------------------------------------------ build
    def add(self, x) -> None:
        """Append [n, n_angles] uint8 codes; their ids continue from ntotal. Returns None (faiss).

        Args:
            x: [n, n_angles] uint8 codes < 2**bits (one code: [n_angles]).

        Raises:
            TypeError, ValueError: x is not [n, n_angles] uint8 codes < 2**bits.
            ValueError: the index holds explicit ids (use add_with_ids).
        """
        codes = self._check_codes(x, "x")
        with self._lock:
            if self._state.ids is not None and codes.shape[0]:
                raise ValueError(
                    "this index holds explicit ids (add_with_ids was used): add codes "
                    "with add_with_ids too"
                )
            self._state = append_rows(self._state, codes, None, self.layout.convert())

    def add_with_ids(self, x, ids) -> None:
        """Append codes with your own int64 ids >= 0 (like faiss ``IndexIDMap.add_with_ids``).

        Args:
            x: [n, n_angles] uint8 codes < 2**bits.
            ids: n integer ids >= 0, one per code.

        Raises:
            TypeError, ValueError: bad codes, or ids not n integers >= 0.
        """
        codes = self._check_codes(x, "x")
        ids = self._check_ids(ids, codes.shape[0])
        with self._lock:
            self._state = append_rows(self._state, codes, ids, self.layout.convert())

    def remove_ids(self, ids) -> int:
        """Remove the codes with these ids: integer ids or a faiss ``IDSelector`` (see
        :mod:`.selectors`). Returns how many were removed.

        Sequential ids shift down (faiss ``IndexFlat``); explicit ids stay (``IndexIDMap``).

        Args:
            ids: integer ids (any iterable or array) or a faiss ``IDSelector``.

        Returns:
            The number of codes removed.

        Raises:
            TypeError: ids is neither integers nor a faiss IDSelector.
        """
        with self._lock:
            st = self._state
            mask = self._removal_mask(st.id_array(), ids)
            removed = int(mask.sum())
            if removed:
                self._state = keep_rows(st, ~mask, renumber=st.ids is None)
                self._replaced()
        return removed

    def reset(self) -> None:
        """Remove every code."""
        with self._lock:
            self._state = empty_rows(self.layout.row_bytes)
            self._replaced()

    # ------------------------------------------------------------------ search support
    def _snapshot(self, what: str) -> Rows:
        return self._state

    def _range_limit(self, view: Rows) -> int:
        return view.n

    @staticmethod
    def _as_ids(view: Rows, positions: np.ndarray) -> np.ndarray:
        """Row positions of a snapshot -> ids."""
        return positions if view.ids is None else view.ids[positions]

    # ------------------------------------------------------------------ files
    def _file_fields(self) -> tuple:
        st = self._state
        return self.layout.codes(st), {
            "type": "Flat",
            "backend": self._file_backend,
            "ids": None if st.ids is None else b64(st.ids[: st.n]),
        }

    _file_backend = "kernel"

    @classmethod
    def _from_file(cls, f, m: FileMeta | None):
        index = cls(f.n_angles, f.bits, geometry=f.geometry)
        ids = m.ids("ids", len(f)) if m is not None and "ids" in m.meta else None
        if ids is None:
            index.add(f.codes)
        else:
            index.add_with_ids(f.codes, ids)
        return index

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_angles={self.n_angles}, bits={self.bits}, "
            f"ntotal={self.ntotal})"
        )
