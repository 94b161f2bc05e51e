"""SupCon-Framework (``torus`` branch): torus geometry for its SupConModel and SupConLoss, by patch
or drop-in.

The one supported recipe: set the torus mode in the config (``projmode: torusN`` or ``torusC``;
legacy ``torul``/``torus`` work too) and add these lines at the top of ``train.py``, before
``from tools import utils``::

    import tools.models, tools.losses
    from torus_plugins.adapters.supcon_framework import patch
    patch(tools.models, tools.losses, geometry="torusN")

train.py names the run after the config (``..._D128_torusN_koleo0``) and *removes* that run's
``weights/``, ``runs/`` and ``logs/`` before training, so the config's projmode must name the
geometry the run really uses. ``patch`` therefore follows the config: a model or loss built with a
config projmode other than the patch's raises a ``ValueError`` saying what to set, when
``utils.build_model``/``build_optim`` run -- before train.py touches any folder. (``geometry=None``:
follow whatever the config says.) The upstream ``main`` branch has no projmode and its run names
would not mark a torus run: patching it is refused at patch time.

How: the upstream classes themselves are patched in place -- ``SupConModel.__init__``/``forward``
(plus a new ``embed``), ``SupConLoss`` and ``KoLeoLoss``'s ``__init__``/``forward`` -- and every
original is restored by ``unpatch``. No module name is rebound, so upstream's
``super(SupConModel, self)``, ``from .models import SupConModel`` in ``tools/utils.py`` and its
``LOSSES`` dict all keep meaning the one (patched) class.

What the patch changes, per config projmode:

* ``torusN``: ``SupConModel`` emits unit-norm embeddings (each circle scaled by 1/sqrt(k), the
  package convention; upstream keeps each pair at norm 1, total norm sqrt(D/2)); width,
  ``model.embed_dim`` and upstream's validation (inner-product kNN) unchanged; the cosine ranking is
  the same.
* ``torusC``: the model is upstream's (raw head output read as turns; the loss and validation apply
  cos/sin).
* ``sphere``: nothing in the model.
* ``tools.losses``: ``SupConLoss`` and ``KoLeoLoss`` still run upstream's ``__init__`` (its checks
  and attributes), then compute with the drop-ins below (held as ``loss.torus_loss``): identical
  logits for every projmode, package-tested numerics. Instances built before the patch keep
  upstream's behaviour.

Drop-ins with upstream's constructor and forward signatures:

* ``SupConModel(backbone, projection_dim, second_stage, num_classes, projmode)``,
  ``forward(x, donormalise=True)``: as on the ``torus`` branch, sphere -> unit vectors, torusN ->
  pairs on circles (here at unit total norm), torusC -> the head's raw output, read as turns (the
  loss applies cos/sin). ``embed(x)`` always returns the unit-norm Clifford-layout torus vector (for
  kNN/codes). ``backbone`` is a timm model name (built with ``pretrained=False`` unless asked; needs
  the ``[timm]`` extra) or an ``nn.Module`` with ``num_features`` (or pass ``features_dim``).
* ``SupConLoss(temperature, contrast_mode, base_temperature, projmode)``,
  ``forward(features[B, n_views, D], labels=None, mask=None)``: identical logits to the ``torus``
  branch (it divides by tau*k on pair-normalised features, or tau*D on raw cos/sin; unit-norm
  features with tau are the same numbers). Its torusC concatenates [cos..., sin...] where the
  package interleaves; dot products, hence the loss, are the same.
* ``KoLeoLoss(projmode)``, ``forward(features[B, n_views, D], labels)``: KoLeo per view, summed over
  views.
"""

import functools
import inspect

from torus_plugins._deprecation import renamed_keywords

from ._supcon_dropins import (
    KoLeoLoss,
    SupConLoss,
    SupConModel,
    geometry_of_projmode,
    project_features,
)
from .normalize import (
    Patch,
    check_patchable,
    torus_normalize,
    unpatch,  # re-exported: unpatch(tools.models)
)

__all__ = [
    "SupConModel",
    "SupConLoss",
    "KoLeoLoss",
    "geometry_of_projmode",
    "project_features",
    "patch",
    "unpatch",
]


def _check_config(config_projmode, mode, what):
    """Raise unless the config's projmode names the patch's torus ``mode`` (``mode`` None: anything
    valid)."""
    try:
        config = geometry_of_projmode(config_projmode)
    except (TypeError, ValueError):  # a config without projmode gives None
        raise ValueError(
            f"SupCon-Framework {what} built with projmode={config_projmode!r}; set `projmode:` in "
            "the config to sphere, torusN or torusC"
        ) from None
    if mode is not None and config != mode:
        raise ValueError(
            f"SupCon-Framework {what} built with the config's projmode={config_projmode!r}, but "
            f"patch(..., geometry={mode!r}): set `projmode: {mode}` in the config (train.py names "
            "the run and its weights/, runs/, logs/ after the config's projmode, and removes them "
            f"first, so a patched run left at {config_projmode!r} would overwrite that run's "
            f"files), or patch with geometry={config!r}"
        )
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
    if "projmode" not in inspect.signature(upstream).parameters:
        raise ValueError(
            "this SupConModel has no projmode argument (SupCon-Framework's main branch): its run "
            "names would not mark a torus run, so a patched run would overwrite the sphere run's "
            "weights/, runs/ and logs/. Use the torus branch with `projmode: torusN` (or torusC) "
            "in the config, or the drop-in torus_plugins.adapters.supcon_framework.SupConModel"
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
