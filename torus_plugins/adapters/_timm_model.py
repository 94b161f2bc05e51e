"""The torus model of a timm backbone: :class:`TorusTimmModel` (a head in the backbone's classifier
slot), the heads it carries (:func:`make_head`), and building one from a timm arch
(:func:`create_torus_model`) or an existing timm model (:func:`attach_head`). Exported by
:mod:`torus_plugins.adapters.timm`, which registers the variants in timm's registry.
"""

import warnings
from typing import Any

import torch
from torch import nn

from torus_plugins._deprecation import renamed_keywords
from torus_plugins._optional import require
from torus_plugins.geometry import embedding_geometry
from torus_plugins.heads import ProjectionHead, TorusMLPHead, make_projection

timm = require("timm", "timm")

__all__ = [
    "TorusTimmModel",
    "create_torus_model",
    "attach_head",
    "make_head",
]

HEADS = ("sphere", "torusN", "torusC", "l2p", "clifford", "hyprs", "torul", "torus", "s1xs1")


@renamed_keywords(head="geometry")
def make_head(
    in_features: int, geometry="torusN", dim: int = 64, hidden_dim: int = 512, n_layers: int = 2
) -> nn.Module:
    """ProjectionHead(in_features, dim, geometry) (or the normalisation alone, or a TorusMLPHead).

    Args:
        in_features: width of the features the head receives.
        geometry: sphere / torusN (l2p) / torusC (clifford), legacy names hyprs / torul / torus,
            or a Geometry object: a :class:`ProjectionHead` ending in that geometry; ``"s1xs1"``:
            a :class:`TorusMLPHead` with ``dim`` circles. 0.1.0's keyword ``head=`` still works,
            with a DeprecationWarning.
        dim: output dimension of the projection (circles for ``s1xs1``).
        hidden_dim: width of the MLP's hidden layers.
        n_layers: linear layers before the projection; 0 means the projection alone.

    Returns:
        The head module, with ``in_features`` and ``out_dim`` attributes.

    Raises:
        TypeError: a geometry that is neither a string nor a Geometry.
        ValueError: unknown ``geometry``, or ``n_layers=0`` with ``dim != in_features``.
    """
    if isinstance(geometry, str) and geometry.lower() == "s1xs1":
        return TorusMLPHead(in_features, n_circles=dim, hidden_dim=hidden_dim)
    try:
        mode = embedding_geometry(geometry).name
    except ValueError:
        raise ValueError(f"unknown geometry {geometry!r}; known: {', '.join(HEADS)}") from None
    if n_layers == 0:
        if dim != in_features:
            raise ValueError(
                f"head with n_layers=0 projects the backbone features directly, so "
                f"dim must equal the backbone width {in_features}; got dim={dim}"
            )
        proj = make_projection(mode, dim)
        proj.in_features = in_features  # type: ignore[assignment] # torch types Module attributes as Tensor | Module
        return proj
    return ProjectionHead(in_features, dim, geometry=mode, hidden_dim=hidden_dim, n_layers=n_layers)


def _pooled_width(backbone: nn.Module) -> int | None:
    """Width of the pooled (pre-logits) features: ``head_hidden_size``, else ``num_features``."""
    width = getattr(backbone, "head_hidden_size", None) or getattr(backbone, "num_features", None)
    return None if width is None else int(width)


class TorusTimmModel(nn.Module):
    """``head(pool(backbone.forward_features(x)))``: a head in a timm backbone's classifier slot.

    Follows timm's model interface: ``forward_features`` (the backbone's unpooled features),
    ``forward_head(x, pre_logits=False)``, ``reset_classifier``, ``get_classifier``,
    ``num_features``, ``head_hidden_size`` (pooled width), ``num_classes`` (the head's output width,
    0 without a head), ``feature_info``, ``pretrained_cfg`` / ``default_cfg`` (the backbone's, or
    the registered variant's). A backbone without ``forward_features`` (any module returning pooled
    [B, width] features) also works: then ``forward_features(x)`` is ``backbone(x)``.

    Args:
        backbone: a timm model built or reset with ``num_classes=0``, or a pooled-feature module.
        head: the head on the pooled features (:func:`make_head`), or ``nn.Identity()`` for none.

    Raises:
        ValueError: the backbone has a classifier, or its width differs from ``head.in_features``.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        width = _pooled_width(backbone)
        expected = getattr(head, "in_features", None)
        if width is not None and expected is not None and width != expected:
            raise ValueError(
                f"backbone width {width} (model.num_features) does not match the "
                f"head's input width {expected}"
            )
        if getattr(backbone, "num_classes", 0):
            raise ValueError(
                f"the backbone has a classifier (num_classes={backbone.num_classes}): "
                f"build it with num_classes=0 or call reset_classifier(0)"
            )
        self.backbone = backbone
        self.head = head
        self.num_features = getattr(backbone, "num_features", width)
        self.head_hidden_size = width
        self.pretrained_cfg = dict(getattr(backbone, "pretrained_cfg", None) or {})
        self.default_cfg = self.pretrained_cfg  # timm's alias
        self.feature_info = [
            dict(info, module=f"backbone.{info['module']}")
            for info in getattr(backbone, "feature_info", None) or []
            if isinstance(info, dict) and "module" in info
        ]

    @property
    def num_classes(self) -> int:
        """Output width of the head; 0 without one (``forward`` then returns pooled features)."""
        if isinstance(self.head, nn.Identity):
            return 0
        width = getattr(self.head, "out_dim", None) or self.head.out_features
        return int(width)  # type: ignore[arg-type] # torch types Module attributes as Tensor | Module

    @property
    def out_dim(self) -> int | None:
        """Width of ``forward``'s output: ``num_classes``, or the pooled width without a head."""
        return self.num_classes or self.head_hidden_size

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone's ``forward_features(x)`` (e.g. [B, C, H, W]), or ``backbone(x)``.

        Args:
            x: the input batch, e.g. images [B, 3, H, W].

        Returns:
            The backbone's unpooled features (a backbone without ``forward_features``: its output,
            the pooled features [B, head_hidden_size]).
        """
        features = getattr(self.backbone, "forward_features", None)
        return features(x) if features is not None else self.backbone(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool ``forward_features``' output with the backbone, then apply the head.

        Args:
            x: output of :meth:`forward_features`.
            pre_logits: return the pooled features [B, head_hidden_size], not the head's output.

        Returns:
            The pooled features, or the head's output [B, num_classes] (unit-norm torus embedding).

        Raises:
            ValueError: the pooled width is not the head's input width.
        """
        pool = getattr(self.backbone, "forward_head", None)
        pooled = pool(x, pre_logits=True) if pool is not None else x
        if pre_logits:
            return pooled
        expected = getattr(self.head, "in_features", None)
        if expected is not None and pooled.shape[-1] != expected:
            raise ValueError(
                f"backbone returned features of width {pooled.shape[-1]} (shape "
                f"{tuple(pooled.shape)}) but the head expects {expected}; build the "
                f"backbone with num_classes=0"
            )
        return self.head(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``forward_head(forward_features(x))``: [B, 3, H, W] -> [B, out_dim].

        Args:
            x: the input batch, e.g. images [B, 3, H, W].

        Returns:
            The head's output [B, num_classes] (the unit-norm torus embedding, or a classifier's
            logits after ``reset_classifier(n)``), or without a head the pooled features
            [B, head_hidden_size].

        Raises:
            ValueError: the pooled width is not the head's input width (see :meth:`forward_head`).
        """
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        """The module in timm's classifier slot: the torus head (or what replaced it).

        Returns:
            ``self.head``: the torus head, an ``nn.Linear`` after ``reset_classifier(n)``, or
            ``nn.Identity()`` after ``reset_classifier(0)``.
        """
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the head as timm's ``reset_classifier`` replaces a classifier.

        ``num_classes=0`` removes the head (``forward`` returns the pooled features, as a timm model
        with ``num_classes=0`` does); ``num_classes=n`` puts a fresh
        ``nn.Linear(head_hidden_size, n)`` classifier on the pooled features in place of the torus
        head (a new torus head instead: ``attach_head(model.backbone, ...)``).

        Args:
            num_classes: 0, or the classifier's number of classes.
            global_pool: if given, passed to the backbone's ``reset_classifier`` (its pooling).

        Raises:
            TypeError: ``num_classes`` is not an int.
            ValueError: ``num_classes`` is negative, or positive with no known pooled width.
        """
        if isinstance(num_classes, bool) or not isinstance(num_classes, int):
            raise TypeError(f"num_classes must be an int, got {type(num_classes).__name__}")
        width = self.head_hidden_size
        if num_classes < 0 or (num_classes and width is None):
            raise ValueError(
                f"num_classes must be >= 0 (and > 0 needs a backbone with "
                f"num_features), got {num_classes}"
            )
        if global_pool is not None:
            self.backbone.reset_classifier(0, global_pool)  # type: ignore[operator] # torch types Module attributes as Tensor | Module
        self.head = nn.Linear(width, num_classes) if num_classes and width else nn.Identity()

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Gradient checkpointing in the backbone (timm's ``set_grad_checkpointing``).

        Args:
            enable: switch it on (True) or off (False); passed to the backbone's method (a backbone
                without one raises AttributeError).
        """
        self.backbone.set_grad_checkpointing(enable)  # type: ignore[operator] # torch types Module attributes as Tensor | Module

    def no_weight_decay(self) -> set[str]:
        """The backbone's ``no_weight_decay`` names as parameter names of this model.

        Returns:
            ``{"backbone." + name}`` for each name the backbone's ``no_weight_decay()`` returns; an
            empty set for a backbone without that method.
        """
        names = getattr(self.backbone, "no_weight_decay", None)
        return {f"backbone.{name}" for name in names()} if names is not None else set()


@renamed_keywords(head="geometry")
def create_torus_model(
    model_name: str,
    geometry="torusN",
    dim: int = 64,
    pretrained: bool = False,
    hidden_dim: int = 512,
    n_layers: int = 2,
    **timm_kwargs: Any,
) -> TorusTimmModel:
    """``timm.create_model(model_name, num_classes=0, **timm_kwargs)`` followed by a torus head.

    Usage: ``create_torus_model("resnet18", geometry="torusN", dim=64)``  # [B, 3, H, W] -> [B, 64]

    Args:
        model_name: a timm model name (with or without a pretrained tag).
        geometry, dim, hidden_dim, n_layers: the head, as in :func:`make_head` (0.1.0's
            keyword ``head=`` still works, with a DeprecationWarning).
        pretrained: load the backbone's timm weights (a download).
        **timm_kwargs: passed to ``timm.create_model`` for the backbone.

    Returns:
        The :class:`TorusTimmModel`.

    Raises:
        ValueError: ``num_classes`` other than 0, ``features_only``, or a bad head.
    """
    if timm_kwargs.get("num_classes", 0) != 0:
        raise ValueError(
            f"the torus head replaces the classifier: num_classes must be 0, got "
            f"{timm_kwargs['num_classes']!r}"
        )
    if timm_kwargs.get("features_only"):
        raise ValueError(
            f"features_only=True builds feature maps without a head: call "
            f"timm.create_model({model_name!r}, features_only=True)"
        )
    timm_kwargs["num_classes"] = 0
    backbone = timm.create_model(model_name, pretrained=pretrained, **timm_kwargs)
    return TorusTimmModel(
        backbone, make_head(_pooled_width(backbone), geometry, dim, hidden_dim, n_layers)
    )


@renamed_keywords(head="geometry")
def attach_head(
    model: nn.Module,
    geometry="torusN",
    dim: int = 64,
    in_features: int | None = None,
    hidden_dim: int = 512,
    n_layers: int = 2,
) -> TorusTimmModel:
    """Put a torus head on a timm model, its classifier removed by ``reset_classifier(0)``.

    Usage: ``attach_head(timm.create_model("resnet18"), geometry="torusC", dim=32)``

    Args:
        model: a timm model (has ``reset_classifier`` and ``num_features``); modified in place.
        geometry, dim, hidden_dim, n_layers: the head, as in :func:`make_head` (0.1.0's
            keyword ``head=`` still works, with a DeprecationWarning).
        in_features: if given, must equal the model's pooled width.

    Returns:
        The :class:`TorusTimmModel` around ``model``.

    Raises:
        TypeError: ``model`` is not a timm model.
        ValueError: ``in_features`` differs from the model's width, or a bad head.
    """
    if not hasattr(model, "reset_classifier") or not hasattr(model, "num_features"):
        raise TypeError(
            f"expected a timm model (with reset_classifier and num_features), got "
            f"{type(model).__name__}"
        )
    width = _pooled_width(model)
    if in_features is not None and in_features != width:
        raise ValueError(
            f"in_features={in_features} does not match the backbone width {width} "
            f"(model.num_features)"
        )
    model.reset_classifier(0)  # type: ignore[operator] # torch types Module attributes as Tensor | Module
    return TorusTimmModel(model, make_head(width, geometry, dim, hidden_dim, n_layers))


def create_model(*args: Any, **kwargs: Any) -> TorusTimmModel:
    """Deprecated 0.1.0 name of :func:`create_torus_model` (it shadowed ``timm.create_model``)."""
    warnings.warn(
        "torus_plugins.adapters.timm.create_model is deprecated: use create_torus_model, "
        "or timm.create_model('<arch>_torusn', dim=...)",
        DeprecationWarning,
        stacklevel=2,
    )
    return create_torus_model(*args, **kwargs)
