"""Dimension of an embedding cloud: effective rank and intrinsic dimension.

Both are invariant to rotation, translation and scale of the cloud (each works on the cloud centred
and divided by a power of two near its extent, ``knn.centred_unit``) and check their input
(``ValueError`` naming the argument, expected and actual value; never NaN or inf).

* effective rank = exp(H(p)), p = eigenvalues of the covariance / their sum, H in nats (Roy &
  Vetterli 2007).
* intrinsic dimension (Levina-Bickel MLE, MacKay-Ghahramani pooling): per point
  1/m_i = (1/(k-1)) sum_{j<k} log(T_k / T_j) (T_j = distance to the j-th neighbour);
  d = 1 / mean_i(1/m_i).

Differences from jepa-torus' ``src/analysis.py`` (read, not copied):

* Effective rank: the same covariance formula as jepa-torus' ``compute_covariance_metrics``; note
  that its ``full_analysis`` reports instead the entropy of the 20 smallest kNN-Laplacian
  eigenvalues under that name.
* Intrinsic dimension: the same estimator and pooling; jepa-torus silently drops points whose log
  ratios are 0 (duplicates), we drop duplicate points first and raise if fewer than k + 1 distinct
  points remain.

Needs: numpy, faiss (kNN of the intrinsic dimension: ``knn.py``).

Usage: ``effective_rank(z)``, ``intrinsic_dimension(z, k=10)``
"""

import numpy as np

from .knn import as_cloud, centred_unit, check_k, knn
from .knn import subsample as take_subsample


def effective_rank(x) -> float:
    """exp(entropy of the normalised covariance eigenvalues), in [1, min(n - 1, d)].

    Usage: ``effective_rank(z)``  # ~5 for isotropic noise in R^5

    Args:
        x: [n, d] point cloud (numpy array, torch tensor or nested list), n >= 2.

    Returns:
        The effective rank as a float.

    Raises:
        ValueError: ``x`` is not a 2-D finite real array of at least 2 rows and 1 column, or all
            its rows are identical.
    """
    xc, _ = centred_unit(as_cloud(x))  # eigenvalue ratios do not depend on the unit
    gram = xc.T @ xc if xc.shape[1] <= xc.shape[0] else xc @ xc.T  # same non-zero eigenvalues
    ev = np.clip(np.linalg.eigvalsh(gram), 0.0, None)
    p = ev / ev.sum()  # ev.sum() > 0: as_cloud rejects clouds of identical points
    p = p[p > 1e-15]
    return float(np.exp(-(p * np.log(p)).sum()))


def intrinsic_dimension(x, k: int = 10, subsample: int | None = 2000, seed: int = 0) -> float:
    """Levina-Bickel MLE with k neighbours, pooled as 1 / mean of the per-point inverse estimates.

    Duplicate points are dropped first (a zero distance has no log ratio). Known biases:
    under-estimates at high dimension (d >~ 10 needs far more points than k), and curvature at the
    kNN radius pulls it off the manifold dimension; a sampled flat k-torus gives ~k for k <= 3 at
    n ~ 1000.

    Usage: ``intrinsic_dimension(z, k=10)``  # ~2 for a sampled 2-torus

    Args:
        x: [n, d] point cloud (numpy array, torch tensor or nested list).
        k: neighbours per point, an integer in [2, distinct points - 1].
        subsample: rows drawn (seeded) before estimating, an integer >= 2; None: all.
        seed: seed of the subsample.

    Returns:
        The intrinsic dimension as a float > 0.

    Raises:
        ModuleNotFoundError: faiss is not installed (the ``search`` extra).
        TypeError: ``k`` is not an integer.
        ValueError: a bad cloud (as :func:`effective_rank`), ``subsample`` not None or >= 2, ``k``
            out of range among the distinct points, or every point's neighbours equidistant (the
            estimate is unbounded).
    """
    x, _ = centred_unit(take_subsample(as_cloud(x), subsample, seed))  # only distance ratios count
    distinct = np.unique(x, axis=0)
    k = check_k(k, len(distinct), "k (neighbours, among distinct points)", low=2)
    t, _ = knn(distinct, k)
    inv = np.log(t[:, -1:] / t[:, :-1]).mean(1)  # >= 0: distinct points have t[:, 0] > 0
    if not inv.mean() > 1e-9:  # (a dimension above 1e9 is rounding noise)
        raise ValueError(
            f"x: every point's {k} nearest neighbours are equidistant (a regular simplex?), so the "
            "MLE intrinsic dimension is unbounded; use a different k or more points"
        )
    return float(1.0 / inv.mean())
