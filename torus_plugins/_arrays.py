"""numpy row helpers shared by the geometry objects and the metrics: validated 2-D arrays,
exact row scaling."""

import math

import numpy as np
import torch

TWO_PI = 2.0 * math.pi


def as_array(x, name: str = "embeddings") -> np.ndarray:
    """A numpy 2-D non-empty numeric array of a numpy array, torch tensor or nested list.

    Args:
        x: the rows.
        name: the argument's name, for messages.

    Returns:
        The array (bfloat16 tensors as float32; otherwise the input's dtype).

    Raises:
        ValueError: a non-numeric or complex dtype, a rank other than 2, an empty axis, NaN or inf.
    """
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        if x.dtype == torch.bfloat16:
            x = x.float()
        x = x.numpy()
    x = np.asarray(x)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise ValueError(f"{name} must be a numeric array, got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.complexfloating):
        raise ValueError(f"{name} must be real, got dtype {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D [n, d], got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must have at least one row and one column, got shape {x.shape}")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        raise ValueError(f"{name} contains {bad} NaN or inf value(s); expected finite")
    return x


def scale_rows(x: np.ndarray) -> np.ndarray:
    """x_i / 2**e_i, 2**(e_i - 1) <= max_j |x_ij| < 2**e_i: each row's largest |value| in [0.5, 1).

    Dividing by a power of two is exact (inputs that differ by a power-of-two scale give the same
    output), and afterwards squares and norms neither overflow nor underflow; zero rows stay zero.

    Args:
        x: finite float [n, d] array (not checked).

    Returns:
        [n, d] array of ``x``'s dtype.
    """
    _, e = np.frexp(np.abs(x).max(1))
    return np.ldexp(x, -e[:, None])


def unit_rows(x: np.ndarray) -> np.ndarray:
    """x_i / ||x_i|| at any scale (the norm is taken on :func:`scale_rows`); zero rows stay zero.

    Args:
        x: finite [n, d] array-like (not checked).

    Returns:
        float64 [n, d] rows of norm 1 (or 0).
    """
    x = scale_rows(np.asarray(x, dtype=np.float64))
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def circular_mean_turns(turns: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """[n, k] turns, [n, C] weights -> [C, k] weighted circular mean per circle, in turns [0, 1).

    mu_cj = atan2(sum_i w_ic sin theta_ij, sum_i w_ic cos theta_ij) / (2*pi) mod 1.

    Args:
        turns: [n, k] angles in turns.
        weights: [n, C] non-negative weights (one-hot: per-class means).

    Returns:
        [C, k] mean angles in turns; a circle whose weighted sum is exactly zero gets angle 0.
    """
    theta = TWO_PI * np.asarray(turns, np.float64)
    mean = np.arctan2(weights.T @ np.sin(theta), weights.T @ np.cos(theta)) / TWO_PI
    return np.mod(mean, 1.0)


def turns_circular_variance(turns: np.ndarray) -> float:
    """mean over circles c of 1 - |mean_i exp(2*pi*j*turn_ic)| for angles in turns [n, k].

    Args:
        turns: [n, k] array-like of angles in turns (period 1).

    Returns:
        The circular variance in [0, 1] as a float (0: every circle concentrated on one angle).
    """
    th = TWO_PI * np.asarray(turns, dtype=np.float64)
    return float(np.mean(1.0 - np.hypot(np.cos(th).mean(0), np.sin(th).mean(0))))
