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

    ``geometry``: a name or a :class:`~torus_plugins.geometry.Geometry`. Needs >= 2 points.
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
    """Mean over columns of the Shannon entropy (bits) of each column's code histogram."""
    codes = _codes(codes)
    hs = []
    for col in codes.T:
        _, counts = np.unique(col, return_counts=True)
        p = counts / counts.sum()
        hs.append(float(-(p * np.log2(p)).sum()))
    return float(np.mean(hs)) + 0.0


def unique_codes(codes) -> int:
    """Number of distinct code rows."""
    codes = np.ascontiguousarray(_codes(codes))
    return int(len(np.unique(codes, axis=0)))
