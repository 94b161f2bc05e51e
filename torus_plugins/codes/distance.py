"""Circular distance between b-bit codes, in integer arithmetic.

Per coordinate d = (a - b) mod 2**b, dist = min(d, 2**b - d); a vector distance sums them (p=1, L1, default)
or their squares (p=2).

Usage::

    circular_distance(a, b, bits=8)             # broadcast over leading dims -> int64
    pairwise_circular_distance(A, B, bits=8)    # [n, k] x [m, k] -> [n, m] int64
"""

import numpy as np

from .._checks import check_int
from .quantize import check_bits, check_codes

__all__ = ["circular_distance", "pairwise_circular_distance", "coordinate_distance"]


def _check_p(p):
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)):
        raise TypeError(f"p must be the integer 1 (L1) or 2 (squared L2), got {p!r} ({type(p).__name__})")
    if p not in (1, 2):
        raise ValueError(f"p must be the integer 1 (L1) or 2 (squared L2), got {p!r} ({type(p).__name__})")


def coordinate_distance(a: np.ndarray, b: np.ndarray, bits: int) -> np.ndarray:
    """Per-coordinate circular distance min(d, 2**b - d), d = (a - b) mod 2**b (int64, broadcast)."""
    bits = check_bits(bits)
    a, b = check_codes(a, bits, "a"), check_codes(b, bits, "b")
    m = 1 << bits
    d = np.mod(a.astype(np.int64) - b.astype(np.int64), m)
    return np.minimum(d, m - d)


def circular_distance(a, b, bits: int = 8, p: int = 1) -> np.ndarray:
    """Circular L1 (p=1) or squared L2 (p=2) distance over the last axis; int64, broadcast over the rest.

    Usage: ``circular_distance(codes[0], codes[1], bits=8)``
    """
    bits = check_bits(bits)
    _check_p(p)
    a, b = check_codes(a, bits, "a"), check_codes(b, bits, "b")
    if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != b.shape[-1]:
        raise ValueError(f"a and b must have the same number of angles, got shapes {a.shape} and {b.shape}")
    c = coordinate_distance(a, b, bits)
    return (c if p == 1 else c * c).sum(-1)


def pairwise_circular_distance(a, b, bits: int = 8, p: int = 1, chunk: int = 256) -> np.ndarray:
    """All pairs: [n, k] x [m, k] -> [n, m] int64, computed in row chunks to bound memory.

    Usage: ``D = pairwise_circular_distance(queries, refs, bits=8)``
    """
    bits = check_bits(bits)
    _check_p(p)
    chunk = check_int(chunk, "chunk", minimum=1)
    a, b = check_codes(a, bits, "a"), check_codes(b, bits, "b")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected [n, k] and [m, k] codes, got shapes {a.shape} and {b.shape}")
    out = np.empty((a.shape[0], b.shape[0]), np.int64)
    for s in range(0, a.shape[0], chunk):
        c = coordinate_distance(a[s:s + chunk, None, :], b[None, :, :], bits)
        out[s:s + chunk] = (c if p == 1 else c * c).sum(-1)
    return out
