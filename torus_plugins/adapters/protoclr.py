"""ProtoCLR: torus versions of its losses.SupConLoss and losses.ProtoCLRLoss, as drop-ins or by
patching losses.py.

Two lines at the top of ``train_encoder.py``, before its
``from losses import SupConLoss, ProtoCLRLoss``::

    import losses
    from torus_plugins.adapters.protoclr import patch; patch(losses, geometry="torusN")

After the patch, ``losses.SupConLoss(tau)`` and ``losses.ProtoCLRLoss(tau)`` are the drop-ins below
(bound to ``geometry``) and ``losses.F.normalize`` projects onto the torus (see
``torus_plugins.adapters.normalize``). The encoder is unchanged; the embeddings it feeds the loss
are placed on the torus inside the loss, as upstream places them on the sphere with ``F.normalize``.

Few-shot evaluation is not patched: upstream evaluates the *encoder features* with its own
normalisation, so its accuracies are those of the encoder on the sphere. To evaluate the torus
embeddings, embed with ``torus_normalize(encoder(x), geometry, dim=1)`` and classify by nearest
prototype (README, "Adapters").

Drop-ins (same constructor and forward as upstream, plus ``geometry``: sphere, torusN or torusC,
legacy hyprs/torul/torus):

* ``SupConLoss(tau=1.0, geometry="torusN")``, ``forward(z1, z2, labels=None)``: SimCLR when
  ``labels`` is None.
* ``ProtoCLRLoss(tau, geometry="torusN")``, ``forward(z1, z2, y)``: cross-entropy against the
  batch's class prototypes (means of both views' unit embeddings), logits = z . proto / tau.

torusC reads the encoder output as turns (width D -> 2D on the torus); torusN needs an even width.
"""

import torch
from torch import nn

from torus_plugins._deprecation import renamed_keywords
from torus_plugins.geometry import embedding_geometry

from .normalize import (
    Patch,
    check_patchable,
    normalize_replacements,
    torus_normalize,
    unpatch,
    with_defaults,
)

__all__ = ["SupConLoss", "ProtoCLRLoss", "patch", "unpatch"]


def _pair(z1, z2, geometry):
    for name, z in (("z1", z1), ("z2", z2)):
        if not isinstance(z, torch.Tensor) or not z.is_floating_point() or z.dim() != 2:
            raise ValueError(
                f"{name} must be a floating-point [batch, dim] tensor, got "
                f"{getattr(z, 'shape', type(z).__name__)}"
            )
    if z1.shape != z2.shape:
        raise ValueError(
            f"z1 and z2 must have the same shape, got {tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    return (
        torus_normalize(z1, geometry=geometry, dim=1),
        torus_normalize(z2, geometry=geometry, dim=1),
    )


class SupConLoss(nn.Module):
    """ProtoCLR's ``losses.SupConLoss(tau)`` on embeddings normalised in ``geometry``.

    Args:
        tau: temperature (ProtoCLR's; no tau/base_tau rescaling).
        geometry: sphere, torusN or torusC (any alias), or a Geometry object; 0.1.0's keyword
            ``mode=`` still works, with a DeprecationWarning.

    Raises:
        TypeError, ValueError: a wrong kind or an unknown geometry.
    """

    @renamed_keywords(mode="geometry")
    def __init__(self, tau=1.0, geometry="torusN"):
        super().__init__()
        from torus_plugins.losses import SupConLoss as _SupCon

        self.tau = tau
        self.geometry = embedding_geometry(geometry).name
        # ProtoCLR's SupCon has no tau/base_tau rescaling of the loss: base_temperature =
        # temperature
        self.loss = _SupCon(
            temperature=tau, contrast_mode="all", base_temperature=tau, geometry="sphere"
        )

    def forward(self, z1, z2, labels=None):
        """SupCon (SimCLR when ``labels`` is None) of the two views normalised in ``geometry``.

        Args:
            z1: the first view's encoder outputs [B, D] (torusN: D even; torusC: read as turns).
            z2: the second view's encoder outputs [B, D].
            labels: class labels [B], or None.

        Returns:
            The loss, a scalar tensor.

        Raises:
            ValueError: ``z1`` or ``z2`` is not a floating-point [batch, dim] tensor, their shapes
                differ, or torusN with an odd ``dim``.
        """
        z1, z2 = _pair(z1, z2, self.geometry)
        return self.loss(torch.stack((z1, z2), dim=1), labels)


class ProtoCLRLoss(nn.Module):
    """ProtoCLR's ``losses.ProtoCLRLoss(tau)`` on embeddings normalised in ``geometry``.

    Args:
        tau: temperature.
        geometry: sphere, torusN or torusC (any alias), or a Geometry object; 0.1.0's keyword
            ``mode=`` still works, with a DeprecationWarning.

    Raises:
        TypeError, ValueError: a wrong kind or an unknown geometry.
    """

    @renamed_keywords(mode="geometry")
    def __init__(self, tau=0.1, geometry="torusN"):
        super().__init__()
        from torus_plugins.losses import ProtoCLRLoss as _ProtoCLR

        self.tau = tau
        self.geometry = embedding_geometry(geometry).name
        self.loss = _ProtoCLR(tau=tau)

    def forward(self, z1, z2, y):
        """Cross-entropy against the batch's class prototypes: logits = z . proto / tau.

        Args:
            z1: the first view's encoder outputs [B, D] (torusN: D even; torusC: read as turns).
            z2: the second view's encoder outputs [B, D].
            y: class labels [B].

        Returns:
            The loss, a scalar tensor.

        Raises:
            ValueError: ``z1`` or ``z2`` is not a floating-point [batch, dim] tensor, their shapes
                differ, or torusN with an odd ``dim``.
        """
        z1, z2 = _pair(z1, z2, self.geometry)
        return self.loss(z1, z2, y)


@renamed_keywords(mode="geometry")
def patch(losses_module, geometry="torusN") -> Patch:
    """losses_module.{SupConLoss, ProtoCLRLoss, F.normalize} -> the torus versions in ``geometry``.

    Args:
        losses_module: ProtoCLR's ``losses`` module.
        geometry: sphere, torusN or torusC (any alias), or a Geometry object; 0.1.0's keyword
            ``mode=`` still works, with a DeprecationWarning.

    Returns:
        A :class:`~torus_plugins.adapters.normalize.Patch`; undo with ``unpatch``.

    Raises:
        TypeError, ValueError: a wrong kind or an unknown geometry; a module without the classes
            or without ``torch.nn.functional`` (``F``); ``losses_module`` not a module.
        RuntimeError: ``losses_module`` is already patched.
    """
    mode = embedding_geometry(geometry).name
    check_patchable(losses_module)
    missing = [name for name in ("SupConLoss", "ProtoCLRLoss") if not hasattr(losses_module, name)]
    if missing:
        raise ValueError(
            f"{losses_module.__name__!r} has no {', '.join(missing)}; pass ProtoCLR's losses module"
        )
    replacements = dict(normalize_replacements(losses_module, mode))
    replacements["SupConLoss"] = with_defaults(SupConLoss, geometry=mode)
    replacements["ProtoCLRLoss"] = with_defaults(ProtoCLRLoss, geometry=mode)
    return Patch()._apply(losses_module, replacements, {"adapter": "protoclr", "geometry": mode})
