"""Input checks and small helpers shared by the losses."""

import functools

import torch
import torch.nn.functional as F

from .._checks import check_finite, check_float_tensor, check_labels_finite
from ..heads import L2p


def check_embeddings(x, name: str, min_batch: int = 2, dims=(2,)) -> None:
    """Floating, finite, ``x.dim()`` in ``dims``, batch size >= ``min_batch``."""
    check_float_tensor(x, name)
    if x.dim() not in dims:
        want = " or ".join(f"{d}-D" for d in dims)
        raise ValueError(f"{name} must be {want}, got shape {tuple(x.shape)}")
    if x.shape[0] < min_batch:
        raise ValueError(f"{name} needs a batch of at least {min_batch} samples, got batch size {x.shape[0]}")
    if x.shape[-1] == 0:
        raise ValueError(f"{name} has an empty feature dimension, shape {tuple(x.shape)}")
    check_finite(x, name)


def check_labels(labels, n: int, name: str = "labels") -> torch.Tensor:
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(labels).__name__}")
    labels = labels.reshape(-1) if labels.dim() > 1 and labels.numel() == labels.shape[0] else labels
    if labels.dim() != 1 or labels.shape[0] != n:
        raise ValueError(f"{name} must have shape [{n}] (one per sample), got shape {tuple(labels.shape)}")
    check_labels_finite(labels, name)
    return labels


HALF = (torch.float16, torch.bfloat16)


def compute_dtype(*xs):
    """float16/bfloat16 inputs are computed in float32 (their squares, exps and eps under/overflow); returns the
    (possibly upcast) tensors and the loss dtype: float32 for half inputs (as autocast does for losses), else
    the input dtype."""
    out_dtype = xs[0].dtype
    if out_dtype in HALF:
        xs = tuple(x.float() for x in xs)
        out_dtype = torch.float32
    return xs, out_dtype


def full_precision(forward):
    """Run a loss's forward with autocast disabled on its inputs' device: logits / tau, exp and log of a loss in
    bfloat16 lose 2-3 significant digits (the inputs are upcast by :func:`compute_dtype` instead)."""
    @functools.wraps(forward)
    def wrapper(self, *args, **kwargs):
        first = next((a for a in args if isinstance(a, torch.Tensor)), None)
        device = first.device.type if first is not None else "cpu"
        if device in ("cpu", "cuda") and torch.is_autocast_enabled(device):
            with torch.autocast(device, enabled=False):
                return forward(self, *args, **kwargs)
        return forward(self, *args, **kwargs)
    return wrapper


def per_circle_unit(z: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Renormalise every (cos, sin) pair of an interleaved vector to norm 1/sqrt(k): the :class:`L2p` head."""
    return L2p(int(z.shape[-1]), eps=eps)(z)


def unit(z: torch.Tensor) -> torch.Tensor:
    return F.normalize(z, dim=-1)
