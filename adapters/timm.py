"""timm: any timm backbone with a torus projection head (torusN/torusC/sphere), found the timm way or attached.

Importing this module registers torus variants in timm's own model registry, ``<arch>_torusn`` and
``<arch>_torusc`` for the backbones in :data:`BACKBONES` (others with :func:`register_torus_model`)::

    import timm
    import torus_plugins.adapters.timm                       # registers the variants
    timm.list_models("*torus*")                              # ['convnext_tiny_torusc', ..., 'resnet18_torusn', ...]
    model = timm.create_model("resnet18_torusn", dim=64)     # [B, 3, H, W] -> [B, 64] on 32 circles, unit norm
    model = torus_plugins.adapters.timm.attach_head(timm.create_model("vit_small_patch16_224"), head="torusC",
                                                    dim=32)  # -> [B, 64]

A registered variant has no pretrained weights of its own: ``pretrained=True`` loads the *backbone's* timm
weights (a download), the head starts fresh. ``create_torus_model(arch, head, dim)`` does the same for any arch.

The backbone is built (or reset) with ``num_classes=0``, so it returns pooled features of width
``model.num_features``; the head is :class:`torus_plugins.heads.ProjectionHead` (MLP -> torus projection), or with
``n_layers=0`` just the projection on the pooled features. Outputs are unit-norm in the Clifford layout: a drop-in
for ``F.normalize`` embeddings, ready for ``torus_plugins.to_turns`` and uint8 codes.
"""

import warnings

import torch
from torch import nn

from torus_plugins._optional import require
from torus_plugins.heads import ProjectionHead, TorusMLPHead, make_projection

from .normalize import canonical_mode

timm = require("timm", "timm")

__all__ = ["TorusTimmModel", "create_torus_model", "create_model", "attach_head", "make_head",
           "register_torus_model", "BACKBONES", "VARIANTS"]

#: backbones whose torus variants are registered on import (any other: ``register_torus_model(arch)``)
BACKBONES = ("resnet10t", "resnet18", "resnet50", "convnext_tiny", "efficientnet_b0", "vit_tiny_patch16_224",
             "vit_small_patch16_224")
#: registered name suffix -> head
VARIANTS = {"torusn": "torusN", "torusc": "torusC"}

HEADS = ("sphere", "torusN", "torusC", "l2p", "clifford", "hyprs", "torul", "torus", "s1xs1")


def make_head(in_features: int, head: str = "l2p", dim: int = 64, hidden_dim: int = 512, n_layers: int = 2):
    """The head called ``head`` on ``in_features``-wide features.

    sphere / l2p (torusN) / clifford (torusC), legacy names hyprs / torul / torus: :class:`ProjectionHead` with
    ``n_layers`` linear layers (``n_layers=0``: the projection alone, which needs ``dim == in_features``).
    ``s1xs1``: :class:`TorusMLPHead` with ``dim`` circles.
    """
    if str(head).lower() == "s1xs1":
        return TorusMLPHead(in_features, n_circles=dim, hidden_dim=hidden_dim)
    try:
        mode = canonical_mode(head)
    except ValueError:
        raise ValueError(f"unknown head {head!r}; known: {', '.join(HEADS)}") from None
    if n_layers == 0:
        if dim != in_features:
            raise ValueError(f"head with n_layers=0 projects the backbone features directly, so dim must equal "
                             f"the backbone width {in_features}; got dim={dim}")
        proj = make_projection(mode, dim)
        proj.in_features = in_features
        return proj
    return ProjectionHead(in_features, dim, projection=mode, hidden_dim=hidden_dim, n_layers=n_layers)


class TorusTimmModel(nn.Module):
    """A timm backbone (pooled features, no classifier) followed by a torus head.

    ``forward(x)`` -> unit-norm torus embedding [B, out_dim]; ``forward_features(x)`` -> pooled backbone features
    [B, num_features]; ``backbone`` and ``head`` are the two parts.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        width = getattr(backbone, "num_features", None)
        expected = getattr(head, "in_features", None)
        if width is not None and expected is not None and width != expected:
            raise ValueError(f"backbone width {width} (model.num_features) does not match the head's input "
                             f"width {expected}")
        self.backbone = backbone
        self.head = head
        self.num_features = width
        self.out_dim = head.out_dim

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.backbone(x)
        expected = getattr(self.head, "in_features", None)
        if expected is not None and feats.shape[-1] != expected:
            raise ValueError(f"backbone returned features of width {feats.shape[-1]} (shape {tuple(feats.shape)}) "
                             f"but the head expects {expected}; build the backbone with num_classes=0")
        return self.head(feats)


def create_torus_model(model_name: str, head: str = "l2p", dim: int = 64, pretrained: bool = False,
                       hidden_dim: int = 512, n_layers: int = 2, **timm_kwargs) -> TorusTimmModel:
    """``timm.create_model(model_name, num_classes=0, **timm_kwargs)`` followed by a torus head.

    Usage: ``create_torus_model("resnet18", head="l2p", dim=64)``  # [B, 3, H, W] -> [B, 64] on 32 circles
    """
    if timm_kwargs.get("num_classes", 0) != 0:
        raise ValueError(f"the torus head replaces the classifier: num_classes must be 0, got "
                         f"{timm_kwargs['num_classes']!r}")
    timm_kwargs["num_classes"] = 0
    backbone = timm.create_model(model_name, pretrained=pretrained, **timm_kwargs)
    return TorusTimmModel(backbone, make_head(backbone.num_features, head, dim, hidden_dim, n_layers))


def attach_head(model: nn.Module, head: str = "l2p", dim: int = 64, in_features: int = None,
                hidden_dim: int = 512, n_layers: int = 2) -> TorusTimmModel:
    """Put a torus head on an existing timm model (its classifier is removed with ``reset_classifier(0)``).

    ``in_features``, if given, must equal ``model.num_features``.

    Usage: ``attach_head(timm.create_model("resnet18"), head="torusC", dim=32)``
    """
    if not hasattr(model, "reset_classifier") or not hasattr(model, "num_features"):
        raise TypeError(f"expected a timm model (with reset_classifier and num_features), got "
                        f"{type(model).__name__}")
    width = int(model.num_features)
    if in_features is not None and in_features != width:
        raise ValueError(f"in_features={in_features} does not match the backbone width {width} "
                         f"(model.num_features)")
    model.reset_classifier(0)
    return TorusTimmModel(model, make_head(width, head, dim, hidden_dim, n_layers))


def create_model(*args, **kwargs) -> TorusTimmModel:
    """Deprecated name of :func:`create_torus_model` (it shadowed ``timm.create_model``)."""
    warnings.warn("torus_plugins.adapters.timm.create_model is deprecated: use create_torus_model, or "
                  "timm.create_model('<arch>_torusn', dim=...)", DeprecationWarning, stacklevel=2)
    return create_torus_model(*args, **kwargs)


def register_torus_model(arch: str, head: str = "torusN") -> str:
    """Register ``<arch>_<torusn|torusc>`` in timm's model registry; returns the name.

    ``timm.create_model(name, dim=64, hidden_dim=512, n_layers=2, pretrained=False, **backbone_kwargs)`` then
    builds :func:`create_torus_model` ``(arch, head, ...)``. Usage: ``register_torus_model("resnet34", "torusC")``
    """
    mode = canonical_mode(head)
    if mode == "sphere":
        raise ValueError("only torus variants are registered (head torusN or torusC); for a sphere head use "
                         "create_torus_model(arch, head='sphere')")
    if not timm.is_model(arch):
        raise ValueError(f"timm has no model {arch!r} (see timm.list_models())")
    name = f"{arch}_{mode.lower()}"
    registered = timm.models._registry._model_entrypoints.get(name)
    if registered is not None:
        if getattr(registered, "_torus_plugins", None) == (arch, mode):
            return name                                   # already ours
        raise ValueError(f"timm already has a model named {name!r}; not overwriting it")

    def entrypoint(pretrained=False, pretrained_cfg=None, pretrained_cfg_overlay=None, cache_dir=None, dim=64,
                   hidden_dim=512, n_layers=2, **kwargs):
        if cache_dir is not None:
            kwargs["cache_dir"] = cache_dir
        return create_torus_model(arch, head=mode, dim=dim, pretrained=pretrained, hidden_dim=hidden_dim,
                                  n_layers=n_layers, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__module__ = __name__
    entrypoint.__doc__ = f"timm {arch} (num_classes=0) + torus head {mode} (torus-plugins)."
    entrypoint._torus_plugins = (arch, mode)
    timm.models.register_model(entrypoint)
    return name


for _arch in BACKBONES:
    if timm.is_model(_arch):          # skip names an older timm does not know
        for _head in VARIANTS.values():
            register_torus_model(_arch, _head)
