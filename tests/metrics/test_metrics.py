"""Metrics against independent numpy computations and shapes with known answers."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from torus_plugins.metrics import (
    NONE,
    SIGN,
    circular_variance,
    code_entropy,
    grid,
    quantisation_table,
    retrieval,
    unique_codes,
)


def clifford(turns, unit=True):
    th = 2 * np.pi * turns
    z = np.stack([np.cos(th), np.sin(th)], -1).reshape(len(turns), -1)
    return z / math.sqrt(turns.shape[1]) if unit else z


def clustered_turns(n=200, k=4, classes=5, noise=0.08, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    return (rng.random((classes, k))[y] + noise * rng.normal(size=(n, k))) % 1.0, y


def brute_force(dist, ql, rl, self_mask=None):
    """P@1 and mAP@R from a full distance matrix (smaller = closer; ties broken by smaller
    index)."""
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
    z = (
        clifford(t)
        if geometry == "torusN"
        else rng.normal(size=(200, 6)) + 0.8 * rng.normal(size=(5, 6))[y]
    )
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
    assert retrieval(q, qy, r, ry, geometry="torusC")["precision_at_1"] == pytest.approx(
        p1, abs=1e-6
    )
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
    assert circular_variance(np.array([[1.0, 0], [0, 1.0]]), "sphere") == pytest.approx(
        1 - math.sqrt(0.5)
    )
    t = np.array([[0.0, 0.3], [0.25, 0.3]])  # circle 0: 1 - sqrt(1/2); circle 1: 0
    assert circular_variance(clifford(t), "torusN") == pytest.approx((1 - math.sqrt(0.5)) / 2)
    grid = (np.arange(16) / 16.0)[:, None].repeat(2, 1)
    assert circular_variance(clifford(grid), "torusC") == pytest.approx(1.0)
    codes = np.array(
        [[0, 4], [4, 4]], np.uint8
    )  # 3-bit: circle 0 opposite (cv 1), circle 1 equal (cv 0)
    assert circular_variance(codes, "codes", bits=3) == pytest.approx(0.5)


def test_entropy_and_unique():
    codes = np.array([[0, 1], [1, 1], [2, 1], [3, 1]] * 5, np.uint8)
    assert code_entropy(codes) == pytest.approx((2.0 + 0.0) / 2)
    assert unique_codes(codes) == 4


# ---------------------------------------------------------------- degenerate and invalid input

FLOAT_GEOMETRIES = ("sphere", "torusN", "torusC")
FAST = [NONE, grid(4), SIGN]  # the table without PQ training: property tests stay quick


def _entry_points(x, y, geometry):
    """Every metric entry point on (x, y), by name."""
    return {
        "retrieval": lambda: retrieval(x, y, geometry=geometry),
        "quantisation_table": lambda: quantisation_table(
            x, None, y, None, geometry=geometry, settings=FAST
        ),
        "circular_variance": lambda: circular_variance(x, geometry),
    }


def test_codes_geometry_rejects_float_embeddings():
    z = clifford(clustered_turns(n=40, k=3)[0])
    y = clustered_turns(n=40, k=3)[1]
    for bad in (
        z,
        z.astype(np.float32) * 100,
        np.rint(z * 100),
    ):  # even integer-valued floats are not codes
        with pytest.raises(TypeError, match="integer codes"):
            retrieval(bad, y, geometry="codes")
    with pytest.raises(ValueError, match=r"codes must be in \[0, 15\]"):
        retrieval(np.full((40, 3), 16, np.uint8), y, geometry="codes", bits=4)
    with pytest.raises(TypeError, match="integer codes"):
        circular_variance(z, "codes")


@pytest.mark.parametrize("geometry", FLOAT_GEOMETRIES)
def test_degenerate_statistics_raise(geometry):
    t, y = clustered_turns(n=40, k=3)
    z = clifford(t)
    one = _entry_points(z[:1], y[:1], geometry)
    for _name, call in one.items():
        with pytest.raises(ValueError, match="at least 2"):
            call()
    for name, call in _entry_points(z[:2], np.array([0, 1]), geometry).items():
        if name == "circular_variance":
            assert 0 <= call() <= 1
            continue
        with pytest.raises(ValueError, match="no query has another embedding of its class"):
            call()
    for name, call in _entry_points(z, np.zeros(40), geometry).items():
        if name != "circular_variance":
            with pytest.raises(ValueError, match="single class"):
                call()
    # two points of one class + one of another: defined (P@1 over the queries that have a same-class
    # reference)
    three = clifford(
        np.array([[0.0, 0.0], [0.01, 0.0], [0.5, 0.5]])
    )  # the class-1 point has no same-class ref
    assert retrieval(three, [0, 0, 1], geometry=geometry) == {
        "precision_at_1": 1.0,
        "mean_average_precision_at_r": 1.0,
    }


@pytest.mark.parametrize("geometry", FLOAT_GEOMETRIES)
def test_mismatched_widths_name_both(geometry):
    t, y = clustered_turns(n=30, k=4)
    z = clifford(t)
    for call in (
        lambda: retrieval(z[:10, :6], y[:10], z, y, geometry=geometry),
        lambda: quantisation_table(z, z[:10, :6], y, y[:10], geometry=geometry, settings=FAST),
    ):
        with pytest.raises(ValueError, match="query has width 6 but reference has width 8"):
            call()
    with pytest.raises(ValueError, match="reference_labels"):
        retrieval(z, y, z, None, geometry=geometry)


def test_torus_zero_pair_and_sphere_zero_row_raise():
    t, y = clustered_turns(n=20, k=2)
    z = clifford(t)
    z[3, 2:4] = 0
    with pytest.raises(ValueError, match="row 3 has a \\(cos, sin\\) pair 1 that is exactly zero"):
        retrieval(z, y, geometry="torusN")
    x = np.random.default_rng(0).normal(size=(20, 4))
    x[5] = 0
    with pytest.raises(ValueError, match="row 5 is all zeros"):
        retrieval(x, y, geometry="sphere")


SPECIAL = st.sampled_from([np.nan, np.inf, -np.inf])


@hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(3, 30),
    k=st.integers(1, 4),
    geometry=st.sampled_from(FLOAT_GEOMETRIES),
    dtype=st.sampled_from([np.float16, np.float32, np.float64]),
    special=st.none() | SPECIAL,
    where=st.integers(0, 10**6),
    seed=st.integers(0, 10**6),
)
def test_metrics_finite_or_clear_error(n, k, geometry, dtype, special, where, seed):
    """Over shapes, dtypes and special values: every entry point returns finite numbers in range or
    raises a ValueError that names the problem; never NaN, never a raw numpy/faiss/torch error."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    z = clifford((rng.random((3, k))[y] + 0.05 * rng.normal(size=(n, k))) % 1.0).astype(dtype)
    if special is not None:
        z.flat[where % z.size] = special
    for name, call in _entry_points(z, y, geometry).items():
        try:
            out = call()
        except ValueError as exc:
            msg = str(exc)
            assert special is not None or "class" in msg, (name, msg)
            if special is not None:
                assert "NaN or inf" in msg, (name, msg)
            continue
        assert special is None, (name, "accepted a NaN/inf input")
        values = (
            [out]
            if name == "circular_variance"
            else list(out.values())
            if name == "retrieval"
            else [r["precision_at_1"] for r in out] + [r["circular_variance"] for r in out]
        )
        assert all(np.isfinite(v) and -1e-9 <= v <= 1 + 1e-9 for v in values), (name, values)


@hsettings(max_examples=30, deadline=None)
@given(
    shape=st.sampled_from([(0, 4), (4, 0), (4,), (2, 3, 4), ()]),
    geometry=st.sampled_from(FLOAT_GEOMETRIES + ("codes",)),
    dtype=st.sampled_from([np.float64, np.complex64, object, np.uint8]),
)
def test_bad_shapes_and_dtypes_raise_value_error(shape, geometry, dtype):
    x = np.zeros(shape, dtype=dtype) if dtype is not object else np.empty(shape, dtype=object)
    y = np.zeros(shape[0] if shape else 1)
    with pytest.raises(ValueError):
        retrieval(x, y, geometry=geometry)
    with pytest.raises(ValueError):
        circular_variance(x, geometry)
    with pytest.raises(ValueError):
        code_entropy(x)
