"""Product quantisation: faiss ``IndexPQ(d, M, nbits)``; the paper's raw-value baseline on 8-bit
torus values.

On torus angles this ignores the wrap-around (code 255 and code 0 are far apart): use
:class:`~torus_plugins.codes.TorusProductQuantizer` for tori; this class stays for the sphere and as
the baseline.

Paper settings as (nbits, M): (8,16), (8,4), (8,2), (8,1), (4,4), (4,2); cost
``bits_per_vector = M * nbits``.

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
    """x ~ [c_1(x_1), ..., c_M(x_M)]: faiss ``IndexPQ(d, M, nbits)``, M sub-spaces of d/M dims.

    A thin wrapper around ``faiss.IndexPQ`` with input checks; the index is ``self.index``.
    Needs the ``search`` extra (faiss).

    Args:
        d: the vector width.
        M: the number of sub-quantisers; must divide ``d``.
        nbits: bits per sub-quantiser index, in [1, 16].

    Raises:
        ModuleNotFoundError: faiss is not installed (the message names the extra).
        ValueError: ``d``, ``M`` or ``nbits`` is not a positive integer, ``M`` does not divide
            ``d``, or ``nbits`` > 16.

    Example:
        >>> pq = ProductQuantizer(d=64, M=16, nbits=8)
        >>> pq.bits_per_vector
        128
    """

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
        """M * nbits, the cost of one stored vector in bits."""
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
        """Fit the sub-quantisers' k-means on ``x``.

        Args:
            x: training vectors [n, d], n >= 2**nbits: uint8 codes (read as 0..255) or floats, a
                numpy array or tensor (:class:`TorusProductQuantizer`: angles in turns [n, k]).

        Returns:
            ``self``.

        Raises:
            TypeError: ``x`` is neither uint8 nor floating point.
            ValueError: ``x`` has the wrong shape, holds NaN or inf, or has fewer than 2**nbits
                rows.
        """
        x = self._as_float(x)
        need = 1 << self.nbits
        if x.shape[0] < need:
            raise ValueError(f"training needs at least 2**nbits = {need} vectors, got {x.shape[0]}")
        self.index.train(x)
        return self

    def add(self, x):
        """Quantise ``x`` and store it (ids continue from the number already stored).

        Args:
            x: vectors [n, d], as for :meth:`train`.

        Returns:
            ``self``.

        Raises:
            RuntimeError: :meth:`train` was not called.
            TypeError: ``x`` is neither uint8 nor floating point.
            ValueError: ``x`` has the wrong shape or holds NaN or inf.
        """
        if not self.index.is_trained:
            raise RuntimeError(f"train the {type(self).__name__} before add()")
        self.index.add(self._as_float(x))
        return self

    def search(self, q, k: int):
        """The ``k`` stored vectors nearest each query (asymmetric: queries are not quantised).

        Args:
            q: queries [nq, d], as for :meth:`train`.
            k: the number of neighbours, in [1, number stored].

        Returns:
            (D, I): float32 [nq, k] squared L2 distances and int64 [nq, k] ids, nearest first.

        Raises:
            ValueError: nothing is stored, ``k`` is out of range, or ``q`` has the wrong shape or
                holds NaN or inf.
            TypeError: ``q`` is neither uint8 nor floating point.
        """
        if self.index.ntotal == 0:
            raise ValueError("the index is empty: add() vectors first")
        k = check_int(k, "k", 1, self.index.ntotal)
        return self.index.search(self._as_float(q, "q"), int(k))

    def __len__(self):
        return int(self.index.ntotal)
