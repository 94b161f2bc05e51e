"""timm: torus embedding models in timm's registry, or a torus head on any timm backbone.

Importing this module registers ``<arch>_torusn`` and ``<arch>_torusc`` for the backbones in
:data:`BACKBONES` (any other arch: :func:`register_torus_model`) with timm's ``register_model``.
Each variant's ``default_cfgs`` entry holds the backbone's pretrained cfgs tag for tag, so
``resnet18_torusn.tv_in1k`` is ``resnet18.tv_in1k``'s weights and input config under a torus head,
and a tag the backbone lacks is refused by timm's own check::

    import timm
    import torus_plugins.adapters.timm                      # registers the variants
    timm.list_models("*torus*")                             # ['convnext_tiny_torusc', ...]
    model = timm.create_model("resnet18_torusn", dim=64)    # [B, 3, H, W] -> [B, 64], 32 circles
    maps = timm.create_model("resnet18_torusn", features_only=True)   # = resnet18's feature maps

A model is ``backbone`` (the timm arch with ``num_classes=0``) -> pooled features -> ``head``
(:class:`torus_plugins.heads.ProjectionHead`: MLP -> torus projection; unit norm, Clifford layout).
The head sits in timm's classifier slot: ``forward_head(x, pre_logits=True)`` returns the pooled
features, ``num_classes=0`` or ``reset_classifier(0)`` removes the head, ``reset_classifier(n)``
puts an n-class linear classifier in its place. ``pretrained=True`` loads the backbone's weights
for the tag (a download, or ``pretrained_cfg_overlay=dict(file=...)``); the head starts fresh.
"""

import dataclasses
from typing import Any

from torch import nn

from torus_plugins._deprecation import renamed_keywords
from torus_plugins._optional import require
from torus_plugins.geometry import embedding_geometry

from ._timm_model import HEADS as HEADS  # the head names make_head knows
from ._timm_model import TorusTimmModel, attach_head, create_torus_model, make_head
from ._timm_model import create_model as create_model  # deprecated 0.1.0 name

timm = require("timm", "timm")

# timm's register_model appends every registered variant's name to this list
__all__ = [
    "TorusTimmModel",
    "create_torus_model",
    "attach_head",
    "make_head",
    "register_torus_model",
    "BACKBONES",
    "VARIANTS",
]

#: backbones whose torus variants are registered on import
BACKBONES = (
    "resnet10t",
    "resnet18",
    "resnet50",
    "convnext_tiny",
    "efficientnet_b0",
    "vit_tiny_patch16_224",
    "vit_small_patch16_224",
)
#: registered name suffix -> head
VARIANTS = {"torusn": "torusN", "torusc": "torusC"}

#: the variants' pretrained cfgs, read by ``timm.models.register_model`` (timm's module convention)
default_cfgs: dict[str, Any] = {}
_VARIANT_OF: dict[str, tuple[str, str]] = {}  # registered name -> (backbone arch, head)


def _variant_cfgs(arch: str, name: str) -> dict[str, Any]:
    """``name``'s default cfgs: the backbone's pretrained cfgs tag for tag, same default tag."""
    default = timm.models.get_pretrained_cfg(arch)
    default_tag = None if default is None else (default.tag or "")
    cfgs = {}
    for tagged in timm.list_models(arch, include_tags=True):  # 'arch.tag' (or 'arch')
        tag = tagged.partition(".")[2]
        star = "*" if tag == default_tag else ""  # generate_default_cfgs' default
        key = f"{name}.{tag}{star}" if tag or star else name
        cfgs[key] = timm.models.get_pretrained_cfg(tagged) or timm.models.PretrainedCfg()
    return timm.models.generate_default_cfgs(cfgs or {name: {}})


def _create_torus(
    variant: str,
    pretrained: bool = False,
    pretrained_cfg: Any = None,
    pretrained_cfg_overlay: dict[str, Any] | None = None,
    dim: int = 64,
    hidden_dim: int = 512,
    n_layers: int = 2,
    num_classes: int | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build the registered ``variant``; arguments as in :func:`register_torus_model`."""
    arch, mode = _VARIANT_OF[variant]
    # timm's resolution: a tag without a cfg raises timm's "Invalid pretrained tag", overlay applied
    cfg = timm.models.resolve_pretrained_cfg(
        variant, pretrained_cfg, dict(pretrained_cfg_overlay or {})
    )
    backbone_cfg = dataclasses.replace(cfg, architecture=arch).to_dict()
    kwargs = {key: value for key, value in kwargs.items() if value is not None}
    if kwargs.get("features_only"):
        model = timm.create_model(arch, pretrained, pretrained_cfg=backbone_cfg, **kwargs)
        model.pretrained_cfg = model.default_cfg = dict(model.pretrained_cfg, architecture=variant)
        return model
    if num_classes == 0:
        backbone = timm.create_model(
            arch, pretrained, pretrained_cfg=backbone_cfg, num_classes=0, **kwargs
        )
        model = TorusTimmModel(backbone, nn.Identity())
    elif num_classes is None:
        model = create_torus_model(
            arch, mode, dim, pretrained, hidden_dim, n_layers, pretrained_cfg=backbone_cfg, **kwargs
        )
    else:
        raise ValueError(
            f"{variant}'s torus head replaces the classifier (its width is set by "
            f"dim): num_classes must be 0 (no head) or unset, got {num_classes!r}; "
            f"for an n-class classifier in the head's place call "
            f"model.reset_classifier(n)"
        )
    model.pretrained_cfg = model.default_cfg = cfg.to_dict()
    return model


@renamed_keywords(head="geometry")
def register_torus_model(arch: str, geometry="torusN") -> str:
    """Register ``<arch>_torusn`` or ``<arch>_torusc`` in timm's registry (``register_model``).

    The entrypoint is a function of this module (so ``from ... import *`` exports it, as timm's
    model modules do) with ``default_cfgs`` derived from the backbone's pretrained cfgs. Then
    ``timm.create_model(name[.tag], pretrained=False, pretrained_cfg=None,
    pretrained_cfg_overlay=None, dim=64, hidden_dim=512, n_layers=2, num_classes=None,
    features_only=False, **backbone_kwargs)`` builds a :class:`TorusTimmModel` (``num_classes=0``:
    without the head), or with ``features_only=True`` timm's feature extractor of the backbone.
    Usage: ``register_torus_model("resnet34", "torusC")``.

    Args:
        arch: a timm architecture name, without a pretrained tag.
        geometry: torusN or torusC (any alias, e.g. l2p / clifford), or the Geometry object;
            0.1.0's keyword ``head=`` still works, with a DeprecationWarning.

    Returns:
        The registered name (registering it again returns it unchanged).

    Raises:
        TypeError: ``arch`` is not a string.
        ValueError: unknown arch or geometry, the sphere, or the name taken by another model.
    """
    if not isinstance(arch, str):
        raise TypeError(f"arch must be a timm model name (str), got {type(arch).__name__}")
    mode = embedding_geometry(geometry).name
    if mode == "sphere":
        raise ValueError(
            "only torus variants are registered (geometry torusN or torusC); for a "
            "sphere head use create_torus_model(arch, geometry='sphere')"
        )
    if "." in arch or not timm.is_model(arch):
        raise ValueError(
            f"timm has no model {arch!r} (see timm.list_models(); give the arch "
            f"without a pretrained tag)"
        )
    name = f"{arch}_{mode.lower()}"
    if timm.is_model(name):
        if timm.models.model_entrypoint(name) is globals().get(name):
            return name  # already ours
        raise ValueError(f"timm already has a model named {name!r}; not overwriting it")

    def entrypoint(pretrained: bool = False, **kwargs: Any) -> nn.Module:
        return _create_torus(name, pretrained, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = name
    entrypoint.__doc__ = (
        f"timm {arch} (num_classes=0) -> MLP -> {mode} head; arguments as in "
        f"register_torus_model.\n\n"
        f"Args:\n"
        f"    pretrained: load {arch}'s timm weights for the tag (a download, or\n"
        f"        ``pretrained_cfg_overlay=dict(file=...)``); the head starts fresh.\n"
        f"    **kwargs: ``pretrained_cfg``, ``pretrained_cfg_overlay``, ``dim`` (64),\n"
        f"        ``hidden_dim`` (512), ``n_layers`` (2), ``num_classes`` (None; 0: no head),\n"
        f"        ``features_only`` and the backbone's own keyword arguments.\n\n"
        f"Returns:\n"
        f"    A TorusTimmModel: [B, 3, H, W] -> [B, out_dim] unit-norm {mode} embeddings\n"
        f"    (torusN: out_dim = dim, dim / 2 circles; torusC: out_dim = 2 * dim, dim circles),\n"
        f"    or {arch}'s feature extractor with ``features_only=True``.\n\n"
        f"Raises:\n"
        f"    ValueError: ``num_classes`` other than 0 or None, or a bad head argument;\n"
        f"        timm's own error for a pretrained tag {arch} lacks.\n"
    )
    globals()[name] = entrypoint  # timm adds the name to __all__
    _VARIANT_OF[name] = (arch, mode)
    default_cfgs.update(_variant_cfgs(arch, name))
    timm.models.register_model(entrypoint)
    return name


for _arch in BACKBONES:
    if timm.is_model(_arch):  # skip a name an older timm does not know
        for _head in VARIANTS.values():
            register_torus_model(_arch, _head)
