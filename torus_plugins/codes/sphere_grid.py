"""Hypersphere baseline: per-dimension min/max uniform grid fitted on reference data.

code = round((x - lo) / (hi - lo) * (2**b - 1)), clipped to [0, 2**b - 1];
decode = lo + code / (2**b-1) * (hi-lo). (The flat torus needs no fitted parameters; the sphere
does.)

Usage::

    sq = SphereGridQuantizer(bits=8).fit(ref)     # ref: [n, d] float
    x_hat = sq.decode(sq.encode(x))
"""

import numpy as np

from .quantize import check_bits, check_codes

__all__ = ["SphereGridQuantizer"]


class SphereGridQuantizer:
    """code = round((x - lo) / (hi - lo) * (2**b - 1)): a per-dimension min/max grid of 2**b levels.

    ``lo`` and ``hi`` (per dimension) come from :meth:`fit`; a dimension with hi == lo encodes to
    0. Values outside [lo, hi] are clipped.

    Args:
        bits: b, an integer in [1, 8] (uint8 codes).

    Raises:
        ValueError: ``bits`` is not an integer in [1, 8].

    Example:
        >>> sq = SphereGridQuantizer(bits=8).fit(np.array([[0.0, -1.0], [1.0, 1.0]]))
        >>> sq.encode(np.array([[0.5, 0.0]]))
        array([[128, 128]], dtype=uint8)
    """

    def __init__(self, bits: int = 8):
        self.bits = check_bits(bits)
        self.lo: np.ndarray | None = None
        self.hi: np.ndarray | None = None

    @staticmethod
    def _as_2d_float(x, name="x"):
        if hasattr(x, "detach"):
            x = x.detach().cpu()
            x = x.double().numpy() if x.is_floating_point() else x.numpy()  # numpy has no bfloat16
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"{name} must be floating point, got dtype {x.dtype}")
        if x.ndim != 2:
            raise ValueError(f"{name} must be 2-D [n, d], got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError(f"{name} contains NaN or inf values")
        return x.astype(np.float64)

    def fit(self, x):
        """Set ``lo`` and ``hi`` to the per-dimension minimum and maximum of ``x``.

        Args:
            x: reference vectors [n, d], n >= 1: a floating-point numpy array, tensor or array-like.

        Returns:
            ``self``.

        Raises:
            TypeError: ``x`` is not floating point.
            ValueError: ``x`` is not 2-D, is empty, or holds NaN or inf.
        """
        x = self._as_2d_float(x)
        if x.shape[0] == 0:
            raise ValueError("cannot fit on an empty array")
        self.lo, self.hi = x.min(0), x.max(0)
        return self

    def _check_fitted(self, d: int) -> tuple[np.ndarray, np.ndarray]:
        """The fitted (lo, hi), once checked to be there and of dimension ``d``."""
        if self.lo is None or self.hi is None:
            raise RuntimeError("SphereGridQuantizer is not fitted: call fit(reference) first")
        if d != self.lo.shape[0]:
            raise ValueError(f"expected {self.lo.shape[0]} dimensions, got {d}")
        return self.lo, self.hi

    def encode(self, x) -> np.ndarray:
        """Codes of vectors on the fitted grid.

        Args:
            x: vectors [n, d]: a floating-point numpy array, tensor or array-like.

        Returns:
            A numpy uint8 array [n, d], codes in [0, 2**bits - 1].

        Raises:
            TypeError: ``x`` is not floating point.
            ValueError: ``x`` is not 2-D, holds NaN or inf, or its d differs from the fit's.
            RuntimeError: :meth:`fit` was not called.
        """
        x = self._as_2d_float(x)
        lo, hi = self._check_fitted(x.shape[1])
        top = (1 << self.bits) - 1
        span = np.where(hi > lo, hi - lo, 1.0)
        return np.clip(np.round((x - lo) / span * top), 0, top).astype(np.uint8)

    def decode(self, codes) -> np.ndarray:
        """Vectors of codes: lo + code / (2**b - 1) * (hi - lo).

        Args:
            codes: uint8 codes < 2**bits of shape [n, d], a numpy array or torch tensor.

        Returns:
            A numpy float32 array [n, d].

        Raises:
            TypeError: ``codes`` is not a numpy array or torch tensor of dtype uint8.
            ValueError: a code is >= 2**bits, ``codes`` is not 2-D, or its d differs from the
                fit's.
            RuntimeError: :meth:`fit` was not called.
        """
        codes = check_codes(codes, self.bits)
        if codes.ndim != 2:
            raise ValueError(f"codes must be 2-D [n, d], got shape {codes.shape}")
        lo, hi = self._check_fitted(codes.shape[1])
        top = (1 << self.bits) - 1
        return (lo + codes.astype(np.float64) / top * (hi - lo)).astype(np.float32)
