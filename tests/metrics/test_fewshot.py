"""Few-shot nearest-prototype evaluation (torus_plugins.metrics.fewshot) against independent
computations (sklearn NearestCentroid, scipy circular means, brute-force loops), with hypothesis
properties and input errors."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist
from scipy.stats import circmean
from sklearn.neighbors import NearestCentroid

from torus_plugins import L2p, to_clifford
from torus_plugins.codes import quantize
from torus_plugins.metrics import few_shot_accuracy, nearest_prototype, small_classes

GEOMETRIES = ("sphere", "torusN", "codes")


# ---------------------------------------------------------------------- independent reference rules


def ref_sphere(s, sy, q):
    """Cosine (scipy cdist) to the class mean of the L2-normalised support vectors."""
    classes = np.unique(sy)
    s = s / np.linalg.norm(s, axis=1, keepdims=True)
    means = np.stack([s[sy == c].mean(0) for c in classes])
    return classes[cdist(q, means, metric="cosine").argmin(1)]


def ref_centred(s, sy, q):
    """Upstream ProtoCLR: normalise, centre, Euclidean nearest class mean == NearestCentroid
    (translation-free)."""
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    return NearestCentroid().fit(unit(s), sy).predict(unit(q))


def ref_torus(s_turns, sy, q_turns):
    """Circular mean per circle (scipy), then the largest mean cosine of angle differences
    (loops)."""
    classes = np.unique(sy)
    protos = np.stack([circmean(s_turns[sy == c], high=1.0, low=0.0, axis=0) for c in classes])
    score = np.array([[np.cos(2 * np.pi * (qq - p)).mean() for p in protos] for qq in q_turns])
    return classes[score.argmax(1)]


def ref_codes(s_codes, sy, q_codes, bits):
    """Rounded circular mean codes, then the smallest circular L1 by a plain python loop."""
    m = 1 << bits
    classes = np.unique(sy)
    protos = [
        np.round(circmean(s_codes[sy == c] / m, high=1.0, low=0.0, axis=0) * m).astype(int) % m
        for c in classes
    ]
    pred = []
    for qq in q_codes.astype(int):
        dist = [sum(min((a - b) % m, (b - a) % m) for a, b in zip(qq, p)) for p in protos]
        pred.append(classes[int(np.argmin(dist))])
    return np.array(pred)


def clustered(n_classes, per_class, k, noise, seed):
    """Turns [n, k]: class c sits at c / n_classes turns on every circle (+ a random offset per
    circle)."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), per_class)
    turns = (
        y[:, None] / n_classes + rng.uniform(0, 1, k) + noise * rng.standard_normal((len(y), k))
    ) % 1.0
    return turns, y


def as_geometry(turns, geometry, bits=8):
    if geometry == "codes":
        return quantize(turns, bits)
    z = to_clifford(torch.from_numpy(turns)).numpy()
    return (
        z if geometry == "torusN" else z * 3.0
    )  # sphere: the Clifford vector, any scale (normalised inside)


# -------------------------------------------------------------------------------------------- tests


@pytest.mark.filterwarnings(
    "ignore:invalid value encountered:RuntimeWarning"
)  # NearestCentroid, 1 shot
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_episodes_match_independent_rules(seed):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(5), 9)
    x = rng.standard_normal((len(y), 6)) + 1.5 * np.eye(6)[y]
    turns = (rng.uniform(0, 1, (len(y), 4)) * 0.3 + y[:, None] * 0.17) % 1.0
    z_torus = to_clifford(torch.from_numpy(turns)).numpy() * 2.5  # any scale
    codes = quantize(turns, 5)
    for shot in (1, 3):
        cases = [
            ("sphere", x, {}, lambda s, sy, q: ref_sphere(x[s], sy, x[q])),
            ("sphere", x, {"centre": True}, lambda s, sy, q: ref_centred(x[s], sy, x[q])),
            ("torusN", z_torus, {}, lambda s, sy, q: ref_torus(turns[s], sy, turns[q])),
            ("codes", codes, {"bits": 5}, lambda s, sy, q: ref_codes(codes[s], sy, codes[q], 5)),
        ]
        for geometry, emb, kw, ref in cases:
            res = few_shot_accuracy(
                emb,
                y,
                shots=shot,
                episodes=4,
                seed=seed,
                geometry=geometry,
                return_episodes=True,
                **kw,
            )[shot]
            for acc, (s, q) in zip(res["accuracies"], res["episodes"]):
                s, q = np.array(s), np.array(q)
                assert len(s) == 5 * shot and len(q) == 5 * (9 - shot) and not set(s) & set(q)
                assert acc == pytest.approx(np.mean(ref(s, y[s], q) == y[q])), (geometry, kw)
            assert res["mean"] == pytest.approx(np.mean(res["accuracies"]))
            assert res["std"] == pytest.approx(np.std(res["accuracies"]))


def test_nearest_prototype_by_hand():
    # sphere: class means of unit vectors (1,0),(0.6,0.8) -> a; (0,-1) -> b
    s = np.array([[2.0, 0.0], [0.6, 0.8], [0.0, -3.0]])
    q = np.array([[1.0, 0.3], [0.2, -1.0], [-1.0, 0.9]])
    assert nearest_prototype(s, ["a", "a", "b"], q).tolist() == ["a", "b", "a"]
    # torus, one circle: support angles 0.95 and 0.05 turns -> circular mean 0.0 (an arithmetic mean
    # says 0.5)
    s_t = to_clifford(torch.tensor([[0.95], [0.05], [0.5]], dtype=torch.float64)).numpy()
    q_t = to_clifford(torch.tensor([[0.02], [0.45]], dtype=torch.float64)).numpy()
    assert nearest_prototype(s_t, [0, 0, 1], q_t, geometry="torusN").tolist() == [0, 1]
    # 8-bit codes: prototype code of (250, 6) is 0 (not 128); query 10 is 10 from 0, query 150 is 22
    # from 128
    codes = np.array([[250], [6], [128]], np.uint8)
    queries = np.array([[10], [150], [200]], np.uint8)
    assert nearest_prototype(codes, [0, 0, 1], queries, geometry="codes").tolist() == [0, 1, 0]
    # torch tensors in, labels returned as given
    assert nearest_prototype(
        torch.tensor(s), torch.tensor([3, 3, 7]), torch.tensor(q)
    ).tolist() == [3, 7, 3]


@settings(max_examples=25, deadline=None)
@given(
    geometry=st.sampled_from(GEOMETRIES),
    n_classes=st.integers(2, 6),
    k=st.integers(1, 8),
    seed=st.integers(0, 2**16),
    per_class=st.integers(6, 10),
)
def test_well_separated_clusters_are_perfect(geometry, n_classes, k, seed, per_class):
    turns, y = clustered(n_classes, per_class, k, noise=0.02 / n_classes, seed=seed)
    if (
        geometry == "sphere"
    ):  # well separated on the sphere: one direction per class in R^(n_classes + k)
        emb = np.concatenate([np.eye(n_classes)[y] * 5, turns], 1)
    else:
        emb = as_geometry(turns, geometry)
    res = few_shot_accuracy(emb, y, shots=(1, 5), episodes=3, seed=seed, geometry=geometry)
    assert res[1]["mean"] == res[5]["mean"] == 1.0 and res[1]["std"] == 0.0


@settings(max_examples=15, deadline=None)
@given(
    geometry=st.sampled_from(GEOMETRIES), seed=st.integers(0, 2**16), n_classes=st.integers(3, 5)
)
def test_random_labels_give_chance_level(geometry, seed, n_classes):
    rng = np.random.default_rng(seed)
    turns = rng.uniform(0, 1, (60 * n_classes, 8))
    y = rng.permutation(np.repeat(np.arange(n_classes), 60))
    res = few_shot_accuracy(
        as_geometry(turns, geometry), y, shots=(1, 5), episodes=40, seed=seed, geometry=geometry
    )
    for shot in (1, 5):
        assert abs(res[shot]["mean"] - 1 / n_classes) < 0.06, (shot, res[shot]["mean"])


@settings(max_examples=25, deadline=None)
@given(geometry=st.sampled_from(GEOMETRIES), seed=st.integers(0, 2**16), shift=st.floats(0, 1))
def test_nearest_prototype_invariances(geometry, seed, shift):
    """Permuting support rows, renaming labels, and (torus, codes) rotating every circle change
    nothing."""
    rng = np.random.default_rng(seed)
    turns, y = clustered(4, 5, 3, noise=0.15, seed=seed)
    sup = rng.permutation(len(y))[:12]
    qry = np.setdiff1d(np.arange(len(y)), sup)
    emb = as_geometry(turns, geometry)
    base = nearest_prototype(emb[sup], y[sup], emb[qry], geometry=geometry)
    perm = rng.permutation(len(sup))
    assert (
        nearest_prototype(emb[sup][perm], y[sup][perm], emb[qry], geometry=geometry) == base
    ).all()
    # a non-monotone renaming; integer code distances tie often and ties go to the smaller label, so
    # the codes geometry gets an order-preserving renaming
    names = np.array(
        ["dove", "kite", "rook", "wren"]
        if geometry == "codes"
        else ["wren", "kite", "dove", "rook"]
    )
    renamed = nearest_prototype(emb[sup], names[y[sup]], emb[qry], geometry=geometry)
    assert (renamed == names[base]).all()
    qperm = rng.permutation(len(qry))
    assert (
        nearest_prototype(emb[sup], y[sup], emb[qry][qperm], geometry=geometry) == base[qperm]
    ).all()
    if geometry != "sphere":
        step = int(shift * 256)
        rot = (turns + step / 256) % 1.0
        rot_emb = as_geometry(rot, geometry)
        if geometry != "codes":
            assert (
                nearest_prototype(rot_emb[sup], y[sup], rot_emb[qry], geometry=geometry) == base
            ).all()
        else:
            # code prototypes are circular means rounded to whole codes. On tight classes (noise
            # 0.03 turns: the mean is well defined) an exact integer rotation may still move a
            # rounding tie by one code per angle, so a label may change only where the two
            # prototypes' distances are within k codes
            turns, y = clustered(4, 5, 3, noise=0.03, seed=seed)
            emb = as_geometry(turns, geometry)
            base = nearest_prototype(emb[sup], y[sup], emb[qry], geometry=geometry)
            rot_emb = ((emb.astype(int) + step) % 256).astype(np.uint8)  # exact integer rotation
            got = nearest_prototype(rot_emb[sup], y[sup], rot_emb[qry], geometry=geometry)
            classes = np.unique(y[sup])
            protos = np.stack(
                [
                    np.round(circmean(emb[sup][y[sup] == c].astype(float), high=256, axis=0)) % 256
                    for c in classes
                ]
            )
            diff = np.abs(emb[qry].astype(float)[:, None, :] - protos[None])
            dist = np.minimum(diff, 256 - diff).sum(-1)
            rows = np.flatnonzero(got != base)
            gap = (
                dist[rows, np.searchsorted(classes, got[rows])]
                - dist[rows, np.searchsorted(classes, base[rows])]
            )
            assert (np.abs(gap) <= emb.shape[1]).all(), (rows, gap)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), geometry=st.sampled_from(GEOMETRIES))
def test_same_seed_same_episodes_and_row_permutation_keeps_the_result_set(seed, geometry):
    turns, y = clustered(4, 7, 3, noise=0.1, seed=seed)
    emb = as_geometry(turns, geometry)
    a = few_shot_accuracy(
        emb, y, shots=(1, 5), episodes=5, seed=seed, geometry=geometry, return_episodes=True
    )
    b = few_shot_accuracy(
        emb, y, shots=(1, 5), episodes=5, seed=seed, geometry=geometry, return_episodes=True
    )
    assert a == b
    # row order does not matter once the same items form the episodes: evaluate the permuted copy on
    # the episodes mapped through the permutation
    perm = np.random.default_rng(seed).permutation(len(y))
    inv = np.argsort(perm)
    for shot in (1, 5):
        for acc, (s, q) in zip(a[shot]["accuracies"], a[shot]["episodes"]):
            ep, yp = emb[perm], y[perm]
            s2, q2 = inv[s], inv[q]
            pred = nearest_prototype(ep[s2], yp[s2], ep[q2], geometry=geometry)
            assert np.mean(pred == yp[q2]) == pytest.approx(acc)


def test_n_way_and_n_query():
    turns, y = clustered(6, 10, 4, noise=0.05, seed=0)
    res = few_shot_accuracy(
        as_geometry(turns, "torusN"),
        y,
        shots=2,
        episodes=6,
        n_way=3,
        n_query=4,
        geometry="torusN",
        return_episodes=True,
    )[2]
    for s, q in res["episodes"]:
        assert (
            len(s) == 3 * 2 and len(q) == 3 * 4 and len(set(y[s])) == 3 and set(y[q]) == set(y[s])
        )
    assert (
        len({tuple(sorted(set(y[s]))) for s, _ in res["episodes"]}) > 1
    )  # different ways per episode


def test_small_classes_are_named_in_the_error():
    y = np.array(["robin"] * 8 + ["jay"] * 3 + ["owl"] * 6 + ["tit"] * 5)
    x = np.random.default_rng(0).standard_normal((len(y), 4))
    assert small_classes(y, 5) == {"jay": 3, "tit": 5}
    with pytest.raises(
        ValueError, match=r"2 class\(es\) have fewer than 6 items.*'jay': 3.*'tit': 5"
    ):
        few_shot_accuracy(x, y, shots=(1, 5))
    ok = ~np.isin(y, list(small_classes(y, 5)))
    assert set(few_shot_accuracy(x[ok], y[ok], shots=(1, 5))) == {1, 5}
    assert few_shot_accuracy(x, y, shots=1)[1]["mean"] >= 0  # 1 shot: every class has >= 2 items


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"geometry": "hyperbolic"}, "geometry must be one of"),
        ({"geometry": "torusN", "centre": True}, "centre=True applies to geometry='sphere' only"),
        ({"shots": ()}, "at least one shot"),
        ({"shots": (0, 5)}, "each shot must be an integer >= 1, got 0"),
        ({"episodes": 0}, "episodes must be an integer >= 1"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"bits": 9}, r"bits must be an integer in \[1, 8\], got 9"),
        ({"n_way": 7}, r"n_way must be between 2 and the number of classes \(3\), got 7"),
        ({"n_query": 0}, "n_query must be an integer >= 1"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, match):
    x = np.random.default_rng(0).standard_normal((30, 4))
    with pytest.raises(ValueError, match=match):
        few_shot_accuracy(x, np.repeat(np.arange(3), 10), **kwargs)


def test_bad_inputs_are_clear_errors():
    x = np.random.default_rng(0).standard_normal((30, 4))
    y = np.repeat(np.arange(3), 10)
    with pytest.raises(ValueError, match="labels has length 29 but there are 30"):
        few_shot_accuracy(x, y[:29])
    with pytest.raises(ValueError, match="at least 2 classes"):
        few_shot_accuracy(x, np.zeros(30))
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        few_shot_accuracy(bad, y)
    with pytest.raises(ValueError, match="even width"):
        few_shot_accuracy(np.ones((30, 3)), y, geometry="torusN")
    with pytest.raises(TypeError, match="must be integer codes .* got dtype float64"):
        few_shot_accuracy(x, y, geometry="codes")
    with pytest.raises(ValueError, match=r"holds value 200; 4-bit codes must be in \[0, 15\]"):
        few_shot_accuracy(np.full((30, 2), 200, np.uint8), y, geometry="codes", bits=4)
    with pytest.raises(ValueError, match="same width, got 4 and 2"):
        nearest_prototype(x, y, x[:, :2])


def test_a_trained_like_torus_head_output_works_as_is():
    """L2p head output (unit norm, float32 torch) goes in directly; its 8-bit codes give close
    accuracy."""
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(4).repeat_interleave(12)
    feats = torch.nn.functional.one_hot(y, 16).float() * 3 + 0.3 * torch.randn(
        48, 16, generator=gen
    )
    z = L2p(16)(feats).detach()
    f = few_shot_accuracy(z, y, shots=(1, 5), geometry="torusN")
    from torus_plugins import to_turns

    c = few_shot_accuracy(quantize(to_turns(z), 8), y, shots=(1, 5), geometry="codes")
    for shot in (1, 5):
        assert abs(f[shot]["mean"] - c[shot]["mean"]) < 0.05
