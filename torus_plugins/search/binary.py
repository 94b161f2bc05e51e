"""Exact k-NN over torus codes of 4 bits or fewer with faiss: :class:`TorusIndexBinaryFlat`.

The Johnson code of a b-bit angle (2**(b-1) bits, :mod:`torus_plugins.codes.johnson`) turns circular
L1 into Hamming distance, which faiss ``IndexBinaryFlat`` searches. The answers equal
:class:`~torus_plugins.search.TorusIndexFlat`'s, ties included; the kernel index is faster and
smaller, this one shows the equivalence on faiss's own code and runs wherever faiss does.

Usage::

    index = TorusIndexBinaryFlat(64, bits=4)
    index.add(codes)                       # [n, 64] uint8 < 16
    D, I = index.search(query_codes, 10)
"""

from typing import Any

import numpy as np

from ..codes.johnson import johnson_encode
from ._results import smallest_k
from ._store import FlatStore, Rows
from .params import SearchParameters

__all__ = ["TorusIndexBinaryFlat"]


class TorusIndexBinaryFlat(FlatStore):
    """Exact k-NN of codes of bits <= 4 under circular L1: faiss ``IndexBinaryFlat`` on their
    Johnson codes (Hamming distance == circular L1), ties settled as :class:`TorusIndexFlat` does.

    Needs faiss (extra ``[search]``). faiss searches with its own OpenMP threads
    (``faiss.omp_set_num_threads``), so :class:`~torus_plugins.search.SearchParameters` must leave
    ``threads`` at None. An ``add`` and a search do not overlap (faiss's index is not safe for
    that): they take turns on the index lock.

    Args:
        n_angles: angles per code.
        bits: bits per angle, 1..4.
        geometry: the geometry of the codes ("torusN", "torusC" or "sphere"), recorded in files.

    Raises:
        ValueError: bad n_angles or geometry, or bits outside 1..4.
    """

    params_type = SearchParameters
    file_kind = "BinaryFlat"
    _file_backend = "johnson"

    def __init__(self, n_angles: int, bits: int = 4, geometry: str = "torusN"):
        super().__init__(n_angles, bits, geometry)
        if self.bits > 4:
            raise ValueError(
                f"TorusIndexBinaryFlat needs bits <= 4 (the Johnson code of a "
                f"{self.bits}-bit angle takes {2 ** (self.bits - 1)} bits), got "
                f"bits={self.bits}: use TorusIndexFlat"
            )
        self._flat: Any = None  # faiss IndexBinaryFlat over the Johnson codes, built lazily
        self._flat_n = 0  # rows of _state it holds

    @property
    def nbytes(self) -> int:
        """Bytes held: the codes, the ids if explicit, and faiss's Johnson codes."""
        extra = 0 if self._flat is None else self._flat.ntotal * self._flat.code_size
        return super().nbytes + int(extra)

    def _replaced(self) -> None:
        self._flat, self._flat_n = None, 0

    def _reading(self):
        return self._lock

    def _check_params(self, params):
        params = super()._check_params(params)
        if params.threads is not None:
            raise ValueError(
                f"TorusIndexBinaryFlat searches on faiss's OpenMP threads (set them "
                f"with faiss.omp_set_num_threads): params.threads must be None, got "
                f"{params.threads}"
            )
        return params

    def _johnson_index(self, st: Rows):
        """faiss's index holding every row of ``st`` (called under the lock)."""
        from .._optional import require

        faiss = require("faiss", "search")

        if self._flat is None:
            bits = 8 * johnson_encode(np.zeros((1, self.n_angles), np.uint8), self.bits).shape[1]
            self._flat, self._flat_n = faiss.IndexBinaryFlat(bits), 0
        if self._flat_n < st.n:
            self._flat.add(johnson_encode(self.layout.codes(st)[self._flat_n :], self.bits))
            self._flat_n = st.n
        return self._flat

    def _search_view(self, view: Rows, q: np.ndarray, k: int, params: SearchParameters):
        """faiss leaves ties in arbitrary order: re-query with more results until every code tied
        with the k-th distance is in the list (the last one is strictly farther), then sort by
        (distance, position)."""
        k, n = min(k, view.n), view.n
        if k == 0 or q.shape[0] == 0:
            return np.zeros((q.shape[0], k), np.int64), np.zeros((q.shape[0], k), np.int64)
        index = self._johnson_index(view)
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
                out_d[rows[done]], out_i[rows[done]] = smallest_k(D[done], I[done], k)
            rows = rows[~done]
            kk = min(n, kk * 4)
        return out_d, self._as_ids(view, out_i)
