"""torusC: read the input as turns and project onto the Clifford torus."""

import math

import torch
from torch import nn

from .._checks import check_float_tensor, check_positive_int, check_width
from ..geometry import TWO_PI, interleave


class Clifford(nn.Module):
    """z_2i, z_2i+1 = (cos 2*pi*x_i, sin 2*pi*x_i) / sqrt(dim).  [..., dim] turns -> [..., 2*dim], unit norm.

    The input is periodic with period 1 (x and x + 1 give the same point), so intrinsic dimension is ``dim``.
    Large updates can wrap a coordinate around its circle: train with element-wise gradient clipping (the paper
    clamps at 100) and KoLeo. Prefer :class:`L2p` unless you need the full intrinsic dimension.

    float16/bfloat16 inputs are computed in float32 and cast back.

    Usage: ``z = Clifford(dim=32)(features)``  # [B, 32] -> [B, 64]
    """

    def __init__(self, dim: int):
        super().__init__()
        dim = check_positive_int(dim, "Clifford dim")
        self.dim = dim
        self.out_dim = 2 * dim
        self.n_circles = dim
        self.intrinsic_dim = dim
        self.scale = 1.0 / math.sqrt(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor(x)
        check_width(x, self.dim)
        if x.dtype in (torch.float16, torch.bfloat16):  # 2*pi*x in half precision loses the angle: use float32
            return self.forward(x.float()).to(x.dtype)
        theta = TWO_PI * x
        return interleave(torch.cos(theta) * self.scale, torch.sin(theta) * self.scale)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, out_dim={self.out_dim}"


TorusC = Clifford
