"""Conversions between the package's two torus representations.

* turns: k angles in [0, 1); theta = 2*pi*turn.
* Clifford layout: (cos t0, sin t0, cos t1, sin t1, ...), width 2k, unit norm (each circle scaled by 1/sqrt(k)).

Usage::

    turns = to_turns(torus_plugins.L2p(64)(x))     # [B, 32] in [0, 1)
    z = to_clifford(turns)                          # back to the unit-norm interleaved layout
"""

import math

import torch

from ._checks import check_bool, check_even, check_float_tensor, check_int, check_min_dims

TWO_PI = 2.0 * math.pi


def interleave(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[..., k], [..., k] -> [..., 2k] = (a_0, b_0, a_1, b_1, ...), the package's (cos, sin) pair layout.

    float32/float64 go through ``view_as_real(complex(a, b))``: one contiguous copy, where ``stack(..., -1)``
    runs a slow kernel over the size-2 axis on CPU (and so does its backward). Other dtypes use ``stack``.
    """
    if a.dtype in (torch.float32, torch.float64) and b.dtype == a.dtype:
        return torch.view_as_real(torch.complex(a, b)).flatten(-2)
    return torch.stack((a, b), dim=-1).flatten(-2)


def to_turns(z: torch.Tensor) -> torch.Tensor:
    """Angles, in turns in [0, 1), of an interleaved torus output of any scale.

    turn_i = atan2(z[2i+1], z[2i]) / (2*pi) mod 1.  [..., 2k] -> [..., k].
    """
    check_float_tensor(z, "z")
    check_min_dims(z, 1, "z", "[..., 2k]")
    check_even(int(z.shape[-1]), "the last dimension of z")
    pairs = z.unflatten(-1, (-1, 2))
    turns = torch.atan2(pairs[..., 1], pairs[..., 0]) / TWO_PI
    turns = torch.remainder(turns, 1.0)
    # remainder can return exactly 1.0 for tiny negative inputs in float32; fold it back onto 0.
    return torch.where(turns >= 1.0, torch.zeros_like(turns), turns)


def to_clifford(turns: torch.Tensor, unit_norm: bool = True) -> torch.Tensor:
    """Interleaved (cos, sin) layout of angles given in turns.  [..., k] -> [..., 2k].

    With ``unit_norm`` (the package convention) each circle is scaled by 1/sqrt(k) so the vector has norm 1;
    otherwise every pair has norm 1 (total norm sqrt(k)), as in the paper's code.
    """
    check_float_tensor(turns, "turns")
    check_min_dims(turns, 1, "turns", "[..., k]")
    if turns.shape[-1] == 0:
        raise ValueError(f"turns must have at least one angle (last dimension >= 1), got shape {tuple(turns.shape)}")
    check_bool(unit_norm, "unit_norm")
    if turns.dtype in (torch.float16, torch.bfloat16):  # 2*pi*turn in half precision loses the angle
        return to_clifford(turns.float(), unit_norm).to(turns.dtype)
    theta = TWO_PI * turns
    cos, sin = torch.cos(theta), torch.sin(theta)
    if unit_norm:
        scale = 1.0 / math.sqrt(turns.shape[-1])
        cos, sin = cos * scale, sin * scale
    return interleave(cos, sin)


def torus_spectral_gap(grid_size: int) -> float:
    """lambda_1 = 2 - 2 cos(2*pi / N): smallest non-zero eigenvalue of the N x N torus-grid graph Laplacian.

    (The grid Laplacian of the 4-neighbour N x N torus has eigenvalues 4 - 2cos(2*pi*a/N) - 2cos(2*pi*b/N);
    the smallest non-zero one is 2 - 2cos(2*pi/N).)  N=8: 0.586, N=12: 0.268, N=16: 0.152.

    Usage: ``torus_spectral_gap(12)``  # 0.268
    """
    grid_size = check_int(grid_size, "grid_size", minimum=3)
    return 2.0 - 2.0 * math.cos(TWO_PI / grid_size)
