"""Integer-only operations of the torus head: the exact angle code of an int32 pair (torusN) and the
fixed-point turn code of an int32 accumulator (torusC).

torusN: ``code = round_half_even(2**b * (atan2(y, x) / 2pi mod 1)) mod 2**b`` by octant reduction
and comparisons of y / x with the code boundaries' tangents held to 96 fractional bits. torusC:
``code = floor(acc * multiplier / 2**shift + 1/2) mod 2**b``.
"""

import functools
import math

import numpy as np
import torch

from .._checks import check_int, check_positive_float
from ..codes.quantize import check_bits

__all__ = [
    "angle_codes",
    "turn_codes",
    "fixed_point_multiplier",
    "boundary_tangents",
    "ZERO_PAIR_CODE",
    "TANGENT_FRACTION_BITS",
]

#: Code of the pair (0, 0), whose angle is undefined (torusN).
ZERO_PAIR_CODE = 0
#: Fractional bits of the boundary tangents: enough for an exact comparison with any int32 pair
#: (the nearest int32 lattice point to any boundary direction is more than 2**31 times farther than
#: the rounding error of the constant; tested).
TANGENT_FRACTION_BITS = 96
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
_MASK32 = (1 << 32) - 1


def _fixed_pi(p: int) -> int:
    """pi * 2**p within a few units (Machin: pi / 4 = 4 atan(1/5) - atan(1/239)), integers only."""

    def atan_inv(x: int) -> int:  # atan(1/x) * 2**p = sum_k (-1)**k / ((2k+1) x**(2k+1))
        total, power, k = 0, (1 << p) // x, 1
        while power:
            total += power // k if k % 4 == 1 else -(power // k)
            power //= x * x
            k += 2
        return total

    return 4 * (4 * atan_inv(5) - atan_inv(239))


def _fixed_tan(num: int, den: int, p: int) -> int:
    """tan(pi * num / den) * 2**p for 0 < num / den <= 1/4, within ~100 units (Taylor series of sin
    and cos in p-bit fixed point, integers only)."""
    x = _fixed_pi(p) * num // den
    sin = cos = 0
    term, k = 1 << p, 0  # x**k / k! * 2**p
    while term:
        sign = 1 if k % 4 < 2 else -1
        if k % 2:
            sin += sign * term
        else:
            cos += sign * term
        k += 1
        term = (term * x >> p) // k
    return (sin << p) // cos


@functools.cache
def boundary_tangents(bits: int) -> np.ndarray:
    """round(tan(2pi (j + 1/2) / 2**bits) * 2**96), j = 0 .. 2**bits / 8 - 1, as 32-bit limbs.

    The code boundaries inside the first octant (bits >= 3; there are none below). tan < 1, so each
    constant is below 2**96 and every limb below 2**32. Computed in 160-bit integer fixed point
    (error ~2**-150, far below the rounding step; the tests compare with mpmath).

    Args:
        bits: code width, 3..8.

    Returns:
        uint64 array [2**bits / 8, 3], high limb first, read-only.
    """
    bits = check_bits(bits, lo=3)
    p, rows = 160, []
    for j in range(1 << (bits - 3)):
        t = _fixed_tan(2 * j + 1, 1 << bits, p)  # 2pi (j + 1/2) / 2**b = pi (2j + 1) / 2**b
        t = (t + (1 << (p - TANGENT_FRACTION_BITS - 1))) >> (p - TANGENT_FRACTION_BITS)
        rows.append((t >> 64, (t >> 32) & _MASK32, t & _MASK32))
    out = np.array(rows, dtype=np.uint64)
    out.flags.writeable = False
    return out


def _above(a: np.ndarray, b: np.ndarray, limbs: np.ndarray) -> np.ndarray:
    """b * 2**96 > a * t for the 96-bit t = limbs (high first), 0 <= a, b <= 2**31, exactly.

    a * t / 2**64 = a*t2 + floor((a*t1 + floor(a*t0 / 2**32)) / 2**32) + f with 0 <= f < 1, and
    b * 2**32 is an integer, so comparing with the floor alone is exact. Every product is < 2**63.
    """
    s = a * limbs[..., 1] + ((a * limbs[..., 2]) >> np.uint64(32))
    return (b << np.uint64(32)) > a * limbs[..., 0] + (s >> np.uint64(32))


def _check_int32_array(values, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    if isinstance(values, (list, tuple, int, np.integer)):
        values = np.asarray(values)
    if not isinstance(values, np.ndarray):
        raise TypeError(f"{name} must be a numpy array of integers, got {type(values).__name__}")
    if values.dtype == np.bool_ or not np.issubdtype(values.dtype, np.integer):
        raise TypeError(
            f"{name} must have an integer dtype (values in int32 range), got dtype {values.dtype}"
        )
    if values.size and (values.min() < INT32_MIN or values.max() > INT32_MAX):
        raise ValueError(
            f"{name} must hold values in int32 range [{INT32_MIN}, {INT32_MAX}], "
            f"got [{values.min()}, {values.max()}]"
        )
    return values.astype(np.int64)


def angle_codes(x, y, bits: int) -> np.ndarray:
    """Code of the exact angle of integer vectors: round_half_even(2**b atan2(y, x) / 2pi) mod 2**b.

    Integer-only. bits 1 and 2: the boundaries are the axes (bits=1) or the diagonals (bits=2),
    decided by signs and |x| vs |y|; the ties on them round half to even (bits=1: the y axis -> 0;
    bits=2: 45 and 315 degrees -> 0, 135 and 225 degrees -> 2). bits >= 3: reduce (|x|, |y|) to the
    first octant (a, b), 0 <= b <= a, count the boundary tangents below b / a (binary search, exact
    96-bit comparisons), then unfold the octant. From 3 bits on no int32 pair lies on a boundary
    (the tangent of an odd multiple of pi / 2**b is irrational), so no tie can occur. The pair
    (0, 0) gives ``ZERO_PAIR_CODE`` (0).

    Args:
        x, y: integer arrays (any integer dtype, values in int32 range), broadcast together.
        bits: code width, 1..8.

    Returns:
        uint8 array of codes, the broadcast shape of x and y.

    Raises:
        TypeError: x or y is not an integer array.
        ValueError: bits outside 1..8, or values outside int32.
    """
    bits = check_bits(bits)
    x, y = np.broadcast_arrays(_check_int32_array(x, "x"), _check_int32_array(y, "y"))
    levels = 1 << bits
    ax, ay = np.abs(x), np.abs(y)
    if bits == 1:
        return (x < 0).astype(np.uint8)
    if bits == 2:
        code = np.where(x < 0, 2, 0)
        code = np.where(ay > ax, np.where(y > 0, 1, 3), code)
        return code.astype(np.uint8)
    swap = ay > ax
    a = np.where(swap, ay, ax).astype(np.uint64)  # first octant: 0 <= b <= a <= 2**31
    b = np.where(swap, ax, ay).astype(np.uint64)
    limbs = boundary_tangents(bits)
    r = np.zeros(a.shape, np.int64)  # number of boundaries below b / a, by binary lifting
    step = limbs.shape[0] // 2
    while step:
        r += np.where(_above(a, b, limbs[r + step - 1]), step, 0)
        step //= 2
    r += _above(a, b, limbs[r])  # r <= n - 1 here: the last boundary decides r = n
    code = np.where(swap, levels // 4 - r, r)  # first quadrant
    code = np.where(x < 0, levels // 2 - code, code)  # mirror to the left half
    code = np.where(y < 0, levels - code, code)  # mirror to the lower half
    return (code & (levels - 1)).astype(np.uint8)


def fixed_point_multiplier(value: float) -> tuple[int, int]:
    """(multiplier, shift): multiplier / 2**shift = value within relative 2**-31.

    Args:
        value: a finite real in [2**-32, 2**31 - 1).

    Returns:
        (multiplier, shift) with 2**30 <= multiplier < 2**31 and 0 <= shift <= 62.

    Raises:
        ValueError: value outside [2**-32, 2**31 - 1) or not finite.
    """
    value = check_positive_float(value, "value")
    if not 2.0**-32 <= value < 2.0**31 - 1:
        raise ValueError(
            f"value must be in [2**-32, 2**31 - 1) for a 31-bit multiplier with "
            f"shift 0..62, got {value!r}"
        )
    _, exponent = math.frexp(value)  # value = f * 2**exponent, 0.5 <= f < 1
    shift = 31 - exponent
    multiplier = round(math.ldexp(value, shift))  # in [2**30, 2**31]
    if multiplier == 1 << 31:
        multiplier, shift = 1 << 30, shift - 1
    return multiplier, shift


def turn_codes(acc, multiplier: int, shift: int, bits: int) -> np.ndarray:
    """Codes of turns held in fixed point: floor(acc * multiplier / 2**shift + 1/2) mod 2**b.

    Round half up, then the wrap-around modulo 2**b. In int64, acc * multiplier + 2**(shift - 1)
    < 2**63 for |acc| <= 2**31, multiplier < 2**31, shift <= 62; the arithmetic right shift is the
    floor.

    Args:
        acc: integer array, values in int32 range.
        multiplier: integer in [1, 2**31).
        shift: integer in [0, 62].
        bits: code width, 1..8.

    Returns:
        uint8 array of codes, the shape of acc.

    Raises:
        TypeError: acc is not an integer array.
        ValueError: bits, multiplier, shift or acc out of range.
    """
    bits = check_bits(bits)
    multiplier = check_int(multiplier, "multiplier", 1, (1 << 31) - 1)
    shift = check_int(shift, "shift", 0, 62)
    acc = _check_int32_array(acc, "acc")
    rounding = (1 << (shift - 1)) if shift else 0
    wide = acc * np.int64(multiplier) + np.int64(rounding)
    return ((wide >> np.int64(shift)) & ((1 << bits) - 1)).astype(np.uint8)
