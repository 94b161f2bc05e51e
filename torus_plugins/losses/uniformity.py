"""Uniformity loss of Wang & Isola 2020."""

import math

import torch
from torch import nn

from .._checks import check_bool, check_positive_float
from ._common import check_embeddings, compute_dtype, full_precision
from .distributed import maybe_gather


def uniformity(z: torch.Tensor, t: float) -> torch.Tensor:
    """log mean_{i != j} exp(-t ||z_i - z_j||^2), with a log-sum-exp; the input is not checked.

    Args:
        z: floating-point tensor of shape [B, D], B >= 2.
        t: the scale of the squared distances.

    Returns:
        A 0-d tensor of the dtype of ``z``.
    """
    sq = z.pow(2).sum(-1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * (z @ z.t())).clamp_min(0.0)
    b = z.shape[0]
    self_pairs = torch.eye(b, dtype=torch.bool, device=z.device)  # left out: exp(-inf) = 0
    logits = (-t * d2).masked_fill(self_pairs, -float("inf")).flatten()  # static shape, not d2[off]
    return torch.logsumexp(logits, dim=0) - math.log(b * (b - 1))


class UniformityLoss(nn.Module):
    """L = log mean_{i != j} exp(-t ||z_i - z_j||^2)  (Wang & Isola 2020), t = 2 by default.

    Computed with a log-sum-exp (stable). Input [B, D] or [B, n_views, D] (per view, averaged).

    Args:
        t: the scale, a number > 0 (t <= 0 would reward collapse).
        gather_distributed: gather the batch of all ranks (see :mod:`.distributed`).

    Raises:
        TypeError: ``t`` is not a real number, or ``gather_distributed`` is not a bool.
        ValueError: ``t`` is not finite and > 0.

    Example:
        >>> from torus_plugins.heads import Clifford
        >>> loss = UniformityLoss()(Clifford(32)(torch.rand(16, 32)))    # a 0-d tensor
    """

    def __init__(self, t: float = 2.0, gather_distributed: bool = False):
        super().__init__()
        self.t = check_positive_float(t, "UniformityLoss t")  # t <= 0 would reward collapse
        self.gather_distributed = check_bool(
            gather_distributed, "UniformityLoss gather_distributed"
        )

    @full_precision
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """The uniformity loss of a batch (of each view, averaged).

        Args:
            z: floating-point tensor of shape [B, D] or [B, n_views, D], B >= 2.

        Returns:
            A 0-d tensor: float32 for float16/bfloat16 input, else the dtype of ``z``.

        Raises:
            TypeError: ``z`` is not a floating-point tensor.
            ValueError: ``z`` is not 2-D or 3-D, has fewer than 2 samples, an empty dimension,
                NaN/inf (validation mode "host"; mode "device" raises
                RuntimeError instead, see :mod:`torus_plugins.validation`), or the loss overflowed
                on finite input.
        """
        check_embeddings(z, "UniformityLoss input", dims=(2, 3))
        (z,) = maybe_gather(self.gather_distributed, z)
        (z,), out_dtype = compute_dtype(z)
        if z.dim() == 2:
            return uniformity(z, self.t).to(out_dtype)
        return (
            torch.stack([uniformity(z[:, v], self.t) for v in range(z.shape[1])])
            .mean()
            .to(out_dtype)
        )
