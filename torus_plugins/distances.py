"""pytorch-metric-learning distances for torus embeddings.

Usage::

    from pytorch_metric_learning import losses
    from torus_plugins.distances import CliffordCosine
    loss_fn = losses.SupConLoss(temperature=0.07, distance=CliffordCosine())
"""

import torch
from ._optional import require

BaseDistance = require("pytorch_metric_learning.distances", "pml").BaseDistance

from .losses._common import per_circle_unit


class CliffordCosine(BaseDistance):
    """Similarity (1/k) sum_i cos(theta_i - theta'_i) between interleaved torus outputs of any scale.

    With ``normalize_embeddings=True`` (default) every (cos, sin) pair is renormalised to norm 1/sqrt(k) (the
    unit-norm Clifford layout), then the similarity is the dot product. Larger is closer (``is_inverted``).
    """

    def __init__(self, **kwargs):
        super().__init__(is_inverted=True, **kwargs)

    def normalize(self, embeddings, dim=1, **kwargs):
        if dim not in (1, -1) or embeddings.dim() != 2:
            raise ValueError(f"CliffordCosine expects [N, 2k] embeddings, got shape {tuple(embeddings.shape)}")
        return per_circle_unit(embeddings)

    def compute_mat(self, query_emb, ref_emb):
        return query_emb @ ref_emb.t()

    def pairwise_distance(self, query_emb, ref_emb):
        return (query_emb * ref_emb).sum(dim=1)


def _circular(diff: torch.Tensor) -> torch.Tensor:
    d = torch.remainder(diff, 1.0)
    return torch.minimum(d, 1.0 - d)


class ToroidalDistance(BaseDistance):
    """Distance on the flat torus between angle vectors in turns: per coordinate min(|a-b| mod 1, 1 - ...),
    summed (p=1, the codes' L1) or Euclidean (p=2: sqrt of the summed squares; ``power=2`` gives the sum).
    Inputs are not normalised (turns have no scale).
    """

    def __init__(self, p: int = 1, normalize_embeddings: bool = False, **kwargs):
        if isinstance(p, bool) or not isinstance(p, int) or p not in (1, 2):
            raise ValueError(f"ToroidalDistance p must be 1 or 2 (an integer), got {p!r} ({type(p).__name__})")
        super().__init__(p=p, normalize_embeddings=normalize_embeddings, **kwargs)

    def _reduce(self, d: torch.Tensor) -> torch.Tensor:
        if self.p == 1:
            return d.sum(-1)
        return d.pow(2).sum(-1).sqrt()

    def compute_mat(self, query_emb, ref_emb):
        return self._reduce(_circular(query_emb[:, None, :] - ref_emb[None, :, :]))

    def pairwise_distance(self, query_emb, ref_emb):
        return self._reduce(_circular(query_emb - ref_emb))
