"""The coarse quantiser of :class:`~torus_plugins.search.TorusIndexIVF`: k-means on the torus.

faiss k-means runs on the Clifford coordinates (cos, sin of every angle, each circle scaled by
1/sqrt(k)); each centroid is read back as angles (atan2) and quantised to b-bit codes, so the
centroids are circular means, not linear means that land half a turn away across the seam.

Usage: ``centroids = train_torus_centroids(codes, bits=8, nlist=1024)``
"""

import math

import numpy as np

__all__ = ["clifford", "train_torus_centroids"]


def clifford(codes: np.ndarray, bits: int) -> np.ndarray:
    """(cos t, sin t) / sqrt(k) per angle, t = 2 pi code / 2**bits: the Clifford coordinates.

    Args:
        codes: [n, k] uint8 codes.
        bits: bits per code.

    Returns:
        float32 [n, 2k], (cos, sin) interleaved; every row has norm 1.
    """
    t = codes.astype(np.float32) * np.float32(2 * np.pi / (1 << bits))
    out = np.empty((codes.shape[0], 2 * codes.shape[1]), np.float32)
    out[:, 0::2], out[:, 1::2] = np.cos(t), np.sin(t)
    return out / np.float32(math.sqrt(codes.shape[1]))


def train_torus_centroids(
    codes: np.ndarray,
    bits: int,
    nlist: int,
    niter: int = 20,
    seed: int = 1234,
    max_points_per_centroid: int = 256,
    progress=None,
) -> np.ndarray:
    """k-means (faiss) on the Clifford coordinates, centroids read back as angles and quantised.

    Args:
        codes: [n, k] uint8 codes, n >= nlist.
        bits: bits per angle.
        nlist: number of centroids.
        niter: k-means iterations.
        seed: k-means seed.
        max_points_per_centroid: faiss subsamples to this many points per centroid.
        progress: a tqdm bar of the iterations on stderr (None: when stderr is a terminal, after
            1 s; see :mod:`torus_plugins._progress`). With a bar, faiss runs one iteration per
            call, each starting from the previous centroids: the same centroids as one call.

    Returns:
        [nlist, k] uint8 centroid codes.
    """
    from .._optional import require
    from .._progress import progress_bar

    faiss = require("faiss", "search")

    x = clifford(codes, bits)
    with progress_bar(niter, f"IVF k-means, {nlist} lists", progress, unit="iter") as bar:
        steps = 1 if bar.disable else niter  # no bar: one faiss call (no per-call overhead)
        km = faiss.Kmeans(
            x.shape[1],
            nlist,
            niter=niter // steps,
            seed=seed,
            max_points_per_centroid=max_points_per_centroid,
        )
        km.train(x)
        bar.update(niter // steps)
        for _ in range(steps - 1):
            km.train(x, init_centroids=km.centroids)
            bar.update()
    c = km.centroids.reshape(nlist, codes.shape[1], 2)
    turns = np.arctan2(c[..., 1], c[..., 0]) / (2 * np.pi)
    levels = np.round(turns.astype(np.float64) * (1 << bits)).astype(np.int64) % (1 << bits)
    return levels.astype(np.uint8)
