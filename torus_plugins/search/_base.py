"""Shared parts of the torus indexes: argument checks, an append-only row store, ids, faiss-style results.

Thread safety: writers (``add``, ``add_with_ids``, ``remove_ids``, ``reset``, ``train``) take the index lock;
readers (``search``, ``range_search``) take no lock and work on a snapshot. A snapshot is one immutable tuple
(buffer, row count, ids) published by a single attribute assignment; ``add`` only writes rows past every published
count (or into a new buffer), so a search never sees a half-added row and an added row is never lost.
An IVF snapshot also carries the centroids its lists were assigned with (``train`` publishes new centroids with
empty lists in one assignment, and an ``add`` re-assigns its codes under the lock if they changed since it looked).
"""

import threading
from typing import NamedTuple

import numpy as np

from .._memory import check_allocation
from ..codes.kernel import padded_width
from ..codes.pack import nibble_pack, nibble_unpack
from ..codes.quantize import check_bits, check_codes
from .selectors import selection_mask

PAD_DISTANCE = np.iinfo(np.int64).max   # distance of a missing result (k > ntotal), like faiss's "max" sentinel
PAD_ID = -1                             # id of a missing result, as in faiss


def check_int(value, name: str, lo: int = 1, hi: int | None = None, none_ok: bool = False):
    """Return ``value`` as int; ValueError naming ``name``, the expected range and the actual value."""
    if value is None and none_ok:
        return None
    ok = not isinstance(value, bool) and isinstance(value, (int, np.integer))
    if not ok or value < lo or (hi is not None and value > hi):
        rng = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be an integer {rng}{' or None' if none_ok else ''}, got {value!r}")
    return int(value)


class Rows(NamedTuple):
    """One published state of a row store: rows ``buf[:n]`` (padded width, pads 0) and their ids (None: 0..n-1)."""
    buf: np.ndarray
    n: int
    ids: np.ndarray | None

    def codes(self, n_angles: int) -> np.ndarray:
        return self.buf[:self.n, :n_angles]

    def id_array(self) -> np.ndarray:
        return np.arange(self.n, dtype=np.int64) if self.ids is None else self.ids[:self.n]


def empty_rows(width: int) -> Rows:
    return Rows(np.zeros((0, width), np.uint8), 0, None)


CHUNK_ROWS = 1 << 16   # rows converted at a time by append_rows (bounds its temporaries)


def append_rows(rows: Rows, codes: np.ndarray, ids: np.ndarray | None, convert=None) -> Rows:
    """A new state with ``codes`` appended (caller holds the lock). Rows past ``rows.n`` are written in place when
    the buffer has room (no reader looks there); otherwise a buffer 1.5x larger receives the old rows once.
    ``convert`` (e.g. nibble packing) maps a slice of codes to full stored rows, CHUNK_ROWS at a time."""
    m, k = codes.shape
    need = rows.n + m
    buf, cur_ids = rows.buf, rows.ids
    if ids is not None and cur_ids is None:  # first explicit ids: materialise 0..n-1 for the rows already held
        cur_ids = np.arange(max(need, buf.shape[0]), dtype=np.int64)
    if need > buf.shape[0]:
        cap = need if rows.n == 0 else max(need, rows.n + rows.n // 2)
        new = np.empty((cap, buf.shape[1]), np.uint8)
        new[:rows.n] = buf[:rows.n]
        buf = new
    if cur_ids is not None and cur_ids.shape[0] < buf.shape[0]:
        grown = np.empty(buf.shape[0], np.int64)
        grown[:rows.n] = cur_ids[:rows.n]
        cur_ids = grown
    if convert is not None:
        for s in range(0, m, CHUNK_ROWS):
            buf[rows.n + s:rows.n + min(m, s + CHUNK_ROWS)] = convert(codes[s:s + CHUNK_ROWS])
    else:
        buf[rows.n:need, :k] = codes
        if buf.shape[1] > k:
            buf[rows.n:need, k:] = 0
    if cur_ids is not None:
        cur_ids[rows.n:need] = ids if ids is not None else np.arange(rows.n, need)
    return Rows(buf, need, cur_ids)


def keep_rows(rows: Rows, keep: np.ndarray, renumber: bool) -> Rows:
    """A new state holding the rows where ``keep`` is True (a fresh buffer: snapshots in use stay valid).
    ``renumber``: sequential ids shift down like faiss ``IndexFlat.remove_ids``; explicit ids are kept."""
    buf = np.ascontiguousarray(rows.buf[:rows.n][keep])
    ids = None if (renumber or rows.ids is None) else np.ascontiguousarray(rows.ids[:rows.n][keep])
    return Rows(buf, int(buf.shape[0]), ids)


def pad_results(D: np.ndarray, I: np.ndarray, k: int):
    """Widen [nq, k'] results to k columns with faiss's sentinels (distance PAD_DISTANCE, id -1)."""
    nq, have = D.shape
    if have == k:
        return D, I
    out_d = np.full((nq, k), PAD_DISTANCE, np.int64)
    out_i = np.full((nq, k), PAD_ID, np.int64)
    out_d[:, :have], out_i[:, :have] = D, I
    return out_d, out_i


def check_result_memory(nq: int, k: int) -> None:
    """AllocationError (a ValueError and MemoryError) naming nq, k and the bytes, before a search
    whose two int64 [nq, k] result arrays cannot fit in the memory available."""
    what = f"search results for nq={nq} queries and k={k} (distances and ids, int64 [nq, k] each)"
    check_allocation(16 * nq * k, what)


class IndexBase:
    """Common state: ``n_angles``, ``bits``, ``geometry``, a writer lock, argument checks, id look-ups."""

    def __init__(self, n_angles: int, bits: int = 8, geometry: str = "torusN"):
        self.n_angles = check_int(n_angles, "n_angles")
        self.bits = check_bits(bits)
        if not isinstance(geometry, str):
            raise ValueError(f"geometry must be a string, got {geometry!r}")
        self.geometry = geometry
        self.width = padded_width(self.n_angles)
        self._lock = threading.RLock()
        self._set_layout(False)          # indexes that hold rows for the kernel opt in to packing

    # ------------------------------------------------------------------ row layout
    def _set_layout(self, packed: bool) -> None:
        """Rows hold ``width`` codes, one per byte, or at bits <= 4 (``packed``) two per byte: half the memory,
        unpacked by the kernel on the fly."""
        self.packed = packed
        self.row_bytes = self.width // 2 if packed else self.width

    @property
    def _convert(self):
        """How added codes become stored rows (for append_rows): packed two per byte, or as they are (None)."""
        return (lambda c: nibble_pack(c, self.width)) if self.packed else None

    def _rows_codes(self, rows: Rows) -> np.ndarray:
        """[rows.n, n_angles] codes of a row store (unpacked when held packed)."""
        return nibble_unpack(rows.buf[:rows.n], self.n_angles) if self.packed else rows.codes(self.n_angles)

    def _stored_rows(self, codes: np.ndarray, ids) -> Rows:
        """A new row store holding ``codes`` (e.g. read from a file) in this index's layout."""
        return append_rows(empty_rows(self.row_bytes), codes, ids, self._convert)

    @property
    def d(self) -> int:
        """Number of angles per vector (faiss's ``d``)."""
        return self.n_angles

    @property
    def is_trained(self) -> bool:
        return True

    def __len__(self) -> int:
        return self.ntotal

    def save(self, path) -> None:
        """Write the whole index to one CRC-checked code file (:func:`torus_plugins.search.write_index`)."""
        from .io import write_index
        write_index(self, path)

    @classmethod
    def load(cls, path):
        """Read an index written by :meth:`save` / ``write_index``; it must be of this class."""
        from .io import read_index
        index = read_index(path)
        if not isinstance(index, cls):
            raise ValueError(f"{path} holds a {type(index).__name__}, not a {cls.__name__}: use read_index()")
        return index

    def _check_codes(self, codes, name: str) -> np.ndarray:
        if (type(codes) is np.ndarray and codes.dtype == np.uint8 and codes.ndim == 2 and self.bits == 8
                and codes.shape[1] == self.n_angles and codes.flags.c_contiguous):
            return codes  # the common case, checked in ~1 us
        codes = check_codes(codes, self.bits, name)
        if codes.ndim == 1:
            codes = codes[None]
        if codes.ndim != 2 or codes.shape[1] != self.n_angles:
            raise ValueError(f"{name} must have shape [n, {self.n_angles}] (n_angles={self.n_angles}), "
                             f"got {codes.shape}")
        return np.ascontiguousarray(codes)

    @staticmethod
    def _check_ids(ids, n: int) -> np.ndarray:
        arr = np.asarray(ids)
        if arr.dtype.kind not in "iu" or arr.shape != (n,):
            raise ValueError(f"ids must be {n} integers (one per code), got dtype {arr.dtype} shape {arr.shape}")
        if arr.size and (arr.dtype.kind == "u" and arr.max() > np.iinfo(np.int64).max):
            raise ValueError("ids must fit in int64")
        if arr.size and arr.dtype.kind == "i" and arr.min() < 0:
            raise ValueError(f"ids must be >= 0 (-1 marks padding in results), got {int(arr.min())}")
        return arr.astype(np.int64)

    @staticmethod
    def _check_k(k) -> int:
        if type(k) is int and k >= 1:
            return k
        return check_int(k, "k")

    @staticmethod
    def _check_radius(radius) -> int:
        if isinstance(radius, bool) or not isinstance(radius, (int, float, np.integer, np.floating)) or \
                not np.isfinite(radius) or radius < 0:
            raise ValueError(f"radius must be a finite number >= 0, got {radius!r}")
        return radius

    def _check_threads(self, threads):
        return None if threads is None else check_int(threads, "threads")

    @staticmethod
    def _removal_mask(ids_held: np.ndarray, ids) -> np.ndarray:
        """Stored ids that ``remove_ids(ids)`` removes: integer ids or a faiss IDSelector (see
        selectors.py)."""
        return selection_mask(ids_held, ids)
