"""Product quantisation: faiss ``IndexPQ(d, M, nbits)``; the paper's raw-value baseline on 8-bit torus values.

On torus angles this ignores the wrap-around (code 255 and code 0 are far apart): use
:class:`~torus_plugins.codes.TorusProductQuantizer` for tori; this class stays for the sphere and as the baseline.

Paper settings as (nbits, M): (8,16), (8,4), (8,2), (8,1), (4,4), (4,2); cost ``bits_per_vector = M * nbits``.

Usage::

    pq = ProductQuantizer(d=64, M=16, nbits=8)
    pq.train(codes); pq.add(codes)             # uint8 codes (read as 0..255 floats) or float arrays
    D, I = pq.search(query_codes, k=10)
"""

import numpy as np

from .._checks import check_int

__all__ = ["ProductQuantizer", "PAPER_PQ_SETTINGS"]

PAPER_PQ_SETTINGS = ((8, 16), (8, 4), (8, 2), (8, 1), (4, 4), (4, 2))


class ProductQuantizer:
    """Thin wrapper around ``faiss.IndexPQ`` with input checks. Usage: ``ProductQuantizer(64, 16, 8)``"""

    def __init__(self, d: int, M: int, nbits: int = 8):
        from .._optional import require
        faiss = require("faiss", "search")

        for v, what in ((d, "d"), (M, "M"), (nbits, "nbits")):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"{what} must be a positive integer, got {v!r}")
        if d % M:
            raise ValueError(f"M={M} must divide d={d} (each sub-quantiser takes d/M dimensions)")
        if not 1 <= nbits <= 16:
            raise ValueError(f"nbits must be in [1, 16], got {nbits}")
        self.d, self.M, self.nbits = int(d), int(M), int(nbits)
        self.index = faiss.IndexPQ(self.d, self.M, self.nbits)

    @property
    def bits_per_vector(self) -> int:
        return self.M * self.nbits

    def _as_float(self, x, name="x") -> np.ndarray:
        if hasattr(x, "detach"):
            x = x.detach().cpu().numpy()
        x = np.asarray(x)
        if not (x.dtype == np.uint8 or np.issubdtype(x.dtype, np.floating)):
            raise TypeError(f"{name} must be uint8 codes or floats, got dtype {x.dtype}")
        if x.ndim != 2 or x.shape[1] != self.d:
            raise ValueError(f"{name} must have shape [n, {self.d}], got {x.shape}")
        x = np.ascontiguousarray(x, dtype=np.float32)
        if not np.isfinite(x).all():
            raise ValueError(f"{name} contains NaN or inf values")
        return x

    def train(self, x):
        x = self._as_float(x)
        need = 1 << self.nbits
        if x.shape[0] < need:
            raise ValueError(f"training needs at least 2**nbits = {need} vectors, got {x.shape[0]}")
        self.index.train(x)
        return self

    def add(self, x):
        if not self.index.is_trained:
            raise RuntimeError(f"train the {type(self).__name__} before add()")
        self.index.add(self._as_float(x))
        return self

    def search(self, q, k: int):
        if self.index.ntotal == 0:
            raise ValueError("the index is empty: add() vectors first")
        k = check_int(k, "k", 1, self.index.ntotal)
        return self.index.search(self._as_float(q, "q"), int(k))

    def __len__(self):
        return int(self.index.ntotal)
