"""Shape of an embedding cloud: effective rank, intrinsic dimension, Betti numbers, spectral gap, torus score.

* effective rank = exp(H(p)), p = eigenvalues of the covariance / their sum, H in nats.
* intrinsic dimension (Levina-Bickel MLE, MacKay-Ghahramani pooling): per point
  1/m_i = (1/(k-1)) sum_{j<k} log(T_k / T_j) (T_j = distance to j-th neighbour); d = 1 / mean_i(1/m_i).
* Betti numbers (ripser, maxdim 2, ``subsample`` points drawn with ``seed``): b_0 = 1 + #finite H0 bars,
  b_1, b_2 = # bars, with lifetime (death - birth) > ``threshold`` (infinite bars count as long). The threshold
  is absolute (units of the input distances): set it above the sampling gap, or H0 counts every sparse point.
* spectral gap ratio = lambda_2(L) / torus_spectral_gap(N), L = D - A of the symmetrised (union) kNN graph.
* torus score = 0.5 * betti_match + 0.5 * closeness, betti_match = 1 if (b0, b1, b2) == (1, 2, 1) else 0,
  closeness = max(0, 1 - |1 - spectral_gap_ratio|)   (jepa-torus' definitions).

Usage: ``shape_metrics(z, seed=0)``  # dict of all of the above
"""

import numpy as np

from ..geometry import torus_spectral_gap
from ._inputs import as_array

TORUS_BETTI = (1, 2, 1)


def _subsample(x: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    if n is None or len(x) <= n:
        return x
    rng = np.random.default_rng(seed)
    return x[np.sort(rng.choice(len(x), n, replace=False))]


def effective_rank(x) -> float:
    """exp(entropy of normalised covariance eigenvalues)."""
    x = as_array(x).astype(np.float64)
    ev = np.clip(np.linalg.eigvalsh(np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])), 0, None)
    if ev.sum() <= 0:
        return 0.0
    p = ev / ev.sum()
    p = p[p > 1e-15]
    return float(np.exp(-(p * np.log(p)).sum()))


def _knn_dist(x: np.ndarray, k: int):
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    idx = np.argsort(d2, axis=1)[:, :k]
    return np.sqrt(np.take_along_axis(d2, idx, 1)), idx


def intrinsic_dimension(x, k: int = 10, subsample: int | None = 2000, seed: int = 0) -> float:
    """Levina-Bickel MLE with k neighbours (pooled as 1 / mean of inverse per-point estimates)."""
    x = _subsample(as_array(x).astype(np.float64), subsample, seed)
    if not 2 <= k < len(x):
        raise ValueError(f"k must be in [2, n-1] = [2, {len(x) - 1}], got {k}")
    t, _ = _knn_dist(x, k)
    t = np.maximum(t, 1e-12)
    inv = np.log(t[:, -1:] / t[:, :-1]).mean(1)
    return float(1.0 / inv.mean())


def betti_numbers(x, threshold: float = 0.1, subsample: int | None = 200, seed: int = 0, maxdim: int = 2):
    """((b0, b1, ..., b_maxdim), diagrams) from ripser; a bar counts if death - birth > threshold."""
    from .._optional import require
    ripser = require("ripser", "topology").ripser

    x = _subsample(as_array(x).astype(np.float64), subsample, seed)
    dgms = ripser(x, maxdim=maxdim)["dgms"]
    betti = []
    for dim, dgm in enumerate(dgms):
        life = dgm[:, 1] - dgm[:, 0]
        finite = np.isfinite(life)
        if dim == 0:
            betti.append(1 + int((life[finite] > threshold).sum()))
        else:
            betti.append(int((life[finite] > threshold).sum() + (~finite).sum()))
    return tuple(betti), dgms


def spectral_gap(x, k: int = 15, subsample: int | None = 1000, seed: int = 0) -> float:
    """lambda_2 of L = D - A, A = symmetrised (union) kNN connectivity graph (0 if disconnected)."""
    x = _subsample(as_array(x).astype(np.float64), subsample, seed)
    _, idx = _knn_dist(x, min(k, len(x) - 1))
    a = np.zeros((len(x), len(x)))
    a[np.repeat(np.arange(len(x)), idx.shape[1]), idx.ravel()] = 1.0
    a = np.maximum(a, a.T)
    lap = np.diag(a.sum(1)) - a
    ev = np.linalg.eigvalsh(lap)
    return float(max(ev[1], 0.0))


def torus_score(betti, gap_ratio: float) -> float:
    """0.5 * [betti == (1,2,1)] + 0.5 * max(0, 1 - |1 - gap_ratio|)."""
    match = float(tuple(betti[:3]) == TORUS_BETTI)
    return 0.5 * match + 0.5 * max(0.0, 1.0 - abs(1.0 - gap_ratio))


def shape_metrics(x, grid_size: int = 12, k_id: int = 10, k_graph: int = 15, threshold: float = 0.1,
                  betti_subsample: int = 200, seed: int = 0, topology: bool = True) -> dict:
    """All shape metrics of one cloud; ``topology=False`` skips ripser (betti = None, torus score from gap only)."""
    x = as_array(x).astype(np.float64)
    out = {"effective_rank": effective_rank(x), "intrinsic_dimension": intrinsic_dimension(x, k_id, seed=seed)}
    gap = spectral_gap(x, k_graph, seed=seed)
    ratio = gap / torus_spectral_gap(grid_size)
    out.update(spectral_gap=gap, spectral_gap_ratio=ratio)
    if topology:
        betti, dgms = betti_numbers(x, threshold, betti_subsample, seed)
        out.update(betti=betti, diagrams=dgms, torus_score=torus_score(betti, ratio))
    else:
        out.update(betti=None, diagrams=None, torus_score=None)
    return out
