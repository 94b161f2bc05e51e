"""torusC: read the input as turns and project onto the Clifford torus."""

import math

import torch
from torch import nn

from .._checks import check_float_tensor, check_positive_int, check_width
from ..geometry import TWO_PI, interleave


class Clifford(nn.Module):
    """z_2i, z_2i+1 = (cos 2*pi*x_i, sin 2*pi*x_i) / sqrt(dim): [..., dim] turns -> [..., 2*dim].

    The input is periodic with period 1 (x and x + 1 give the same point), so the intrinsic
    dimension is ``dim``. Large updates can wrap a coordinate around its circle: train with
    element-wise gradient clipping (the paper clamps at 100) and KoLeo. Prefer :class:`L2p` unless
    you need the full intrinsic dimension. float16/bfloat16 inputs are computed in float32 and cast
    back.

    Args:
        dim: input width, the number of circles; the output has width 2 * dim.

    Raises:
        ValueError: ``dim`` is not a positive integer.

    Example:
        >>> Clifford(dim=32)(torch.randn(8, 32)).shape      # [8, 32] turns -> [8, 64]
        torch.Size([8, 64])
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
        """Map turns ``x`` to (cos, sin) pairs on the Clifford torus.

        Args:
            x: floating-point tensor of shape [..., dim], angles in turns.

        Returns:
            A tensor of shape [..., 2 * dim] and the dtype of ``x``, of unit norm.

        Raises:
            TypeError: ``x`` is not a floating-point tensor.
            ValueError: its last dimension is not ``dim``.
        """
        check_float_tensor(x)
        check_width(x, self.dim)
        # 2*pi*x in half precision loses the angle: compute in float32
        if x.dtype in (torch.float16, torch.bfloat16):
            return self.forward(x.float()).to(x.dtype)
        theta = TWO_PI * x
        return interleave(torch.cos(theta) * self.scale, torch.sin(theta) * self.scale)

    def extra_repr(self) -> str:
        """The constructor argument and output width shown by ``repr``.

        Returns:
            A string such as ``"dim=32, out_dim=64"``.
        """
        return f"dim={self.dim}, out_dim={self.out_dim}"


TorusC = Clifford
