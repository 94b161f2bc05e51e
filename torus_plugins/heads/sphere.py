"""Hypersphere baseline: plain L2 normalisation (what ``F.normalize`` does)."""

import torch
from torch import nn

from .._checks import check_float_tensor, check_positive_int, check_width


class Sphere(nn.Module):
    """z = x / max(||x||_2, eps).  Output on S^(dim-1): width ``dim``, intrinsic dimension dim-1.

    Usage: ``z = Sphere(dim=128)(features)``
    """

    n_circles = None

    def __init__(self, dim: int, eps: float = 1e-12):
        super().__init__()
        check_positive_int(dim, "dim")
        self.dim = dim
        self.out_dim = dim
        self.intrinsic_dim = dim - 1
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor(x)
        check_width(x, self.dim)
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(self.eps)
        return x / norm

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
