"""Element-wise gradient clamping *during* backward, as the paper does for torusC.

``torch.nn.utils.clip_grad_value_`` clamps ``p.grad`` after backward; the paper (SupCon-Framework
``torus`` branch) clamps each gradient as autograd computes it, with a tensor hook
``p.register_hook(lambda g: g.clamp(-v, v))``. This module installs exactly that hook, with
``clip_grad_value_``'s semantics per element.
"""

import math
from numbers import Real

import torch
from torch import nn

__all__ = ["clip_gradients"]


class _Handles:
    """The hooks' ``RemovableHandle`` s; ``remove()`` removes them all."""

    def __init__(self, handles):
        self.handles = list(handles)

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []

    def __len__(self):
        return len(self.handles)


def _parameters(model) -> list:
    if isinstance(model, nn.Module):
        return list(model.parameters())
    if isinstance(model, torch.Tensor):
        return [model]
    try:
        params = list(model)
    except TypeError:
        raise TypeError(
            f"model must be an nn.Module, a tensor or an iterable of tensors, got "
            f"{type(model).__name__}"
        ) from None
    bad = [type(p).__name__ for p in params if not isinstance(p, torch.Tensor)]
    if bad:
        raise TypeError(
            f"model must be an nn.Module, a tensor or an iterable of tensors; the "
            f"iterable holds {bad[0]}"
        )
    return params


def clip_gradients(model, value: float = 100.0) -> _Handles:
    """g -> clamp(g, -value, value) for every gradient, as autograd computes it (hooks).

    Hooks go on the parameters that require a gradient.

    Args:
        model: an ``nn.Module`` (its parameters), a tensor, or an iterable of tensors.
        value: the bound, a finite number > 0.

    Returns:
        A handle holding the hooks; ``len(handle)`` is their number, ``handle.remove()`` removes
        them all.

    Raises:
        ValueError: ``value`` is not a finite number > 0.
        TypeError: ``model`` is none of the three kinds, or its iterable holds a non-tensor.

    Example:
        >>> model = torch.nn.Linear(4, 2)
        >>> handle = clip_gradients(model, 100.0)
        >>> len(handle)
        2
        >>> handle.remove()
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"clip value must be a finite number > 0, got value={value!r}")
    params = _parameters(model)
    v = float(value)

    def clamp(grad: torch.Tensor) -> torch.Tensor:
        return grad.clamp(-v, v)

    return _Handles(p.register_hook(clamp) for p in params if p.requires_grad)
