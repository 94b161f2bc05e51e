"""Input checks shared by heads, losses and codes: every message names what was expected and what came."""

import torch


def check_float_tensor(x, name: str = "input") -> None:
    """Raise TypeError unless ``x`` is a floating-point torch tensor."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")


def check_width(x: torch.Tensor, expected: int, name: str = "input") -> None:
    """Raise ValueError unless the last dimension of ``x`` is ``expected``."""
    if x.dim() == 0 or x.shape[-1] != expected:
        shape = tuple(x.shape)
        raise ValueError(f"{name} must have last dimension {expected}, got shape {shape}")


def check_even(dim: int, what: str) -> None:
    """Raise ValueError unless ``dim`` is a positive even integer (torus layouts pair coordinates)."""
    if not isinstance(dim, int) or isinstance(dim, bool) or dim <= 0:
        raise ValueError(f"{what} must be a positive integer, got {dim!r}")
    if dim % 2:
        raise ValueError(f"{what} must be even (coordinates are read in (cos, sin) pairs), got {dim}")


def check_positive_int(value: int, what: str) -> None:
    """Raise ValueError unless ``value`` is a positive integer."""
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")


def check_finite(x: torch.Tensor, name: str = "input") -> None:
    """Raise ValueError if ``x`` holds NaN or inf (a diverged step; nothing downstream can repair it)."""
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise ValueError(f"{name} contains {bad} NaN or inf value(s)")
