"""SupCon-Framework: torus geometry for its SupConModel and SupConLoss, by patching tools.models/tools.losses or drop-in.

Two lines at the top of ``train.py`` (before ``from tools import utils``), with the config's projmode left at
``sphere`` (or on the upstream ``main`` branch, which has no projmode)::

    import tools.models, tools.losses
    from torus_plugins.adapters.supcon_framework import patch; patch(tools.models, tools.losses, projmode="torusN")

* ``tools.models``: its ``F.normalize(feat, dim=1)`` becomes the torus projection (unit norm, Clifford layout;
  torusC reads the head output as turns and doubles the width), so ``SupConModel`` emits torus embeddings.
* ``tools.losses``: ``SupConLoss`` and ``KoLeoLoss`` (also in the ``LOSSES`` dict the training utilities use)
  become the drop-ins below, which accept every projmode name, incl. legacy hyprs/torul/torus.

Drop-ins with upstream's constructor and forward signatures:

* ``SupConModel(backbone, projection_dim, second_stage, num_classes, projmode)``, ``forward(x, donormalise=True)``:
  as on the ``torus`` branch, sphere -> unit vectors, torusN -> pairs on circles (here at unit total norm, the
  package convention; upstream keeps each pair at norm 1), torusC -> the head's raw output, read as turns (the
  loss applies cos/sin). ``embed(x)`` always returns the unit-norm Clifford-layout torus vector (for kNN/codes).
  ``backbone`` is a timm model name (built with ``pretrained=False`` unless asked) or an ``nn.Module`` with
  ``num_features`` (or pass ``features_dim``).
* ``SupConLoss(temperature, contrast_mode, base_temperature, projmode)``, ``forward(features[B, n_views, D],
  labels=None, mask=None)``: identical logits to the ``torus`` branch (it divides by tau*k on pair-normalised
  features, or tau*D on raw cos/sin; unit-norm features with tau are the same numbers). Its torusC concatenates
  [cos..., sin...] where the package interleaves; dot products, hence the loss, are the same.
* ``KoLeoLoss(projmode)``, ``forward(features[B, n_views, D], labels)``: KoLeo per view, summed over views.
"""

import torch
from torch import nn

from torus_plugins.heads import make_projection

from .normalize import Patch, canonical_mode, check_patchable, normalize_replacements, torus_normalize

from .normalize import unpatch  # re-exported: unpatch(tools.models)

__all__ = ["SupConModel", "SupConLoss", "KoLeoLoss", "project_features", "patch", "unpatch"]


def project_features(features: torch.Tensor, projmode: str) -> torch.Tensor:
    """Unit-norm vectors the upstream loss effectively compares, from features given as upstream's model emits.

    sphere: unchanged (upstream's loss assumes they are unit vectors); torusN: pairs normalised, total norm 1;
    torusC: features are turns -> interleaved (cos, sin) / sqrt(D), width 2D.
    """
    mode = canonical_mode(projmode)
    if mode == "sphere":
        return features
    return torus_normalize(features, mode=mode, dim=-1)


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
        self.projmode = canonical_mode(projmode)
        # features are projected here (sphere: left as given, as upstream); the package loss uses them as is
        self.loss = _SupCon(temperature=temperature, contrast_mode=contrast_mode,
                            base_temperature=base_temperature, projmode=None)

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

        self.projmode = canonical_mode(projmode)
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
        self.projmode = canonical_mode(projmode)
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
            feat = torus_normalize(feat, mode=self.projmode, dim=1)
        return feat

    def embed(self, x):
        """Unit-norm torus (or sphere) embedding in the Clifford layout, whatever the projmode."""
        if self.second_stage:
            raise RuntimeError("embed() needs the first-stage model (second_stage=False)")
        return torus_normalize(self._features(x), mode=self.projmode, dim=1)


def patch(models_module, losses_module=None, projmode="torusN") -> Patch:
    """Make SupCon-Framework's ``tools.models`` (and ``tools.losses``) use torus geometry; see the module docs.

    Returns a :class:`~torus_plugins.adapters.normalize.Patch` (a context manager); ``unpatch(module)`` undoes
    one module.
    """
    mode = canonical_mode(projmode)
    check_patchable(models_module)
    if losses_module is not None:
        check_patchable(losses_module)
        if not hasattr(losses_module, "SupConLoss"):
            raise ValueError(f"{losses_module.__name__!r} has no SupConLoss; pass SupCon-Framework's tools.losses")
    handle = Patch()
    handle._apply(models_module, normalize_replacements(models_module, mode),
                  {"adapter": "supcon_framework", "mode": mode})
    if losses_module is not None:
        replacements = {"SupConLoss": SupConLoss}
        if hasattr(losses_module, "KoLeoLoss"):
            replacements["KoLeoLoss"] = KoLeoLoss
        items = []
        registry = getattr(losses_module, "LOSSES", None)
        if isinstance(registry, dict):
            items.append((registry, "SupCon", SupConLoss))
            if "koleo" in registry:
                items.append((registry, "koleo", KoLeoLoss))
        handle._apply(losses_module, replacements, {"adapter": "supcon_framework", "mode": mode}, items=items)
    return handle

