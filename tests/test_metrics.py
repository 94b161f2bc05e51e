"""Metrics against independent numpy computations and shapes with known answers."""

import math

import numpy as np
import pytest

from torus_plugins.metrics import circular_variance, code_entropy, retrieval, unique_codes


def clifford(turns, unit=True):
    th = 2 * np.pi * turns
    z = np.stack([np.cos(th), np.sin(th)], -1).reshape(len(turns), -1)
    return z / math.sqrt(turns.shape[1]) if unit else z


def clustered_turns(n=200, k=4, classes=5, noise=0.08, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    return (rng.random((classes, k))[y] + noise * rng.normal(size=(n, k))) % 1.0, y


def brute_force(dist, ql, rl, self_mask=None):
    """P@1 and mAP@R from a full distance matrix (smaller = closer; ties broken by smaller index)."""
    p1, aps = [], []
    for i in range(len(dist)):
        d = dist[i].astype(float).copy()
        keep = np.ones(len(d), bool)
        if self_mask is not None:
            keep[i] = False
        ids = np.arange(len(d))[keep]
        order = ids[np.lexsort((ids, d[keep]))]
        rel = rl[order] == ql[i]
        p1.append(rel[0])
        r = int(rel.sum())
        hits = np.cumsum(rel[:r])
        aps.append(np.sum(hits / np.arange(1, r + 1) * rel[:r]) / r)
    return float(np.mean(p1)), float(np.mean(aps))


@pytest.mark.parametrize("geometry", ["sphere", "torusN"])
def test_retrieval_matches_brute_force_self(geometry):
    t, y = clustered_turns(noise=0.15)
    rng = np.random.default_rng(1)
    z = clifford(t) if geometry == "torusN" else rng.normal(size=(200, 6)) + 0.8 * rng.normal(size=(5, 6))[y]
    u = z / np.linalg.norm(z, axis=1, keepdims=True)
    p1, mapr = brute_force(-(u @ u.T), y, y, self_mask=True)
    got = retrieval(z, y, geometry=geometry)
    assert 0.3 < p1 < 1.0  # not trivially perfect
    assert got["precision_at_1"] == pytest.approx(p1, abs=1e-6)
    assert got["mean_average_precision_at_r"] == pytest.approx(mapr, abs=1e-4)


def test_retrieval_codes_circular_l1_brute_force_with_duplicates():
    t, y = clustered_turns(n=150, k=3, noise=0.2, seed=3)
    bits = 3
    codes = (np.round(t * 8).astype(int) % 8).astype(np.uint8)
    codes[10] = codes[11]  # duplicate rows: self must be excluded by index, not by distance 0
    a = codes.astype(int)
    d = np.abs(a[:, None, :] - a[None, :, :])
    dist = np.minimum(d, 8 - d).sum(-1)
    p1, mapr = brute_force(dist, y, y, self_mask=True)
    got = retrieval(codes, y, geometry="codes", bits=bits)
    assert got["precision_at_1"] == pytest.approx(p1, abs=1e-6)
    assert got["mean_average_precision_at_r"] == pytest.approx(mapr, abs=1e-4)


def test_retrieval_separate_reference_and_ref_includes_query():
    t, y = clustered_turns(n=240, noise=0.15, seed=4)
    z = clifford(t)
    q, qy, r, ry = z[:60], y[:60], z[60:], y[60:]
    p1, _ = brute_force(-(q @ r.T), qy, ry)
    assert retrieval(q, qy, r, ry, geometry="torusC")["precision_at_1"] == pytest.approx(p1, abs=1e-6)
    # queries are the first rows of the reference: own row excluded
    p1s, _ = brute_force(-(z[:60] @ z.T), qy, y, self_mask=True)
    got = retrieval(q, qy, z, y, geometry="torusN", ref_includes_query=True)
    assert got["precision_at_1"] == pytest.approx(p1s, abs=1e-6)


def test_retrieval_input_errors():
    z = np.ones((5, 4))
    with pytest.raises(ValueError, match="length"):
        retrieval(z, [0, 1], geometry="sphere")
    with pytest.raises(ValueError, match="NaN"):
        retrieval(np.full((5, 4), np.nan), [0] * 5, geometry="sphere")
    with pytest.raises(ValueError, match="geometry"):
        retrieval(z, [0] * 5, geometry="hyperbolic")


def test_circular_variance_known_values():
    assert circular_variance(np.array([[1.0, 0], [0, 1.0]]), "sphere") == pytest.approx(1 - math.sqrt(0.5))
    t = np.array([[0.0, 0.3], [0.25, 0.3]])  # circle 0: 1 - sqrt(1/2); circle 1: 0
    assert circular_variance(clifford(t), "torusN") == pytest.approx((1 - math.sqrt(0.5)) / 2)
    grid = (np.arange(16) / 16.0)[:, None].repeat(2, 1)
    assert circular_variance(clifford(grid), "torusC") == pytest.approx(1.0)
    codes = np.array([[0, 4], [4, 4]], np.uint8)  # 3-bit: circle 0 opposite (cv 1), circle 1 equal (cv 0)
    assert circular_variance(codes, "codes", bits=3) == pytest.approx(0.5)


def test_entropy_and_unique():
    codes = np.array([[0, 1], [1, 1], [2, 1], [3, 1]] * 5, np.uint8)
    assert code_entropy(codes) == pytest.approx((2.0 + 0.0) / 2)
    assert unique_codes(codes) == 4
