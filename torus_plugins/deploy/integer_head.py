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
    save_integer_head("head.torh", head)        # torus_plugins.deploy.head_file
"""

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from .._checks import check_choice, check_int, check_positive_float
from ..codes.quantize import check_bits
from .integer_ops import (
    INT32_MAX,
    TANGENT_FRACTION_BITS,
    ZERO_PAIR_CODE,
    angle_codes,
    boundary_tangents,
    fixed_point_multiplier,
    turn_codes,
)

__all__ = [
    "IntegerHead",
    "integer_head_from_linear",
    "angle_codes",
    "turn_codes",
    "fixed_point_multiplier",
    "boundary_tangents",
    "ZERO_PAIR_CODE",
    "TANGENT_FRACTION_BITS",
    "GEOMETRIES",
]

GEOMETRIES = ("torusN", "torusC")


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
