"""Numerical checks of torus_plugins.losses against independent brute-force computations."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from torus_plugins.geometry import to_turns, torus_spectral_gap
from torus_plugins.heads import Clifford, L2p
from torus_plugins.losses import (
    CircularSpreadLoss,
    KoLeoLoss,
    ProtoCLRLoss,
    SupConLoss,
    ToroidalCovarianceLoss,
    UniformityLoss,
    VICRegLoss,
    clip_gradients,
)
from torus_plugins.losses.circular_spread import fisher_lee_matrix
from torus_plugins.validation import validation_mode

#: "host": eager CPU default (value checks read the host, ProtoCLR sizes its logits by the
#: classes present);
#: "device": what a GPU or a compiled step gets (no host read: device-side asserts, static-shape
#: ProtoCLR).
MODES = ["host", "device"]


@pytest.fixture(autouse=True)
def _float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def supcon_loop(feats, labels, scaler, temperature, base_temperature, mode="all"):
    """Khosla et al. SupCon by explicit loops. feats: numpy [B, V, D]; logits = dot / scaler."""
    b, v, _ = feats.shape
    items = [(vi, i) for vi in range(v) for i in range(b)]
    anchors = items if mode == "all" else [(0, i) for i in range(b)]
    lab = labels if labels is not None else np.arange(b)
    total = []
    for va, a in anchors:
        sims = {
            (vc, c): float(feats[a, va] @ feats[c, vc]) / scaler
            for (vc, c) in items
            if (vc, c) != (va, a)
        }
        lse = math.log(sum(math.exp(s) for s in sims.values()))
        pos = [s - lse for (vc, c), s in sims.items() if lab[c] == lab[a]]
        if pos:  # anchors without a positive are left out of the mean
            total.append(-np.mean(pos))
    return temperature / base_temperature * float(np.mean(total))


@pytest.mark.parametrize("validation", MODES)
@pytest.mark.parametrize("mode", ["all", "one"])
@pytest.mark.parametrize("with_labels", [True, False])
def test_supcon_sphere_matches_loop(mode, with_labels, validation):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(10, 2, 6, generator=g)
    y = torch.randint(0, 3, (10,), generator=g) if with_labels else None
    with validation_mode(validation):
        ours = SupConLoss(0.5, contrast_mode=mode, base_temperature=0.7)(x, y)
    xn = (x / x.norm(dim=-1, keepdim=True)).numpy()
    ref = supcon_loop(xn, None if y is None else y.numpy(), 0.5, 0.5, 0.7, mode)
    assert float(ours) == pytest.approx(ref, rel=1e-9)


@settings(max_examples=30, deadline=None)
@given(
    labels=st.lists(st.integers(0, 5), min_size=2, max_size=9),
    views=st.integers(1, 3),
    mode=st.sampled_from(["all", "one"]),
    validation=st.sampled_from(MODES),
    seed=st.integers(0, 2**16),
)
def test_supcon_leaves_anchors_without_positive_out_of_the_mean(
    labels, views, mode, validation, seed
):
    """Singleton classes with one view have no positive: the mean runs over the other anchors (a
    masked sum, so that the shape does not depend on the labels); if no anchor has one, it is an
    error."""
    y = np.array(labels)
    x = torch.randn(len(y), views, 4, generator=torch.Generator().manual_seed(seed))
    xn = (x / x.norm(dim=-1, keepdim=True)).numpy()
    counts = np.bincount(y)[y]
    anchors_with_positive = (
        views > 1 or (counts > 1).any()
    )  # another view of itself, or a same-class sample
    with validation_mode(validation):
        if not anchors_with_positive:
            with pytest.raises(
                ValueError if validation == "host" else RuntimeError, match="no anchor"
            ):
                SupConLoss(0.5, contrast_mode=mode)(x, torch.from_numpy(y))
            return
        ours = SupConLoss(0.5, contrast_mode=mode)(x, torch.from_numpy(y))
    assert float(ours) == pytest.approx(supcon_loop(xn, y, 0.5, 0.5, 0.07, mode), rel=1e-9)


def test_supcon_torusN_equals_paper_pair_unit_convention():
    """(a) raw features: paper keeps every pair at unit norm (total norm sqrt(D/2)), logits / (tau *
    D/2)."""
    g = torch.Generator().manual_seed(1)
    b, v, d, tau = 9, 3, 8, 0.1
    raw = torch.randn(b, v, d, generator=g)
    y = torch.randint(0, 3, (b,), generator=g)
    pairs = raw.numpy().reshape(b, v, d // 2, 2)
    pair_unit = (pairs / np.linalg.norm(pairs, axis=-1, keepdims=True)).reshape(b, v, d)
    ref = supcon_loop(pair_unit, y.numpy(), tau * d / 2, tau, tau)
    assert float(SupConLoss(tau, base_temperature=tau, geometry="torusN")(raw, y)) == pytest.approx(
        ref, rel=1e-9
    )
    assert float(SupConLoss(tau, base_temperature=tau, geometry="TORUL")(raw, y)) == pytest.approx(
        ref, rel=1e-9
    )
    head_out = L2p(d)(
        raw
    )  # the package head already gives unit norm: projmode None (or the no-op 'sphere')
    assert float(
        SupConLoss(tau, base_temperature=tau, geometry=None)(head_out, y)
    ) == pytest.approx(ref, rel=1e-9)
    assert float(SupConLoss(tau, base_temperature=tau)(head_out, y)) == pytest.approx(ref, rel=1e-9)


def test_supcon_torusC_equals_paper_cos_then_sin_convention():
    """(b) raw turns: paper uses [cos..., sin...] (not interleaved), logits / (tau * k), k = number
    of turns."""
    g = torch.Generator().manual_seed(2)
    b, v, k, tau = 8, 2, 5, 0.07
    turns = torch.rand(b, v, k, generator=g) * 3 - 1  # period 1: any real value is a turn
    y = torch.randint(0, 2, (b,), generator=g)
    th = 2 * np.pi * turns.numpy()
    paper = np.concatenate([np.cos(th), np.sin(th)], axis=2)
    ref = supcon_loop(paper, y.numpy(), tau * k, tau, 0.07)
    assert float(SupConLoss(tau, geometry="torusC")(turns, y)) == pytest.approx(ref, rel=1e-9)
    assert float(SupConLoss(tau, geometry="torus")(turns, y)) == pytest.approx(ref, rel=1e-9)
    assert float(SupConLoss(tau, geometry=None)(Clifford(k)(turns), y)) == pytest.approx(
        ref, rel=1e-9
    )


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), shift=st.floats(-3, 3))
def test_supcon_torus_translation_and_permutation_invariant(seed, shift):
    g = torch.Generator().manual_seed(seed)
    turns = torch.rand(6, 2, 4, generator=g)
    y = torch.randint(0, 3, (6,), generator=g)
    loss = SupConLoss(0.2, geometry="torusC")
    perm = torch.randperm(6, generator=g)
    base = float(loss(turns, y))
    assert float(loss(turns + shift, y)) == pytest.approx(base, rel=1e-7, abs=1e-9)
    assert float(loss(turns[perm], y[perm])) == pytest.approx(base, rel=1e-7, abs=1e-9)


def test_koleo_matches_bruteforce_and_views_average():
    g = torch.Generator().manual_seed(3)
    x = L2p(8)(torch.randn(12, 2, 8, generator=g))
    eps = 1e-8
    refs = []
    for v in range(2):
        a = x[:, v].numpy()
        terms = []
        for i in range(len(a)):
            d = [np.linalg.norm(a[i] - a[j]) for j in range(len(a)) if j != i]
            j = [j for j in range(len(a)) if j != i][int(np.argmin(d))]
            terms.append(-np.log(np.linalg.norm(a[i] - a[j] + eps) + eps))
        refs.append(np.mean(terms))
    assert float(KoLeoLoss(eps=eps)(x)) == pytest.approx(np.mean(refs), rel=1e-9)
    assert float(KoLeoLoss(eps=eps)(x[:, 1])) == pytest.approx(refs[1], rel=1e-9)


def test_koleo_duplicates_finite_and_clipped_gradient_finite():
    x = torch.nn.functional.normalize(torch.randn(6, 4), dim=-1)
    dup = torch.cat([x, x[:2]]).float().requires_grad_(True)  # exact duplicates
    loss = KoLeoLoss()(dup)
    (grad,) = torch.autograd.grad(loss, dup)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    x = (
        torch.cat([x, x[:2] + 1e-6 * torch.randn(2, 4)]).float().requires_grad_(True)
    )  # near-duplicates
    (grad,) = torch.autograd.grad(KoLeoLoss()(x), x)
    assert torch.isfinite(grad).all() and grad.abs().max() > 100  # huge but finite without clipping
    handle = clip_gradients(x, 100.0)
    KoLeoLoss()(x).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().max() <= 100.0
    handle.remove()
    x.grad = None
    KoLeoLoss()(x).backward()
    assert x.grad.abs().max() > 100  # hooks really removed


def test_clip_gradients_on_module():
    m = torch.nn.Linear(3, 2)
    h = clip_gradients(m, value=0.5)
    assert len(h) == 2
    (m(torch.full((4, 3), 100.0)).sum()).backward()
    assert m.weight.grad.abs().max() == pytest.approx(0.5)
    h.remove()
    with pytest.raises(ValueError, match="clip value"):
        clip_gradients(m, 0)


def test_uniformity_matches_loop():
    g = torch.Generator().manual_seed(4)
    z = Clifford(3)(torch.rand(7, 3, generator=g)).numpy()
    vals = [np.exp(-2.0 * np.sum((z[i] - z[j]) ** 2)) for i in range(7) for j in range(7) if i != j]
    assert float(UniformityLoss(2.0)(torch.from_numpy(z))) == pytest.approx(
        np.log(np.mean(vals)), rel=1e-9
    )


def fisher_lee_numpy(a, b):
    """Fisher & Lee (1983) circular-circular correlation, double-sum form."""
    num = sa = sb = 0.0
    for i in range(len(a)):
        for j in range(i + 1, len(a)):
            x, y = np.sin(a[i] - a[j]), np.sin(b[i] - b[j])
            num += x * y
            sa += x * x
            sb += y * y
    return num / np.sqrt(sa * sb)


def test_fisher_lee_matches_numpy_formula_and_spread_loss():
    g = torch.Generator().manual_seed(5)
    raw = torch.randn(15, 6, generator=g) * torch.tensor(
        [1.0, 1.0, 3.0, 3.0, 0.5, 0.5]
    )  # any scale per circle
    th = 2 * np.pi * to_turns(raw).numpy()
    rho = fisher_lee_matrix(raw).numpy()
    ref = np.array([[fisher_lee_numpy(th[:, a], th[:, b]) for b in range(3)] for a in range(3)])
    np.testing.assert_allclose(rho, ref, rtol=1e-9, atol=1e-12)
    expected = np.mean([ref[0, 1] ** 2, ref[0, 2] ** 2, ref[1, 2] ** 2])
    assert float(CircularSpreadLoss()(raw)) == pytest.approx(expected, rel=1e-9)


def test_circular_spread_detects_collapse_onto_a_curve():
    torch.manual_seed(0)
    t = torch.rand(50, 1)
    # rotational dependence on a 1-D curve: rho = +1 / -1 (Fisher-Lee only sees (1, +-1) windings,
    # not (1, 3))
    for curve in (torch.cat([t, t + 0.1], dim=1), torch.cat([t, 0.3 - t], dim=1)):
        assert float(CircularSpreadLoss()(Clifford(2)(curve))) == pytest.approx(1.0)
    spread = Clifford(2)(torch.rand(50, 2))
    assert float(CircularSpreadLoss()(spread)) < 0.2


@pytest.mark.parametrize("n,gap", [(8, 0.586), (12, 0.268), (16, 0.152)])
def test_spectral_gap_equals_numpy_laplacian(n, gap):
    adj = np.zeros((n * n, n * n))
    for x in range(n):
        for y in range(n):
            for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                adj[x + n * y, (x + dx) % n + n * ((y + dy) % n)] = 1
    ev = np.sort(np.linalg.eigvalsh(np.diag(adj.sum(1)) - adj))
    assert torus_spectral_gap(n) == pytest.approx(ev[1], abs=1e-9)
    assert round(torus_spectral_gap(n), 3) == gap


@pytest.mark.parametrize("penalty", ["distance", "laplacian"])
def test_toroidal_covariance_matches_loop(penalty):
    n, d, b = 3, 13, 20  # d > n^2: dims 0 and 9 share a grid cell
    g = torch.Generator().manual_seed(6)
    z = torch.randn(b, d, generator=g)
    zn = z.numpy()
    cov = np.cov(zn, rowvar=False)

    def cell(i):
        p = i % (n * n)
        return p % n, p // n

    def tdist(i, j):
        (xi, yi), (xj, yj) = cell(i), cell(j)
        return min(abs(xi - xj), n - abs(xi - xj)) + min(abs(yi - yj), n - abs(yi - yj))

    if penalty == "distance":

        def w(i, j):  # max torus Manhattan distance on a 3x3 grid is 1 + 1
            return tdist(i, j) / 2.0
    else:
        # |Laplacian|: adjacent cells 1, same cell 4 (diagonal); off-diagonal rescaled to mean 1
        # over n^2 cells
        # each cell has 4 neighbours -> off-diag sum = 4 n^2, mean = 4 / (n^2 - 1)
        scale = (n * n - 1) / 4.0

        def w(i, j):
            return 4.0 if i % 9 == j % 9 else (scale if tdist(i, j) == 1 else 0.0)

    ref = sum(w(i, j) * cov[i, j] ** 2 for i in range(d) for j in range(d) if i != j) / (
        d * (d - 1)
    )
    assert float(ToroidalCovarianceLoss(n, d, penalty)(z)) == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize("validation", MODES)
@pytest.mark.parametrize(
    "labels",
    [[5, 2, 5, 9, 2, 2, 9, 5], [0, 1, 2, 3, 4, 5, 6, 7], [4] * 8, [3, 3, 0, 1, 3, 3, 3, 3]],
)
def test_protoclr_matches_loop(labels, validation):
    g = torch.Generator().manual_seed(7)
    z1, z2 = torch.randn(8, 6, generator=g), torch.randn(8, 6, generator=g)
    y = torch.tensor(labels)
    tau = 0.3
    z = np.concatenate([z1.numpy(), z2.numpy()])
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    yy = np.concatenate([y.numpy(), y.numpy()])
    classes = sorted(set(yy.tolist()))
    protos = np.stack([z[yy == c].mean(0) for c in classes])
    ce = []
    for i in range(len(z)):
        logits = protos @ z[i] / tau
        ce.append(-(logits[classes.index(yy[i])] - np.log(np.exp(logits).sum())))
    with validation_mode(validation):
        assert float(ProtoCLRLoss(tau)(z1, z2, y)) == pytest.approx(np.mean(ce), rel=1e-9)
    # circular prototypes: each prototype renormalised per circle to the unit-norm Clifford layout
    pc = protos.reshape(len(classes), 3, 2)
    pc = (pc / np.linalg.norm(pc, axis=-1, keepdims=True) / np.sqrt(3)).reshape(len(classes), 6)
    ce2 = [
        -(pc @ z[i] / tau)[classes.index(yy[i])] + np.log(np.exp(pc @ z[i] / tau).sum())
        for i in range(len(z))
    ]
    with validation_mode(validation):
        assert float(ProtoCLRLoss(tau, circular_prototypes=True)(z1, z2, y)) == pytest.approx(
            np.mean(ce2), rel=1e-9
        )


def test_vicreg_components_and_toroidal_option():
    g = torch.Generator().manual_seed(8)
    a, b = torch.randn(16, 10, generator=g), torch.randn(16, 10, generator=g)
    c = VICRegLoss(2.0, 3.0, 4.0).components(a, b)
    assert set(c) == {"loss", "invariance_loss", "var_loss", "cov_loss"}
    inv = float(((a - b) ** 2).mean())
    var = np.mean(
        [
            np.mean(np.maximum(0, 1 - np.sqrt(t.var(0, ddof=1) + 1e-4)))
            for t in (a.numpy(), b.numpy())
        ]
    )
    assert float(c["invariance_loss"]) == pytest.approx(inv, rel=1e-9)
    assert float(c["var_loss"]) == pytest.approx(var, rel=1e-9)
    assert float(c["loss"]) == pytest.approx(2 * inv + 3 * var + 4 * float(c["cov_loss"]), rel=1e-9)
    t = VICRegLoss(covariance="toroidal", grid_size=3).components(a, b)
    tor = ToroidalCovarianceLoss(3, 10)
    assert float(t["cov_loss"]) == pytest.approx(float(tor(a) + tor(b)), rel=1e-9)
    assert float(t["invariance_loss"]) == pytest.approx(inv, rel=1e-9)
