"""Exact k-NN over b-bit torus codes by circular L1: :class:`TorusIndexFlat` (alias ``TorusIndex``).

Every query is compared with every stored code by the compiled sum-of-absolute-differences kernel
(:mod:`torus_plugins.codes.tiled`); codes of 4 bits or fewer are held two per byte (32 B per 64 angles), which
the kernel unpacks on the fly. ``backend="johnson"`` (bits <= 4) searches Johnson codes (Hamming == circular L1)
with faiss ``IndexBinaryFlat`` instead, with the same results.

Results follow faiss: (distances int64 [nq, k], ids int64 [nq, k]) sorted by distance, ties -> the earlier-added
code first (the smaller id when ids are sequential); k > ntotal pads with id -1 and distance ``PAD_DISTANCE``
(int64 max). Ids are 0..ntotal-1 (``add``), renumbered by ``remove_ids`` as in faiss ``IndexFlat``, or your own
(``add_with_ids``, kept by ``remove_ids`` as in faiss ``IndexIDMap``).

Usage::

    index = TorusIndexFlat(n_angles=64, bits=8)
    index.add(codes)                      # [n, 64] uint8
    D, I = index.search(query_codes, k=10)
    lims, D, I = index.range_search(query_codes, radius=100)   # distance < radius
"""

import contextlib

import numpy as np

from ..codes.johnson import johnson_encode
from ..codes.kernel import topk_l1
from ._base import (IndexBase, Rows, append_rows, check_result_memory, empty_rows, keep_rows,
                    pad_results)

__all__ = ["TorusIndexFlat", "TorusIndex"]

_BACKENDS = ("kernel", "johnson")


def range_from_topk(topk, q: np.ndarray, n: int, radius):
    """faiss-style (lims, D, I) of every item with distance < radius, from a ``topk(rows, k)`` search:
    k grows 4x for the rows whose k-th distance is still inside the radius."""
    nq = q.shape[0]
    found_d, found_i = [None] * nq, [None] * nq
    rows = np.arange(nq)
    k = min(n, 32)
    while rows.size and n:
        D, I = topk(q[rows], k)
        full = (D[:, -1] < radius) & (k < n)
        for r, d, i, more in zip(rows, D, I, full):
            if not more:
                inside = d < radius
                found_d[r], found_i[r] = d[inside], i[inside]
        rows = rows[full]
        k = min(n, 4 * k)
    empty = np.zeros(0, np.int64)
    found_d = [empty if f is None else f for f in found_d]
    found_i = [empty if f is None else f for f in found_i]
    lims = np.zeros(nq + 1, np.int64)
    lims[1:] = np.cumsum([len(f) for f in found_d])
    return lims, np.concatenate([empty, *found_d]), np.concatenate([empty, *found_i])


class TorusIndexFlat(IndexBase):
    """Exact k-NN of b-bit codes under circular L1. Usage: ``TorusIndexFlat(64, bits=8).add(codes).search(q, 10)``

    Unlike faiss's ``IndexFlat(d)``, the first argument is the number of ANGLES per code
    (``n_angles``, also exposed as ``d``), not the float width of the embeddings: a torusN head of
    width 128 has 64 angles, so ``TorusIndexFlat(64)``.

    Safe for concurrent ``add`` and ``search`` from several threads (see :mod:`torus_plugins.search._base`).
    """

    kind = "Flat"

    def __init__(self, n_angles: int, bits: int = 8, geometry: str = "torusN", backend: str = "kernel"):
        super().__init__(n_angles, bits, geometry)
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
        if backend == "johnson" and self.bits > 4:
            raise ValueError(f"backend='johnson' needs bits <= 4 (Johnson codes of {self.bits} bits would take "
                             f"{2 ** (self.bits - 1)} bits per angle); use backend='kernel'")
        self.backend = backend
        self._set_layout(backend == "kernel" and self.bits <= 4)    # faiss holds its own Johnson codes
        self._state: Rows = empty_rows(self.row_bytes)
        self._flat = None            # faiss IndexBinaryFlat over Johnson codes (backend="johnson"), built lazily
        self._flat_n = 0

    # ------------------------------------------------------------------ contents
    @property
    def ntotal(self) -> int:
        return self._state.n

    @property
    def codes(self) -> np.ndarray:
        """All stored codes, [ntotal, n_angles] uint8, read-only (a view; a copy when they are held packed)."""
        view = self._rows_codes(self._state)
        view = view.view()
        view.flags.writeable = False
        return view

    @property
    def ids(self) -> np.ndarray:
        """The id of every stored code, int64 [ntotal]."""
        return self._state.id_array()

    @property
    def nbytes(self) -> int:
        """Bytes held: the codes (padded to 32 angles per vector; half a byte per angle at bits <= 4), the ids if
        explicit, faiss's Johnson codes."""
        st = self._state
        total = st.n * st.buf.shape[1] + (0 if st.ids is None else 8 * st.n)
        if self._flat is not None:
            total += self._flat.ntotal * self._flat.code_size
        return int(total)

    # ------------------------------------------------------------------ build
    def train(self, codes) -> "TorusIndexFlat":
        """Nothing to learn (``is_trained`` is always True): checks ``codes`` and returns the index,
        as faiss's flat indexes accept a no-op ``train`` so that code written for any index type
        runs unchanged."""
        self._check_codes(codes, "codes")
        return self

    def add(self, codes) -> "TorusIndexFlat":
        """Append [n, n_angles] uint8 codes; their ids continue from ntotal (or ids were given: use add_with_ids)."""
        codes = self._check_codes(codes, "codes")
        with self._lock:
            if self._state.ids is not None and codes.shape[0]:
                raise ValueError("this index holds explicit ids (add_with_ids was used): add codes with "
                                 "add_with_ids too")
            self._state = append_rows(self._state, codes, None, self._convert)
        return self

    def add_with_ids(self, codes, ids) -> "TorusIndexFlat":
        """Append codes with your own int64 ids (like faiss ``IndexIDMap.add_with_ids``)."""
        codes = self._check_codes(codes, "codes")
        ids = self._check_ids(ids, codes.shape[0])
        with self._lock:
            self._state = append_rows(self._state, codes, ids, self._convert)
        return self

    def remove_ids(self, ids) -> int:
        """Remove the codes with these ids -- integer ids or a faiss ``IDSelector``
        (``IDSelectorRange``, ``IDSelectorBatch``, ``IDSelectorNot`` ...: :mod:`.selectors`);
        returns how many were removed (faiss
        semantics: sequential ids shift down, explicit ids stay)."""
        with self._lock:
            st = self._state
            mask = self._removal_mask(st.id_array(), ids)
            removed = int(mask.sum())
            if removed:
                self._state = keep_rows(st, ~mask, renumber=st.ids is None)
                self._flat, self._flat_n = None, 0
        return removed

    def reset(self) -> None:
        """Remove everything."""
        with self._lock:
            self._state = empty_rows(self.row_bytes)
            self._flat, self._flat_n = None, 0

    # ------------------------------------------------------------------ search
    def search(self, query_codes, k: int, threads: int | None = None):
        """k nearest by circular L1: (distances int64 [nq, k], ids int64 [nq, k]); ties -> earlier-added first;
        k > ntotal pads with id -1 and distance PAD_DISTANCE. ``threads``: at most this many threads."""
        q = self._check_codes(query_codes, "query_codes")
        k = self._check_k(k)
        check_result_memory(q.shape[0], k)
        threads = self._check_threads(threads)
        if self.backend == "kernel":  # lock-free: one snapshot
            st = self._state
            D, P = self._topk_positions(st, q, min(k, st.n), threads)
        else:
            with self._lock:
                st = self._state
                D, P = self._topk_positions(st, q, min(k, st.n), threads)
        if st.ids is not None:
            P = st.ids[P]
        return pad_results(D, P, k)

    def range_search(self, query_codes, radius, threads: int | None = None):
        """Every stored code at circular L1 distance < radius (strict, like faiss): (lims int64 [nq + 1],
        D int64, I int64); query i's results are D[lims[i]:lims[i+1]], sorted by distance then insertion."""
        q = self._check_codes(query_codes, "query_codes")
        radius = self._check_radius(radius)
        threads = self._check_threads(threads)
        with self._reading():
            st = self._state
            lims, D, P = range_from_topk(lambda qq, kk: self._topk_positions(st, qq, kk, threads), q, st.n, radius)
        return lims, D, (P if st.ids is None else st.ids[P])

    def _reading(self):
        """The kernel reads a lock-free snapshot; faiss (backend="johnson") must not search while it adds."""
        return self._lock if self.backend == "johnson" else contextlib.nullcontext()

    def _topk_positions(self, st: Rows, q: np.ndarray, k: int, threads=None):
        if k == 0 or q.shape[0] == 0:
            return np.zeros((q.shape[0], k), np.int64), np.zeros((q.shape[0], k), np.int64)
        if self.backend == "johnson":
            return self._search_johnson(st, q, k)
        return topk_l1(q, st.buf[:st.n], self.bits, k, threads=threads, packed=self.packed)


    def _johnson_index(self, st: Rows):
        from .._optional import require
        faiss = require("faiss", "search")

        if self._flat is None:
            self._flat = faiss.IndexBinaryFlat(8 * johnson_encode(np.zeros((1, self.n_angles), np.uint8),
                                                                  self.bits).shape[1])
            self._flat_n = 0
        if self._flat_n < st.n:
            self._flat.add(johnson_encode(st.codes(self.n_angles)[self._flat_n:], self.bits))
            self._flat_n = st.n
        return self._flat

    def _search_johnson(self, st: Rows, q: np.ndarray, k: int):
        """faiss leaves ties in arbitrary order: re-query with more results until every item tied with the k-th
        distance is in the list (the last one is strictly farther), then sort by (distance, position)."""
        index = self._johnson_index(st)   # called under the lock with the current state: faiss holds st.n rows
        n = st.n
        jq = johnson_encode(q, self.bits)
        out_d = np.empty((q.shape[0], k), np.int64)
        out_i = np.empty((q.shape[0], k), np.int64)
        rows = np.arange(q.shape[0])
        kk = min(n, k + 16)
        while rows.size:
            D, I = index.search(jq[rows], kk)
            D, I = D.astype(np.int64), I.astype(np.int64)
            done = (D[:, kk - 1] > D[:, k - 1]) if kk < n else np.ones(rows.size, bool)
            if done.any():
                order = np.lexsort((I[done], D[done]), axis=-1)[:, :k]
                out_d[rows[done]] = np.take_along_axis(D[done], order, 1)
                out_i[rows[done]] = np.take_along_axis(I[done], order, 1)
            rows = rows[~done]
            kk = min(n, kk * 4)
        return out_d, out_i

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(n_angles={self.n_angles}, bits={self.bits}, backend={self.backend!r}, "
                f"ntotal={self.ntotal})")


TorusIndex = TorusIndexFlat
