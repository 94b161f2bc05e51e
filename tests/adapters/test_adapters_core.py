"""Adapters for installed libraries: normalize (the patch mechanism), lightly, pml, and the registry
entries."""

import importlib
import types

import pytest
import torch
import torch.nn.functional as F

from torus_plugins import Clifford, L2p
from torus_plugins.adapters import normalize as tn

torch.manual_seed(0)


def make_module(name="user_pipeline"):
    """A module written like a user's training code: `import torch.nn.functional as F`, then
    F.normalize."""
    mod = types.ModuleType(name)
    exec(
        "import torch\nimport torch.nn.functional as F\n"
        "def embed(x):\n    return F.normalize(x, dim=1)\n"
        "def embed_last(x):\n    return F.normalize(x, dim=-1)\n"
        "def act(x):\n    return F.relu(x)\n",
        mod.__dict__,
    )
    return mod


# ---------------------------------------------------------------- normalize


@pytest.mark.parametrize(
    "name,canonical",
    [
        ("sphere", "sphere"),
        ("hyprs", "sphere"),
        ("torusN", "torusN"),
        ("torul", "torusN"),
        ("L2P", "torusN"),
        ("torusC", "torusC"),
        ("torus", "torusC"),
        ("clifford", "torusC"),
    ],
)
def test_canonical_mode_names(name, canonical):
    with pytest.warns(DeprecationWarning, match="canonical_mode is deprecated"):
        assert tn.canonical_mode(name) == canonical


@pytest.mark.parametrize(
    "bad,error", [("torusX", ValueError), ("", ValueError), (None, TypeError), (3, TypeError)]
)
def test_unknown_geometry_is_a_clear_error(bad, error):
    with pytest.raises(error, match="geometry must be"), pytest.warns(DeprecationWarning):
        tn.canonical_mode(bad)
    with pytest.raises(error, match="geometry must be"):
        tn.patch_normalize(make_module(), geometry=bad)


def test_torus_normalize_matches_the_heads_along_any_dim():
    x = torch.randn(5, 8)
    assert torch.allclose(tn.torus_normalize(x, "torusN", dim=1), L2p(8)(x))
    assert torch.allclose(tn.torus_normalize(x, "torusN", dim=-1), L2p(8)(x))
    assert torch.allclose(tn.torus_normalize(x, "torusC", dim=1), Clifford(8)(x))
    assert torch.allclose(tn.torus_normalize(x.T, "torusN", dim=0), L2p(8)(x).T)
    assert tn.torus_normalize(x, "torusC", dim=1).shape == (5, 16)
    assert torch.allclose(tn.torus_normalize(x, "sphere", dim=1), F.normalize(x, dim=1))
    with pytest.raises(ValueError, match="even width"):
        tn.torus_normalize(torch.randn(4, 5), "torusN")
    with pytest.raises(ValueError, match="L2 projection"):
        tn.torus_normalize(x, "torusN", p=1)


def test_patch_normalize_redirects_only_that_module_and_unpatches():
    mod, other = make_module(), make_module("other")
    x = torch.randn(6, 10)
    original_F = mod.F
    handle = tn.patch_normalize(mod, mode="torusN")
    assert tn.is_patched(mod) and handle.modules == [mod]
    assert torch.allclose(mod.embed(x), L2p(10)(x))
    assert torch.allclose(mod.embed_last(x), L2p(10)(x))
    assert torch.equal(mod.act(x), F.relu(x))  # everything else is torch.nn.functional
    assert torch.allclose(other.embed(x), F.normalize(x, dim=1))  # other modules untouched
    assert torch.nn.functional.normalize is F.normalize and mod.F is not original_F
    tn.unpatch(mod)
    assert mod.F is original_F and not tn.is_patched(mod)
    assert torch.allclose(mod.embed(x), F.normalize(x, dim=1))


def test_patch_normalize_context_manager_and_torusC_width():
    mod = make_module()
    x = torch.rand(4, 3)
    with tn.patch_normalize(mod, mode="torus"):  # legacy name for torusC
        z = mod.embed(x)
        assert z.shape == (4, 6)
        assert torch.allclose(z, Clifford(3)(x))
        assert torch.allclose(z.norm(dim=1), torch.ones(4))
    assert not tn.is_patched(mod)
    assert mod.embed(x).shape == (4, 3)


def test_patch_errors_are_clear():
    mod = make_module()
    with pytest.raises(RuntimeError, match="not patched"):
        tn.unpatch(mod)
    tn.patch_normalize(mod)
    with pytest.raises(RuntimeError, match="already patched"):
        tn.patch_normalize(mod, mode="torusC")
    tn.unpatch(mod)
    with pytest.raises(RuntimeError, match="not patched"):
        tn.unpatch(mod)
    with pytest.raises(ValueError, match="no reference to torch.nn.functional"):
        tn.patch_normalize(types.ModuleType("empty"))
    with pytest.raises(TypeError, match="expected a module"):
        tn.patch_normalize(object())


def test_with_defaults_binds_only_missing_arguments():
    class Loss:
        def __init__(self, tau=1.0, mode="sphere"):
            self.tau, self.mode = tau, mode

    Bound = tn.with_defaults(Loss, mode="torusC")
    assert Bound(0.5).mode == "torusC" and Bound(0.5).tau == 0.5
    assert Bound(0.5, "torusN").mode == "torusN"
    assert Bound(tau=2.0, mode="sphere").mode == "sphere"
    assert issubclass(Bound, Loss) and Bound.__name__ == "Loss"


# ---------------------------------------------------------------- lightly


def _two_views(n=64, dim=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(n, dim, generator=g)
    return (
        base + 0.1 * torch.randn(n, dim, generator=g),
        base + 0.1 * torch.randn(n, dim, generator=g),
    )


def _train(model, loss_fn, steps=40, lr=1e-2):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x1, x2 = _two_views()
    losses = []
    for _ in range(steps):
        loss = loss_fn(model(x1), model(x2))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, model(x1)


def test_lightly_simclr_head_trains_with_lightly_ntxent():
    from lightly.loss import NTXentLoss
    from lightly.models.modules.heads import ProjectionHead

    from torus_plugins.adapters.lightly import TorusSimCLRProjectionHead

    torch.manual_seed(0)
    head = TorusSimCLRProjectionHead(32, 32, 8, geometry="torusN")
    assert isinstance(head, ProjectionHead) and head.out_dim == 8
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), head)
    losses, z = _train(model, NTXentLoss(temperature=0.2))
    assert losses[-1] < losses[0] - 0.3
    pair_norms = z.unflatten(-1, (4, 2)).norm(dim=-1)
    assert torch.allclose(pair_norms, torch.full_like(pair_norms, 0.5), atol=1e-5)


def test_lightly_heads_torusC_and_wrap():
    from lightly.models.modules.heads import BYOLProjectionHead

    from torus_plugins.adapters.lightly import (
        TorusProjectionHead,
        TorusVICRegProjectionHead,
        torus_head,
    )

    head = TorusVICRegProjectionHead(16, 32, 6, num_layers=3, geometry="torusC")
    z = head(torch.randn(5, 16))
    assert z.shape == (5, 12) and torch.allclose(z.norm(dim=1), torch.ones(5), atol=1e-5)
    blocks = [(16, 16, torch.nn.BatchNorm1d(16), torch.nn.ReLU()), (16, 8, None, None)]
    assert TorusProjectionHead(blocks, geometry="torul")(torch.randn(4, 16)).shape == (4, 8)
    wrapped = torus_head(BYOLProjectionHead(16, 32, 8), 8, "torusN")
    assert torch.allclose(wrapped(torch.randn(4, 16)).norm(dim=1), torch.ones(4), atol=1e-5)
    with pytest.raises(ValueError, match="geometry must be one of"):
        TorusVICRegProjectionHead(16, 32, 8, geometry="poincare")


def test_lightly_vicreg_koleo_reexports_train():
    from torus_plugins import losses as tl
    from torus_plugins.adapters import lightly as tlightly

    assert tlightly.VICRegLoss is tl.VICRegLoss and tlightly.KoLeoLoss is tl.KoLeoLoss
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(16, 32),
        torch.nn.ReLU(),
        tlightly.TorusVICRegProjectionHead(32, 32, 8, num_layers=2),
    )
    vicreg, koleo = tlightly.VICRegLoss(), tlightly.KoLeoLoss()

    def loss_fn(a, b):
        return vicreg(a, b) + 0.1 * (koleo(a) + koleo(b))

    losses, z = _train(model, loss_fn, steps=30)
    assert losses[-1] < losses[0]
    assert torch.allclose(z.norm(dim=1), torch.ones(len(z)), atol=1e-5)


# ---------------------------------------------------------------- pytorch-metric-learning


def test_pml_torus_supcon_loss():
    from pytorch_metric_learning import losses as pml_losses

    from torus_plugins.adapters import pml as tpml

    z = L2p(8)(torch.randn(12, 8, requires_grad=True))
    labels = torch.arange(12) % 3
    loss_fn = tpml.torus_supcon_loss(temperature=0.1, koleo_weight=0.5)
    assert isinstance(loss_fn, pml_losses.SupConLoss)
    assert isinstance(loss_fn.distance, tpml.CliffordCosine)
    assert isinstance(loss_fn.embedding_regularizer, tpml.KoLeoRegularizer)
    loss = loss_fn(z, labels)
    assert torch.isfinite(loss)
    # without KoLeo, on unit-norm torus vectors the torus SupCon is pml's cosine SupCon
    plain = tpml.torus_supcon_loss(temperature=0.1)(z, labels)
    assert torch.allclose(plain, pml_losses.SupConLoss(temperature=0.1)(z, labels), atol=1e-5)
    assert loss.item() != pytest.approx(plain.item())
    with pytest.raises(ValueError, match="koleo_weight"):
        tpml.torus_supcon_loss(koleo_weight=-1)
    assert tpml.ToroidalDistance is not None


# ---------------------------------------------------------------- registry


def test_every_adapter_is_registered_loads_and_has_a_summary():
    from torus_plugins import registry

    rows = {row["name"]: row for row in registry.describe("adapters")}
    expected = {
        "timm",
        "lightly",
        "pytorch_metric_learning",
        "supcon_framework",
        "protoclr",
        "eb_jepa",
        "normalize",
    }
    assert expected <= set(rows)
    for name in expected:
        assert rows[name]["error"] is None, rows[name]
        module = importlib.import_module(rows[name]["target"])
        summary = (module.__doc__ or "").strip().splitlines()[0]
        assert 20 < len(summary) <= 120, (name, summary)
