"""SupCon-Framework drop-ins with upstream's constructor and forward signatures (``SupConModel``,
``SupConLoss``, ``KoLeoLoss``) and the one translation of its ``projmode`` into a geometry name.

Documented, re-exported and patched in by :mod:`torus_plugins.adapters.supcon_framework`.
"""

import torch
from torch import nn

from torus_plugins.geometry import embedding_geometry

from .normalize import torus_normalize


def geometry_of_projmode(projmode) -> str:
    """SupCon-Framework's ``projmode`` -> the package's geometry name: the adapter's one
    translation.

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
        raise ValueError(
            f"projmode (geometry) must be one of sphere, torusN or torusC "
            f"(SupCon-Framework's hyprs, torul, torus), got {projmode!r}"
        ) from None


def project_features(features: torch.Tensor, projmode: str) -> torch.Tensor:
    """Unit-norm vectors the upstream loss effectively compares, from features given as upstream's
    model emits.

    sphere: unchanged (upstream's loss assumes they are unit vectors); torusN: pairs normalised,
    total norm 1; torusC: features are turns -> interleaved (cos, sin) / sqrt(D), width 2D.

    Args:
        features: [..., D] features as upstream's model emits them (torusN: D even).
        projmode: the geometry, any name :func:`geometry_of_projmode` accepts.

    Returns:
        [..., D] (torusC: [..., 2D]) vectors, unit-norm on the torus.

    Raises:
        TypeError, ValueError: a bad ``projmode`` (see :func:`geometry_of_projmode`), or torusN
            with an odd D.
    """
    mode = geometry_of_projmode(projmode)
    if mode == "sphere":
        return features
    return torus_normalize(features, geometry=mode, dim=-1)


def _check_features(features):
    if not isinstance(features, torch.Tensor) or not features.is_floating_point():
        raise TypeError(f"features must be a floating-point tensor, got {type(features).__name__}")
    if features.dim() < 3:
        raise ValueError(
            f"features must be [bsz, n_views, ...] (at least 3 dimensions), got shape "
            f"{tuple(features.shape)}"
        )
    if features.dim() > 3:
        features = features.view(features.shape[0], features.shape[1], -1)
    return features


def _mask_to_labels(mask, batch_size):
    """Labels whose equality matrix is ``mask`` (a same-class mask). Other masks (asymmetric, not an
    equivalence relation) are not supported by the package loss: NotImplementedError."""
    mask = torch.as_tensor(mask).bool()
    if mask.shape != (batch_size, batch_size):
        raise ValueError(
            f"mask must be [bsz, bsz] = [{batch_size}, {batch_size}], got {tuple(mask.shape)}"
        )
    labels = mask.int().argmax(dim=1)  # first column in each row's class
    if not bool(mask.diagonal().all()) or not torch.equal(labels[:, None] == labels[None, :], mask):
        raise NotImplementedError(
            "only same-class masks (symmetric, reflexive, transitive) are supported; pass "
            "labels instead"
        )
    return labels


class SupConLoss(nn.Module):
    """Drop-in for SupCon-Framework's ``tools.losses.SupConLoss`` with torus projmodes (incl. legacy
    names).

    Args:
        temperature: the softmax temperature tau.
        contrast_mode: ``"all"`` (every view is an anchor) or ``"one"`` (the first view only).
        base_temperature: the loss is scaled by ``temperature / base_temperature``.
        projmode: sphere, torusN or torusC, or SupCon-Framework's hyprs, torul, torus.

    Raises:
        TypeError: a ``projmode`` that is not a string (nor a Geometry), a temperature that is not
            a real number.
        ValueError: an unknown ``contrast_mode`` or ``projmode``, a temperature not > 0.
    """

    def __init__(
        self, temperature=0.07, contrast_mode="all", base_temperature=0.07, projmode="sphere"
    ):
        super().__init__()
        from torus_plugins.losses import SupConLoss as _SupCon

        if contrast_mode not in ("all", "one"):
            raise ValueError(f"unknown contrast_mode {contrast_mode!r}; use 'all' or 'one'")
        self.temperature = temperature
        self.contrast_mode = contrast_mode
        self.base_temperature = base_temperature
        self.projmode = geometry_of_projmode(projmode)
        # features are projected here (sphere: left as given, as upstream); the package loss uses
        # them as is
        self.loss = _SupCon(
            temperature=temperature,
            contrast_mode=contrast_mode,
            base_temperature=base_temperature,
            geometry=None,
        )

    def forward(self, features, labels=None, mask=None):
        """SupCon over the views of ``features`` projected as ``projmode`` says (SimCLR without
        ``labels`` and ``mask``).

        Args:
            features: [B, n_views, D] as upstream's model emits them (more dimensions are
                flattened into D).
            labels: class labels [B], or None.
            mask: a [B, B] same-class mask (instead of ``labels``), or None.

        Returns:
            The loss, a scalar tensor.

        Raises:
            TypeError: ``features`` is not a floating-point tensor.
            ValueError: ``features`` has fewer than 3 dimensions, both ``labels`` and ``mask`` are
                given, the number of labels is not B, or ``mask`` is not [B, B].
            NotImplementedError: a ``mask`` that is not a same-class (equivalence) mask.
        """
        features = _check_features(features)
        if labels is not None and mask is not None:
            raise ValueError("Cannot define both `labels` and `mask`")
        if labels is not None and labels.numel() != features.shape[0]:
            raise ValueError(
                f"Num of labels ({labels.numel()}) does not match num of features "
                f"({features.shape[0]})"
            )
        z = project_features(features, self.projmode)
        if mask is not None:
            labels = _mask_to_labels(mask, features.shape[0])
        return self.loss(z, labels)


class KoLeoLoss(nn.Module):
    """Drop-in for SupCon-Framework's ``tools.losses.KoLeoLoss(projmode)``: KoLeo per view, summed
    over views.

    Args:
        projmode: sphere, torusN or torusC, or SupCon-Framework's hyprs, torul, torus.
        eps: added to each nearest-neighbour distance.

    Raises:
        TypeError, ValueError: a bad ``projmode`` (see :func:`geometry_of_projmode`) or ``eps``.
    """

    def __init__(self, projmode="sphere", eps=1e-6):
        super().__init__()
        from torus_plugins.losses import KoLeoLoss as _KoLeo

        self.projmode = geometry_of_projmode(projmode)
        self.klo = _KoLeo(eps=eps)

    def forward(self, features, labels=None):
        """sum_v KoLeo(z[:, v]), z = :func:`project_features` (features, projmode).

        Args:
            features: [B, n_views, D] as upstream's model emits them (more dimensions are
                flattened into D), B >= 2.
            labels: ignored (upstream's signature).

        Returns:
            The loss, a scalar tensor.

        Raises:
            TypeError: ``features`` is not a floating-point tensor.
            ValueError: ``features`` has fewer than 3 dimensions or fewer than 2 rows.
        """
        features = _check_features(features)
        z = project_features(features, self.projmode)
        return sum(self.klo(z[:, v, :]) for v in range(z.shape[1]))


def _build_backbone(backbone, pretrained, features_dim):
    if isinstance(backbone, str):
        from torus_plugins._optional import require

        timm = require("timm", "timm")

        name = backbone[len("timm_") :] if backbone.startswith("timm_") else backbone
        encoder = timm.create_model(name, pretrained=pretrained, num_classes=0)
        return encoder, int(encoder.num_features)
    if isinstance(backbone, nn.Module):
        width = (
            features_dim if features_dim is not None else getattr(backbone, "num_features", None)
        )
        if width is None:
            raise ValueError(
                "pass features_dim= for a backbone module without a num_features attribute"
            )
        return backbone, int(width)
    raise TypeError(
        f"backbone must be a timm model name or an nn.Module, got {type(backbone).__name__}"
    )


class SupConModel(nn.Module):
    """Drop-in for SupCon-Framework's ``tools.models.SupConModel`` (torus branch), with torus
    projmodes.

    ``encoder`` -> ``head`` (Linear(features_dim, 4 * projection_dim), ReLU,
    Linear(4 * projection_dim, projection_dim)) -> the projmode's normalisation; in the second
    stage the encoder is frozen and ``classifier`` (Linear(features_dim, num_classes)) replaces
    the head.

    Args:
        backbone: a timm model name (an optional ``timm_`` prefix is dropped; needs the
            ``[timm]`` extra) or an ``nn.Module`` returning [B, features_dim] features.
        projection_dim: the head's output width (torusN: even).
        second_stage: build the frozen-encoder classifier instead of the projection head.
        num_classes: the classifier's classes (needed with ``second_stage=True``).
        projmode: sphere, torusN or torusC, or SupCon-Framework's hyprs, torul, torus.
        pretrained: load the timm backbone's weights (a download).
        features_dim: the module backbone's output width, when it has no ``num_features``.
        grad_clip: clamp every encoder gradient element-wise at this value, as upstream does
            (0 or None: no clamping).

    Raises:
        TypeError: ``backbone`` neither a string nor an ``nn.Module``; a ``projmode`` that is not
            a string.
        ValueError: an unknown ``projmode``, torusN with an odd ``projection_dim``,
            ``second_stage=True`` without ``num_classes``, or a module backbone without
            ``num_features`` and no ``features_dim``.
    """

    def __init__(
        self,
        backbone="resnet50",
        projection_dim=128,
        second_stage=False,
        num_classes=None,
        projmode="torusN",
        pretrained=False,
        features_dim=None,
        grad_clip=100.0,
    ):
        super().__init__()
        self.projmode = geometry_of_projmode(projmode)
        if self.projmode == "torusN" and projection_dim % 2:
            raise ValueError(f"torusN needs an even projection_dim, got {projection_dim}")
        self.encoder, self.features_dim = _build_backbone(backbone, pretrained, features_dim)
        if grad_clip:
            # upstream clamps every encoder gradient element-wise at 100 (torusC can jump across its
            # circle)
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
            self.head = nn.Sequential(
                nn.Linear(self.features_dim, projection_dim * 4),
                nn.ReLU(inplace=True),
                nn.Linear(projection_dim * 4, projection_dim),
            )

    def use_projection_head(self, mode):
        """Switch the projection head on or off (upstream's API).

        Args:
            mode: True: ``forward`` goes through the head (``embed_dim = projection_dim``); False:
                it returns the encoder features (``embed_dim = features_dim``).
        """
        self.projection_head = mode
        self.embed_dim = self.projection_dim if mode else self.features_dim

    def _features(self, x):
        feat = self.encoder(x).flatten(1)
        if self.projection_head:
            feat = self.head(feat)
        return feat

    def forward(self, x, donormalise=True):
        """Upstream's forward: sphere -> unit vectors, torusN -> pairs on circles at unit total
        norm, torusC -> the raw output, read as turns (the loss applies cos/sin).

        Args:
            x: the input batch, e.g. images [B, 3, H, W].
            donormalise: apply the projmode's normalisation (False: the raw features).

        Returns:
            Second stage: logits [B, num_classes]; else [B, projection_dim] (with the projection
            head switched off: the encoder features [B, features_dim]).
        """
        if self.second_stage:
            return self.classifier(self.encoder(x).flatten(1))
        feat = self._features(x)
        if donormalise and self.projmode != "torusC":  # torusC: raw turns, the loss applies cos/sin
            feat = torus_normalize(feat, geometry=self.projmode, dim=1)
        return feat

    def embed(self, x):
        """Unit-norm torus (or sphere) embedding in the Clifford layout, whatever the projmode.

        Args:
            x: the input batch, e.g. images [B, 3, H, W].

        Returns:
            [B, projection_dim] unit-norm vectors (torusC: [B, 2 * projection_dim]).

        Raises:
            RuntimeError: a second-stage model (it has no projection head).
        """
        if self.second_stage:
            raise RuntimeError("embed() needs the first-stage model (second_stage=False)")
        return torus_normalize(self._features(x), geometry=self.projmode, dim=1)
