"""Spread of embeddings and codes.

* circular variance: sphere: 1 - ||mean_i x_i / ||x_i|| ||; tori / codes: for each circle c,
  1 - |mean_i exp(2*pi*j*turn_ic)|, averaged over the k circles. 0 = collapsed, ~1 = uniform.
* code entropy: per code column, H = -sum_v p_v log2 p_v of its value histogram, averaged over columns (bits).
* unique codes: number of distinct code rows.

Usage: ``circular_variance(z, "torusN"); code_entropy(codes); unique_codes(codes)``
"""

import numpy as np

from ._inputs import as_array, check_geometry, turns_of


def circular_variance(x, geometry: str = "sphere", bits: int = 8) -> float:
    """1 - ||mean of unit vectors|| (sphere), or its per-circle mean (torusN, torusC, codes)."""
    check_geometry(geometry)
    if geometry == "sphere":
        x = as_array(x).astype(np.float64)
        u = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return float(1.0 - np.linalg.norm(u.mean(0)))
    return turns_circular_variance(turns_of(x, geometry, bits))


def turns_circular_variance(turns: np.ndarray) -> float:
    """mean over circles c of 1 - |mean_i exp(2*pi*j*turn_ic)| for angles in turns [n, k]."""
    th = 2 * np.pi * np.asarray(turns, dtype=np.float64)
    return float(np.mean(1.0 - np.hypot(np.cos(th).mean(0), np.sin(th).mean(0))))


def code_entropy(codes) -> float:
    """Mean over columns of the Shannon entropy (bits) of each column's code histogram."""
    codes = as_array(codes, "codes")
    hs = []
    for col in codes.T:
        _, counts = np.unique(col, return_counts=True)
        p = counts / counts.sum()
        hs.append(float(-(p * np.log2(p)).sum()))
    return float(np.mean(hs)) + 0.0


def unique_codes(codes) -> int:
    """Number of distinct code rows."""
    codes = np.ascontiguousarray(as_array(codes, "codes"))
    return int(len(np.unique(codes, axis=0)))
