"""Element-wise gradient clamping through tensor hooks (as the paper does for torusC)."""

import torch
from torch import nn


class _Handles:
    def __init__(self, handles):
        self.handles = list(handles)

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []

    def __len__(self):
        return len(self.handles)


def clip_gradients(model, value: float = 100.0) -> _Handles:
    """Clamp every gradient element to [-value, value] as it is computed (a hook on each trainable parameter).

    ``model`` is an ``nn.Module``, a tensor, or an iterable of tensors. Returns a handle; ``handle.remove()`` undoes it.
    Usage: ``h = clip_gradients(model, 100.0)``  ...  ``h.remove()``
    """
    if not (value > 0):
        raise ValueError(f"clip value must be > 0, got {value!r}")
    if isinstance(model, nn.Module):
        params = model.parameters()
    elif isinstance(model, torch.Tensor):
        params = [model]
    else:
        params = model
    v = float(value)
    return _Handles(p.register_hook(lambda g: g.clamp(-v, v)) for p in params if p.requires_grad)
