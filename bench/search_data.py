"""Seeded synthetic data sets of angles (turns in [0, 1)) for the search benchmark.

* :func:`realistic`: embedding-like data. A mixture of

  - 70% of points in 10,000 clusters with Zipf-distributed sizes (cluster i has weight 1 / (i + 1)):
    centres uniform on T^64; each cluster has its own noise level s uniform in [0.02, 0.15] turns,
    scaled per angle by a factor uniform in [0.5, 1.5] (so a cluster is an axis-aligned ellipsoid of
    wrapped Gaussian noise);
  - 30% of points near a curved 8-dimensional manifold: u uniform on T^8 mapped by
    theta_a(u) = c_a + sum_{f=1..3} sum_j A_ajf sin(2 pi (f u_j + phi_ajf)) (A_ajf ~ N(0, 0.15 / f)
    turns: three harmonics, phi uniform), plus wrapped Gaussian noise of 0.02 turns per angle;

  queries are fresh draws from the same mixture (same centres, noise levels and manifold). Its
  relative contrast (mean circular L1 on 8-bit codes to a random point / to the nearest one) is
  printed by the benchmark: 2.8 at 1M points, 3.7 for the cluster queries and 1.9 for the manifold
  ones. An inverted file of 1024 lists needs nprobe 128 for recall@10 0.90 on it, the manifold
  queries reaching only 0.76 there: the coarse partition cuts the manifold, and its neighbourhoods
  span many cells.
* :func:`readme_set`: 1000 centres uniform on T^64, every point a centre plus Gaussian noise of
  ``noise`` turns per angle (the README's clustered set: easy, relative contrast ~14).
* :func:`uniform`: independent uniform angles (no structure at all).

Every function takes a seed and returns (database turns [n, 64] float32, query turns [nq, 64]
float32); the database and the queries come from separate streams, so n does not change the queries.
"""

import numpy as np

ANGLES = 64


def _wrap(x: np.ndarray) -> np.ndarray:
    return np.mod(x, 1.0).astype(np.float32)


def realistic(
    n: int,
    nq: int,
    seed: int = 0,
    angles: int = ANGLES,
    n_clusters: int = 10_000,
    manifold_share: float = 0.3,
    manifold_dim: int = 8,
    manifold_amp: float = 0.15,
    manifold_freqs: int = 3,
    manifold_noise: float = 0.02,
    angle_spread=(0.5, 1.5),
):
    """Zipf-sized clusters of varied, anisotropic noise plus a curved 8-d manifold (see the module
    doc)."""
    rng = np.random.default_rng(seed)
    centres = rng.random((n_clusters, angles))
    weights = 1.0 / np.arange(1, n_clusters + 1)
    weights /= weights.sum()
    level = rng.uniform(0.02, 0.15, n_clusters)
    scale = level[:, None] * rng.uniform(*angle_spread, (n_clusters, angles))
    base = rng.random(angles)
    harmonic = np.arange(1, manifold_freqs + 1)[:, None, None]  # amplitude of harmonic f: 1 / f
    amp = rng.normal(0, manifold_amp, (manifold_freqs, angles, manifold_dim)) / harmonic
    phase = rng.random((manifold_freqs, angles, manifold_dim))

    def draw(m: int, r: np.random.Generator) -> np.ndarray:
        on_manifold = r.random(m) < manifold_share
        out = np.empty((m, angles), np.float32)
        idx = np.flatnonzero(~on_manifold)
        for s in range(0, idx.size, 1 << 17):  # chunks bound the float64 temporaries
            part = idx[s : s + (1 << 17)]
            c = r.choice(n_clusters, part.size, p=weights)
            out[part] = _wrap(centres[c] + r.normal(0, 1, (part.size, angles)) * scale[c])
        idx = np.flatnonzero(on_manifold)
        for s in range(0, idx.size, 1 << 17):
            part = idx[s : s + (1 << 17)]
            u = r.random((part.size, manifold_dim))
            theta = np.broadcast_to(base, (part.size, angles)).copy()
            # sum_j A sin(w u_j + p) = sin(w u) @ (A cos p)^T + cos(w u) @ (A sin p)^T
            for f in range(manifold_freqs):
                w = 2 * np.pi * (f + 1) * u
                p = 2 * np.pi * phase[f]
                theta += np.sin(w) @ (amp[f] * np.cos(p)).T + np.cos(w) @ (amp[f] * np.sin(p)).T
            out[part] = _wrap(theta + r.normal(0, manifold_noise, (part.size, angles)))
        return out

    return draw(n, np.random.default_rng([seed, 1])), draw(nq, np.random.default_rng([seed, 2]))


def readme_set(
    n: int, nq: int, seed: int = 0, angles: int = ANGLES, n_centres: int = 1000, noise: float = 0.02
):
    """1000 centres uniform on the torus, points = centre + Gaussian noise of ``noise`` turns."""
    centres = np.random.default_rng(seed).random((n_centres, angles))

    def draw(m: int, r: np.random.Generator) -> np.ndarray:
        c = centres[r.integers(0, n_centres, m)]
        return _wrap(c + r.normal(0, noise, c.shape))

    return draw(n, np.random.default_rng([seed, 1])), draw(nq, np.random.default_rng([seed, 2]))


def uniform(n: int, nq: int, seed: int = 0, angles: int = ANGLES):
    """Independent uniform turns."""
    return (
        np.random.default_rng([seed, 1]).random((n, angles), dtype=np.float32),
        np.random.default_rng([seed, 2]).random((nq, angles), dtype=np.float32),
    )


def relative_contrast(
    codes: np.ndarray, queries: np.ndarray, bits: int = 8, sample: int = 2000, seed: int = 0
) -> float:
    """(mean circular L1 from the queries to ``sample`` random codes) / (mean distance to the
    nearest)."""
    from torus_plugins.search._kernel import topk_l1

    rng = np.random.default_rng(seed)
    nearest = topk_l1(queries, codes, bits, 1)[0][:, 0].astype(np.float64)
    rand = codes[rng.integers(0, codes.shape[0], sample)]
    levels = 1 << bits
    diff = np.abs(queries[:, None, :].astype(np.int16) - rand[None].astype(np.int16))
    mean = np.minimum(diff, levels - diff).sum(-1).mean()
    return float(mean / max(nearest.mean(), 1e-9))
