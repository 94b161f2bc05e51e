"""Exact k-NN over b-bit torus codes by circular L1: :class:`TorusIndexFlat` (alias ``TorusIndex``).

Every query is compared with every stored code by the compiled sum-of-absolute-differences kernel
(:mod:`torus_plugins.search._kernel`); codes of 4 bits or fewer are held two per byte (32 B per 64
angles), which the kernel unpacks on the fly.

Usage::

    index = TorusIndexFlat(64, bits=8)
    index.add(codes)                                    # [n, 64] uint8
    D, I = index.search(query_codes, 10)
    lims, D, I = index.range_search(query_codes, 100)   # distance < 100
"""

import numpy as np

from ._args import deprecated
from ._kernel import topk_l1
from ._store import FlatStore, Rows
from .binary import TorusIndexBinaryFlat
from .params import SearchParameters

__all__ = ["TorusIndexFlat", "TorusIndex"]

_BACKENDS = ("kernel", "johnson")


class TorusIndexFlat(FlatStore):
    """Exact k-NN of b-bit codes under circular L1, like faiss's ``IndexFlat`` for float vectors.

    The first argument is the number of ANGLES per code (``n_angles``, also ``d``), not the float
    width of the embeddings: a torusN head of width 128 has 64 angles, so ``TorusIndexFlat(64)``.
    Search parameters: :class:`~torus_plugins.search.SearchParameters` (``threads``). Safe for
    concurrent ``add`` and ``search`` from several threads: a search reads one published snapshot.

    Args:
        n_angles: angles per code.
        bits: bits per angle, 1..8 (<= 4: two codes per byte).
        geometry: the geometry of the codes ("torusN", "torusC" or "sphere"), recorded in files.
        backend: deprecated; ``"johnson"`` builds a :class:`TorusIndexBinaryFlat`.

    Raises:
        ValueError: bad n_angles, bits, geometry or backend.
    """

    params_type = SearchParameters
    packs_small_codes = True

    def __new__(cls, n_angles=None, bits=8, geometry="torusN", backend=None):
        if backend is None:
            return super().__new__(cls)
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
        if backend == "kernel":
            deprecated(
                "TorusIndexFlat(backend='kernel') is deprecated: TorusIndexFlat is the "
                "kernel index; drop the argument"
            )
            return super().__new__(cls)
        deprecated(
            "TorusIndexFlat(backend='johnson') is deprecated: use "
            "TorusIndexBinaryFlat(n_angles, bits)"
        )
        return TorusIndexBinaryFlat(n_angles, bits, geometry)

    def __init__(
        self, n_angles: int, bits: int = 8, geometry: str = "torusN", backend: str | None = None
    ):
        super().__init__(n_angles, bits, geometry)

    def _search_view(self, view: Rows, q: np.ndarray, k: int, params: SearchParameters):
        k = min(k, view.n)
        if k == 0 or q.shape[0] == 0:
            return np.zeros((q.shape[0], k), np.int64), np.zeros((q.shape[0], k), np.int64)
        D, P = topk_l1(
            q, view.buf[: view.n], self.bits, k, threads=params.threads, packed=self.packed
        )
        return D, self._as_ids(view, P)


TorusIndex = TorusIndexFlat
