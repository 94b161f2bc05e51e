"""Spread of embeddings and codes.

* circular variance: sphere: 1 - ||mean_i x_i / ||x_i|| ||; tori / codes: for each circle c,
  1 - |mean_i exp(2*pi*j*turn_ic)|, averaged over the k circles. 0 = collapsed, ~1 = uniform.
* code entropy: per code column, H = -sum_v p_v log2 p_v of its value histogram, averaged over
  columns (bits).
* unique codes: number of distinct code rows.

Usage: ``circular_variance(z, "torusN"); code_entropy(codes); unique_codes(codes)``
"""

import numpy as np

from .._arrays import as_array
from ..geometry import get_geometry


def circular_variance(x, geometry="sphere", bits: int = 8) -> float:
    """1 - ||mean of unit vectors|| (sphere), or its per-circle mean (torusN, torusC, codes).

    Args:
        x: [n, d] embeddings (numpy array, torch tensor or nested list), n >= 2; integer codes
            [n, k] for ``geometry="codes"``.
        geometry: a name or a :class:`~torus_plugins.geometry.Geometry`.
        bits: code width when ``geometry`` is ``"codes"``.

    Returns:
        The circular variance in [0, 1] as a float: 0 = collapsed, ~1 = uniform.

    Raises:
        TypeError: ``geometry`` neither a name nor a Geometry, or a dtype the geometry does not
            read (floats for codes, integers for embeddings).
        ValueError: an unknown geometry name, ``bits`` not an integer in 1..8 for codes, not
            2-D, empty, NaN or inf, fewer than 2 rows, or what the geometry refuses (an all-zero
            row, an odd width, a zero pair, a code out of range).
    """
    g = get_geometry(geometry, bits)
    x = as_array(x)
    if len(x) < 2:
        raise ValueError(f"circular variance needs at least 2 embeddings, got {len(x)}")
    return g.circular_variance(x)


def _codes(codes) -> np.ndarray:
    codes = as_array(codes, "codes")
    if not (np.issubdtype(codes.dtype, np.integer) or codes.dtype == np.bool_):
        raise ValueError(f"codes must be integers (discrete values), got dtype {codes.dtype}")
    return codes


def code_entropy(codes) -> float:
    """mean over columns j of H_j = -sum_v p_jv log2 p_jv, p_jv = frequency of value v in column j.

    Args:
        codes: [n, k] integer (or bool) codes.

    Returns:
        The mean entropy in bits as a float (0: every column constant; b: uniform b-bit codes).

    Raises:
        ValueError: not an integer or bool dtype, not 2-D, or empty.
    """
    codes = _codes(codes)
    hs = []
    for col in codes.T:
        _, counts = np.unique(col, return_counts=True)
        p = counts / counts.sum()
        hs.append(float(-(p * np.log2(p)).sum()))
    return float(np.mean(hs)) + 0.0


def unique_codes(codes) -> int:
    """Number of distinct code rows.

    Args:
        codes: [n, k] integer (or bool) codes.

    Returns:
        The count, in [1, n].

    Raises:
        ValueError: not an integer or bool dtype, not 2-D, or empty.
    """
    codes = np.ascontiguousarray(_codes(codes))
    return int(len(np.unique(codes, axis=0)))
