"""The last linear layer and the torus head in integers only: int8 activations in, uint8 codes out.

Accumulator (exact in int32, checked when the head is built); the real pre-activation is
``input_scale * weight_scale * acc``::

    acc = (q - input_zero_point) @ weight.T + bias

torusN (L2p): each pair (x, y) = (acc[2m], acc[2m+1]) gives the code of its exact angle (the pair
(0, 0) gives ``ZERO_PAIR_CODE`` = 0)::

    code = round_half_even(2**b * (atan2(y, x) / 2pi mod 1)) mod 2**b

computed with integers only: octant reduction, then comparisons of y / x with the tangents of the
code boundaries held to 96 fractional bits (exact for every pair of int32: see :func:`angle_codes`).
It equals ``codes.quantize(turns, bits)`` of the true angle; quantize of a float64 turn can differ
from it only at ties.

torusC (Clifford, reads its input as turns): turn = input_scale * weight_scale * acc and, with a
fixed-point ``multiplier / 2**shift`` within relative 2**-31 of
``input_scale * weight_scale * 2**b`` (round half up; the modulo is the wrap-around)::

    code = floor(acc * multiplier / 2**shift + 1/2) mod 2**b

Usage::

    head = integer_head_from_linear(linear, input_scale=0.02, input_zero_point=-128,
                                    geometry="torusN", bits=8)
    codes = head.codes(q)                       # q: int8 [N, in] -> uint8 [N, n_angles]
    save_integer_head("head.torh", head)
    head = load_integer_head("head.torh")
"""

import functools
import math
import os
import stat
import struct
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_choice, check_int, check_positive_float
from ..codes.atomic import atomic_write
from ..codes.quantize import check_bits

__all__ = [
    "IntegerHead",
    "IntegerHeadFileError",
    "integer_head_from_linear",
    "save_integer_head",
    "load_integer_head",
    "angle_codes",
    "turn_codes",
    "fixed_point_multiplier",
    "boundary_tangents",
    "ZERO_PAIR_CODE",
    "TANGENT_FRACTION_BITS",
    "GEOMETRIES",
]

GEOMETRIES = ("torusN", "torusC")
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


def _spread(zero_point: int) -> int:
    """max |q - zero_point| over int8 q."""
    return max(127 - zero_point, zero_point + 128)


def _frozen_copy(array: np.ndarray) -> np.ndarray:
    out = np.array(array, copy=True, order="C")
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class IntegerHead:
    """Last linear layer + torus head in integers: int8 activations -> uint8 codes.

    The arithmetic is in the module docstring.

    Args:
        geometry: "torusN" (pairs -> exact integer atan2) or "torusC" (fixed-point turns).
        bits: code width, 1..8.
        weight: int8 [out, in], per-tensor symmetric (zero point 0).
        bias: int32 [out], round(bias_float / (input_scale * weight_scale)).
        input_scale: real input = input_scale * (q - input_zero_point); finite, > 0.
        input_zero_point: int8 zero point of the input, in [-128, 127].
        weight_scale: real weight = weight_scale * weight; finite, > 0.
        multiplier, shift: torusC's fixed point (None: derived from the scales; given: must match
            them within relative 2**-30); 0 for torusN.

    Raises:
        TypeError: weight not int8 or bias not int32 numpy arrays, scalars of the wrong kind.
        ValueError: unknown geometry, bits outside 1..8, bad shapes, odd out-features for torusN,
            non-finite or non-positive scales, a zero point outside int8, an accumulator that could
            overflow int32 (sum_i |w_oi| * max|q - zp| + |b_o| > 2**31 - 1 for some output o), a
            torusC scale outside the fixed-point range.
    """

    geometry: str
    bits: int
    weight: np.ndarray
    bias: np.ndarray
    input_scale: float
    input_zero_point: int
    weight_scale: float
    multiplier: int | None = None
    shift: int | None = None

    def __post_init__(self):
        set_ = functools.partial(object.__setattr__, self)
        set_("geometry", check_choice(self.geometry, "geometry", GEOMETRIES))
        set_("bits", check_bits(self.bits))
        for name, dtype in (("weight", np.int8), ("bias", np.int32)):
            value = getattr(self, name)
            if not isinstance(value, np.ndarray) or value.dtype != dtype:
                kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
                raise TypeError(f"{name} must be a numpy {np.dtype(dtype).name} array, got {kind}")
        if self.weight.ndim != 2 or 0 in self.weight.shape:
            raise ValueError(
                f"weight must be 2-D [out, in] and non-empty, got shape {self.weight.shape}"
            )
        out = self.weight.shape[0]
        if self.bias.shape != (out,):
            raise ValueError(
                f"bias must have shape ({out},) (one per output of weight), got {self.bias.shape}"
            )
        if self.geometry == "torusN" and out % 2:
            raise ValueError(
                f"torusN reads outputs in (x, y) pairs: weight needs an even number "
                f"of rows, got {out}"
            )
        set_("input_scale", check_positive_float(self.input_scale, "input_scale"))
        set_("weight_scale", check_positive_float(self.weight_scale, "weight_scale"))
        set_("input_zero_point", check_int(self.input_zero_point, "input_zero_point", -128, 127))
        self._check_accumulator()
        if self.geometry == "torusN":
            for name in ("multiplier", "shift"):
                value = getattr(self, name)
                if value is not None and (isinstance(value, np.ndarray) or value != 0):
                    raise ValueError(
                        f"{name} is for torusC only: expected None or 0 for torusN, got {value!r}"
                    )
            set_("multiplier", 0)
            set_("shift", 0)
        else:
            set_(
                "multiplier",
                None
                if self.multiplier is None
                else check_int(self.multiplier, "multiplier", 1, (1 << 31) - 1),
            )
            set_("shift", None if self.shift is None else check_int(self.shift, "shift", 0, 62))
            self._set_fixed_point(set_)
        set_("weight", _frozen_copy(self.weight))
        set_("bias", _frozen_copy(self.bias))

    def _check_accumulator(self):
        """ValueError if some int8 input could take an accumulator outside int32."""
        spread = _spread(self.input_zero_point)
        bound = np.abs(self.weight.astype(np.int64)).sum(1) * spread + np.abs(
            self.bias.astype(np.int64)
        )
        if bound.max() > INT32_MAX:
            o = int(bound.argmax())
            raise ValueError(
                f"accumulator could overflow int32: output {o} reaches |acc| up to "
                f"{int(bound[o])} > 2**31 - 1 (in_features={self.weight.shape[1]}, "
                f"max |q - zero point| = {spread}); use fewer input features or "
                f"smaller weights"
            )

    def _set_fixed_point(self, set_):
        """torusC: derive (multiplier, shift) from the scales, or check the given ones."""
        scale = self.input_scale * self.weight_scale * (1 << self.bits)
        try:
            derived = fixed_point_multiplier(scale)
        except ValueError:
            raise ValueError(
                f"torusC needs input_scale * weight_scale * 2**bits in "
                f"[2**-32, 2**31 - 1), got {scale!r} (below: every int32 accumulator "
                f"would give code 0)"
            ) from None
        if self.multiplier is None and self.shift is None:
            set_("multiplier", derived[0])
            set_("shift", derived[1])
        elif self.multiplier is None or self.shift is None:
            raise ValueError("give both multiplier and shift, or neither (derived from the scales)")
        elif abs(math.ldexp(self.multiplier, -self.shift) - scale) > scale * 2.0**-30:
            given = math.ldexp(self.multiplier, -self.shift)
            raise ValueError(
                f"multiplier / 2**shift = {given!r} must be within relative 2**-30 "
                f"of input_scale * weight_scale * 2**bits = {scale!r}"
            )

    @property
    def in_features(self) -> int:
        """Inputs per sample: the number of columns of ``weight``."""
        return int(self.weight.shape[1])

    @property
    def out_features(self) -> int:
        """Accumulators per sample: the number of rows of ``weight``."""
        return int(self.weight.shape[0])

    @property
    def n_angles(self) -> int:
        """Angles per code vector: out / 2 for torusN, out for torusC."""
        return self.out_features // 2 if self.geometry == "torusN" else self.out_features

    def _check_input(self, q) -> np.ndarray:
        if isinstance(q, torch.Tensor):
            if q.dtype != torch.int8:
                raise TypeError(f"q must be int8 activations, got a tensor of dtype {q.dtype}")
            q = q.detach().cpu().numpy()
        if not isinstance(q, np.ndarray):
            raise TypeError(
                f"q must be a numpy array or torch tensor of int8, got {type(q).__name__}"
            )
        if q.dtype != np.int8:
            raise TypeError(f"q must be int8 activations, got dtype {q.dtype}")
        if q.ndim == 0 or q.shape[-1] != self.in_features:
            raise ValueError(
                f"q must have shape [..., {self.in_features}] (in_features), got {q.shape}"
            )
        return q

    def accumulate(self, q) -> np.ndarray:
        """acc = (q - input_zero_point) @ weight.T + bias, exactly.

        Computed as a float64 product: every term and partial sum is an integer below
        2**31 < 2**53, so any summation order is exact.

        Args:
            q: int8 activations [..., in_features], a numpy array or torch tensor.

        Returns:
            A numpy int64 array [..., out_features], every value within int32.

        Raises:
            TypeError: ``q`` is not a numpy array or torch tensor of dtype int8.
            ValueError: ``q``'s last dimension is not ``in_features``.
        """
        q = self._check_input(q)
        centred = q.astype(np.float64) - self.input_zero_point
        acc = centred @ self.weight.T.astype(np.float64) + self.bias.astype(np.float64)
        return acc.astype(np.int64)

    def codes(self, q) -> np.ndarray:
        """The b-bit codes of int8 activations, in integers only (see the module docstring).

        Args:
            q: int8 activations [..., in_features], a numpy array or torch tensor.

        Returns:
            A numpy uint8 array [..., n_angles], codes < 2**bits.

        Raises:
            TypeError: ``q`` is not a numpy array or torch tensor of dtype int8.
            ValueError: ``q``'s last dimension is not ``in_features``.
        """
        acc = self.accumulate(q)
        if self.geometry == "torusN":
            return angle_codes(acc[..., 0::2], acc[..., 1::2], self.bits)
        # __post_init__ sets both for torusC (from the scales when not given)
        assert self.multiplier is not None and self.shift is not None
        return turn_codes(acc, self.multiplier, self.shift, self.bits)

    def turns(self, q) -> np.ndarray:
        """The real angles behind the codes, in turns: atan2(y, x) / 2pi mod 1 (torusN) or
        input_scale * weight_scale * acc (torusC, not reduced mod 1).

        Args:
            q: int8 activations [..., in_features], a numpy array or torch tensor.

        Returns:
            A numpy float64 array [..., n_angles].

        Raises:
            TypeError: ``q`` is not a numpy array or torch tensor of dtype int8.
            ValueError: ``q``'s last dimension is not ``in_features``.
        """
        acc = self.accumulate(q).astype(np.float64)
        if self.geometry == "torusN":
            return np.mod(np.arctan2(acc[..., 1::2], acc[..., 0::2]) / (2 * np.pi), 1.0)
        return acc * (self.input_scale * self.weight_scale)


def integer_head_from_linear(
    linear, *, input_scale, input_zero_point, geometry: str, bits: int = 8, weight_scale=None
) -> IntegerHead:
    """Quantise an ``nn.Linear`` feeding a torus head: int8 symmetric weights, int32 bias.

    weight_scale = max|W| / 127 (unless given), weight = clamp(round(W / weight_scale), -127, 127),
    bias = round(b / (input_scale * weight_scale)) (0 without a bias).

    Args:
        linear: ``torch.nn.Linear`` (its outputs are the head's input: 2 per angle for torusN).
        input_scale, input_zero_point: affine int8 parameters of the activations feeding it.
        geometry: "torusN" or "torusC".
        bits: code width, 1..8.
        weight_scale: optional fixed per-tensor weight scale (> 0).

    Returns:
        IntegerHead.

    Raises:
        TypeError: linear is not an nn.Linear.
        ValueError: non-finite or all-zero weights, non-finite bias, a bias outside int32, and
            every IntegerHead check.
    """
    if not isinstance(linear, torch.nn.Linear):
        raise TypeError(f"linear must be a torch.nn.Linear, got {type(linear).__name__}")
    w = linear.weight.detach().cpu().double().numpy()
    b = np.zeros(w.shape[0]) if linear.bias is None else linear.bias.detach().cpu().double().numpy()
    if not np.isfinite(w).all() or not np.isfinite(b).all():
        raise ValueError("linear holds NaN or inf weights or bias; expected finite values")
    input_scale = check_positive_float(input_scale, "input_scale")
    if weight_scale is None:
        peak = float(np.abs(w).max())
        if peak == 0.0:
            raise ValueError("linear has all-zero weights: no weight scale to quantise with")
        weight_scale = peak / 127.0
    weight_scale = check_positive_float(weight_scale, "weight_scale")
    weight = np.clip(np.rint(w / weight_scale), -127, 127).astype(np.int8)
    bias = np.rint(b / (input_scale * weight_scale))
    if np.abs(bias).max(initial=0) > INT32_MAX:
        raise ValueError(
            f"bias / (input_scale * weight_scale) reaches {np.abs(bias).max():.4g}, "
            f"outside int32: the input scale ({input_scale!r}) is too small for this "
            f"bias"
        )
    return IntegerHead(
        geometry=geometry,
        bits=bits,
        weight=weight,
        bias=bias.astype(np.int32),
        input_scale=input_scale,
        input_zero_point=input_zero_point,
        weight_scale=weight_scale,
    )


# --------------------------------------------------------------------------------- file format
class IntegerHeadFileError(ValueError):
    """An integer-head file is truncated, corrupt, or not a supported integer-head file."""


HEAD_MAGIC = b"TORH"
HEAD_VERSION = 1
#: Little-endian: magic, version, geometry (0 torusN, 1 torusC), bits, out, in, input_scale,
#: weight_scale, input_zero_point, multiplier, shift, 3 reserved bytes; then int8 weight
#: [out, in], int32 bias [out], and the CRC32 of every preceding byte.
_HEAD_STRUCT = struct.Struct("<4sHBBIIddiIB3x")


def save_integer_head(path, head: IntegerHead) -> None:
    """Write ``head`` to ``path``: header, int8 weights, int32 bias, CRC32 (atomic; no pickle).

    Args:
        path: the file to write (str or path-like); replaced if it exists.
        head: the head to save.

    Raises:
        TypeError: head is not an IntegerHead.
        OSError: the path cannot be written (nothing is left behind).
    """
    if not isinstance(head, IntegerHead):
        raise TypeError(f"head must be an IntegerHead, got {type(head).__name__}")
    body = _HEAD_STRUCT.pack(
        HEAD_MAGIC,
        HEAD_VERSION,
        GEOMETRIES.index(head.geometry),
        head.bits,
        head.out_features,
        head.in_features,
        head.input_scale,
        head.weight_scale,
        head.input_zero_point,
        head.multiplier,
        head.shift,
    )
    body += head.weight.tobytes() + head.bias.astype("<i4").tobytes()
    atomic_write(path, body + struct.pack("<I", zlib.crc32(body) & _MASK32))


def _read_regular_file(path, max_bytes: int) -> bytes:
    """At most ``max_bytes`` bytes of a regular file (never a FIFO, device or directory)."""
    name = os.fspath(path)
    fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise IntegerHeadFileError(
            f"{name}: not a regular file (mode {stat.filemode(info.st_mode)})"
        )
    with os.fdopen(fd, "rb") as fh:
        return fh.read(max_bytes)


def load_integer_head(path) -> IntegerHead:
    """Read a head written by :func:`save_integer_head`, checking size, CRC and every field.

    Args:
        path: the file to read (str or path-like).

    Returns:
        The :class:`IntegerHead`, with read-only arrays.

    Raises:
        IntegerHeadFileError: (a ValueError) truncated, extended, corrupt or invalid file.
        OSError: the file cannot be opened.
    """
    name = os.fspath(path)
    data = _read_regular_file(name, _HEAD_STRUCT.size)
    if len(data) < _HEAD_STRUCT.size:
        raise IntegerHeadFileError(
            f"{name}: truncated ({len(data)} bytes; the header alone has {_HEAD_STRUCT.size})"
        )
    magic, version, geometry, bits, out, inp, s_in, s_w, zp, mult, shift = _HEAD_STRUCT.unpack(data)
    if magic != HEAD_MAGIC:
        raise IntegerHeadFileError(
            f"{name}: bad magic {magic!r}, not an integer-head file ({HEAD_MAGIC!r})"
        )
    if version != HEAD_VERSION:
        raise IntegerHeadFileError(
            f"{name}: unsupported version {version} (this reader supports {HEAD_VERSION})"
        )
    if out * inp > 1 << 31:
        raise IntegerHeadFileError(f"{name}: implausible shape [{out}, {inp}]")
    expected = _HEAD_STRUCT.size + out * inp + 4 * out + 4
    data = _read_regular_file(name, expected + 1)
    if len(data) != expected:
        raise IntegerHeadFileError(
            f"{name}: size {len(data)} bytes does not match its header "
            f"({expected} expected for a [{out}, {inp}] head)"
        )
    if zlib.crc32(data[:-4]) & _MASK32 != struct.unpack("<I", data[-4:])[0]:
        raise IntegerHeadFileError(f"{name}: checksum mismatch (file corrupt)")
    if geometry >= len(GEOMETRIES):
        raise IntegerHeadFileError(f"{name}: unknown geometry code {geometry}")
    off = _HEAD_STRUCT.size
    weight = np.frombuffer(data, np.int8, out * inp, off).reshape(out, inp)
    bias = np.frombuffer(data, "<i4", out, off + out * inp).astype(np.int32)
    torus_c = GEOMETRIES[geometry] == "torusC"
    try:
        return IntegerHead(
            GEOMETRIES[geometry],
            bits,
            weight,
            bias,
            s_in,
            zp,
            s_w,
            mult if torus_c else 0,
            shift if torus_c else 0,
        )
    except (TypeError, ValueError) as exc:
        raise IntegerHeadFileError(f"{name}: invalid head ({exc})") from None
