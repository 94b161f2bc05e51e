"""pytorch-metric-learning: torus distances and the KoLeo regulariser for any pml loss, plus a torus
SupCon builder.

Usage (a pml training loop; the model ends in a torus head, e.g. ``torus_plugins.L2p``)::

    from torus_plugins.adapters.pml import torus_supcon_loss
    loss_fn = torus_supcon_loss(temperature=0.1, koleo_weight=0.1)   # was losses.SupConLoss(0.1)
    loss = loss_fn(embeddings, labels)

or pass the pieces to any pml loss::

    from torus_plugins.adapters.pml import CliffordCosine, KoLeoRegularizer
    losses.NTXentLoss(distance=CliffordCosine(), embedding_regularizer=KoLeoRegularizer(),
                      embedding_reg_weight=0.1)

``CliffordCosine`` is a drop-in for pml's ``CosineSimilarity`` (its arguments; the same values on
unit Clifford vectors) and ``ToroidalDistance`` a pml ``BaseDistance`` on angles in turns.
"""

from typing import Any

import torch

from torus_plugins._checks import check_bool, check_positive_float
from torus_plugins._optional import require
from torus_plugins.losses._common import check_embeddings, per_circle_unit
from torus_plugins.losses.koleo import koleo_terms

# Any: the bases come from an optional import (mypy cannot follow a module chosen at run time)
_pml_losses = require("pytorch_metric_learning.losses", "pml")
BaseDistance: Any = require("pytorch_metric_learning.distances", "pml").BaseDistance
BaseRegularizer: Any = require("pytorch_metric_learning.regularizers", "pml").BaseRegularizer
c_f = require("pytorch_metric_learning.utils.common_functions", "pml")

__all__ = ["CliffordCosine", "ToroidalDistance", "KoLeoRegularizer", "torus_supcon_loss"]


class CliffordCosine(BaseDistance):
    """s(x, y) = (1/k) sum_i cos(theta_i - theta'_i) between interleaved torus outputs of any scale.

    With ``normalize_embeddings=True`` (default) every (cos, sin) pair is renormalised to norm
    1/sqrt(k) (the unit-norm Clifford layout), then the similarity is the dot product. Larger is
    closer (``is_inverted``). Takes pml ``CosineSimilarity``'s arguments (``**kwargs`` of
    ``BaseDistance``) and equals it on unit Clifford vectors.

    Args:
        **kwargs: pml ``BaseDistance`` arguments (``normalize_embeddings``, ``p``, ``power``...).
    """

    def __init__(self, **kwargs):
        super().__init__(is_inverted=True, **kwargs)

    def normalize(self, embeddings, dim=1, **kwargs):
        """Per-circle unit pairs of [N, 2k] ``embeddings``.

        Args:
            embeddings: interleaved (cos, sin) torus outputs [N, 2k], of any scale.
            dim: the feature axis: 1 (or -1).
            **kwargs: ignored (pml's ``normalize`` signature).

        Returns:
            [N, 2k] with every (cos, sin) pair at norm 1/sqrt(k): unit-norm rows.

        Raises:
            ValueError: ``embeddings`` is not [N, 2k] or ``dim`` is not its last axis.
        """
        if dim not in (1, -1) or embeddings.dim() != 2:
            raise ValueError(
                f"CliffordCosine expects [N, 2k] embeddings, got shape {tuple(embeddings.shape)}"
            )
        return per_circle_unit(embeddings)

    def compute_mat(self, query_emb, ref_emb):
        """[Nq, Nr] dot products of normalised rows.

        Args:
            query_emb: [Nq, 2k] normalised query embeddings.
            ref_emb: [Nr, 2k] normalised reference embeddings.

        Returns:
            The [Nq, Nr] similarity matrix, (1/k) sum_i cos(theta_i - theta'_i).
        """
        return query_emb @ ref_emb.t()

    def pairwise_distance(self, query_emb, ref_emb):
        """[N] dot products of matching rows.

        Args:
            query_emb: [N, 2k] normalised embeddings.
            ref_emb: [N, 2k] normalised embeddings.

        Returns:
            The [N] similarities of row i with row i.
        """
        return (query_emb * ref_emb).sum(dim=1)


def _circular(diff: torch.Tensor) -> torch.Tensor:
    d = torch.remainder(diff, 1.0)
    return torch.minimum(d, 1.0 - d)


class ToroidalDistance(BaseDistance):
    """d(a, b) = (sum_i min(|a_i - b_i| mod 1, 1 - ...)^p)^(1/p), p in {1, 2}, on angles in turns.

    p=1 is the codes' circular L1; p=2 the flat-torus Euclidean distance (``power=2`` gives the sum
    of squares). Inputs are not normalised (turns have no scale).

    Args:
        p: 1 or 2.
        normalize_embeddings: pml's flag (default False here: turns have no scale).
        **kwargs: other pml ``BaseDistance`` arguments.

    Raises:
        TypeError: ``p`` is not an int.
        ValueError: ``p`` is not 1 or 2.
    """

    def __init__(self, p: int = 1, normalize_embeddings: bool = False, **kwargs):
        if isinstance(p, bool) or not isinstance(p, int):
            raise TypeError(
                f"ToroidalDistance p must be an int (1 or 2), got {type(p).__name__} {p!r}"
            )
        if p not in (1, 2):
            raise ValueError(f"ToroidalDistance p must be 1 or 2, got {p!r}")
        super().__init__(p=p, normalize_embeddings=normalize_embeddings, **kwargs)

    def _reduce(self, d: torch.Tensor) -> torch.Tensor:
        if self.p == 1:
            return d.sum(-1)
        return d.pow(2).sum(-1).sqrt()

    def compute_mat(self, query_emb, ref_emb):
        """[Nq, Nr] toroidal distances.

        Args:
            query_emb: [Nq, k] angles in turns.
            ref_emb: [Nr, k] angles in turns.

        Returns:
            The [Nq, Nr] distance matrix (p=1: circular L1; p=2: flat-torus Euclidean).
        """
        return self._reduce(_circular(query_emb[:, None, :] - ref_emb[None, :, :]))

    def pairwise_distance(self, query_emb, ref_emb):
        """[N] toroidal distances of matching rows.

        Args:
            query_emb: [N, k] angles in turns.
            ref_emb: [N, k] angles in turns.

        Returns:
            The [N] distances of row i to row i.
        """
        return self._reduce(_circular(query_emb - ref_emb))


class KoLeoRegularizer(BaseRegularizer):
    """l_i = -log(||x_i - x_nn(i)||_p + eps) on unit vectors, one term per embedding.

    pml's default mean reducer turns the terms into ``KoLeoLoss``; weight it with the loss's
    ``embedding_reg_weight``.

    Args:
        eps: added to each nearest-neighbour distance (> 0).
        p: norm of the distance (> 0).
        normalize: L2-normalise the embeddings first.
        **kwargs: pml ``BaseRegularizer`` arguments.

    Raises:
        TypeError: a non-number ``eps``/``p`` or a non-bool ``normalize``.
        ValueError: ``eps`` or ``p`` not > 0.
    """

    def __init__(self, eps: float = 1e-8, p: float = 2.0, normalize: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.eps = check_positive_float(eps, "KoLeoRegularizer eps")
        self.p = check_positive_float(p, "KoLeoRegularizer p")
        self.normalize = check_bool(normalize, "KoLeoRegularizer normalize")

    def compute_loss(self, embeddings):
        """pml's loss dict of the per-embedding KoLeo terms (reduction type ``element``).

        Args:
            embeddings: [N, D] floating-point embeddings, N >= 2.

        Returns:
            ``{"loss": {"losses": [N] terms, "indices": arange(N), "reduction_type": "element"}}``.

        Raises:
            TypeError: ``embeddings`` is not a floating-point tensor.
            ValueError: ``embeddings`` is not 2-D, has fewer than 2 rows or no feature, or (in
                the default host check mode) holds NaN/inf.
        """
        check_embeddings(embeddings, "KoLeoRegularizer embeddings")
        return {
            "loss": {
                "losses": koleo_terms(embeddings, self.eps, self.p, self.normalize),
                "indices": c_f.torch_arange_from_size(embeddings),
                "reduction_type": "element",
            }
        }


def torus_supcon_loss(temperature: float = 0.1, koleo_weight: float = 0.0, distance=None, **kwargs):
    """pml ``SupConLoss(temperature, distance=CliffordCosine())`` (+ koleo_weight * KoLeo).

    Args:
        temperature: SupCon temperature.
        koleo_weight: weight of :class:`KoLeoRegularizer` as the embedding regulariser (0: none).
        distance: a pml distance (default :class:`CliffordCosine`).
        **kwargs: other pml ``SupConLoss`` arguments (reducer, ...).

    Returns:
        The pml ``SupConLoss``.

    Raises:
        ValueError: ``koleo_weight`` < 0, or ``embedding_regularizer`` passed in ``kwargs``.
    """
    if koleo_weight < 0:
        raise ValueError(f"koleo_weight must be >= 0, got {koleo_weight}")
    if "embedding_regularizer" in kwargs:
        raise ValueError(
            "use koleo_weight to add the KoLeo regulariser (embedding_regularizer is set here)"
        )
    if distance is None:
        distance = CliffordCosine()
    if koleo_weight > 0:
        kwargs["embedding_regularizer"] = KoLeoRegularizer()
        kwargs["embedding_reg_weight"] = koleo_weight
    return _pml_losses.SupConLoss(temperature=temperature, distance=distance, **kwargs)
