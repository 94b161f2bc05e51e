"""Exact k nearest neighbours of a point cloud among its own points (faiss ``IndexFlatL2``), and the
input checks shared by the shape metrics.

faiss ranks the neighbours in float32 (memory O(n * k), not O(n^2 * d)) on the cloud centred
and divided by a power of two near its extent (:func:`centred_unit`): float32 squared distances
then neither overflow (clouds beyond ~1e19) nor underflow (below ~1e-19), and a uniform scale of
the input changes no neighbour (a power-of-two scale changes no bit). The returned distances are
recomputed in float64 from those coordinates and given in input units, so they are exact for the
neighbours found. Self is excluded by index, so duplicate points are each other's neighbours at
distance 0.

Usage: ``dist, idx = knn(x, k=10)``  # [n, k] distances (ascending) and indices, self excluded
"""

import numpy as np


def as_cloud(x, name: str = "x", min_points: int = 2) -> np.ndarray:
    """float64 [n, d] array of a numpy array / torch tensor / nested list: a point cloud to measure.

    Args:
        x: the points, one per row.
        name: the argument's name, for messages.
        min_points: fewest rows accepted.

    Returns:
        float64 [n, d] array.

    Raises:
        ValueError: (naming ``name``, the expected and the actual value) a ragged sequence, a
            non-numeric or bool dtype, a rank other than 2, fewer than ``min_points`` rows, zero
            width, NaN or inf, or all rows identical.
    """
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    try:
        x = np.asarray(x)
    except ValueError as e:  # ragged nested lists
        raise ValueError(
            f"{name} must be a 2-D array [n, d], got a ragged sequence ({e})"
        ) from None
    if x.dtype == bool or not (
        np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
    ):
        raise ValueError(f"{name} must be a real numeric array, got dtype {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D [n points, d dims], got shape {x.shape}")
    if x.shape[0] < min_points:
        raise ValueError(f"{name} needs at least {min_points} points (rows), got {x.shape[0]}")
    if x.shape[1] < 1:
        raise ValueError(f"{name} needs at least 1 column, got shape {x.shape}")
    x = x.astype(np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        raise ValueError(f"{name} must be finite, got {int(bad.sum())} NaN or inf value(s)")
    if not (x != x[0]).any():
        raise ValueError(f"{name} has all {x.shape[0]} points identical: its shape is undefined")
    return x


def centred_unit(x: np.ndarray) -> tuple[np.ndarray, int]:
    """(c, e) with x - mean(x) = c * 2**e and max |c| in [0.5, 1): the cloud in units of its extent.

    Both divisions are by powers of two (exact) and the centring runs on values below 1, so
    nothing overflows however large x is, and nothing underflows however small. Input: a finite
    float64 cloud of at least two distinct rows (:func:`as_cloud`).

    Args:
        x: finite float64 [n, d] cloud, not all rows identical (not checked).

    Returns:
        ``(c, e)``: float64 [n, d] centred cloud with max |c| in [0.5, 1), and the int exponent.
    """
    _, e_max = np.frexp(np.abs(x).max())
    c = np.ldexp(x, -e_max)
    c = c - c.mean(0)
    _, e_extent = np.frexp(np.abs(c).max())
    return np.ldexp(c, -e_extent), int(e_max) + int(e_extent)


def check_k(k, n: int, name: str = "k", low: int = 1) -> int:
    """k as an int in [low, n - 1] (a point's neighbours exclude itself), naming ``name`` in the
    error.

    Args:
        k: the number of neighbours asked for.
        n: number of points.
        name: the argument's name, for messages.
        low: smallest accepted ``k``.

    Returns:
        ``k`` as a Python int.

    Raises:
        TypeError: ``k`` is not an integer.
        ValueError: outside [low, n - 1].
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {k!r} ({type(k).__name__})")
    if not low <= k <= n - 1:
        raise ValueError(
            f"{name} must be in [{low}, n - 1] = [{low}, {n - 1}] for n = {n} points, got {k}"
        )
    return int(k)


def subsample(x: np.ndarray, n: int | None, seed: int, name: str = "subsample") -> np.ndarray:
    """``n`` rows drawn without replacement (kept in input order), or ``x`` itself if it has at most
    ``n`` rows.

    Args:
        x: [N, d] array.
        n: rows to keep, an integer >= 2, or None to keep all.
        seed: seed of the numpy generator that draws the rows.
        name: the argument's name, for messages.

    Returns:
        [min(N, n), d] array (``x`` itself when nothing is dropped).

    Raises:
        ValueError: ``n`` is neither None nor an integer >= 2 (bools refused).
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2):
        raise ValueError(f"{name} must be None or an integer >= 2, got {n!r}")
    if n is None or len(x) <= n:
        return x
    rng = np.random.default_rng(seed)
    return x[np.sort(rng.choice(len(x), n, replace=False))]


def knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(distances [n, k] ascending, float64, input units; indices [n, k]): k nearest other rows.

    Args:
        x: finite [n, d] cloud of at least two distinct rows (see :func:`as_cloud`).
        k: neighbours per point, an integer in [1, n - 1].

    Returns:
        ``(dist, idx)``: float64 [n, k] Euclidean distances, ascending, and int64 [n, k] indices of
        the neighbours (self excluded).

    Raises:
        ModuleNotFoundError: faiss is not installed (the ``search`` extra).
        TypeError: ``k`` is not an integer.
        ValueError: ``k`` outside [1, n - 1].
    """
    from .._optional import require

    faiss = require("faiss", "search")

    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    k = check_k(k, n)
    # faiss uses |a|^2 + |b|^2 - 2ab in float32: centring keeps that cancellation small, the unit
    # extent keeps the squares inside float32's range
    centred, exponent = centred_unit(x)
    xs = np.ascontiguousarray(centred, dtype=np.float32)
    index = faiss.IndexFlatL2(xs.shape[1])
    index.add(xs)
    _, idx = index.search(xs, k + 1)
    # drop self (by index: with duplicates, self need not come first); if self is missing, drop the
    # last column
    is_self = idx == np.arange(n)[:, None]
    is_self[~is_self.any(1), -1] = True
    idx = idx[~is_self].reshape(n, k)
    dist = np.empty((n, k))
    rows = max(1, 4_000_000 // (k * centred.shape[1]))  # ~32 MB of float64 differences at a time
    for s in range(0, n, rows):
        dist[s : s + rows] = np.linalg.norm(
            centred[idx[s : s + rows]] - centred[s : s + rows, None, :], axis=2
        )
    order = np.argsort(dist, axis=1, kind="stable")
    dist = np.ldexp(np.take_along_axis(dist, order, 1), exponent)  # back to input units
    return dist, np.take_along_axis(idx, order, 1).astype(np.int64)
