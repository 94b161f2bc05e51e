"""Circular spread: penalise Fisher-Lee circular correlation between the circles of a torus output."""

import torch
from torch import nn

from .._checks import check_even
from ._common import check_embeddings, per_circle_unit
from .distributed import maybe_gather


def fisher_lee_matrix(z: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """[k, k] Fisher-Lee circular correlations between the k circles of an interleaved [B, 2k] batch (any scale).

    rho(a, b) = sum_{i<j} sin(a_i - a_j) sin(b_i - b_j) / sqrt(sum_{i<j} sin^2(a_i - a_j) sum_{i<j} sin^2(b_i - b_j)),
    evaluated in O(B k^2) with sum_{i,j} sin(a_i-a_j) sin(b_i-b_j) = 2 [Sa.Sb * Ca.Cb - Sa.Cb * Ca.Sb]
    (S, C: sin and cos of the angles; "." a sum over the batch).
    """
    pairs = per_circle_unit(z, eps).unflatten(-1, (-1, 2))  # rho is invariant to each circle's scale
    c, s = pairs[..., 0], pairs[..., 1]  # [B, k]: cos and sin of each circle's angle
    ss, cc, sc = s.t() @ s, c.t() @ c, s.t() @ c
    num = ss * cc - sc * sc.t()
    d = num.diagonal().clamp_min(eps)
    return num / torch.sqrt(d[:, None] * d[None, :])


class CircularSpreadLoss(nn.Module):
    """L = mean_{a<b} rho_FL(theta_a, theta_b)^2 over all pairs of circles (Fisher & Lee 1983).

    Angles are those of ``to_turns`` on the interleaved output (each (cos, sin) pair, any scale). Driving the
    circular correlation between circles to zero stops the embedding from collapsing onto a 1-D curve wound round
    the torus. Needs >= 2 circles and a batch of >= 3. Usage: ``loss = CircularSpreadLoss()(L2p(64)(features))``
    """

    def __init__(self, gather_distributed: bool = False):
        super().__init__()
        self.gather_distributed = gather_distributed

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        check_embeddings(z, "CircularSpreadLoss input", min_batch=3)
        check_even(int(z.shape[-1]), "the last dimension of the CircularSpreadLoss input")
        if z.shape[-1] < 4:
            raise ValueError(f"CircularSpreadLoss needs at least 2 circles (last dimension >= 4), got {z.shape[-1]}")
        (z,) = maybe_gather(self.gather_distributed, z)
        rho = fisher_lee_matrix(z)
        iu = torch.triu_indices(rho.shape[0], rho.shape[0], offset=1, device=z.device)
        return rho[iu[0], iu[1]].pow(2).mean()
