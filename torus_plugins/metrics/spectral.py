"""Spectral gap of an embedding cloud's kNN graph, raw and as a ratio to a reference torus.

* spectral gap = lambda_2(L), L = D - A of the symmetrised (union) kNN connectivity graph. spectral
  gap ratio = lambda_2(cloud) / lambda_2(uniform flat 2-torus sample with the same n and k): ~1 for
  a torus at any n.

Both are invariant to rotation, translation and scale of the cloud (kNN on the cloud centred and
divided by a power of two near its extent: ``knn.py``).

Difference from jepa-torus' ``src/analysis.py`` (read, not copied):

* Spectral gap ratio: jepa-torus divides lambda_2 of the unnormalised kNN Laplacian by the N x N
  grid gap 2 - 2cos(2 pi / N); that ratio grows with k and shrinks with n (torus: 2.2 / 1.33 / 0.94
  at n = 600 / 1000 / 1500), so it says little about shape. We divide by the same construction on a
  reference torus sample of the same n and k; jepa-torus' number is kept as
  ``spectral_gap_grid_ratio``.

Needs: numpy, scipy (kNN-graph Laplacian), faiss (kNN: ``knn.py``).

Usage: ``spectral_gap_ratio(z)``  # ~1 for a sampled torus
"""

from functools import lru_cache

import numpy as np

from .._optional import require_all
from .knn import as_cloud, check_k, knn
from .knn import subsample as take_subsample

GRAPH_NEEDS = [("faiss", "search"), ("scipy.sparse", "topology")]  # kNN graph and its Laplacian


def _graph_laplacian(x: np.ndarray, k: int):
    from .._optional import require

    sparse = require("scipy.sparse", "topology")

    n = len(x)
    _, idx = knn(x, k)
    a = sparse.csr_matrix((np.ones(n * k), (np.repeat(np.arange(n), k), idx.ravel())), shape=(n, n))
    a = ((a + a.T) > 0).astype(np.float64)
    return sparse.diags(np.asarray(a.sum(1)).ravel()) - a


def _second_eigenvalue(lap) -> float:
    from scipy.sparse.csgraph import connected_components
    from scipy.sparse.linalg import eigsh

    n = lap.shape[0]
    if connected_components(lap, directed=False)[0] > 1:
        return 0.0  # exactly: lambda_2 = 0 for a disconnected graph (eigsh would give ~1e-15)
    if n <= 300:
        ev = np.linalg.eigvalsh(lap.toarray())
    else:
        # shift-invert around a small negative shift: the smallest eigenvalues of the PSD Laplacian
        v0 = np.random.default_rng(0).random(n)
        ev = np.sort(
            eigsh(lap.tocsc(), k=3, sigma=-1e-3, which="LM", v0=v0, return_eigenvectors=False)
        )
    return float(max(ev[1], 0.0))


def spectral_gap(x, k: int = 15, subsample: int | None = 1000, seed: int = 0) -> float:
    """lambda_2 of L = D - A, A = symmetrised (union) kNN connectivity graph; 0 if the graph is
    disconnected.

    Depends on n and k (roughly ~ k^2 / n for a surface): compare clouds with
    ``spectral_gap_ratio``.

    Usage: ``spectral_gap(z, k=15)``

    Args:
        x: [n, d] point cloud (numpy array, torch tensor or nested list).
        k: neighbours per point, an integer in [1, n - 1] (n after subsampling).
        subsample: rows drawn (seeded) first, an integer >= 2; None: all.
        seed: seed of the subsample.

    Returns:
        lambda_2 as a float >= 0.

    Raises:
        ModuleNotFoundError: faiss (``search`` extra) or scipy (``topology`` extra) is missing.
        TypeError: ``k`` is not an integer.
        ValueError: a bad cloud (as :func:`effective_rank`), a bad ``subsample``, ``k`` out of
            range.
    """
    require_all(GRAPH_NEEDS, "spectral_gap")
    x = take_subsample(as_cloud(x), subsample, seed)
    return _second_eigenvalue(_graph_laplacian(x, check_k(k, len(x))))


@lru_cache(maxsize=64)
def reference_torus_gap(n: int, k: int, repeats: int = 3) -> float:
    """Mean lambda_2 of the kNN graph of ``repeats`` uniform samples of n points on the flat
    (Clifford) 2-torus.

    Fixed seed and cached: the same (n, k, repeats) always gives the same number.

    Args:
        n: points per sample, >= 2.
        k: neighbours per point, in [1, n - 1].
        repeats: samples averaged.

    Returns:
        The mean lambda_2 as a float >= 0 (0 if the graphs are disconnected).
    """
    rng = np.random.default_rng(12345)
    gaps = []
    for _ in range(repeats):
        th = 2 * np.pi * rng.random((n, 2))
        gaps.append(_second_eigenvalue(_graph_laplacian(np.c_[np.cos(th), np.sin(th)], k)))
    return float(np.mean(gaps))


def spectral_gap_ratio(x, k: int = 15, subsample: int | None = 1000, seed: int = 0) -> float:
    """lambda_2(kNN graph of x) / lambda_2(kNN graph of a uniform flat 2-torus sample of the same n
    and k).

    ~1 (+-0.05) for a uniformly sampled 2-torus at any n >= 500; measured at n = 1000, k = 15:
    2-sphere ~0.66, circle ~0.02, Gaussian blob ~1.9 (R^3) to ~11 (R^8), two circles 0
    (disconnected). For other shapes it still changes with n (the ratio is scale-free but only
    n-free for 2-D manifolds).

    Usage: ``spectral_gap_ratio(z)``  # ~1 for a sampled torus

    Args:
        x: [n, d] point cloud (numpy array, torch tensor or nested list).
        k: neighbours per point, an integer in [1, n - 1] (n after subsampling).
        subsample: rows drawn (seeded) first, an integer >= 2; None: all.
        seed: seed of the subsample (the reference sample has its own fixed seed).

    Returns:
        The ratio as a float >= 0.

    Raises:
        ModuleNotFoundError: faiss (``search`` extra) or scipy (``topology`` extra) is missing.
        TypeError: ``k`` is not an integer.
        ValueError: a bad cloud (as :func:`effective_rank`), a bad ``subsample``, ``k`` out of
            range, or a ``k`` so small that the reference torus graph is disconnected.
    """
    require_all(GRAPH_NEEDS, "spectral_gap_ratio")
    x = take_subsample(as_cloud(x), subsample, seed)
    k = check_k(k, len(x))
    return _gap_ratio(_second_eigenvalue(_graph_laplacian(x, k)), len(x), k, "k")


def _gap_ratio(gap: float, n: int, k: int, name: str) -> float:
    """gap / reference_torus_gap(n, k); ValueError naming ``name`` if that reference is 0."""
    reference = reference_torus_gap(n, k)
    if reference <= 0.0:
        raise ValueError(
            f"{name} = {k} neighbours leave the kNN graph of a uniform torus sample "
            f"of n = {n} points disconnected (lambda_2 = 0), so the spectral gap "
            f"ratio is undefined; expected a larger {name} (15 is the default)"
        )
    return gap / reference
