"""Every drop-in called with the same positional and keyword arguments as the upstream class it
replaces gives the same result (lightly's KoLeoLoss and VICRegLoss, pml's CosineSimilarity)."""

import inspect

import pytest
import torch
import torch.nn.functional as F

from torus_plugins.losses import KoLeoLoss, VICRegLoss

lightly_loss = pytest.importorskip("lightly.loss")
pml_distances = pytest.importorskip("pytorch_metric_learning.distances")
from torus_plugins.adapters.pml import CliffordCosine  # noqa: E402


def _leading_parameters(cls, n):
    return [(p.name, p.default) for p in list(inspect.signature(cls).parameters.values())[:n]]


@pytest.mark.parametrize(
    "ours,theirs,n", [(KoLeoLoss, "KoLeoLoss", 2), (VICRegLoss, "VICRegLoss", 5)]
)
def test_positional_order_and_defaults_equal_lightly(ours, theirs, n):
    upstream = getattr(lightly_loss, theirs)
    assert _leading_parameters(ours, n) == _leading_parameters(upstream, n)


KOLEO_ARGS = [
    ((), {}),
    ((2,), {}),
    ((1,), {}),
    ((2, 1e-4), {}),
    ((1.5, 1e-6), {}),
    ((), {"p": 1}),
    ((), {"eps": 1e-3}),
    ((1,), {"eps": 1e-5}),
]


@pytest.mark.parametrize("args,kwargs", KOLEO_ARGS)
def test_koleo_same_arguments_same_loss_and_gradient_as_lightly(args, kwargs):
    g = torch.Generator().manual_seed(len(args) * 10 + len(kwargs))
    x = torch.randn(48, 16, generator=g, dtype=torch.float64).requires_grad_(True)
    ours, theirs = KoLeoLoss(*args, **kwargs)(x), lightly_loss.KoLeoLoss(*args, **kwargs)(x)
    assert torch.allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    (ga,) = torch.autograd.grad(ours, x)
    (gb,) = torch.autograd.grad(theirs, x)
    assert torch.allclose(ga, gb, rtol=1e-8, atol=1e-12)


def test_koleo_2_is_lightlys_koleo_2_on_unit_vectors():
    x = F.normalize(torch.randn(32, 16, generator=torch.Generator().manual_seed(3)))
    ours, theirs = float(KoLeoLoss(2)(x)), float(lightly_loss.KoLeoLoss(2)(x))
    assert ours == pytest.approx(theirs, rel=1e-6)
    assert KoLeoLoss(2).eps == 1e-8 and KoLeoLoss(2).p == 2


def test_koleo_extras_are_keyword_only():
    with pytest.raises(TypeError):
        KoLeoLoss(2, 1e-8, True)


VICREG_ARGS = [
    ((), {}),
    ((25, 25, 1), {}),
    ((10.0, 5.0, 2.0, False, 1e-3), {}),
    ((1.0,), {"nu_param": 0.5, "eps": 1e-2}),
    ((), {"gather_distributed": False}),
]


@pytest.mark.parametrize("args,kwargs", VICREG_ARGS)
def test_vicreg_same_arguments_same_loss_as_lightly(args, kwargs):
    g = torch.Generator().manual_seed(len(args))
    a = torch.randn(24, 12, generator=g, dtype=torch.float64).requires_grad_(True)
    b = torch.randn(24, 12, generator=g, dtype=torch.float64)
    ours = VICRegLoss(*args, **kwargs)(a, b)
    theirs = lightly_loss.VICRegLoss(*args, **kwargs)(a, b)
    assert torch.allclose(ours, theirs, rtol=1e-10)
    (ga,) = torch.autograd.grad(ours, a)
    (gb,) = torch.autograd.grad(theirs, a)
    assert torch.allclose(ga, gb, rtol=1e-8, atol=1e-12)


def _unit_clifford(n, k, seed):
    turns = torch.rand(n, k, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    theta = 2 * torch.pi * turns
    return torch.stack((theta.cos(), theta.sin()), -1).flatten(1) / k**0.5


@pytest.mark.parametrize("kwargs", [{}, {"power": 2}, {"power": 3}])
def test_clifford_cosine_same_arguments_as_pml_cosine_similarity(kwargs):
    q, r = _unit_clifford(7, 5, 0), _unit_clifford(9, 5, 1)
    ours, theirs = CliffordCosine(**kwargs), pml_distances.CosineSimilarity(**kwargs)
    assert ours.is_inverted == theirs.is_inverted
    assert torch.allclose(ours(q, r), theirs(q, r), rtol=1e-10, atol=1e-12)
    assert torch.allclose(ours(q), theirs(q), rtol=1e-10, atol=1e-12)
