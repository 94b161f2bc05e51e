"""SupCon-Framework (``torus`` branch): torus geometry for its SupConModel and SupConLoss, by patch or drop-in.

The one supported recipe: set the torus mode in the config (``projmode: torusN`` or ``torusC``; legacy
``torul``/``torus`` work too) and add two lines at the top of ``train.py``, before ``from tools import utils``::

    import tools.models, tools.losses
    from torus_plugins.adapters.supcon_framework import patch; patch(tools.models, tools.losses, geometry="torusN")

train.py names the run after the config (``..._D128_torusN_koleo0``) and *removes* that run's ``weights/``,
``runs/`` and ``logs/`` before training, so the config's projmode must name the geometry the run really uses.
``patch`` therefore follows the config: a model or loss built with a config projmode other than the patch's
raises a ``ValueError`` saying what to set, when ``utils.build_model``/``build_optim`` run -- before train.py
touches any folder. (``geometry=None``: follow whatever the config says.) The upstream ``main`` branch has no
projmode and its run names would not mark a torus run: patching it is refused at patch time.

How: the upstream classes themselves are patched in place -- ``SupConModel.__init__``/``forward``
(plus a new ``embed``), ``SupConLoss`` and ``KoLeoLoss``'s ``__init__``/``forward`` -- and every
original is restored by ``unpatch``. No module name is rebound, so upstream's
``super(SupConModel, self)``, ``from .models import SupConModel`` in ``tools/utils.py`` and its
``LOSSES`` dict all keep meaning the one (patched) class.

What the patch changes, per config projmode:

* ``torusN``: ``SupConModel`` emits unit-norm embeddings (each circle scaled by 1/sqrt(k), the package
  convention; upstream keeps each pair at norm 1, total norm sqrt(D/2)); width, ``model.embed_dim`` and upstream's
  validation (inner-product kNN) unchanged; the cosine ranking is the same.
* ``torusC``: the model is upstream's (raw head output read as turns; the loss and validation apply cos/sin).
* ``sphere``: nothing in the model.
* ``tools.losses``: ``SupConLoss`` and ``KoLeoLoss`` still run upstream's ``__init__`` (its checks
  and attributes), then compute with the drop-ins below (held as ``loss.torus_loss``): identical
  logits for every projmode, package-tested numerics. Instances built before the patch keep
  upstream's behaviour.

Drop-ins with upstream's constructor and forward signatures:

* ``SupConModel(backbone, projection_dim, second_stage, num_classes, projmode)``, ``forward(x, donormalise=True)``:
  as on the ``torus`` branch, sphere -> unit vectors, torusN -> pairs on circles (here at unit total norm),
  torusC -> the head's raw output, read as turns (the loss applies cos/sin). ``embed(x)`` always returns the
  unit-norm Clifford-layout torus vector (for kNN/codes). ``backbone`` is a timm model name (built with
  ``pretrained=False`` unless asked; needs the ``[timm]`` extra) or an ``nn.Module`` with ``num_features`` (or pass
  ``features_dim``).
* ``SupConLoss(temperature, contrast_mode, base_temperature, projmode)``, ``forward(features[B, n_views, D],
  labels=None, mask=None)``: identical logits to the ``torus`` branch (it divides by tau*k on pair-normalised
  features, or tau*D on raw cos/sin; unit-norm features with tau are the same numbers). Its torusC concatenates
  [cos..., sin...] where the package interleaves; dot products, hence the loss, are the same.
* ``KoLeoLoss(projmode)``, ``forward(features[B, n_views, D], labels)``: KoLeo per view, summed over views.
"""

import functools
import inspect

import torch
from torch import nn

from torus_plugins._deprecation import renamed_keywords
from torus_plugins.geometry import embedding_geometry

from .normalize import Patch, check_patchable, torus_normalize

from .normalize import unpatch  # re-exported: unpatch(tools.models)

__all__ = ["SupConModel", "SupConLoss", "KoLeoLoss", "geometry_of_projmode", "project_features", "patch",
           "unpatch"]


def geometry_of_projmode(projmode) -> str:
    """SupCon-Framework's ``projmode`` -> the package's geometry name: the adapter's one translation.

    hyprs -> sphere, torul -> torusN, torus -> torusC (the branch's names); the package's own names
    and aliases (sphere, torusN, torusC, l2p, clifford) pass through, any case.

    Args:
        projmode: the config's or a constructor's ``projmode``.

    Returns:
        "sphere", "torusN" or "torusC".

    Raises:
        TypeError: not a string (nor a Geometry object).
        ValueError: an unknown name.
    """
    try:
        return embedding_geometry(projmode).name
    except ValueError:
        raise ValueError(f"projmode must be sphere, torusN or torusC (SupCon-Framework's hyprs, torul, "
                         f"torus), got {projmode!r}") from None


def project_features(features: torch.Tensor, projmode: str) -> torch.Tensor:
    """Unit-norm vectors the upstream loss effectively compares, from features given as upstream's model emits.

    sphere: unchanged (upstream's loss assumes they are unit vectors); torusN: pairs normalised, total norm 1;
    torusC: features are turns -> interleaved (cos, sin) / sqrt(D), width 2D.
    """
    mode = geometry_of_projmode(projmode)
    if mode == "sphere":
        return features
    return torus_normalize(features, geometry=mode, dim=-1)


def _check_features(features):
    if not isinstance(features, torch.Tensor) or not features.is_floating_point():
        raise TypeError(f"features must be a floating-point tensor, got {type(features).__name__}")
    if features.dim() < 3:
        raise ValueError(f"features must be [bsz, n_views, ...] (at least 3 dimensions), got shape "
                         f"{tuple(features.shape)}")
    if features.dim() > 3:
        features = features.view(features.shape[0], features.shape[1], -1)
    return features


def _mask_to_labels(mask, batch_size):
    """Labels whose equality matrix is ``mask`` (a same-class mask). Other masks (asymmetric, not an equivalence
    relation) are not supported by the package loss: NotImplementedError."""
    mask = torch.as_tensor(mask).bool()
    if mask.shape != (batch_size, batch_size):
        raise ValueError(f"mask must be [bsz, bsz] = [{batch_size}, {batch_size}], got {tuple(mask.shape)}")
    labels = mask.int().argmax(dim=1)  # first column in each row's class
    if not bool(mask.diagonal().all()) or not torch.equal(labels[:, None] == labels[None, :], mask):
        raise NotImplementedError("only same-class masks (symmetric, reflexive, transitive) are supported; pass "
                                  "labels instead")
    return labels


class SupConLoss(nn.Module):
    """Drop-in for SupCon-Framework's ``tools.losses.SupConLoss`` with torus projmodes (incl. legacy names)."""

    def __init__(self, temperature=0.07, contrast_mode="all", base_temperature=0.07, projmode="sphere"):
        super().__init__()
        from torus_plugins.losses import SupConLoss as _SupCon

        if contrast_mode not in ("all", "one"):
            raise ValueError(f"unknown contrast_mode {contrast_mode!r}; use 'all' or 'one'")
        self.temperature = temperature
        self.contrast_mode = contrast_mode
        self.base_temperature = base_temperature
        self.projmode = geometry_of_projmode(projmode)
        # features are projected here (sphere: left as given, as upstream); the package loss uses them as is
        self.loss = _SupCon(temperature=temperature, contrast_mode=contrast_mode,
                            base_temperature=base_temperature, geometry=None)

    def forward(self, features, labels=None, mask=None):
        features = _check_features(features)
        if labels is not None and mask is not None:
            raise ValueError("Cannot define both `labels` and `mask`")
        if labels is not None and labels.numel() != features.shape[0]:
            raise ValueError(f"Num of labels ({labels.numel()}) does not match num of features "
                             f"({features.shape[0]})")
        z = project_features(features, self.projmode)
        if mask is not None:
            labels = _mask_to_labels(mask, features.shape[0])
        return self.loss(z, labels)


class KoLeoLoss(nn.Module):
    """Drop-in for SupCon-Framework's ``tools.losses.KoLeoLoss(projmode)``: KoLeo per view, summed over views."""

    def __init__(self, projmode="sphere", eps=1e-6):
        super().__init__()
        from torus_plugins.losses import KoLeoLoss as _KoLeo

        self.projmode = geometry_of_projmode(projmode)
        self.klo = _KoLeo(eps=eps)

    def forward(self, features, labels=None):
        features = _check_features(features)
        z = project_features(features, self.projmode)
        return sum(self.klo(z[:, v, :]) for v in range(z.shape[1]))


def _build_backbone(backbone, pretrained, features_dim):
    if isinstance(backbone, str):
        from torus_plugins._optional import require
        timm = require("timm", "timm")

        name = backbone[len("timm_"):] if backbone.startswith("timm_") else backbone
        encoder = timm.create_model(name, pretrained=pretrained, num_classes=0)
        return encoder, int(encoder.num_features)
    if isinstance(backbone, nn.Module):
        width = features_dim if features_dim is not None else getattr(backbone, "num_features", None)
        if width is None:
            raise ValueError("pass features_dim= for a backbone module without a num_features attribute")
        return backbone, int(width)
    raise TypeError(f"backbone must be a timm model name or an nn.Module, got {type(backbone).__name__}")


class SupConModel(nn.Module):
    """Drop-in for SupCon-Framework's ``tools.models.SupConModel`` (torus branch), with torus projmodes."""

    def __init__(self, backbone="resnet50", projection_dim=128, second_stage=False, num_classes=None,
                 projmode="torusN", pretrained=False, features_dim=None, grad_clip=100.0):
        super().__init__()
        self.projmode = geometry_of_projmode(projmode)
        if self.projmode == "torusN" and projection_dim % 2:
            raise ValueError(f"torusN needs an even projection_dim, got {projection_dim}")
        self.encoder, self.features_dim = _build_backbone(backbone, pretrained, features_dim)
        if grad_clip:
            # upstream clamps every encoder gradient element-wise at 100 (torusC can jump across its circle)
            from torus_plugins.losses import clip_gradients
            clip_gradients(self.encoder, value=grad_clip)
        self.second_stage = second_stage
        self.projection_head = True
        self.projection_dim = projection_dim
        self.embed_dim = projection_dim
        if second_stage:
            if num_classes is None:
                raise ValueError("second_stage=True needs num_classes")
            for param in self.encoder.parameters():
                param.requires_grad = False
            self.classifier = nn.Linear(self.features_dim, num_classes)
        else:
            self.head = nn.Sequential(nn.Linear(self.features_dim, projection_dim * 4), nn.ReLU(inplace=True),
                                      nn.Linear(projection_dim * 4, projection_dim))

    def use_projection_head(self, mode):
        self.projection_head = mode
        self.embed_dim = self.projection_dim if mode else self.features_dim

    def _features(self, x):
        feat = self.encoder(x).flatten(1)
        if self.projection_head:
            feat = self.head(feat)
        return feat

    def forward(self, x, donormalise=True):
        if self.second_stage:
            return self.classifier(self.encoder(x).flatten(1))
        feat = self._features(x)
        if donormalise and self.projmode != "torusC":  # torusC: raw turns, the loss applies cos/sin
            feat = torus_normalize(feat, geometry=self.projmode, dim=1)
        return feat

    def embed(self, x):
        """Unit-norm torus (or sphere) embedding in the Clifford layout, whatever the projmode."""
        if self.second_stage:
            raise RuntimeError("embed() needs the first-stage model (second_stage=False)")
        return torus_normalize(self._features(x), geometry=self.projmode, dim=1)


def _check_config(config_projmode, mode, what):
    """Raise unless the config's projmode names the patch's torus ``mode`` (``mode`` None: anything valid)."""
    try:
        config = geometry_of_projmode(config_projmode)
    except ValueError:
        raise ValueError(f"SupCon-Framework {what} built with projmode={config_projmode!r}; set `projmode:` in the "
                         f"config to sphere, torusN or torusC") from None
    if mode is not None and config != mode:
        raise ValueError(
            f"SupCon-Framework {what} built with the config's projmode={config_projmode!r}, but patch(..., "
            f"geometry={mode!r}): set `projmode: {mode}` in the config (train.py names the run and its weights/, "
            f"runs/, logs/ after the config's projmode, and removes them first, so a patched run left at "
            f"{config_projmode!r} would overwrite that run's files), or patch with geometry={config!r}")
    return config


class _ClassAttributes:
    """A class's own attributes as the mapping a :class:`Patch` item expects (``get``,
    ``[key] = value``, ``pop``), so that undoing the patch restores (or deletes) exactly what was
    set on the class."""

    def __init__(self, cls):
        self.cls = cls

    def get(self, key, default=None):
        return self.cls.__dict__.get(key, default)

    def __setitem__(self, key, value):
        setattr(self.cls, key, value)

    def pop(self, key, default=None):
        value = self.cls.__dict__.get(key, default)
        if key in self.cls.__dict__:
            delattr(self.cls, key)
        return value


def _class_items(cls, attributes: dict) -> list:
    """Patch items setting ``attributes`` on ``cls`` itself, plus a marker naming the patch."""
    target = _ClassAttributes(cls)
    return [(target, name, value) for name, value in {**attributes, _CLASS_MARK: True}.items()]


_CLASS_MARK = "_torus_plugins_patched"


def _model_attributes(upstream, mode):
    """Methods that, set on upstream's ``SupConModel`` itself, check the config's projmode before
    anything is built and put torusN at unit norm. Upstream's own methods run unchanged, so however
    upstream spells ``super()`` it resolves to the same class."""
    signature = inspect.signature(upstream.__init__)
    upstream_init, upstream_forward = upstream.__init__, upstream.forward

    def __init__(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        arguments = bound.arguments
        self_mode = _check_config(arguments["projmode"], mode, "model")
        if (
            self_mode == "torusN"
            and not arguments["second_stage"]
            and arguments["projection_dim"] % 2
        ):
            raise ValueError(
                f"torusN needs an even projection_dim, got {arguments['projection_dim']}"
            )
        upstream_init(self, *args, **kwargs)
        self.torus_mode = self_mode

    def forward(self, x, donormalise=True):
        torus_mode = getattr(
            self, "torus_mode", None
        )  # None: built before the patch, left as upstream's
        if self.second_stage or not donormalise or torus_mode != "torusN":
            return upstream_forward(self, x, donormalise)
        return torus_normalize(upstream_forward(self, x, False), geometry="torusN", dim=1)

    def embed(self, x):
        """Unit-norm torus (or sphere) embedding in the Clifford layout, whatever the projmode."""
        if self.second_stage:
            raise RuntimeError("embed() needs the first-stage model (second_stage=False)")
        torus_mode = getattr(self, "torus_mode", None) or geometry_of_projmode(self.projmode)
        return torus_normalize(upstream_forward(self, x, False), geometry=torus_mode, dim=1)

    __init__.__doc__ = (
        f"upstream's __init__, patched by torus-plugins ({mode or 'following the config'})"
    )
    functools.update_wrapper(
        __init__, upstream_init, assigned=("__module__", "__name__", "__qualname__")
    )
    functools.update_wrapper(
        forward, upstream_forward, assigned=("__module__", "__name__", "__qualname__")
    )
    return {"__init__": __init__, "forward": forward, "embed": embed}


def _loss_attributes(upstream, dropin, mode, argument_names):
    """Methods that, set on upstream's loss class itself, check (or fill) its projmode and compute
    the loss with the package's ``dropin`` built from the same arguments (``argument_names``)."""
    signature = inspect.signature(upstream.__init__)
    upstream_init, upstream_forward = upstream.__init__, upstream.forward

    def __init__(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        if "projmode" not in bound.arguments:
            if mode is None:
                raise ValueError(
                    f"SupCon-Framework {upstream.__name__} built without projmode: pass projmode "
                    f"(sphere, torusN or torusC), or patch with geometry="
                )
            bound.arguments["projmode"] = mode
        _check_config(bound.arguments["projmode"], mode, upstream.__name__)
        upstream_init(*bound.args, **bound.kwargs)
        bound.apply_defaults()
        self.torus_loss = dropin(**{name: bound.arguments[name] for name in argument_names})

    def forward(self, features, *args, **kwargs):
        torus_loss = getattr(
            self, "torus_loss", None
        )  # None: built before the patch, left as upstream's
        if torus_loss is None:
            return upstream_forward(self, features, *args, **kwargs)
        return torus_loss(features, *args, **kwargs)

    functools.update_wrapper(
        __init__, upstream_init, assigned=("__module__", "__name__", "__qualname__")
    )
    functools.update_wrapper(
        forward, upstream_forward, assigned=("__module__", "__name__", "__qualname__")
    )
    return {"__init__": __init__, "forward": forward}


def _check_unpatched_class(cls):
    if _CLASS_MARK in cls.__dict__:
        raise RuntimeError(
            f"class {cls.__module__}.{cls.__qualname__} is already patched by torus-plugins; call "
            f"unpatch() on the module that was patched first"
        )


@renamed_keywords(projmode="geometry")
def patch(models_module, losses_module=None, geometry=None) -> Patch:
    """Make SupCon-Framework's ``tools.models`` (and ``tools.losses``) use torus geometry; see the
    module docs.

    The classes are patched in place (their ``__init__`` and ``forward``; ``SupConModel`` gains
    ``embed``): no module name is rebound, so every reference upstream holds (``from .models import
    SupConModel``, ``LOSSES``, ``super(SupConModel, self)``) sees the same, patched class.

    Args:
        models_module: SupCon-Framework's ``tools.models`` (torus branch).
        losses_module: its ``tools.losses`` (``SupConLoss``, ``KoLeoLoss``), or None to leave
            the losses.
        geometry: the run's geometry (sphere, torusN, torusC, or SupCon-Framework's hyprs, torul,
            torus; 0.1.0's keyword ``projmode=`` still works, with a DeprecationWarning); the config
            must name the same mode, else building the model or loss raises. None follows the
            config.

    Returns:
        A :class:`~torus_plugins.adapters.normalize.Patch` (a context manager);
        ``unpatch(module)`` undoes one module.

    Raises:
        ValueError: unknown ``geometry``; a module without the upstream classes; a ``SupConModel``
            without a ``projmode`` argument (the ``main`` branch).
        RuntimeError: a module or class already patched.
    """
    mode = None if geometry is None else geometry_of_projmode(geometry)
    check_patchable(models_module)
    upstream = getattr(models_module, "SupConModel", None)
    if not isinstance(upstream, type):
        raise ValueError(
            f"{models_module.__name__!r} has no SupConModel class; pass SupCon-Framework's "
            f"tools.models"
        )
    if "projmode" not in inspect.signature(upstream.__init__).parameters:
        raise ValueError(
            "this SupConModel has no projmode argument (SupCon-Framework's main branch): its run names would not "
            "mark a torus run, so a patched run would overwrite the sphere run's weights/, runs/ and logs/. Use "
            "the torus branch with `projmode: torusN` (or torusC) in the config, or the drop-in "
            "torus_plugins.adapters.supcon_framework.SupConModel"
        )
    _check_unpatched_class(upstream)
    loss_items = []
    if losses_module is not None:
        check_patchable(losses_module)
        supcon = getattr(losses_module, "SupConLoss", None)
        if not isinstance(supcon, type):
            raise ValueError(
                f"{losses_module.__name__!r} has no SupConLoss; pass SupCon-Framework's "
                f"tools.losses"
            )
        _check_unpatched_class(supcon)
        loss_items += _class_items(
            supcon,
            _loss_attributes(
                supcon,
                SupConLoss,
                mode,
                ("temperature", "contrast_mode", "base_temperature", "projmode"),
            ),
        )
        koleo = getattr(losses_module, "KoLeoLoss", None)
        if isinstance(koleo, type):
            _check_unpatched_class(koleo)
            loss_items += _class_items(
                koleo, _loss_attributes(koleo, KoLeoLoss, mode, ("projmode",))
            )
    info = {"adapter": "supcon_framework", "mode": mode or "config"}
    handle = Patch()
    handle._apply(
        models_module, {}, info, items=_class_items(upstream, _model_attributes(upstream, mode))
    )
    if losses_module is not None:
        handle._apply(losses_module, {}, info, items=loss_items)
    return handle
