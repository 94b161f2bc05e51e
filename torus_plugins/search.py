"""Exact and approximate k-NN search over b-bit torus codes by circular L1 distance.

* exact (default ``backend="kernel"``, any bits): a compiled sum-of-absolute-differences kernel over the codes
  (numba + x86 ``psadbw``; portable vector code elsewhere), see :mod:`torus_plugins.codes.kernel`.
* exact, ``backend="johnson"`` (bits <= 4): Johnson codes (Hamming == circular L1) in a faiss
  ``IndexBinaryFlat``; the ties faiss leaves in arbitrary order are settled by re-querying until the k-th
  distance is strictly inside the result list. Same results; about a third of the kernel's speed on AVX2.
* approx: faiss ``IndexBinaryIVF`` over Johnson codes (of the top 4 bits when bits > 4), shortlist re-ranked by
  the exact distance.

Results are (distances int64 [nq, k], ids int64 [nq, k]) sorted by distance, then by smaller id.

Usage::

    index = TorusIndex(n_angles=64, bits=8)
    index.add(codes)                      # [n, 64] uint8
    D, I = index.search(query_codes, k=10)
    index.save("refs.torc"); index = TorusIndex.load("refs.torc")
"""

import math

import numpy as np

from .codes.distance import coordinate_distance
from .codes.file_format import load_codes, save_codes
from .codes.johnson import johnson_encode
from .codes.kernel import prepare_references, topk_l1
from .codes.quantize import check_bits, check_codes

__all__ = ["TorusIndex"]

_MODES = ("exact", "approx")
_BACKENDS = ("kernel", "johnson")


class TorusIndex:
    """k-NN index of b-bit codes under circular L1. Usage: ``TorusIndex(64, bits=8).add(codes).search(q, 10)``

    ``nlist`` / ``nprobe`` / ``rerank`` tune the approximate mode (defaults: sqrt(n) lists, 16 probed, a
    shortlist of ``rerank * k`` candidates re-ranked exactly when bits > 4). ``backend`` picks the exact search:
    "kernel" (default) or "johnson" (faiss binary index, bits <= 4).
    """

    def __init__(self, n_angles: int, bits: int = 8, mode: str = "exact", nlist: int | None = None,
                 nprobe: int = 16, rerank: int = 8, geometry: str = "torusN", backend: str = "kernel"):
        if isinstance(n_angles, bool) or not isinstance(n_angles, (int, np.integer)) or n_angles <= 0:
            raise ValueError(f"n_angles must be a positive integer, got {n_angles!r}")
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
        for v, what in ((nprobe, "nprobe"), (rerank, "rerank")):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"{what} must be a positive integer, got {v!r}")
        if nlist is not None and (isinstance(nlist, bool) or not isinstance(nlist, (int, np.integer)) or nlist <= 0):
            raise ValueError(f"nlist must be a positive integer or None, got {nlist!r}")
        self.n_angles, self.bits, self.mode = int(n_angles), check_bits(bits), mode
        if backend == "johnson" and self.bits > 4:
            raise ValueError(f"backend='johnson' needs bits <= 4 (Johnson codes of {self.bits} bits would take "
                             f"{2 ** (self.bits - 1)} bits per angle); use backend='kernel'")
        self.nlist, self.nprobe, self.rerank, self.geometry = nlist, int(nprobe), int(rerank), geometry
        self.backend = backend
        self._chunks: list[np.ndarray] = []
        self._codes = np.zeros((0, self.n_angles), np.uint8)
        self._refs = None        # kernel layout (exact, backend="kernel")
        self._flat = None        # faiss IndexBinaryFlat (exact, backend="johnson")
        self._ivf = None         # faiss IndexBinaryIVF (approx)

    # ------------------------------------------------------------------ input
    def _check(self, codes, name: str) -> np.ndarray:
        codes = check_codes(codes, self.bits, name)
        if codes.ndim == 1:
            codes = codes[None]
        if codes.ndim != 2 or codes.shape[1] != self.n_angles:
            raise ValueError(f"{name} must have shape [n, {self.n_angles}] (n_angles={self.n_angles}), "
                             f"got {codes.shape}")
        return np.ascontiguousarray(codes)

    def _johnson(self, codes: np.ndarray) -> np.ndarray:
        if self.bits <= 4:
            return johnson_encode(codes, self.bits)
        return johnson_encode(codes >> (self.bits - 4), 4)

    @property
    def codes(self) -> np.ndarray:
        """All added codes, [n, n_angles] uint8."""
        if self._chunks:
            self._codes = np.concatenate([self._codes, *self._chunks], 0)
            self._chunks = []
        return self._codes

    @property
    def nbytes(self) -> int:
        """Bytes held for the collection: the codes, the search layout if it is a separate copy, faiss codes
        (and the 8-byte ids an IVF list keeps per vector)."""
        total = self.codes.nbytes
        if self._refs is not None and not np.shares_memory(self._refs, self._codes):
            total += self._refs.nbytes
        if self._flat is not None:
            total += self._flat.ntotal * self._flat.code_size
        if self._ivf is not None:
            total += self._ivf.ntotal * (self._ivf.code_size + 8)
        return int(total)

    def __len__(self) -> int:
        return int(self._codes.shape[0] + sum(c.shape[0] for c in self._chunks))

    # ------------------------------------------------------------------ build
    def add(self, codes) -> "TorusIndex":
        """Append [n, n_angles] uint8 codes (ids continue from len(self))."""
        codes = self._check(codes, "codes")
        if codes.shape[0] == 0:
            return self
        self._chunks.append(codes.copy())
        self._refs = None
        if self._flat is not None:
            self._flat.add(self._johnson(codes))
        if self._ivf is not None:
            self._ivf.add(self._johnson(codes))
        return self

    def _build_flat(self):
        from ._optional import require
        faiss = require("faiss", "search")

        if self._flat is None:
            jc = self._johnson(self.codes)
            self._flat = faiss.IndexBinaryFlat(8 * jc.shape[1])
            self._flat.add(jc)
        return self._flat

    def _build_ivf(self):
        from ._optional import require
        faiss = require("faiss", "search")

        if self._ivf is None:
            jc = self._johnson(self.codes)
            n, d = jc.shape[0], 8 * jc.shape[1]
            nlist = self.nlist or max(1, int(round(math.sqrt(n))))
            nlist = min(nlist, n)
            quantizer = faiss.IndexBinaryFlat(d)
            ivf = faiss.IndexBinaryIVF(quantizer, d, nlist)
            ivf.own_fields = True
            quantizer.this.disown()
            ivf.train(jc)
            ivf.add(jc)
            self._ivf = ivf
        self._ivf.nprobe = min(self.nprobe, self._ivf.nlist)
        return self._ivf

    # ------------------------------------------------------------------ search
    def search(self, query_codes, k: int):
        """k nearest by circular L1: (distances int64 [nq, k], ids int64 [nq, k]), ties -> smaller id first."""
        q = self._check(query_codes, "query_codes")
        n = len(self)
        if n == 0:
            raise ValueError("the index is empty: add() codes before search()")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
            raise ValueError(f"k must be an integer in [1, {n}] (the index size), got {k!r}")
        k = int(k)
        if self.mode == "approx":
            return self._search_approx(q, k)
        if self.backend == "johnson":
            return self._search_johnson(q, k)
        if self._refs is None:
            self._refs = prepare_references(self.codes)
        return topk_l1(q, self._refs, self.bits, k)

    @staticmethod
    def _sorted(D: np.ndarray, I: np.ndarray, k: int):
        order = np.lexsort((I, D), axis=-1)[:, :k]
        return (np.take_along_axis(D, order, 1).astype(np.int64), np.take_along_axis(I, order, 1).astype(np.int64))

    def _search_johnson(self, q: np.ndarray, k: int):
        index = self._build_flat()
        n = len(self)
        jq = self._johnson(q)
        out_d = np.empty((q.shape[0], k), np.int64)
        out_i = np.empty((q.shape[0], k), np.int64)
        rows = np.arange(q.shape[0])
        kk = min(n, k + 16)
        while rows.size:
            D, I = index.search(jq[rows], kk)
            # exact iff every item tied with the k-th distance is in the list: the last one is strictly farther
            done = (D[:, kk - 1] > D[:, k - 1]) if kk < n else np.ones(rows.size, bool)
            if done.any():
                out_d[rows[done]], out_i[rows[done]] = self._sorted(D[done], I[done], k)
            rows = rows[~done]
            kk = min(n, kk * 4)
        return out_d, out_i

    def _search_approx(self, q: np.ndarray, k: int):
        index = self._build_ivf()
        n = len(self)
        kk = k if self.bits <= 4 else min(n, self.rerank * k)
        D, I = index.search(self._johnson(q), kk)
        D = D.astype(np.int64)
        I = I.astype(np.int64)
        missing = I < 0
        if self.bits > 4:
            # exact distance on the shortlist
            cand = self.codes[np.where(missing, 0, I)]                        # [nq, kk, n_angles]
            D = coordinate_distance(q[:, None, :], cand, self.bits).sum(-1, dtype=np.int64)
        big = np.iinfo(np.int64).max
        D = np.where(missing, big, D)
        I = np.where(missing, n, I)      # sorts after every real id
        D, I = self._sorted(D, I, k)
        bad = (D == big).any(1)
        if bad.any():  # too few candidates in the probed lists: answer those rows exactly
            ex = TorusIndex(self.n_angles, self.bits, "exact")
            ex._codes = self.codes
            D[bad], I[bad] = ex.search(q[bad], k)
        return D, I

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Write the codes and the index settings to one code file (see :mod:`torus_plugins.codes.file_format`)."""
        meta = {"torus_index": {"mode": self.mode, "nlist": self.nlist, "nprobe": self.nprobe,
                                "rerank": self.rerank, "backend": self.backend}}
        save_codes(path, self.codes, self.bits, geometry=self.geometry, meta=meta)

    @classmethod
    def load(cls, path) -> "TorusIndex":
        """Read an index written by :meth:`save` (any code file works; it gets default settings)."""
        f = load_codes(path)
        opts = f.meta.get("torus_index", {}) if isinstance(f.meta, dict) else {}
        index = cls(f.n_angles, f.bits, geometry=f.geometry, **opts)
        index.add(f.codes)
        return index

    def __repr__(self) -> str:
        return (f"TorusIndex(n_angles={self.n_angles}, bits={self.bits}, mode={self.mode!r}, "
                f"backend={self.backend!r}, n={len(self)})")
