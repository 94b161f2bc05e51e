"""timm adapter: the torus variants in timm's registry behave as timm's own models do."""

import math
import pickle

import pytest
import torch

timm = pytest.importorskip("timm")
ttimm = pytest.importorskip("torus_plugins.adapters.timm")

X = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
VIT_SMALL = dict(img_size=32, patch_size=8, depth=3)  # a 3-block ViT on 32x32 images


def _pair(name, **kwargs):
    """(the plain timm backbone, its torus variant), built from the same seed, in eval mode."""
    torch.manual_seed(0)
    plain = timm.create_model(name, **kwargs).eval()
    arch, dot, tag = name.partition(".")
    torch.manual_seed(0)
    torus = timm.create_model(f"{arch}_torusn{dot}{tag}", **kwargs).eval()
    return plain, torus


# ---------------------------------------------------------------- registry


def test_import_star_exports_every_registered_variant():
    name = ttimm.register_torus_model("resnet26", "torusC")
    namespace = {}
    exec("from torus_plugins.adapters.timm import *", namespace)
    listed = timm.list_models("*torus*")
    builtin = {f"{arch}_{suffix}" for arch in ttimm.BACKBONES for suffix in ttimm.VARIANTS}
    assert builtin <= set(listed) and len(builtin) == 14
    assert name in listed and "TorusTimmModel" in namespace and "create_model" not in namespace
    for model_name in listed:  # each entrypoint is this module's public function
        assert namespace[model_name] is timm.models.model_entrypoint(model_name)
        assert pickle.loads(pickle.dumps(namespace[model_name])) is namespace[model_name]


def test_pretrained_tags_are_the_backbones():
    for arch in ("resnet18", "vit_small_patch16_224", "efficientnet_b0"):
        tags = [n.partition(".")[2] for n in timm.list_models(arch, include_tags=True)]
        ours = [n.partition(".")[2] for n in timm.list_models(f"{arch}_torusn", include_tags=True)]
        assert ours == tags and tags
        assert timm.list_pretrained(f"{arch}_torusc") == [
            f"{arch}_torusc.{t}" for t in tags if timm.is_model_pretrained(f"{arch}.{t}")
        ]
        # the default tag (not the first in sorted order for the ViT) and each tag's weights and
        # input config are the backbone's
        default = timm.models.get_pretrained_cfg(arch)
        assert timm.models.get_pretrained_cfg(f"{arch}_torusn").tag == default.tag
        for tag in tags:
            theirs = timm.models.get_pretrained_cfg(f"{arch}.{tag}").to_dict()
            ours = timm.models.get_pretrained_cfg(f"{arch}_torusn.{tag}").to_dict()
            assert ours.pop("architecture") == f"{arch}_torusn"
            assert theirs.pop("architecture") == arch
            assert ours == theirs


def test_bad_tag_is_refused_by_timms_own_check():
    for arch in ("resnet10t", "vit_tiny_patch16_224"):
        with pytest.raises(RuntimeError) as theirs:
            timm.create_model(f"{arch}.no_such_tag")
        with pytest.raises(RuntimeError) as ours:
            timm.create_model(f"{arch}_torusn.no_such_tag")
        assert str(theirs.value) == f"Invalid pretrained tag (no_such_tag) for {arch}."
        assert str(ours.value) == str(theirs.value).replace(arch, f"{arch}_torusn")
        with pytest.raises(RuntimeError, match=r"Invalid pretrained tag \(nope\)"):
            timm.create_model(f"{arch}_torusc", pretrained_cfg="nope")


def test_tag_and_pretrained_cfg_overlay_are_honoured():
    overlay = dict(mean=(0.1, 0.2, 0.3), std=(0.5, 0.5, 0.5))
    plain, torus = _pair("resnet18.tv_in1k", pretrained_cfg_overlay=overlay)
    assert torus.pretrained_cfg["architecture"] == "resnet18_torusn"
    assert torus.pretrained_cfg["tag"] == plain.pretrained_cfg["tag"] == "tv_in1k"
    assert torus.pretrained_cfg["mean"] == (0.1, 0.2, 0.3)
    assert torus.default_cfg is torus.pretrained_cfg
    assert torus.backbone.pretrained_cfg == plain.pretrained_cfg
    assert timm.data.resolve_model_data_config(torus) == timm.data.resolve_model_data_config(plain)
    assert timm.data.resolve_model_data_config(torus)["interpolation"] == "bilinear"  # tv's


def test_pretrained_true_loads_the_backbone_weights_from_the_cfg(tmp_path):
    torch.manual_seed(1)
    source = timm.create_model("resnet10t")
    path = tmp_path / "resnet10t.pth"
    torch.save(source.state_dict(), path)  # a local file: no download
    model = timm.create_model(
        "resnet10t_torusc",
        pretrained=True,
        dim=4,
        hidden_dim=8,
        pretrained_cfg_overlay=dict(file=str(path)),
    )
    assert model.pretrained_cfg["file"] == str(path)
    loaded = model.backbone.state_dict()
    for key, value in source.state_dict().items():
        if not key.startswith("fc."):  # the classifier is dropped (num_classes=0)
            torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)
    assert "fc.weight" not in loaded


# ---------------------------------------------------------------- timm's model interface


@pytest.mark.parametrize(
    "name, kwargs",
    [("resnet10t", {}), ("efficientnet_b0", {}), ("vit_tiny_patch16_224", VIT_SMALL)],
)
def test_features_only_is_the_backbones_feature_extractor(name, kwargs):
    plain, torus = _pair(name, features_only=True, **kwargs)
    assert type(torus) is type(plain)
    assert torus.feature_info.channels() == plain.feature_info.channels()
    assert torus.feature_info.reduction() == plain.feature_info.reduction()
    maps, expected = torus(X), plain(X)
    assert [m.shape for m in maps] == [e.shape for e in expected] and len(maps) >= 3
    for m, e in zip(maps, expected, strict=True):
        torch.testing.assert_close(m, e)
    assert torus.pretrained_cfg == dict(plain.pretrained_cfg, architecture=f"{name}_torusn")


def test_features_only_passes_timms_feature_arguments():
    plain, torus = _pair("resnet10t", features_only=True, out_indices=(1, 3), output_stride=8)
    assert torus.feature_info.reduction() == plain.feature_info.reduction() == [4, 8]
    assert [m.shape for m in torus(X)] == [e.shape for e in plain(X)]


@pytest.mark.parametrize("name, kwargs", [("resnet10t", {}), ("vit_tiny_patch16_224", VIT_SMALL)])
def test_forward_features_head_and_reset_classifier_follow_timm(name, kwargs):
    plain, torus = _pair(name, num_classes=0, **kwargs)
    torch.manual_seed(0)
    model = timm.create_model(f"{name}_torusn", dim=16, hidden_dim=32, **kwargs).eval()
    with torch.no_grad():
        features = model.forward_features(X)
        torch.testing.assert_close(features, plain.forward_features(X))  # unpooled
        pooled = model.forward_head(features, pre_logits=True)
        torch.testing.assert_close(pooled, plain(X))
        z = model(X)
        torch.testing.assert_close(model.forward_head(features), z)
        torch.testing.assert_close(z, model.head(pooled))
        # num_classes=0 at creation is the backbone's pooled features, as for timm's own models
        torch.testing.assert_close(torus(X), plain(X))
    assert z.shape == (2, 16) and model.num_classes == model.out_dim == 16
    pair_norms = z.unflatten(-1, (8, 2)).norm(dim=-1)  # torusN: 8 circles, radius 1/sqrt 8
    torch.testing.assert_close(pair_norms, torch.full_like(pair_norms, 1 / math.sqrt(8)))
    assert torus.num_classes == 0 and isinstance(torus.get_classifier(), torch.nn.Identity)
    assert model.num_features == plain.num_features and model.head_hidden_size == pooled.shape[-1]
    assert model.get_classifier() is model.head
    expected = getattr(plain, "feature_info", [])  # ViTs have one in timm >= 1.0
    assert [i["num_chs"] for i in model.feature_info] == [i["num_chs"] for i in expected]
    assert all(i["module"].startswith("backbone.") for i in model.feature_info)

    model.reset_classifier(0)  # timm: 0 -> identity
    with torch.no_grad():
        torch.testing.assert_close(model(X), plain(X))
    assert model.num_classes == 0 and model.out_dim == plain.num_features
    model.reset_classifier(5)  # timm: a fresh linear classifier
    plain.reset_classifier(5)
    assert isinstance(model.head, torch.nn.Linear) and model.num_classes == plain.num_classes == 5
    assert model(X).shape == plain(X).shape == (2, 5)
    with pytest.raises(ValueError, match="num_classes must be >= 0"):
        model.reset_classifier(-1)
    with pytest.raises(TypeError, match="num_classes must be an int, got float"):
        model.reset_classifier(2.5)


def test_optimizer_helpers_see_the_backbones_names():
    plain = timm.create_model("vit_tiny_patch16_224", **VIT_SMALL)
    model = timm.create_model("vit_tiny_patch16_224_torusc", dim=4, hidden_dim=8, **VIT_SMALL)
    no_decay = model.no_weight_decay()
    assert no_decay == {f"backbone.{name}" for name in plain.no_weight_decay()}
    assert {"backbone.pos_embed", "backbone.cls_token"} <= no_decay
    model.set_grad_checkpointing()
    assert model.backbone.grad_checkpointing
    from timm.optim import create_optimizer_v2

    optimizer = create_optimizer_v2(model, "adamw", lr=1e-3, weight_decay=0.05)
    decay_of = {
        id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]
    }
    assert decay_of[id(model.backbone.pos_embed)] == 0
    assert decay_of[id(model.head.mlp[0].weight)] == 0.05


def test_num_classes_other_than_zero_is_refused_at_creation():
    with pytest.raises(ValueError, match=r"num_classes must be 0 .*model\.reset_classifier\(n\)"):
        timm.create_model("resnet18_torusn", num_classes=10)
    with pytest.raises(ValueError, match="features_only=True builds feature maps without a head"):
        ttimm.create_torus_model("resnet18", features_only=True)


# ---------------------------------------------------------------- building and attaching


def test_registered_variant_equals_create_torus_model():
    torch.manual_seed(0)
    via_timm = timm.create_model("resnet10t_torusn", dim=16, hidden_dim=32).eval()
    torch.manual_seed(0)
    direct = ttimm.create_torus_model("resnet10t", geometry="torusN", dim=16, hidden_dim=32).eval()
    torch.testing.assert_close(via_timm(X), direct(X))  # same construction, same numbers
    assert isinstance(via_timm, ttimm.TorusTimmModel) and via_timm.out_dim == 16
    vit = timm.create_model(
        "vit_tiny_patch16_224_torusc", dim=8, hidden_dim=16, img_size=32, patch_size=8, depth=1
    )
    z = vit(X)
    assert z.shape == (2, 16)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(2))
    assert timm.create_model("resnet10t", num_classes=5)(X).shape == (2, 5)  # timm's own, as was


def test_create_torus_model_gradient_matches_finite_difference():
    model = ttimm.create_torus_model("resnet18", geometry="l2p", dim=16, hidden_dim=32)
    assert model.num_features == 512 and model.out_dim == 16
    # gradient through backbone + MLP + L2p (fused backward) against a central finite difference
    model = model.double().eval()  # train-mode BatchNorm over 2 samples is too curved for this
    x = X.double()
    weights = torch.randn(2, 16, dtype=torch.float64)

    def objective():
        return (model(x) * weights).sum()

    objective().backward()
    w = model.backbone.conv1.weight
    direction = torch.randn_like(w)
    with torch.no_grad():
        w += 1e-6 * direction
        up = objective()
        w -= 2e-6 * direction
        down = objective()
        w += 1e-6 * direction
    numeric = (up - down) / 2e-6
    assert float((w.grad * direction).sum()) == pytest.approx(float(numeric), rel=1e-6, abs=1e-8)


def test_head_width_is_the_pooled_width():
    # MobileNetV3's conv head pools to 1024 features, wider than its num_features (288)
    plain = timm.create_model("mobilenetv3_small_050", num_classes=0).eval()
    pooled = plain(X).shape[-1]
    name = ttimm.register_torus_model("mobilenetv3_small_050", "torusN")
    model = timm.create_model(name, dim=8, hidden_dim=16).eval()
    assert model.num_features == plain.num_features and model.head_hidden_size == pooled == 1024
    assert model.head.in_features == pooled and model(X).shape == (2, 8)
    attached = ttimm.attach_head(timm.create_model("mobilenetv3_small_050"), dim=8, hidden_dim=16)
    assert attached.head.in_features == pooled


def test_attach_head_vit_torusC_and_errors():
    vit = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, depth=2, num_classes=10
    )
    with pytest.raises(ValueError, match="does not match the backbone width 192"):
        ttimm.attach_head(vit, geometry="torusC", dim=8, in_features=512)
    model = ttimm.attach_head(vit, geometry="torusC", dim=8, hidden_dim=32)
    assert model.out_dim == 16 and vit.num_classes == 0
    assert model.pretrained_cfg["architecture"] == "vit_tiny_patch16_224"
    z = model(torch.randn(3, 3, 32, 32))
    assert z.shape == (3, 16)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(3))
    with pytest.raises(ValueError, match="unknown geometry"):
        ttimm.create_torus_model("resnet18", geometry="hyperbolic")
    with pytest.raises(ValueError, match="num_classes must be 0"):
        ttimm.create_torus_model("resnet18", num_classes=10)
    with pytest.raises(TypeError, match="timm model"):
        ttimm.attach_head(torch.nn.Linear(3, 3))
    with pytest.raises(ValueError, match=r"has a classifier \(num_classes=3\)"):
        ttimm.TorusTimmModel(timm.create_model("resnet10t", num_classes=3), torch.nn.Identity())
    with pytest.raises(ValueError, match="must equal the backbone width"):
        ttimm.make_head(192, "l2p", dim=64, n_layers=0)


def test_register_torus_model_and_errors():
    name = ttimm.register_torus_model("resnet26", "torusC")
    assert name == "resnet26_torusc" and "resnet26_torusc" in timm.list_models("resnet26*")
    assert ttimm.register_torus_model("resnet26", "clifford") == name  # idempotent, alias
    assert timm.create_model(name, dim=4, hidden_dim=8)(X).shape == (2, 8)
    with pytest.raises(ValueError, match="timm has no model 'resnet9000'"):
        ttimm.register_torus_model("resnet9000")
    with pytest.raises(ValueError, match="timm has no model 'resnet18.a1_in1k'"):
        ttimm.register_torus_model("resnet18.a1_in1k")
    with pytest.raises(TypeError, match="arch must be a timm model name"):
        ttimm.register_torus_model(18)
    with pytest.raises(ValueError, match="only torus variants"):
        ttimm.register_torus_model("resnet18", "sphere")

    def resnet34_torusn(pretrained=False, **kwargs):  # a foreign model, our pattern
        return torch.nn.Identity()

    registry = timm.models._registry._model_entrypoints
    registry["resnet34_torusn"] = resnet34_torusn
    try:
        with pytest.raises(ValueError, match="model named 'resnet34_torusn'; not overwriting"):
            ttimm.register_torus_model("resnet34", "torusN")
    finally:
        registry.pop("resnet34_torusn", None)


def test_deprecated_create_model_warns_and_builds():
    with pytest.warns(DeprecationWarning, match="create_torus_model"):
        model = ttimm.create_model("resnet10t", dim=4, hidden_dim=8)
    assert isinstance(model, ttimm.TorusTimmModel) and "create_model" not in ttimm.__all__


def test_head_mismatch_is_reported_at_forward():
    backbone = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 24))
    model = ttimm.TorusTimmModel(backbone, ttimm.make_head(32, "l2p", 8, hidden_dim=16))
    with pytest.raises(ValueError, match="width 24 .* expects 32"):
        model(torch.randn(2, 3, 2, 2))
    # a plain pooled-feature module: forward_features is backbone(x), pre_logits its output
    backbone = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 32))
    model = ttimm.TorusTimmModel(backbone, ttimm.make_head(32, "l2p", 8, hidden_dim=16))
    x = torch.randn(2, 3, 2, 2)
    torch.testing.assert_close(
        model.forward_head(model.forward_features(x), pre_logits=True), backbone(x)
    )
    assert model(x).shape == (2, 8) and model.pretrained_cfg == {}
