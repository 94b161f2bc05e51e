"""Circular distance between b-bit codes, in integer arithmetic.

Per coordinate d = (a - b) mod 2**b, dist = min(d, 2**b - d); a vector distance sums them (p=1,
L1, default) or their squares (p=2).

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
        raise TypeError(
            f"p must be the integer 1 (L1) or 2 (squared L2), got {p!r} ({type(p).__name__})"
        )
    if p not in (1, 2):
        raise ValueError(
            f"p must be the integer 1 (L1) or 2 (squared L2), got {p!r} ({type(p).__name__})"
        )


def coordinate_distance(a: np.ndarray, b: np.ndarray, bits: int) -> np.ndarray:
    """Per-coordinate circular distance min(d, 2**b - d), d = (a - b) mod 2**b.

    Args:
        a: uint8 codes < 2**bits, a numpy array or torch tensor.
        b: uint8 codes < 2**bits, broadcastable with ``a``.
        bits: bits per code, an integer in [1, 8].

    Returns:
        A numpy int64 array of the broadcast shape, values in [0, 2**(bits-1)].

    Raises:
        ValueError: ``bits`` is not an integer in [1, 8], or a code is >= 2**bits.
        TypeError: ``a`` or ``b`` is not a numpy array or torch tensor of dtype uint8.
    """
    bits = check_bits(bits)
    a, b = check_codes(a, bits, "a"), check_codes(b, bits, "b")
    m = 1 << bits
    d = np.mod(a.astype(np.int64) - b.astype(np.int64), m)
    return np.minimum(d, m - d)


def circular_distance(a, b, bits: int = 8, p: int = 1) -> np.ndarray:
    """sum_j min(d_j, 2**b - d_j)**p, d_j = (a_j - b_j) mod 2**b, over the last axis.

    Circular L1 (p=1) or squared circular L2 (p=2), broadcast over the leading axes.

    Args:
        a: uint8 codes < 2**bits, [..., k], a numpy array or torch tensor.
        b: uint8 codes < 2**bits, [..., k], leading axes broadcastable with ``a``'s.
        bits: bits per code, an integer in [1, 8].
        p: 1 or 2 (a Python or numpy integer).

    Returns:
        A numpy int64 array of the broadcast leading shape.

    Raises:
        ValueError: ``bits`` or ``p`` is not an accepted integer, a code is >= 2**bits, or ``a``
            and ``b`` differ in their number of angles (or one is 0-dimensional).
        TypeError: ``a`` or ``b`` is not a numpy array or torch tensor of dtype uint8.

    Example:
        >>> a, b = np.array([0, 10], dtype=np.uint8), np.array([255, 250], dtype=np.uint8)
        >>> int(circular_distance(a, b, bits=8))        # 1 + 16
        17
    """
    bits = check_bits(bits)
    _check_p(p)
    a, b = check_codes(a, bits, "a"), check_codes(b, bits, "b")
    if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != b.shape[-1]:
        raise ValueError(
            f"a and b must have the same number of angles, got shapes {a.shape} and {b.shape}"
        )
    c = coordinate_distance(a, b, bits)
    return (c if p == 1 else c * c).sum(-1)


def pairwise_circular_distance(a, b, bits: int = 8, p: int = 1, chunk: int = 256) -> np.ndarray:
    """D_ij = :func:`circular_distance` (a_i, b_j): [n, k] x [m, k] -> [n, m] int64.

    Computed in chunks of ``chunk`` rows of ``a`` to bound memory.

    Args:
        a: uint8 codes < 2**bits of shape [n, k], a numpy array or torch tensor.
        b: uint8 codes < 2**bits of shape [m, k].
        bits: bits per code, an integer in [1, 8].
        p: 1 (circular L1) or 2 (squared circular L2).
        chunk: rows of ``a`` per step, an integer >= 1.

    Returns:
        A numpy int64 array of shape [n, m].

    Raises:
        ValueError: ``bits``, ``p`` or ``chunk`` is not an accepted integer, a code is >=
            2**bits, or ``a`` and ``b`` are not 2-D with the same k.
        TypeError: ``a`` or ``b`` is not a numpy array or torch tensor of dtype uint8, or
            ``chunk`` is not an integer.
    """
    bits = check_bits(bits)
    _check_p(p)
    chunk = check_int(chunk, "chunk", minimum=1)
    a, b = check_codes(a, bits, "a"), check_codes(b, bits, "b")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"expected [n, k] and [m, k] codes, got shapes {a.shape} and {b.shape}")
    out = np.empty((a.shape[0], b.shape[0]), np.int64)
    for s in range(0, a.shape[0], chunk):
        c = coordinate_distance(a[s : s + chunk, None, :], b[None, :, :], bits)
        out[s : s + chunk] = (c if p == 1 else c * c).sum(-1)
    return out
