"""Repository adapters (SupCon-Framework, ProtoCLR, EB-JEPA) against small fixture modules that
follow upstream's module layout and signatures (tests/fixtures, written for these tests). Each
patched pipeline is checked numerically against an independent computation of the torus version of
its loss."""

import importlib
import math
import pathlib
import sys

import pytest
import torch
import torch.nn.functional as F

from torus_plugins.adapters import eb_jepa as teb
from torus_plugins.adapters import normalize as tn
from torus_plugins.adapters import protoclr as tpc
from torus_plugins.adapters import supcon_framework as tsf

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"
SGD = {"name": "SGD", "params": {"lr": 0.01}}


@pytest.fixture
def fx():
    """Fresh fixture modules for each test (patches are module state)."""
    sys.path.insert(0, str(FIXTURES))
    names = [
        n
        for n in sys.modules
        if n.split(".")[0] in ("fx_supcon_framework", "fx_protoclr", "fx_eb_jepa")
    ]
    for n in names:
        del sys.modules[n]
    try:
        yield importlib.import_module
    finally:
        sys.path.remove(str(FIXTURES))


def pairs_on_circles(z):
    """The paper's torusN features: every (x_2i, x_2i+1) scaled to norm 1 (total norm sqrt(k))."""
    b, d = z.shape[:-1], z.shape[-1]
    p = z.reshape(*b, d // 2, 2)
    return (p / p.norm(dim=-1, keepdim=True)).reshape(*b, d)


def reference_supcon(feats, labels, scale, temperature, base_temperature):
    """SupCon (all anchors) written from the formula: feats [B, V, D], logits = <f_a, f_p> /
    scale."""
    b, v, _ = feats.shape
    f = feats.transpose(0, 1).reshape(b * v, -1)
    lab = labels.repeat(v)
    sim = f @ f.T / scale
    total = 0.0
    for a in range(b * v):
        others = [j for j in range(b * v) if j != a]
        log_den = torch.logsumexp(sim[a, others], dim=0)
        pos = [j for j in others if lab[j] == lab[a]]
        total = total + torch.stack([sim[a, p] - log_den for p in pos]).mean()
    return -(temperature / base_temperature) * total / (b * v)


# ---------------------------------------------------------------- SupCon-Framework


def test_supcon_framework_patch_gives_the_torusN_pipeline(fx):
    models, losses, utils = (
        fx("fx_supcon_framework.models"),
        fx("fx_supcon_framework.losses"),
        fx("fx_supcon_framework.utils"),
    )  # utils imported SupConModel before the patch
    torch.manual_seed(0)
    x, labels = torch.randn(6, 3, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2])
    upstream_model = models.SupConModel
    handle = tsf.patch(models, losses, geometry="torusN")
    model = utils.build_model("resnet18", projection_dim=8, projmode="torusN")  # config at torusN
    supcon_params = [{"name": "SupCon", "params": {"temperature": 0.1}}]
    optim = utils.build_optim(model, SGD, None, supcon_params, "torusN")
    ((criterion, _),) = optim["criteria"]
    # the classes are patched in place
    assert type(criterion) is losses.SupConLoss and type(model) is upstream_model
    z = torch.stack((model(x), model(x.flip(-1))), dim=1)
    raw = torch.stack([model.head(model.encoder(v).flatten(1)) for v in (x, x.flip(-1))], dim=1)
    assert torch.allclose(z, pairs_on_circles(raw) / 2.0, atol=1e-6)  # unit norm, k = 4 circles
    assert model.embed_dim == z.shape[-1] == 8
    expected = reference_supcon(
        pairs_on_circles(raw), labels, scale=0.1 * 4, temperature=0.1, base_temperature=0.07
    )
    assert torch.allclose(criterion(z, labels), expected, atol=1e-5)
    assert torch.allclose(model.embed(x), z[:, 0], atol=1e-6)
    handle.undo()
    assert models.SupConModel is upstream_model and utils.SupConModel is upstream_model
    assert utils.LOSSES["SupCon"] is losses.SupConLoss and not hasattr(upstream_model, "embed")
    upstream_z = torch.stack((model(x), model(x.flip(-1))), dim=1)  # upstream's forward again
    assert torch.allclose(upstream_z, pairs_on_circles(raw), atol=1e-6)
    theirs = losses.SupConLoss(0.1, projmode="torusN")
    assert torch.allclose(theirs(upstream_z, labels), expected, atol=1e-5)  # and upstream's loss


@pytest.mark.parametrize("projmode", ["sphere", "torusN", "torusC", "hyprs", "torul", "torus"])
def test_supcon_framework_patch_builds_trains_and_validates_with_name_bound_super(fx, projmode):
    """Upstream writes ``super(SupConModel, self).__init__()`` (and the same in its losses), which
    looks the class up in its module at call time: the patched model and losses must build, train
    one step and fill upstream's validation buffer ``[N, model.embed_dim]``, and equal upstream's
    loss on upstream's features.
    """
    models, losses, utils = (
        fx("fx_supcon_framework.models"),
        fx("fx_supcon_framework.losses"),
        fx("fx_supcon_framework.utils"),
    )
    torch.manual_seed(3)
    criteria_params = [
        {"name": "SupCon", "params": {"temperature": 0.1}},
        {"name": "koleo", "weight": 0.5},
    ]
    loaders = utils.build_loaders("data/cifar10")
    images, labels = next(iter(loaders["train_supcon_loader"]))
    with tsf.patch(models, losses, geometry=projmode):
        model = utils.build_model("resnet18", projection_dim=8, projmode=projmode)
        optim = utils.build_optim(model, SGD, None, criteria_params, projmode)
        before = [p.detach().clone() for p in model.parameters()]
        loss = utils.train_epoch_constructive(
            [(images, labels)], model, optim["criteria"], optim["optimizer"], None, None
        )["loss"]
        assert math.isfinite(loss) and any(
            not torch.equal(a, b) for a, b in zip(before, model.parameters())
        )
        query, _ = utils.compute_embeddings(loaders["valid_loader"], model, None)
        assert query.shape == (len(loaders["valid_loader"]) * 8, model.embed_dim) == (16, 8)
        metrics = utils.validation_constructive(
            loaders["valid_loader"], loaders["train_features_loader"], model, None, projmode
        )
        assert 0.0 <= metrics["precision_at_1"] <= 1.0
        model.eval()
        x = torch.cat([images[0]["image"], images[1]["image"]])
        z = torch.stack(torch.split(model(x), [8, 8]), dim=1)
        ours = sum(c(z, labels) * w for c, w in optim["criteria"])
    upstream_z = torch.stack(torch.split(model(x), [8, 8]), dim=1)  # unpatched: upstream's forward
    theirs = sum(
        c(upstream_z, labels) * w
        for c, w in utils.build_optim(model, SGD, None, criteria_params, projmode)["criteria"]
    )
    assert torch.allclose(ours, theirs, atol=1e-4), (float(ours), float(theirs))


def test_supcon_framework_patch_torusC_keeps_turns_and_matches_reference(fx):
    models, losses = fx("fx_supcon_framework.models"), fx("fx_supcon_framework.losses")
    torch.manual_seed(1)
    x, labels = torch.randn(4, 3, 8, 8), torch.tensor([0, 0, 1, 1])
    with tsf.patch(models, losses, geometry="torus"):  # legacy name
        model = models.SupConModel("resnet18", projection_dim=6, projmode="torusC")
        z = torch.stack((model(x), model(x + 0.1)), dim=1)
        turns = torch.stack([model.head(model.encoder(v).flatten(1)) for v in (x, x + 0.1)], dim=1)
        assert (
            z.shape == (4, 2, 6) and model.embed_dim == 6 and torch.equal(z, turns)
        )  # raw turns, as upstream
        angle = 2 * math.pi * turns
        cos_sin = torch.cat((angle.cos(), angle.sin()), dim=-1)  # the paper's layout
        expected = reference_supcon(
            cos_sin, labels, scale=0.07 * 6, temperature=0.07, base_temperature=0.07
        )
        loss = losses.SupConLoss(temperature=0.07, projmode="torus")(z, labels)
        assert torch.allclose(loss, expected, atol=1e-5)
        emb = model.embed(x)
        assert emb.shape == (4, 12) and torch.allclose(emb.norm(dim=1), torch.ones(4), atol=1e-5)
        with pytest.raises(ValueError, match="set `projmode: torusC` in the config"):
            losses.SupConLoss(temperature=0.07, projmode="sphere")
    assert not tn.is_patched(models) and not tn.is_patched(losses)


def _tree(root):
    """{relative path: bytes} of every file under root."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(pathlib.Path(root).rglob("*"))
        if p.is_file()
    }


CONFIGS = ["sphere", "torusN", "torusC", "hyprs", "torul", "torus"]
CANONICAL = {
    "sphere": "sphere",
    "hyprs": "sphere",
    "torusN": "torusN",
    "torul": "torusN",
    "torusC": "torusC",
    "torus": "torusC",
}


def _hyperparams(projmode):
    return {
        "model": {"backbone": "resnet18", "projection_dim": 8},
        "projmode": projmode,
        "dataset": "data/cifar10",
        "train": {"n_epochs": 1, "stage": "first"},
        "optimizer": SGD,
        "scheduler": {"name": "CosineAnnealingLR", "params": {"T_max": 2}},
        "criteria": [
            {"name": "SupCon", "params": {"temperature": 0.1}, "weight": 1},
            {"name": "koleo", "weight": 0.1},
        ],
    }


@pytest.mark.parametrize("patch_mode", ["sphere", "torusN", "torusC", None])
def test_supcon_framework_each_config_and_patch_pair_trains_or_refuses_before_touching_files(
    fx, tmp_path, patch_mode
):
    """Upstream-style train.py (fixture): each (config projmode, patch mode) pair either trains one
    epoch and validates (projection head and encoder features, through `model.embed_dim`-wide
    buffers), or raises a ValueError saying what to set before any folder is touched; a sphere
    baseline's files are never changed."""
    sphere_name, _ = fx("fx_supcon_framework.train").run(
        _hyperparams("sphere"), str(tmp_path)
    )  # unpatched
    baseline = _tree(tmp_path)
    assert any(k.startswith(f"weights/{sphere_name}/epoch0") for k in baseline)
    for config in CONFIGS:
        for n in [n for n in sys.modules if n.startswith("fx_supcon_framework")]:
            del sys.modules[n]
        models, losses = fx("fx_supcon_framework.models"), fx("fx_supcon_framework.losses")
        torch.manual_seed(0)
        before = _tree(tmp_path)
        with tsf.patch(models, losses, geometry=patch_mode):
            train = fx("fx_supcon_framework.train")
            if patch_mode is not None and CANONICAL[config] != patch_mode:
                with pytest.raises(
                    ValueError, match=rf"set `projmode: {patch_mode}` in the config"
                ):
                    train.run(_hyperparams(config), str(tmp_path))
                assert _tree(tmp_path) == before, (config, patch_mode)  # nothing touched
                continue
            name, history = train.run(_hyperparams(config), str(tmp_path))
        (epoch,) = history
        assert f"_D8_{config}_" in name and math.isfinite(epoch["train"]["loss"])
        for part in ("head", "encoder"):
            assert 0.0 <= epoch[part]["precision_at_1"] <= 1.0
        if CANONICAL[config] == "torusN" and patch_mode is not None:
            assert epoch["head"]["embedding_norm"] == pytest.approx(
                1.0, abs=1e-5
            )  # unit norm, not sqrt(4)
        if CANONICAL[config] != "sphere":
            assert name != sphere_name
            for path, data in baseline.items():  # the sphere run is intact
                assert (tmp_path / path).read_bytes() == data, (config, patch_mode, path)
            assert f"weights/{name}/epoch0" in _tree(tmp_path)
        else:
            # a sphere config with a sphere (or no) patch is a sphere run: it may rewrite its own
            # files
            baseline = _tree(tmp_path)


def test_supcon_framework_patch_refuses_a_model_without_projmode(fx):
    import types

    models, losses = fx("fx_supcon_framework.models"), fx("fx_supcon_framework.losses")
    main_branch = types.ModuleType("main_branch_models")
    main_branch.F = F

    class SupConModel(torch.nn.Module):  # the main branch's signature: no projmode
        def __init__(
            self, backbone="resnet50", projection_dim=128, second_stage=False, num_classes=None
        ):
            super().__init__()

    main_branch.SupConModel = SupConModel
    with pytest.raises(
        ValueError, match="no projmode argument .* would overwrite the sphere run's weights/"
    ):
        tsf.patch(main_branch, losses, geometry="torusN")
    assert not tn.is_patched(main_branch) and not tn.is_patched(losses)
    with pytest.raises(ValueError, match="even projection_dim"):
        with tsf.patch(models, losses, geometry="torusN"):
            models.SupConModel("resnet18", projection_dim=7, projmode="torusN")


@pytest.mark.parametrize("projmode", ["sphere", "torusN", "torusC", "hyprs", "torul", "torus"])
@pytest.mark.parametrize("contrast_mode", ["all", "one"])
def test_supcon_framework_dropin_loss_equals_upstream_for_each_projmode(
    fx, projmode, contrast_mode
):
    losses = fx("fx_supcon_framework.losses")
    torch.manual_seed(2)
    raw = torch.randn(8, 2, 6)
    if projmode in ("sphere", "hyprs"):
        raw = F.normalize(raw, dim=-1)
    elif projmode in ("torusN", "torul"):
        raw = pairs_on_circles(raw)  # what upstream's model emits in torusN
    labels = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    ours = tsf.SupConLoss(0.1, contrast_mode, 0.07, projmode)
    theirs = losses.SupConLoss(0.1, contrast_mode, 0.07, projmode)
    assert torch.allclose(ours(raw, labels), theirs(raw, labels), atol=1e-5)
    assert torch.allclose(ours(raw), theirs(raw), atol=1e-5)
    mask = (labels.view(-1, 1) == labels.view(1, -1)).float()
    assert torch.allclose(ours(raw, mask=mask), theirs(raw, mask=mask), atol=1e-5)
    if projmode in ("torusC", "sphere"):
        k_ours = tsf.KoLeoLoss(projmode)(raw, labels)
        k_theirs = losses.KoLeoLoss(projmode)(raw, labels)
        assert torch.allclose(k_ours, k_theirs, atol=1e-4)


def test_supcon_framework_dropin_model():
    backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.AdaptiveAvgPool2d(1))
    x = torch.randn(3, 3, 8, 8)
    for projmode, width in (("sphere", 6), ("torusN", 6), ("torusC", 6)):
        model = tsf.SupConModel(
            backbone, projection_dim=6, projmode=projmode, features_dim=8, grad_clip=None
        )
        out = model(x)
        assert out.shape == (3, width)
        emb = model.embed(x)
        assert emb.shape == (3, 12 if projmode == "torusC" else 6)
        assert torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-5)
        assert model(x, donormalise=False).shape == (3, 6)
    torusC = tsf.SupConModel(backbone, 6, projmode="torus", features_dim=8, grad_clip=None)
    assert torch.equal(
        torusC(x), torusC(x, donormalise=False)
    )  # raw turns; the loss applies cos/sin
    second = tsf.SupConModel(
        backbone,
        6,
        second_stage=True,
        num_classes=5,
        projmode="torusN",
        features_dim=8,
        grad_clip=None,
    )
    assert second(x).shape == (3, 5)
    with pytest.raises(ValueError, match="features_dim"):
        tsf.SupConModel(backbone, 6, projmode="torusN")
    with pytest.raises(ValueError, match="projmode .geometry. must be one of"):
        tsf.SupConModel(backbone, 6, projmode="poincare", features_dim=8)
    with pytest.raises(ValueError, match="projmode .geometry. must be one of"):
        tsf.SupConLoss(projmode="unspecified")
    with pytest.raises(ValueError, match="n_views"):
        tsf.SupConLoss()(torch.randn(4, 6))
    asymmetric = torch.eye(4, dtype=torch.bool)
    asymmetric[0, 1] = True
    with pytest.raises(NotImplementedError, match="same-class masks"):
        tsf.SupConLoss()(torch.randn(4, 2, 6), mask=asymmetric)
    with pytest.raises(ValueError, match="Cannot define both"):
        tsf.SupConLoss()(torch.randn(4, 2, 6), labels=torch.arange(4), mask=torch.eye(4))


def test_supcon_framework_dropin_model_clips_gradients():
    backbone = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 8))
    model = tsf.SupConModel(backbone, 4, projmode="torusC", features_dim=8, grad_clip=100.0)
    (model(torch.randn(2, 3, 2, 2)) * 1e6).sum().backward()
    assert float(backbone[1].weight.grad.abs().max()) <= 100.0


def test_supcon_framework_patch_errors(fx):
    models, losses = fx("fx_supcon_framework.models"), fx("fx_supcon_framework.losses")
    with pytest.raises(ValueError, match="projmode .geometry. must be one of"):
        tsf.patch(models, losses, geometry="torusX")
    tsf.patch(models, losses)
    with pytest.raises(RuntimeError, match="already patched"):
        tsf.patch(models, losses)
    tsf.unpatch(models)
    tsf.unpatch(losses)
    with pytest.raises(RuntimeError, match="not patched"):
        tsf.unpatch(models)
    with pytest.raises(ValueError, match="no SupConLoss"):
        tsf.patch(models, __import__("types").ModuleType("not_losses"))
    assert not tn.is_patched(models)


def test_supcon_framework_patch_is_in_place_and_undone_exactly(fx):
    """The patch rebinds no module name; it sets methods on upstream's classes and restores
    their own attributes exactly; a class is patched once; objects built before the patch keep
    upstream's behaviour."""
    models, losses, utils = (
        fx("fx_supcon_framework.models"),
        fx("fx_supcon_framework.losses"),
        fx("fx_supcon_framework.utils"),
    )
    classes = (models.SupConModel, losses.SupConLoss, losses.KoLeoLoss)
    before = [dict(vars(cls)) for cls in classes]
    names = (dict(vars(models)), dict(vars(losses)), dict(utils.LOSSES))
    torch.manual_seed(4)
    early_model = models.SupConModel("resnet18", projection_dim=6, projmode="torusN")
    early_loss = losses.SupConLoss(0.1, projmode="torusN")
    x, labels = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 0, 1])
    z_early = torch.stack((early_model(x), early_model(x.flip(-1))), dim=1)
    loss_early = early_loss(z_early, labels)
    handle = tsf.patch(models, losses, geometry="torusN")
    assert {k: v for k, v in vars(models).items() if k != "_torus_plugins_patch"} == names[0]
    assert {k: v for k, v in vars(losses).items() if k != "_torus_plugins_patch"} == names[1]
    assert utils.LOSSES == names[2]
    assert torch.equal(torch.stack((early_model(x), early_model(x.flip(-1))), dim=1), z_early)
    assert torch.equal(early_loss(z_early, labels), loss_early)
    alias = __import__("types").ModuleType("alias_of_tools_models")
    alias.SupConModel = models.SupConModel
    with pytest.raises(RuntimeError, match="already patched"):
        tsf.patch(alias, geometry="torusN")
    handle.undo()
    assert [dict(vars(cls)) for cls in classes] == before
    with tsf.patch(models, losses):  # follow the config
        with pytest.raises(ValueError, match="built without projmode"):
            losses.KoLeoLoss()
        with pytest.raises(ValueError, match="set `projmode:` in the config"):
            models.SupConModel("resnet18", projection_dim=6)
    assert [dict(vars(cls)) for cls in classes] == before


# ---------------------------------------------------------------- ProtoCLR


@pytest.mark.parametrize("mode", ["torusN", "torusC"])
def test_protoclr_patch_computes_the_torus_losses(fx, mode):
    losses = fx("fx_protoclr.losses")
    original_supcon, original_proto = losses.SupConLoss, losses.ProtoCLRLoss
    torch.manual_seed(3)
    z1, z2 = torch.randn(8, 6), torch.randn(8, 6)
    y = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    proj = (
        (lambda z: pairs_on_circles(z) / math.sqrt(3))
        if mode == "torusN"
        else (
            lambda z: (
                torch.stack((torch.cos(2 * math.pi * z), torch.sin(2 * math.pi * z)), -1).flatten(1)
                / math.sqrt(6)
            )
        )
    )
    # independent: upstream's own (unpatched) classes on embeddings already on the torus, where
    # F.normalize is a no-op
    expected = (
        original_supcon(0.2)(proj(z1), proj(z2), y),
        original_supcon(0.2)(proj(z1), proj(z2)),
        original_proto(0.2)(proj(z1), proj(z2), y),
    )
    with tpc.patch(losses, geometry=mode):
        assert torch.allclose(losses.F.normalize(z1), proj(z1), atol=1e-6)
        supcon, proto = (
            losses.SupConLoss(tau=0.2),
            losses.ProtoCLRLoss(0.2),
        )  # as train_encoder.py builds them
        assert isinstance(supcon, tpc.SupConLoss) and supcon.geometry == mode
        got = (supcon(z1, z2, y), supcon(z1, z2), proto(z1, z2, y))
        for g, e in zip(got, expected):
            assert torch.allclose(g, e, atol=1e-5)
    assert losses.SupConLoss is original_supcon and losses.F is F


def test_protoclr_dropins_and_errors(fx):
    losses = fx("fx_protoclr.losses")
    z1, z2, y = (
        torch.randn(6, 4, requires_grad=True),
        torch.randn(6, 4),
        torch.tensor([0, 0, 1, 1, 2, 2]),
    )
    loss = tpc.ProtoCLRLoss(0.1, geometry="sphere")(z1, z2, y)
    theirs_z1 = z1.detach().clone().requires_grad_(True)
    theirs = losses.ProtoCLRLoss(0.1)(theirs_z1, z2, y)  # upstream's own (fixture) implementation
    assert torch.allclose(loss, theirs, atol=1e-5)
    loss.backward()
    theirs.backward()
    assert torch.allclose(z1.grad, theirs_z1.grad, atol=1e-5) and z1.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="same shape"):
        tpc.SupConLoss(0.1)(torch.randn(4, 6), torch.randn(5, 6))
    with pytest.raises(ValueError, match="geometry must be one of"):
        tpc.patch(losses, geometry="hyperbolic")
    tpc.patch(losses)
    with pytest.raises(RuntimeError, match="already patched"):
        tpc.patch(losses)
    tpc.unpatch(losses)
    with pytest.raises(RuntimeError, match="not patched"):
        tpc.unpatch(losses)


@pytest.mark.parametrize("mode", ["sphere", "torusN", "torusC"])
def test_protoclr_patch_before_the_training_script_import(fx, mode):
    """train_encoder.py binds the loss classes at import (``from losses import ...``): patched
    first, its training step computes upstream's loss on the torus embeddings; its validation sees
    the encoder features."""
    losses = fx("fx_protoclr.losses")
    upstream = losses.ProtoCLRLoss
    with tpc.patch(losses, geometry=mode):
        script = fx("fx_protoclr.train_encoder")
        torch.manual_seed(8)
        encoder, projector, loss_fn, optim = script.build(tau=0.1)
        x, y = torch.randn(12, 12), torch.arange(12) % 3
        assert math.isfinite(script.train_step(encoder, projector, loss_fn, optim, x, y))
        acc, shape = script.fewshot_val(encoder, x, y)
        assert shape == (12, 8) and 0.0 <= acc <= 1.0
        h1, h2 = projector(encoder(x)), projector(encoder(x.flip(0)))
        ours = loss_fn(h1, h2, y)
    theirs = upstream(0.1)(
        tn.torus_normalize(h1, mode, dim=1), tn.torus_normalize(h2, mode, dim=1), y
    )
    assert torch.allclose(ours, theirs, atol=1e-5)
    del sys.modules["fx_protoclr.train_encoder"]
    late = fx("fx_protoclr.train_encoder")  # imported without the patch: upstream's classes
    assert late.ProtoCLRLoss is upstream


# ---------------------------------------------------------------- EB-JEPA


def test_eb_jepa_without_projection_is_upstream(fx):
    losses = fx("fx_eb_jepa.losses")
    Orig_VICReg, Orig_VC = losses.VICRegLoss, losses.VCLoss
    torch.manual_seed(4)
    z1, z2 = torch.randn(16, 8), torch.randn(16, 8)
    x = torch.randn(2, 6, 3, 2, 2)
    proj = torch.nn.Linear(6, 8)
    with teb.patch(losses, geometry=None, uniformity_coeff=0.0):
        ours, theirs = losses.VICRegLoss(2.0, 3.0)(z1, z2), Orig_VICReg(2.0, 3.0)(z1, z2)
        assert set(ours) == set(theirs) == {"loss", "invariance_loss", "var_loss", "cov_loss"}
        for key in ours:
            assert torch.allclose(ours[key], theirs[key], atol=1e-5), key
        (l1, u1, d1), (l2, u2, d2) = (
            losses.VCLoss(2.0, 3.0, proj=proj)(x),
            Orig_VC(2.0, 3.0, proj=proj)(x),
        )
        assert torch.allclose(l1, l2, atol=1e-5) and torch.allclose(u1, u2, atol=1e-5)
        assert d1.keys() == d2.keys() and d1["cov_loss"] == pytest.approx(d2["cov_loss"], rel=1e-4)
    assert losses.VICRegLoss is Orig_VICReg


def uniformity(u, t=2.0):
    d2 = torch.cdist(u, u).pow(2)
    off = ~torch.eye(len(u), dtype=torch.bool)
    return torch.log(torch.exp(-t * d2[off]).mean())


def test_eb_jepa_patch_torusN_vicreg_is_upstream_on_circles_plus_uniformity(fx):
    losses = fx("fx_eb_jepa.losses")
    Orig = losses.VICRegLoss
    torch.manual_seed(5)
    z1, z2 = torch.randn(16, 8), torch.randn(16, 8)
    with teb.patch(losses, geometry="torusN", std_margin=1.0, uniformity_coeff=0.5):
        out = losses.VICRegLoss(std_coeff=2.0, cov_coeff=3.0)(z1, z2)
    on_circles = Orig(2.0, 3.0)(
        pairs_on_circles(z1), pairs_on_circles(z2)
    )  # same terms, computed upstream-style
    for key in ("invariance_loss", "var_loss", "cov_loss"):
        assert torch.allclose(out[key], on_circles[key], atol=1e-5), key
    unif = uniformity(pairs_on_circles(z1) / 2) + uniformity(pairs_on_circles(z2) / 2)
    assert torch.allclose(out["uniformity_loss"], unif, atol=1e-5)  # its own key
    assert torch.allclose(
        out["loss"], on_circles["loss"] + 0.5 * unif, atol=1e-5
    )  # and part of loss
    total = (
        out["invariance_loss"]
        + 2.0 * out["var_loss"]
        + 3.0 * out["cov_loss"]
        + 0.5 * out["uniformity_loss"]
    )
    assert torch.allclose(out["loss"], total, atol=1e-6)  # the documented sum


def test_eb_jepa_vcloss_torus_and_toroidal_cov(fx):
    losses = fx("fx_eb_jepa.losses")
    torch.manual_seed(6)
    x = torch.randn(2, 6, 2, 2, 2, requires_grad=True)
    proj = torch.nn.Linear(6, 8)
    with teb.patch(losses, geometry="torusC", cov="toroidal", grid_size=4, uniformity_coeff=0.1):
        loss, unweighted, logs = losses.VCLoss(1.0, 1.0, proj=proj)(x)
        assert set(logs) == {"std_loss", "cov_loss", "uniformity_loss"} and torch.isfinite(loss)
        assert loss.item() == pytest.approx(
            logs["std_loss"] + logs["cov_loss"] + 0.1 * logs["uniformity_loss"], abs=1e-5
        )
        assert unweighted.item() == pytest.approx(sum(logs.values()), abs=1e-5)
        loss.backward()
        # independent: the same loss through torch.func.grad of the documented formula on the
        # projected samples
        samples = x.detach().transpose(0, 1).flatten(1).transpose(0, 1)

        def by_hand(xs):
            q = teb.torus_normalize(proj(xs), geometry="torusC", dim=1)
            circles = q * math.sqrt(q.shape[1] / 2)
            terms = teb.TorusVCTerms("torusC", "toroidal", 0.1, 4)
            return (
                teb.hinge_std(circles, math.sqrt(0.5))
                + terms.cov_term(circles)
                + 0.1 * uniformity(q)
            )

        expected = torch.func.grad(by_hand)(samples)
        expected = expected.reshape(x.shape[0], *x.shape[2:], x.shape[1]).movedim(-1, 1)
        assert torch.allclose(x.grad, expected, atol=1e-5)
        out = losses.VICRegLoss(1.0, 1.0)(torch.randn(8, 4), torch.randn(8, 4))
        assert torch.isfinite(out["loss"])
    with pytest.raises(ValueError, match="unknown cov"):
        teb.VICRegLoss(cov="spherical")
    with pytest.raises(TypeError, match="unknown option"):
        teb.patch(losses, sim_coeff=1.0)
    with pytest.raises(ValueError, match="geometry must be one of"):
        teb.patch(losses, geometry="torusQ")
    teb.patch(losses)
    with pytest.raises(RuntimeError, match="already patched"):
        teb.patch(losses)
    teb.unpatch(losses)


def test_eb_jepa_vcloss_uniformity_on_a_bounded_reproducible_subset_of_positions(fx):
    """Dense outputs (video, patches) have B*T*H*W positions: the uniformity term sees at most
    ``uniformity_samples`` of them, drawn by torch.randperm on torch's default generator."""
    losses = fx("fx_eb_jepa.losses")
    x = torch.randn(2, 6, 3, 10, 10)  # 600 positions of 6 features
    seen = []
    with teb.patch(losses, geometry="torusN", uniformity_samples=64):
        vc = losses.VCLoss(1.0, 1.0)
        vc.terms._uniformity.register_forward_hook(
            lambda module, args, out: seen.append(args[0].shape)
        )
        torch.manual_seed(7)
        loss, _, logs = vc(x)
        torch.manual_seed(7)
        again, _, _ = vc(x)
    assert seen == [(64, 6), (64, 6)] and torch.equal(loss, again)  # bounded and reproducible
    torch.manual_seed(7)
    rows = torch.randperm(600)[:64]  # the same draw, by hand
    unit = teb.torus_normalize(x.movedim(1, -1).reshape(-1, 6), geometry="torusN", dim=1)
    assert logs["uniformity_loss"] == pytest.approx(float(uniformity(unit[rows])), abs=1e-5)
    # an estimate of the all-pairs value: the mean over draws is close to it
    full = float(uniformity(unit))
    terms = teb.TorusVCTerms("torusN", uniformity_samples=200)
    draws = torch.stack([terms.uniformity_term(unit) for _ in range(20)])
    assert float(draws.mean()) == pytest.approx(full, abs=0.05) and float(draws.std()) > 0
    # no more rows than the bound: exact
    exact = teb.TorusVCTerms("torusN", uniformity_samples=600).uniformity_term(unit)
    assert float(exact) == pytest.approx(full, abs=1e-5)


def test_eb_jepa_uniformity_samples_errors():
    with pytest.raises(ValueError, match="uniformity_samples=None accepts at most 8192 rows"):
        # refused before any N x N work
        teb.VCLoss(1.0, 1.0, uniformity_samples=None)(torch.zeros(1, 4, 8193, 1, 1))
    # no uniformity term: nothing to refuse
    no_uniformity = teb.VCLoss(1.0, 1.0, uniformity_samples=None, uniformity_coeff=0.0)
    assert no_uniformity(torch.randn(1, 4, 8193, 1, 1))[0].isfinite()
    for bad, error in ((1, ValueError), (0, ValueError), (2.5, TypeError), (True, TypeError)):
        with pytest.raises(error, match="uniformity_samples"):
            teb.VCLoss(1.0, 1.0, uniformity_samples=bad)


def test_eb_jepa_video_training_step_with_the_patch_before_the_script_import(fx):
    """The video example's regulariser, called as ``regularizer(state, actions)`` on a dense
    [B, C, T, H, W] state, trains with the patched VCLoss; its uniformity term sees
    ``uniformity_samples`` positions."""
    losses = fx("fx_eb_jepa.losses")
    with teb.patch(losses, geometry="torusN", cov="toroidal", grid_size=4, uniformity_samples=64):
        script = fx("fx_eb_jepa.video_main")
        torch.manual_seed(9)
        model = script.TinyJEPA()
        seen = []
        model.regularizer.terms._uniformity.register_forward_hook(
            lambda m, args, out: seen.append(args[0].shape)
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        video = torch.rand(2, 1, 4, 8, 8)  # 512 positions
        total, logs = script.train_step(model, optimizer, video)
    assert math.isfinite(total) and set(logs) == {"std_loss", "cov_loss", "uniformity_loss"}
    assert seen == [(64, 16)] and isinstance(model.regularizer, teb.VCLoss)
