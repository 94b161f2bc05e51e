"""Supervised contrastive loss (Khosla et al. 2020), with the paper's torus projection modes."""

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_bool, check_choice, check_positive_float
from .._deprecation import deprecated_alias, renamed_keywords
from ..geometry import embedding_geometry, to_clifford
from ._common import (
    check_embeddings,
    check_labels,
    check_that,
    compute_dtype,
    full_precision,
    per_circle_unit,
)
from .distributed import maybe_gather


def supcon_geometry(geometry):
    """'sphere' | 'torusN' | 'torusC' | None: how SupConLoss reads its inputs (None: as they are).

    Args:
        geometry: a geometry name (any alias, any case), a Geometry object, None or "none".

    Returns:
        The canonical name, or None.

    Raises:
        TypeError: neither a string, a Geometry nor None.
        ValueError: an unknown name, or "codes".
    """
    if geometry is None or (isinstance(geometry, str) and geometry.lower() == "none"):
        return None
    return embedding_geometry(geometry).name


#: 0.1.0's name of :func:`supcon_geometry`.
canonical_projmode = deprecated_alias(supcon_geometry, "canonical_projmode")


def project(features: torch.Tensor, geometry) -> torch.Tensor:
    """Raw head features -> unit-norm vectors as the paper's pipeline reads them.

    sphere: x / ||x||; torusN: every (cos, sin) pair scaled to norm 1/sqrt(k); torusC: the features
    are turns, mapped to the unit-norm Clifford layout; None: already unit norm, returned as is.

    Args:
        features: floating-point tensor of shape [..., D] (``"torusC"``: [..., k] turns).
        geometry: a canonical name of :func:`supcon_geometry`, or None.

    Returns:
        A tensor of shape [..., D] ([..., 2k] for ``"torusC"``), unit norm along the last dimension.
    """
    if geometry == "sphere":
        return F.normalize(features, dim=-1)
    if geometry == "torusN":
        return per_circle_unit(features)
    if geometry == "torusC":
        return to_clifford(features, unit_norm=True)
    return features


class SupConLoss(nn.Module):
    """L = -(tau/tau_b) mean_a 1/|P(a)| sum_{p in P(a)} log(exp(z_a.z_p/tau) / Z_a).

    Z_a = sum_{c != a} exp(z_a.z_c/tau): the anchor's contrast set is every other view in the batch.

    ``features`` [B, n_views, D], ``labels`` [B] or None (SimCLR: the positives are the other
    views). ``geometry`` (0.1.0 keyword: ``projmode``) says how the inputs are read, as in the
    paper's SupCon-Framework torus branch, but always yielding unit vectors so tau keeps its usual
    meaning:

    * 'sphere' (legacy 'hyprs'): ``F.normalize``. The default; a no-op on any unit-norm head output
      of this package (Sphere, L2p, Clifford), so it is safe for all of them.
    * 'torusN' ('torul'): pairwise L2 normalisation (the L2p head). Same loss as the paper's
      pair-unit vectors with logits divided by tau*D/2.
    * 'torusC' ('torus'): inputs are raw turns [B, n_views, k], mapped to the unit-norm Clifford
      layout. Same loss as the paper's [cos..., sin...] features with logits divided by tau*k.
    * None: the features are already unit norm (package heads); used as is.

    Anchors with no positive (a singleton class with one view) are left out of the mean; if no
    anchor has one, a ValueError is raised. With ``gather_distributed`` the contrast set is the
    batch of all ranks.

    Args:
        temperature: tau, a number > 0.
        contrast_mode: ``"all"`` (every view is an anchor) or ``"one"`` (view 0 only).
        base_temperature: tau_b, a number > 0.
        geometry: how the features are read (above): a name, a Geometry object or None.
        gather_distributed: gather the batch of all ranks (see :mod:`.distributed`).

    Raises:
        TypeError: a temperature is not a real number, or ``gather_distributed`` is not a bool.
        ValueError: a temperature is not finite and > 0, or ``contrast_mode`` or ``geometry`` is
            not an accepted value.

    Example:
        >>> from torus_plugins.heads import L2p
        >>> z = L2p(128)(torch.randn(8, 2, 128))                   # [B, n_views, D]
        >>> loss = SupConLoss(0.07)(z, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
    """

    @renamed_keywords(projmode="geometry")
    def __init__(
        self,
        temperature: float = 0.07,
        contrast_mode: str = "all",
        base_temperature: float = 0.07,
        geometry="sphere",
        gather_distributed: bool = False,
    ):
        super().__init__()
        self.contrast_mode = check_choice(contrast_mode, "SupConLoss contrast_mode", ("all", "one"))
        self.temperature = check_positive_float(temperature, "SupConLoss temperature")
        self.base_temperature = check_positive_float(
            base_temperature, "SupConLoss base_temperature"
        )
        self.geometry = supcon_geometry(geometry)
        self.gather_distributed = check_bool(gather_distributed, "SupConLoss gather_distributed")

    @full_precision
    def forward(self, features: torch.Tensor, labels=None) -> torch.Tensor:
        """The SupCon loss of a batch.

        Args:
            features: floating-point tensor of shape [B, n_views, D], B >= 2.
            labels: class ids, a tensor of shape [B] (or [B, 1]), integer or integral floats; or
                None: the positives are the other views of the same sample (needs n_views >= 2).

        Returns:
            A 0-d tensor: float32 for float16/bfloat16 input, else the dtype of ``features``.

        Raises:
            TypeError: ``features`` is not a floating-point tensor, or ``labels`` is not a real
                tensor.
            ValueError: ``features`` is not 3-D or has fewer than 2 samples or an empty
                dimension, ``labels`` has the wrong shape, there are no labels and n_views < 2,
                no anchor has a positive, float ``labels`` are not integral, an input holds
                NaN/inf (validation mode "host"; mode "device" raises
                RuntimeError instead, see :mod:`torus_plugins.validation`), or the loss overflowed
                on finite input.
        """
        check_embeddings(features, "SupConLoss features [B, n_views, D]", dims=(3,))
        b, n_views = features.shape[0], features.shape[1]
        if labels is not None:
            labels = check_labels(labels, b)
        elif n_views < 2:
            raise ValueError(
                f"SupConLoss without labels needs n_views >= 2 (positives are the "
                f"other views), got n_views={n_views}"
            )
        features, labels = maybe_gather(self.gather_distributed, features, labels)
        b = features.shape[0]
        how = {"sphere": "row", "torusN": "pair"}.get(self.geometry)
        (features,), out_dtype = compute_dtype(features, normalised=how, name="SupConLoss features")
        z = project(features, self.geometry)
        contrast = z.transpose(0, 1).reshape(n_views * b, -1)  # view-major, as upstream
        anchor = z[:, 0] if self.contrast_mode == "one" else contrast
        n_anchor = anchor.shape[0]
        if labels is None:
            same = torch.eye(b, dtype=torch.bool, device=z.device)
        else:
            same = labels[:, None] == labels[None, :]
        not_self = ~torch.eye(n_anchor, n_views * b, dtype=torch.bool, device=z.device)
        pos = same.repeat(n_anchor // b, n_views) & not_self
        logits = anchor @ contrast.t() / self.temperature
        logits = logits - logits.max(dim=1, keepdim=True).values.detach()
        logits_others = logits.masked_fill(~not_self, -float("inf"))
        log_prob = logits - torch.logsumexp(logits_others, dim=1, keepdim=True)
        n_pos = pos.sum(1)
        has_pos = n_pos > 0
        check_that(
            lambda: has_pos.any(),
            "SupConLoss: no anchor has a positive (every label is unique and n_views == 1)",
            z,
        )
        # mean over the anchors with a positive: a masked sum (not indexing: a data-dependent shape)
        mean_log_prob_pos = (log_prob * pos).sum(1) / n_pos.clamp_min(1)
        mean_over_anchors = (mean_log_prob_pos * has_pos).sum() / has_pos.sum()
        return (-(self.temperature / self.base_temperature) * mean_over_anchors).to(out_dtype)
