"""torusN: pairwise L2 normalisation ("L2p"), the recommended torus head."""

import math

import torch
from torch import nn

from .._checks import check_even, check_float_tensor, check_width


class L2p(nn.Module):
    """Normalise each adjacent pair (x_2i, x_2i+1) to a point on a circle, then scale to unit norm.

    z_2i, z_2i+1 = (x_2i, x_2i+1) / (sqrt(k) * max(||(x_2i, x_2i+1)||, eps)),  k = dim / 2 circles.

    The output is already in the Clifford layout (cos t_i, sin t_i) / sqrt(k) with t_i = atan2(x_2i+1, x_2i), so
    the dot product of two outputs is (1/k) sum_i cos(t_i - t'_i): a drop-in for ``F.normalize``. A zero pair
    gives zeros (finite, zero gradient), as ``F.normalize`` does.

    Usage: ``z = L2p(dim=64)(features)``  # [B, 64] -> [B, 64], 32 circles
    """

    def __init__(self, dim: int, eps: float = 1e-12):
        super().__init__()
        check_even(dim, "L2p dim")
        self.dim = dim
        self.out_dim = dim
        self.n_circles = dim // 2
        self.intrinsic_dim = dim // 2
        self.eps = eps
        self.scale = math.sqrt(self.n_circles)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor(x)
        check_width(x, self.dim)
        pairs = x.unflatten(-1, (self.n_circles, 2))
        # 1 / (sqrt(k) * max(||pair||, eps)) as one rsqrt of the clamped squared norm: fewer kernels than
        # vector_norm + divide, and the clamp keeps a zero pair's gradient finite (as in F.normalize).
        inv = torch.rsqrt((pairs * pairs).sum(-1, keepdim=True).clamp_min(self.eps * self.eps)) / self.scale
        return (pairs * inv).flatten(-2)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, n_circles={self.n_circles}"


TorusN = L2p
