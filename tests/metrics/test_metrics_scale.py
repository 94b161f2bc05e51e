"""Scale invariance of the metrics: a uniform positive scale of the input changes no scale-free
metric, from 1e-200 to 1e200 (norms, squared distances and float32 kNN would overflow or underflow
without rescaling), and inputs with no answer (all-zero rows or (cos, sin) pairs, NaN/inf) are
refused alike by every metric.

Known answers: well-separated clusters (P@1 = mAP@R = few-shot accuracy = 1), an evenly sampled
circle (effective rank 2), a grid-sampled Clifford torus (effective rank 4), a uniform flat 2-torus
sample (intrinsic dimension ~2, spectral gap ratio ~1), a circle's Betti numbers (1, 1, 0); circular
variance against a plain numpy formula on the unscaled data. A power-of-two scale is exact, so
there the metrics must be identical bit for bit.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torus_plugins.metrics import (
    betti_numbers,
    circular_variance,
    effective_rank,
    few_shot_accuracy,
    grid,
    intrinsic_dimension,
    nearest_prototype,
    quantisation_table,
    retrieval,
    shape_metrics,
    spectral_gap,
    spectral_gap_ratio,
)
from torus_plugins.metrics.knn import knn

SCALES = (1e-200, 1e-25, 1.0, 3e19, 1e200)
REL = 1e-9  # decimal scales round the input at 1e-16; the metrics may move by that much, no more


def _sphere_clusters(n_per=10, d=3, seed=0):
    """4 clusters around a regular tetrahedron (d = 3) or random unit centres; noise 0.05."""
    rng = np.random.default_rng(seed)
    if d == 3:
        centres = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)
    else:
        centres = rng.standard_normal((4, d))
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    y = np.repeat(np.arange(4), n_per)
    return centres[y] + 0.05 * rng.standard_normal((4 * n_per, d)), y


def _torus_clusters(n_per=10, k=3, seed=0):
    """4 clusters of k angles, interleaved Clifford layout, each (cos, sin) pair at its own size."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(4), n_per)
    turns = rng.random((4, k))[y] + 0.01 * rng.standard_normal((4 * n_per, k))
    pair_scale = np.exp(rng.uniform(-3, 3, (4 * n_per, k)))
    z = np.empty((4 * n_per, 2 * k))
    z[:, 0::2] = pair_scale * np.cos(2 * np.pi * turns)
    z[:, 1::2] = pair_scale * np.sin(2 * np.pi * turns)
    return z, y


def _circle(n=64):
    t = 2 * np.pi * np.arange(n) / n
    return np.c_[np.cos(t), np.sin(t)] + [3.0, -1.0]  # off-centre: centring comes before any cast


def _grid_torus(m=16):
    a, b = np.meshgrid(2 * np.pi * np.arange(m) / m, 2 * np.pi * np.arange(m) / m)
    a, b = a.ravel(), b.ravel()
    return np.c_[np.cos(a), np.sin(a), np.cos(b), np.sin(b)]


def _random_torus(n=800, seed=0):
    th = 2 * np.pi * np.random.default_rng(seed).random((n, 2))
    return np.c_[np.cos(th), np.sin(th)]


def _plain_circular_variance(x):
    """1 - ||mean of x_i / ||x_i|| || in plain numpy on well-scaled data (the definition)."""
    return 1.0 - np.linalg.norm((x / np.sqrt((x**2).sum(1, keepdims=True))).mean(0))


# -------------------------------------------------------------- direction metrics (sphere, tori)


@pytest.mark.parametrize("scale", SCALES)
def test_sphere_direction_metrics_ignore_scale(scale):
    x, y = _sphere_clusters()
    xs = x * scale
    for centre in (False, True):
        res = few_shot_accuracy(xs, y, shots=(1, 3), episodes=5, centre=centre)
        assert [res[s]["mean"] for s in (1, 3)] == [1.0, 1.0], (scale, centre)
    assert retrieval(xs, y) == {"precision_at_1": 1.0, "mean_average_precision_at_r": 1.0}
    assert retrieval(xs[::2], y[::2], xs[1::2], y[1::2])["precision_at_1"] == 1.0
    assert circular_variance(xs) == pytest.approx(_plain_circular_variance(x), rel=REL)
    assert (nearest_prototype(xs[::2], y[::2], xs[1::2]) == y[1::2]).all()


@pytest.mark.parametrize("geometry", ["torusN", "torusC"])
@pytest.mark.parametrize("scale", SCALES)
def test_torus_direction_metrics_ignore_scale(scale, geometry):
    z, y = _torus_clusters()
    zs = z * scale
    assert few_shot_accuracy(zs, y, shots=(1,), episodes=5, geometry=geometry)[1]["mean"] == 1.0
    assert retrieval(zs, y, geometry=geometry)["mean_average_precision_at_r"] == 1.0
    turns = np.arctan2(z[:, 1::2], z[:, 0::2])
    plain = np.mean(1 - np.hypot(np.cos(turns).mean(0), np.sin(turns).mean(0)))
    assert circular_variance(zs, geometry) == pytest.approx(plain, rel=REL)


@settings(max_examples=15, deadline=None)
@given(exponent=st.integers(-900, 900), seed=st.integers(0, 3))
def test_power_of_two_scales_give_identical_direction_metrics(exponent, seed):
    x, y = _sphere_clusters(n_per=6, d=5, seed=seed)
    xs = np.ldexp(x, exponent)  # exact
    assert few_shot_accuracy(xs, y, shots=(1,), episodes=3, seed=seed) == few_shot_accuracy(
        x, y, shots=(1,), episodes=3, seed=seed
    )
    assert retrieval(xs, y) == retrieval(x, y)
    assert circular_variance(xs) == circular_variance(x)


@pytest.mark.parametrize("geometry", ["sphere", "torusN"])
@pytest.mark.parametrize("scale", SCALES)
def test_quantisation_table_ignores_scale(scale, geometry):
    rng = np.random.default_rng(1)
    if geometry == "sphere":
        x, y = _sphere_clusters(n_per=16, d=8, seed=1)
        x = x + 0.3 * rng.standard_normal(x.shape)  # some retrieval errors, so a change would show
    else:
        x, y = _torus_clusters(n_per=16, k=4, seed=1)
    cols = (
        "precision_at_1",
        "mean_average_precision_at_r",
        "circular_variance",
        "entropy",
        "unique_codes",
        "reason",
    )
    kwargs = dict(geometry=geometry, pq_settings=((4, 2),), seed=0)
    want = [[r[c] for c in cols] for r in quantisation_table(x, None, y, None, **kwargs)]
    got = [[r[c] for c in cols] for r in quantisation_table(x * scale, None, y, None, **kwargs)]
    assert all(r[-1] is None for r in got)
    # float32 decoded values, hence 1e-6; the float row stores no codes (entropy None -> nan)
    assert np.allclose(
        np.array(got)[:, :-1].astype(float),
        np.array(want)[:, :-1].astype(float),
        rtol=1e-6,
        equal_nan=True,
    )


def test_quantisation_table_sphere_grid_clips_far_queries_instead_of_overflowing():
    """The sphere grid is fitted on the reference; queries 1e600 times its scale are clipped to the
    grid (as queries 1e200 times a reference at scale 1 are), not overflowed to inf on the way."""
    x, y = _sphere_clusters(n_per=16, d=8, seed=2)
    x = x + 0.3 * np.random.default_rng(2).standard_normal(x.shape)
    cols = ("precision_at_1", "mean_average_precision_at_r", "circular_variance", "entropy")
    far = quantisation_table(
        x[::2] * 1e-300, x[1::2] * 1e300, y[::2], y[1::2], "sphere", settings=[grid(8)]
    )[0]
    near = quantisation_table(
        x[::2], x[1::2] * 1e200, y[::2], y[1::2], "sphere", settings=[grid(8)]
    )[0]
    assert far["reason"] is None
    assert [far[c] for c in cols] == pytest.approx([near[c] for c in cols], rel=1e-6)


# ---------------------------------------------------------------------------------- shape metrics


@pytest.mark.parametrize("scale", SCALES + (1e300,))
def test_knn_distances_scale_with_the_cloud_and_neighbours_do_not_change(scale):
    x = _random_torus(300)
    d1, i1 = knn(x, 5)
    ds, i_s = knn(x * scale, 5)
    assert (i_s == i1).all()
    assert np.allclose(ds / scale, d1, rtol=1e-12)
    plain = np.linalg.norm(x[:, None, :] - x[i1], axis=2)  # independent: distances to those found
    assert np.allclose(d1, plain, rtol=1e-12)


@pytest.mark.parametrize("scale", SCALES)
def test_shape_metrics_ignore_scale(scale):
    assert effective_rank(_circle() * scale) == pytest.approx(2.0, rel=1e-12)
    assert effective_rank(_grid_torus() * scale) == pytest.approx(4.0, rel=1e-12)
    t = _random_torus()
    want = shape_metrics(t, topology=False)
    got = shape_metrics(t * scale, topology=False)
    for key in (
        "effective_rank",
        "intrinsic_dimension",
        "spectral_gap",
        "spectral_gap_ratio",
        "spectral_gap_grid_ratio",
    ):
        assert got[key] == pytest.approx(want[key], rel=REL), key
    assert abs(got["intrinsic_dimension"] - 2.0) < 0.2
    assert abs(got["spectral_gap_ratio"] - 1.0) < 0.2
    assert intrinsic_dimension(t * scale, k=5) == pytest.approx(
        intrinsic_dimension(t, k=5), rel=REL
    )
    assert spectral_gap(t * scale, k=10) == pytest.approx(spectral_gap(t, k=10), rel=REL)


@settings(max_examples=10, deadline=None)
@given(exponent=st.integers(-900, 900))
def test_power_of_two_scales_give_identical_shape_metrics(exponent):
    t = _random_torus(400, seed=3)
    ts = np.ldexp(t, exponent)
    assert effective_rank(ts) == effective_rank(t)
    assert intrinsic_dimension(ts) == intrinsic_dimension(t)
    assert spectral_gap_ratio(ts) == spectral_gap_ratio(t)


@pytest.mark.parametrize("scale", (1e-200, 1e200))
def test_betti_numbers_ignore_scale_and_diagrams_scale_with_the_cloud(scale):
    x = _circle(200)
    b1, d1 = betti_numbers(x, landmarks=60)
    bs, ds = betti_numbers(x * scale, landmarks=60)
    assert b1 == bs == (1, 1, 0)
    for a, b in zip(d1, ds):
        assert np.allclose(b / scale, a, rtol=1e-6)  # ripser's diagrams are float32
    # the absolute rule is stated in input units: the same threshold in those units, the same count
    assert (
        betti_numbers(x * scale, landmarks=60, threshold=0.5 * scale)[0]
        == betti_numbers(x, landmarks=60, threshold=0.5)[0]
    )


def test_spectral_gap_ratio_with_a_disconnected_reference_graph_is_a_clear_error():
    """k = 1 leaves the reference torus graph disconnected: lambda_2 = 0, the ratio is 0 / 0."""
    t = _random_torus(200)
    with pytest.raises(ValueError, match=r"k = 1 neighbours leave the kNN graph .* disconnected"):
        spectral_gap_ratio(t, k=1)
    with pytest.raises(ValueError, match=r"k_graph = 1 neighbours"):
        shape_metrics(t, k_graph=1, topology=False)


# ------------------------------------------------------------------- refusals, the same everywhere


def _sphere_calls(x, y):
    return {
        "few_shot_accuracy": lambda: few_shot_accuracy(x, y, shots=(1,)),
        "few_shot_accuracy(centre)": lambda: few_shot_accuracy(x, y, shots=(1,), centre=True),
        "retrieval": lambda: retrieval(x, y),
        "circular_variance": lambda: circular_variance(x),
        "quantisation_table": lambda: quantisation_table(
            x, None, y, None, "sphere", pq_settings=()
        ),
    }


@pytest.mark.parametrize("call", list(_sphere_calls(None, None)))
def test_all_zero_sphere_rows_are_refused_by_every_metric(call):
    x, y = _sphere_clusters()
    zero = x.copy()
    zero[7] = 0.0
    with pytest.raises(ValueError, match="row 7 is all zeros: it has no direction"):
        _sphere_calls(zero, y)[call]()
    with pytest.raises(ValueError, match="row 0 is all zeros"):
        _sphere_calls(np.zeros_like(x), y)[call]()


def test_zero_rows_are_refused_by_nearest_prototype_naming_the_argument():
    x, y = _sphere_clusters()
    s, q = x[::2].copy(), x[1::2].copy()
    s[2] = 0.0
    with pytest.raises(ValueError, match="support row 2 is all zeros"):
        nearest_prototype(s, y[::2], q)
    q[4] = 0.0
    with pytest.raises(ValueError, match="queries row 4 is all zeros"):
        nearest_prototype(x[::2], y[::2], q)


@pytest.mark.parametrize("geometry", ["torusN", "torusC"])
def test_zero_torus_pairs_are_refused_by_every_metric(geometry):
    z, y = _torus_clusters()
    z[5, 2:4] = 0.0
    calls = [
        lambda: few_shot_accuracy(z, y, shots=(1,), geometry=geometry),
        lambda: nearest_prototype(z, y, z, geometry=geometry),
        lambda: retrieval(z, y, geometry=geometry),
        lambda: circular_variance(z, geometry),
        lambda: quantisation_table(z, None, y, None, geometry, pq_settings=()),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=r"row 5 has a \(cos, sin\) pair 1 that is exactly"):
            call()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_are_refused_by_every_metric(bad):
    x, y = _sphere_clusters()
    x[3, 1] = bad
    calls = list(_sphere_calls(x, y).values()) + [lambda: nearest_prototype(x, y, x)]
    for call in calls:
        with pytest.raises(ValueError, match="NaN or inf"):
            call()
    for shape_metric in (
        effective_rank,
        intrinsic_dimension,
        spectral_gap,
        spectral_gap_ratio,
        _shape_metrics_without_topology,
    ):
        with pytest.raises(ValueError, match="must be finite, got 1 NaN or inf"):
            shape_metric(x)


def _shape_metrics_without_topology(x):
    """shape_metrics without ripser: the kNN-based part of every shape metric."""
    return shape_metrics(x, topology=False)
