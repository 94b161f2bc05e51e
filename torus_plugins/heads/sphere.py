"""Hypersphere baseline: plain L2 normalisation (what ``F.normalize`` does)."""

import torch
from torch import nn

from .._checks import (
    MIN_EPS,
    check_float_tensor,
    check_positive_float,
    check_positive_int,
    check_width,
)

_HALF = (torch.float16, torch.bfloat16)


class Sphere(nn.Module):
    """z = x / max(||x||_2, eps).  Output on S^(dim-1): width ``dim``, intrinsic dimension dim-1.

    float16/bfloat16 inputs are computed in float32 and cast back.

    Args:
        dim: input and output width.
        eps: lower bound on the norm; at least the smallest value that does not underflow.

    Raises:
        TypeError: ``eps`` is not a real number.
        ValueError: ``dim`` is not a positive integer, or ``eps`` is not a number above its minimum.

    Example:
        >>> Sphere(dim=128)(torch.randn(4, 128)).norm(dim=-1).allclose(torch.ones(4))
        True
    """

    n_circles = None

    def __init__(self, dim: int, eps: float = 1e-12):
        super().__init__()
        dim = check_positive_int(dim, "Sphere dim")
        self.dim = dim
        self.out_dim = dim
        self.intrinsic_dim = dim - 1
        self.eps = check_positive_float(eps, "Sphere eps", MIN_EPS, "eps must not underflow to 0")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Divide ``x`` by its L2 norm (at least ``eps``) along the last dimension.

        Args:
            x: floating-point tensor of shape [..., dim].

        Returns:
            A tensor of the shape and dtype of ``x``, of unit norm (zero rows stay zero).

        Raises:
            TypeError: ``x`` is not a floating-point tensor.
            ValueError: its last dimension is not ``dim``.
        """
        check_float_tensor(x)
        check_width(x, self.dim)
        if (
            x.dtype in _HALF
        ):  # eps = 1e-12 rounds to 0 in fp16 (zero input -> NaN); compute in float32
            return self.forward(x.float()).to(x.dtype)
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(self.eps)
        return x / norm

    def extra_repr(self) -> str:
        """The constructor argument shown by ``repr``.

        Returns:
            A string such as ``"dim=128"``.
        """
        return f"dim={self.dim}"
