"""Uniformity loss of Wang & Isola 2020."""

import math

import torch
from torch import nn

from .._checks import check_bool, check_positive_float
from ._common import check_embeddings, compute_dtype, full_precision
from .distributed import maybe_gather


def uniformity(z: torch.Tensor, t: float) -> torch.Tensor:
    sq = z.pow(2).sum(-1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * (z @ z.t())).clamp_min(0.0)
    b = z.shape[0]
    self_pairs = torch.eye(b, dtype=torch.bool, device=z.device)  # left out: exp(-inf) = 0
    logits = (-t * d2).masked_fill(self_pairs, -float("inf")).flatten()  # static shape, not d2[off]
    return torch.logsumexp(logits, dim=0) - math.log(b * (b - 1))


class UniformityLoss(nn.Module):
    """L = log mean_{i != j} exp(-t ||z_i - z_j||^2)  (Wang & Isola 2020), t = 2 by default.

    Computed with a log-sum-exp (stable). Input [B, D] or [B, n_views, D] (per view, averaged).
    Usage: ``loss = UniformityLoss()(Clifford(32)(turns))``
    """

    def __init__(self, t: float = 2.0, gather_distributed: bool = False):
        super().__init__()
        self.t = check_positive_float(t, "UniformityLoss t")  # t <= 0 would reward collapse
        self.gather_distributed = check_bool(gather_distributed, "UniformityLoss gather_distributed")

    @full_precision
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        check_embeddings(z, "UniformityLoss input", dims=(2, 3))
        (z,) = maybe_gather(self.gather_distributed, z)
        (z,), out_dtype = compute_dtype(z)
        if z.dim() == 2:
            return uniformity(z, self.t).to(out_dtype)
        return torch.stack([uniformity(z[:, v], self.t) for v in range(z.shape[1])]).mean().to(out_dtype)
