"""Shared input handling of the heads with a BatchNorm MLP in front (TorusMLPHead,
ProjectionHead)."""

import torch
from torch import nn

from .._checks import check_float_tensor, check_width


def run_mlp(mlp: nn.Module, x: torch.Tensor, in_features: int, name: str) -> torch.Tensor:
    """mlp over the last dimension of [..., in_features] (1-D input = one sample, [B, V, D] = B*V
    samples).

    BatchNorm1d would read a 3-D input's second dimension as channels and fails on 1-D input with a
    message about its own shapes; here the leading dimensions are flattened into one batch. In
    training mode BatchNorm needs at least 2 samples, which is checked with a message saying what
    to do.

    Args:
        mlp: the MLP, taking [N, in_features].
        x: floating-point tensor of shape [..., in_features].
        in_features: the expected last dimension.
        name: the head's name in error messages.

    Returns:
        The MLP's output, of shape [..., out] (the leading dimensions of ``x``).

    Raises:
        TypeError: ``x`` is not a floating-point tensor.
        ValueError: its last dimension is not ``in_features``, or ``mlp`` has BatchNorm, is in
            training mode and ``x`` holds fewer than 2 samples.
    """
    check_float_tensor(x, f"{name} input")
    check_width(x, in_features, f"{name} input")
    lead = x.shape[:-1]
    flat = x.reshape(-1, in_features)
    has_bn = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in mlp.modules())
    if has_bn and mlp.training and flat.shape[0] < 2:
        raise ValueError(
            f"{name} in training mode needs at least 2 samples per batch (BatchNorm "
            f"statistics), got input shape {tuple(x.shape)}; call .eval() to embed a "
            f"single sample"
        )
    out = mlp(flat)
    return out.reshape(*lead, out.shape[-1])
