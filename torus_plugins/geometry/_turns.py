"""Angles in turns and the interleaved Clifford layout, and the conversions between them.

* turns: k angles in [0, 1); theta = 2*pi*turn.
* Clifford layout: (cos t0, sin t0, cos t1, sin t1, ...), width 2k, unit norm (each circle scaled by
  1/sqrt(k)). :func:`to_turns` and :func:`to_clifford` convert between the two (torch);
  :func:`clifford_of_turns` is the numpy front end of the same computation.
"""

import math

import numpy as np
import torch

from .._checks import check_bool, check_even, check_float_tensor, check_int, check_min_dims

TWO_PI = 2.0 * math.pi


def interleave(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """[..., k], [..., k] -> [..., 2k] = (a_0, b_0, a_1, b_1, ...), the (cos, sin) pair layout.

    float32/float64 go through ``view_as_real(complex(a, b))``: one contiguous copy, where
    ``stack(..., -1)`` runs a slow kernel over the size-2 axis on CPU (and so does its backward).
    Other dtypes use ``stack``.

    Args:
        a: [..., k] tensor, the even positions (cosines) of the result.
        b: [..., k] tensor of the same shape, the odd positions (sines).

    Returns:
        [..., 2k] tensor (``a``'s dtype for float32/float64).
    """
    if a.dtype in (torch.float32, torch.float64) and b.dtype == a.dtype:
        return torch.view_as_real(torch.complex(a, b)).flatten(-2)
    return torch.stack((a, b), dim=-1).flatten(-2)


def clifford_layout(turns: torch.Tensor, scale: float) -> torch.Tensor:
    """(cos 2*pi*t_i, sin 2*pi*t_i) * scale, interleaved: [..., k] -> [..., 2k], without checks.

    The one turns -> Clifford computation (:func:`to_clifford`, :func:`clifford_of_turns` and the
    Clifford head call it). float16/bfloat16 are computed in float32 (2*pi*turn in half precision
    loses the angle) and cast back.

    Args:
        turns: [..., k] float tensor of angles in turns (period 1).
        scale: factor applied to every (cos, sin) pair (1/sqrt(k): a unit-norm row).

    Returns:
        [..., 2k] tensor of ``turns``' dtype.
    """
    if turns.dtype in (torch.float16, torch.bfloat16):
        return clifford_layout(turns.float(), scale).to(turns.dtype)
    theta = TWO_PI * turns
    return interleave(torch.cos(theta) * scale, torch.sin(theta) * scale)


def to_turns(z: torch.Tensor) -> torch.Tensor:
    """turn_i = atan2(z[2i+1], z[2i]) / (2*pi) mod 1: the angles of an interleaved torus output.

    Args:
        z: [..., 2k] float tensor, any scale per pair.

    Returns:
        [..., k] turns in [0, 1).

    Raises:
        TypeError: ``z`` is not a floating-point tensor.
        ValueError: no last dimension, or an odd one.
    """
    check_float_tensor(z, "z")
    check_min_dims(z, 1, "z", "[..., 2k]")
    check_even(int(z.shape[-1]), "the last dimension of z")
    pairs = z.unflatten(-1, (-1, 2))
    turns = torch.remainder(torch.atan2(pairs[..., 1], pairs[..., 0]) / TWO_PI, 1.0)
    # remainder can return exactly 1.0 for tiny negative inputs in float32; fold it back onto 0.
    return torch.where(turns >= 1.0, torch.zeros_like(turns), turns)


def to_clifford(turns: torch.Tensor, unit_norm: bool = True) -> torch.Tensor:
    """Interleaved (cos 2*pi*t_i, sin 2*pi*t_i) of angles given in turns: [..., k] -> [..., 2k].

    Args:
        turns: [..., k] float tensor, k >= 1 (any real values; period 1).
        unit_norm: scale each circle by 1/sqrt(k) so the vector has norm 1 (the package
            convention); otherwise every pair has norm 1 (total norm sqrt(k), the paper's code).

    Returns:
        [..., 2k] tensor of the input's dtype.

    Raises:
        TypeError: ``turns`` is not a floating-point tensor, ``unit_norm`` not a bool.
        ValueError: no last dimension, or an empty one.
    """
    check_float_tensor(turns, "turns")
    check_min_dims(turns, 1, "turns", "[..., k]")
    if turns.shape[-1] == 0:
        raise ValueError(
            f"turns must have at least one angle (last dimension >= 1), "
            f"got shape {tuple(turns.shape)}"
        )
    check_bool(unit_norm, "unit_norm")
    return clifford_layout(turns, 1.0 / math.sqrt(turns.shape[-1]) if unit_norm else 1.0)


def clifford_of_turns(turns, dtype=np.float64) -> np.ndarray:
    """(cos 2*pi*t_i, sin 2*pi*t_i) / sqrt(k), interleaved: numpy front end of :func:`to_clifford`.

    Args:
        turns: [n, k] array-like of angles in turns.
        dtype: float dtype of the computation and the result.

    Returns:
        [n, 2k] unit-norm Clifford rows.
    """
    t = torch.from_numpy(np.ascontiguousarray(turns, dtype=dtype))
    return clifford_layout(t, 1.0 / math.sqrt(t.shape[-1])).numpy()


def torus_spectral_gap(grid_size: int) -> float:
    """lambda_1 = 2 - 2 cos(2*pi / N): least non-zero eigenvalue of the N x N torus-grid Laplacian.

    (The 4-neighbour N x N torus grid has Laplacian eigenvalues 4 - 2cos(2*pi*a/N) - 2cos(2*pi*b/N);
    the smallest non-zero one is 2 - 2cos(2*pi/N).)  N=8: 0.586, N=12: 0.268, N=16: 0.152.

    Usage: ``torus_spectral_gap(12)``  # 0.268

    Args:
        grid_size: side N of the grid, an integer >= 3.

    Returns:
        lambda_1 as a float.

    Raises:
        TypeError: ``grid_size`` is not an integer.
        ValueError: ``grid_size`` < 3.
    """
    grid_size = check_int(grid_size, "grid_size", minimum=3)
    return 2.0 - 2.0 * math.cos(TWO_PI / grid_size)
