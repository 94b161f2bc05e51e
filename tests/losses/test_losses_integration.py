"""Our losses against lightly and pytorch-metric-learning on the same tensors."""

import pytest
import torch
import torch.nn.functional as F

from torus_plugins.heads import Clifford, L2p
from torus_plugins.losses import KoLeoLoss, SupConLoss, VICRegLoss

lightly_loss = pytest.importorskip("lightly.loss")
pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
from torus_plugins.adapters.pml import CliffordCosine, KoLeoRegularizer, ToroidalDistance  # noqa: E402


@pytest.mark.parametrize("p,eps", [(2, 1e-8), (1, 1e-4)])
def test_koleo_equals_lightly_on_sphere_outputs(p, eps):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 32, generator=g)
    ours, theirs = KoLeoLoss(eps=eps, p=p)(F.normalize(x)), lightly_loss.KoLeoLoss(p=p, eps=eps)(x)
    assert torch.allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    x = x.requires_grad_(True)
    (ga,) = torch.autograd.grad(KoLeoLoss(eps=eps, p=p)(x), x)
    (gb,) = torch.autograd.grad(lightly_loss.KoLeoLoss(p=p, eps=eps)(x), x)
    assert torch.allclose(ga, gb, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("shape", [(32, 16), (5, 40)])
def test_vicreg_isotropic_equals_lightly(shape):
    g = torch.Generator().manual_seed(1)
    a = torch.randn(*shape, generator=g).requires_grad_(True)
    b = torch.randn(*shape, generator=g)
    a2d, b2d = a, b
    ours = VICRegLoss(25, 25, 1)(a2d, b2d)
    theirs = lightly_loss.VICRegLoss(25, 25, 1)(a2d, b2d)
    assert torch.allclose(ours, theirs, rtol=1e-6)
    (ga,) = torch.autograd.grad(ours, a)
    (gb,) = torch.autograd.grad(theirs, a)
    assert torch.allclose(ga, gb, rtol=1e-5, atol=1e-8)


def _pml_batch(views, labels):
    """pml takes a flat [n_views * B, D] batch and one label per row: positives are rows with equal
    labels."""
    return torch.cat(torch.unbind(views, dim=1), dim=0), labels.repeat(views.shape[1])


@pytest.mark.parametrize("scale", [1.0, 7.0])
def test_pml_supcon_with_clifford_cosine_equals_ours(scale):
    g = torch.Generator().manual_seed(2)
    raw = torch.randn(12, 2, 16, generator=g) * scale  # any scale per circle
    y = torch.randint(0, 4, (12,), generator=g)
    tau = 0.1
    emb, lab = _pml_batch(raw, y)
    theirs = pml_losses.SupConLoss(temperature=tau, distance=CliffordCosine())(emb, lab)
    ours = SupConLoss(tau, base_temperature=tau, geometry="torusN")(raw, y)
    assert torch.allclose(ours.float(), theirs.float(), rtol=1e-5)
    ours_head = SupConLoss(tau, base_temperature=tau, geometry=None)(L2p(16)(raw), y)
    assert torch.allclose(ours_head, ours, rtol=1e-6)


def test_pml_simclr_case_labels_are_sample_ids():
    g = torch.Generator().manual_seed(3)
    z = Clifford(8)(torch.rand(10, 2, 8, generator=g))
    emb, lab = _pml_batch(z, torch.arange(10))
    theirs = pml_losses.SupConLoss(temperature=0.5, distance=CliffordCosine())(emb, lab)
    assert torch.allclose(SupConLoss(0.5, base_temperature=0.5)(z), theirs, rtol=1e-5)


def test_clifford_cosine_is_mean_cos_of_angle_differences():
    g = torch.Generator().manual_seed(4)
    t1, t2 = torch.rand(5, 3, generator=g), torch.rand(4, 3, generator=g)
    z1 = Clifford(3)(t1) * 3.0  # scale must not matter
    mat = CliffordCosine()(z1, Clifford(3)(t2))
    ref = torch.cos(2 * torch.pi * (t1[:, None] - t2[None])).mean(-1)
    assert torch.allclose(mat, ref, atol=1e-6)


@pytest.mark.parametrize("p", [1, 2])
def test_toroidal_distance_bruteforce(p):
    g = torch.Generator().manual_seed(5)
    a, b = torch.rand(4, 3, generator=g), torch.rand(6, 3, generator=g)
    mat = ToroidalDistance(p=p)(a, b)
    for i in range(4):
        for j in range(6):
            d = [
                min(abs(float(a[i, k] - b[j, k])), 1 - abs(float(a[i, k] - b[j, k])))
                for k in range(3)
            ]
            ref = sum(d) if p == 1 else sum(x * x for x in d) ** 0.5
            assert float(mat[i, j]) == pytest.approx(ref, abs=1e-6)
    assert torch.allclose(ToroidalDistance(p=p)(a + 2.0, b - 1.0), mat, atol=1e-5)  # wrap-around
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        ToroidalDistance(p=3)


def test_pml_loss_with_toroidal_distance_runs_and_backprops():
    turns = torch.rand(16, 4, requires_grad=True)
    y = torch.arange(16) % 4
    loss = pml_losses.ContrastiveLoss(distance=ToroidalDistance(p=1))(turns, y)
    loss.backward()
    assert torch.isfinite(turns.grad).all()


def test_koleo_regularizer_in_pml_supcon():
    g = torch.Generator().manual_seed(6)
    emb = L2p(16)(torch.randn(20, 16, generator=g))
    y = torch.arange(20) % 5
    base = pml_losses.SupConLoss(distance=CliffordCosine())(emb, y)
    with_reg = pml_losses.SupConLoss(
        distance=CliffordCosine(),
        embedding_regularizer=KoLeoRegularizer(),
        embedding_reg_weight=0.5,
    )(emb, y)
    assert torch.allclose(with_reg - base, 0.5 * KoLeoLoss()(emb), rtol=1e-5)
