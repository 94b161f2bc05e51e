"""Redirect a module's ``F.normalize`` to a torus projection, reversibly: the mechanism behind the
ProtoCLR and EB-JEPA adapters (SupCon-Framework's patch sets methods on its classes; see
``supcon_framework``).

A training script usually does ``import torch.nn.functional as F`` and normalises with
``F.normalize(x, dim=1)``. :func:`patch_normalize` replaces that module's ``F`` with a proxy whose
``normalize`` projects onto the torus and whose every other attribute is ``torch.nn.functional``'s
own; ``torch.nn.functional`` itself is never changed, so other modules are unaffected. Undo with
:func:`unpatch` or use the returned handle as a context manager::

    from torus_plugins.adapters.normalize import patch_normalize, unpatch
    import my_pipeline.losses as losses
    patch_normalize(losses, geometry="torusN")  # losses.F.normalize(x, dim=1) -> torus, unit norm
    unpatch(losses)
    with patch_normalize(losses, geometry="torusC"):
        ...

What a patched ``normalize(x, dim=d)`` returns, along axis ``d`` (the package conventions, unit L2
norm):

* ``sphere`` (legacy ``hyprs``): ``torch.nn.functional.normalize`` unchanged (a control).
* ``torusN`` (legacy ``torul``, alias ``l2p``): same width; adjacent pairs normalised to circles,
  scaled by 1/sqrt(k) (k = width/2). The width must be even. Same shape in, same shape out: a true
  drop-in.
* ``torusC`` (legacy ``torus``, alias ``clifford``): the input is read as *turns* (period 1) and the
  output is the interleaved (cos, sin) Clifford layout, so the width along ``d`` doubles. Anything
  downstream that assumed the width must accept ``2 * width``.

Unknown geometries, patching a module twice, and unpatching a module that is not patched raise clear
errors.
"""

import types

import torch
import torch.nn.functional as _torch_F

from torus_plugins._deprecation import deprecated_alias, renamed_keywords
from torus_plugins.geometry import embedding_geometry
from torus_plugins.heads import PROJECTION_NAMES, Clifford, L2p

__all__ = [
    "MODES",
    "canonical_mode",
    "torus_normalize",
    "patch_normalize",
    "unpatch",
    "is_patched",
    "Patch",
    "TorusFunctional",
    "check_patchable",
    "with_defaults",
]

#: 0.1.0's table of accepted names (case-insensitive) -> canonical geometry name.
MODES = PROJECTION_NAMES

_MARK = "_torus_plugins_patch"


def _geometry_name(geometry) -> str:
    """The canonical name of a geometry given by any accepted name or as a Geometry object.

    Args:
        geometry: sphere, torusN or torusC, an alias or legacy name (any case), or a Geometry.

    Returns:
        "sphere", "torusN" or "torusC".

    Raises:
        TypeError: a geometry that is neither a string nor a Geometry.
        ValueError: an unknown name.
    """
    return embedding_geometry(geometry).name


#: 0.1.0's name normaliser: use ``torus_plugins.geometry.get_geometry(name).name``.
canonical_mode = deprecated_alias(_geometry_name, "canonical_mode")


@renamed_keywords(mode="geometry")
def torus_normalize(
    x: torch.Tensor, geometry="torusN", dim: int = 1, p: float = 2.0, eps: float = 1e-12, out=None
) -> torch.Tensor:
    """y = normalise_geometry(x) along ``dim``: ``F.normalize``'s arguments plus the geometry.

    Args:
        x: floating-point tensor.
        geometry: "sphere" (``F.normalize`` itself), "torusN" or "torusC" (see the module
            docstring), or a Geometry object; 0.1.0's keyword ``mode=`` still works, with a
            DeprecationWarning.
        dim: the axis to normalise.
        p: 2 (the tori are L2 projections; the sphere passes it to ``F.normalize``).
        eps: as in ``F.normalize``.
        out: sphere only, as in ``F.normalize``.

    Returns:
        The projected tensor (torusC: twice the width along ``dim``).

    Raises:
        TypeError: a non-float ``x``, a geometry that is neither a string nor a Geometry.
        ValueError: an unknown geometry, p != 2 or ``out`` on a torus, an odd torusN width.
    """
    mode = _geometry_name(geometry)
    if mode == "sphere":
        return _torch_F.normalize(x, p=p, dim=dim, eps=eps, out=out)
    if out is not None:
        raise ValueError(f"{mode} normalize does not support out=")
    if p != 2 and p != 2.0:
        raise ValueError(f"{mode} normalize is an L2 projection; got p={p!r}")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"normalize input must be a floating-point tensor, got {type(x).__name__}")
    if x.dim() == 0:
        raise ValueError("normalize input must have at least one dimension")
    moved = x.movedim(dim, -1)
    width = moved.shape[-1]
    if mode == "torusN":
        if width % 2:
            raise ValueError(
                f"torusN normalize needs an even width along dim {dim} (coordinates are read in "
                f"pairs), got shape {tuple(x.shape)}"
            )
        z = L2p(width, eps=eps)(moved)
    else:  # torusC: turns -> interleaved (cos, sin) / sqrt(k), width doubles
        z = Clifford(width)(moved)
    return z.movedim(-1, dim)


class TorusFunctional(types.ModuleType):
    """Stand-in for ``torch.nn.functional`` whose ``normalize`` is :func:`torus_normalize` in one
    geometry; every other attribute is ``torch.nn.functional``'s own.

    Args:
        geometry: sphere, torusN or torusC (any alias), or a Geometry object; 0.1.0's keyword
            ``mode=`` still works, with a DeprecationWarning.

    Raises:
        TypeError: a geometry that is neither a string nor a Geometry.
        ValueError: an unknown geometry.
    """

    @renamed_keywords(mode="geometry")
    def __init__(self, geometry):
        super().__init__(
            "torch.nn.functional", "torch.nn.functional with a torus normalize (torus-plugins)"
        )
        self.geometry = _geometry_name(geometry)

    def normalize(self, input, p=2.0, dim=1, eps=1e-12, out=None):
        """``F.normalize``'s signature: :func:`torus_normalize` in this geometry.

        Args:
            input: floating-point tensor.
            p: 2 on a torus (the sphere passes it to ``F.normalize``).
            dim: the axis to normalise.
            eps: as in ``F.normalize``.
            out: sphere only, as in ``F.normalize``.

        Returns:
            The projected tensor (torusC: twice the width along ``dim``).

        Raises:
            TypeError, ValueError: as :func:`torus_normalize`.
        """
        return torus_normalize(input, geometry=self.geometry, dim=dim, p=p, eps=eps, out=out)

    def __getattr__(self, name):
        return getattr(_torch_F, name)

    def __repr__(self):
        return f"<torch.nn.functional with torus normalize, geometry={self.geometry}>"


class Patch:
    """Handle of one or more patched modules. ``undo()`` (or leaving a ``with`` block) restores them
    all."""

    def __init__(self):
        self._modules = []

    def _apply(self, module, replacements: dict, info: dict, items=()):
        """Set ``module.<name> = value`` for each of ``replacements`` and ``d[key] = value`` for
        each ``(d, key, value)`` of ``items`` (e.g. a registry dict other modules imported),
        remembering the originals."""
        check_patchable(module)
        missing = object()
        originals = {name: getattr(module, name, missing) for name in replacements}
        item_originals = [(d, key, d.get(key, missing)) for d, key, _ in items]
        record = {
            "originals": originals,
            "items": item_originals,
            "info": info,
            "missing": missing,
            "handle": self,
        }
        for name, value in replacements.items():
            setattr(module, name, value)
        for d, key, value in items:
            d[key] = value
        setattr(module, _MARK, record)
        self._modules.append(module)
        return self

    @property
    def modules(self) -> list:
        """The modules this handle patched, in the order it patched them (empty after undo)."""
        return list(self._modules)

    def undo(self) -> None:
        """Unpatch every module this handle patched and that is still patched by it, last first.

        A module already unpatched (or re-patched by another handle) is left alone, so calling
        ``undo`` twice is harmless.
        """
        for module in reversed(self._modules):
            if is_patched(module) and getattr(module, _MARK)["handle"] is self:
                unpatch(module)
        self._modules = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.undo()
        return False


def check_patchable(module) -> None:
    """Raise unless ``module`` is a module that torus-plugins has not patched yet.

    Args:
        module: the module about to be patched.

    Raises:
        TypeError: ``module`` is not a module.
        RuntimeError: ``module`` is already patched by torus-plugins.
    """
    if not isinstance(module, types.ModuleType):
        raise TypeError(f"expected a module, got {type(module).__name__}")
    if is_patched(module):
        raise RuntimeError(
            f"module {module.__name__!r} is already patched by torus-plugins "
            f"({getattr(module, _MARK)['info']}); call unpatch() first"
        )


def is_patched(module) -> bool:
    """True if torus-plugins has patched ``module`` (and not yet unpatched it).

    Args:
        module: any object (a module, usually).

    Returns:
        Whether ``module`` carries a torus-plugins patch.
    """
    return _MARK in getattr(module, "__dict__", {})


def unpatch(module) -> None:
    """Restore everything torus-plugins replaced in ``module``: its names, and the dict entries and
    class attributes the patch set (a name or entry that did not exist before is removed).

    Args:
        module: a module patched by torus-plugins.

    Raises:
        RuntimeError: ``module`` is not patched by torus-plugins.
    """
    if not is_patched(module):
        raise RuntimeError(
            f"module {getattr(module, '__name__', module)!r} is not patched by torus-plugins"
        )
    record = module.__dict__.pop(_MARK)
    for name, value in record["originals"].items():
        if value is record["missing"]:
            if name in module.__dict__:
                delattr(module, name)
        else:
            setattr(module, name, value)
    for d, key, value in reversed(record["items"]):
        if value is record["missing"]:
            d.pop(key, None)
        else:
            d[key] = value


def functional_names(module) -> list:
    """Names under which ``module`` holds ``torch.nn.functional`` (usually ``['F']``)."""
    return sorted(name for name, value in vars(module).items() if value is _torch_F)


@renamed_keywords(mode="geometry")
def normalize_replacements(module, geometry) -> dict:
    """``{name: TorusFunctional(geometry)}`` for every alias of ``torch.nn.functional`` in
    ``module``.

    Raises:
        ValueError: ``module`` holds no reference to ``torch.nn.functional``; an unknown geometry.
    """
    names = functional_names(module)
    if not names:
        raise ValueError(
            f"module {module.__name__!r} holds no reference to torch.nn.functional (expected "
            f"`import torch.nn.functional as F`); nothing to patch"
        )
    proxy = TorusFunctional(geometry)
    return {name: proxy for name in names}


@renamed_keywords(mode="geometry")
def patch_normalize(module, geometry="torusN") -> Patch:
    """F.normalize -> torus_normalize(., geometry) inside ``module`` only, reversibly.

    Args:
        module: a module that did ``import torch.nn.functional as F`` (or any alias).
        geometry: sphere, torusN or torusC (any alias), or a Geometry object; 0.1.0's keyword
            ``mode=`` still works, with a DeprecationWarning.

    Returns:
        A :class:`Patch`; use it as a context manager, or undo later with :func:`unpatch`.

    Raises:
        TypeError: a geometry that is neither a string nor a Geometry.
        ValueError: an unknown geometry, a module without ``F``.
        RuntimeError: ``module`` is already patched.
    """
    geometry = _geometry_name(geometry)
    check_patchable(module)
    replacements = normalize_replacements(module, geometry)
    return Patch()._apply(module, replacements, {"adapter": "normalize", "geometry": geometry})


def with_defaults(cls, **defaults):
    """A subclass of ``cls`` whose constructor fills ``defaults`` for arguments the caller did not
    pass.

    Lets a patch bind e.g. ``geometry="torusC"`` into a drop-in class that a pipeline constructs
    with its own arguments (positional or keyword).

    Args:
        cls: the class.
        **defaults: constructor keyword arguments and their default values.

    Returns:
        A subclass with ``cls``'s name, qualified name, module and docstring; its constructor
        raises what ``cls``'s does (TypeError for an argument ``cls`` does not take).
    """
    import inspect

    signature = inspect.signature(cls.__init__)

    def __init__(self, *args, **kwargs):
        bound = signature.bind_partial(self, *args, **kwargs)
        for key, value in defaults.items():
            if key not in bound.arguments:
                kwargs[key] = value
        cls.__init__(self, *args, **kwargs)

    return type(
        cls.__name__,
        (cls,),
        {
            "__init__": __init__,
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "__doc__": cls.__doc__,
        },
    )
