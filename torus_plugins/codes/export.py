"""Ship a model with a torus head as a uint8 encoder.

Usage::

    enc = UInt8Encoder(nn.Sequential(backbone, L2p(64)), bits=8)      # forward -> [B, 32] uint8
    ep = torch.export.export(enc, (x,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    codes = encode(model, loader, bits=8)                              # numpy [N, k] uint8
"""

import numpy as np
import torch
from torch import nn

from .._checks import check_bool, check_float_tensor
from ..geometry import to_turns
from .quantize import _quantize_torch, check_bits, check_finite_turns

__all__ = ["UInt8Encoder", "encode"]


class UInt8Encoder(nn.Module):
    """code = round(to_turns(model(x)) * 2**b) mod 2**b: [B, 2k] (cos, sin) pairs -> [B, k] uint8.

    A model output with NaN or inf raises ValueError (eager mode; an exported or compiled encoder
    cannot check data and maps NaN to an undefined code: check the model's outputs where you run
    it). Any floating dtype.

    Args:
        model: a module (or callable) whose output is an interleaved (cos, sin) embedding [..., 2k].
        bits: b, an integer in [1, 8].

    Raises:
        TypeError: ``model`` is not callable.
        ValueError: ``bits`` is not an integer in [1, 8].

    Example:
        >>> from torus_plugins.heads import L2p
        >>> enc = UInt8Encoder(torch.nn.Sequential(torch.nn.Linear(16, 64), L2p(64)), bits=8)
        >>> enc(torch.randn(4, 16)).shape, enc(torch.randn(4, 16)).dtype
        (torch.Size([4, 32]), torch.uint8)
    """

    def __init__(self, model: nn.Module, bits: int = 8):
        super().__init__()
        if not isinstance(model, nn.Module) and not callable(model):
            raise TypeError(
                f"model must be a torch.nn.Module (or callable), got {type(model).__name__}"
            )
        self.model = model
        self.bits = check_bits(bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The b-bit codes of the model's embedding of ``x``.

        Args:
            x: the model's input.

        Returns:
            A uint8 tensor [..., k] on the model output's device, codes < 2**bits.

        Raises:
            TypeError: the model output is not a floating-point tensor.
            ValueError: the model output holds NaN or inf (checked in eager mode only).
        """
        z = self.model(x)
        check_float_tensor(z, "model output")
        # NaN/inf embeddings would otherwise become valid-looking codes
        check_finite_turns(z, "model output")
        return _quantize_torch(to_turns(z), self.bits)


def _model_device(model) -> torch.device:
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


def encode(
    model: nn.Module, loader, bits: int = 8, progress: bool = True, device=None
) -> np.ndarray:
    """:class:`UInt8Encoder` (model, bits) over every batch of a loader: uint8 codes [N, k].

    Runs in eval mode under no_grad (the model's training flag is restored), with a tqdm progress
    bar. Each batch is moved to ``device`` (default: the device of the model's parameters); codes
    are collected on the CPU as uint8 (peak memory about twice the codes).

    Args:
        model: a module whose output is an interleaved (cos, sin) embedding [B, 2k].
        loader: an iterable of batches: tensors, or tuples/lists whose first item is the input
            (``(x, y)`` from a DataLoader).
        bits: b, an integer in [1, 8].
        progress: show a tqdm progress bar.
        device: where to run the batches (a ``torch.device`` or its name); default the model's.

    Returns:
        A numpy uint8 array [N, k], N the total number of samples, in loader order.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``, ``progress`` is not a bool, a batch's input
            is not a tensor, or the model output is not a floating-point tensor.
        ValueError: ``bits`` is not an integer in [1, 8], ``device`` is not a device, a batch's
            embedding holds NaN or inf (the message names the batch), or the loader is empty.

    Example:
        >>> from torus_plugins.heads import L2p
        >>> model = torch.nn.Sequential(torch.nn.Linear(16, 64), L2p(64))
        >>> batches = [(torch.randn(8, 16), 0), (torch.randn(8, 16), 1)]
        >>> encode(model, batches, bits=4, progress=False).shape
        (16, 32)
    """
    from tqdm.auto import tqdm

    check_bool(progress, "progress")
    enc = UInt8Encoder(model, bits)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    try:
        device = _model_device(model) if device is None else torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device must be a torch device or its name ('cpu', 'cuda:0'), got {device!r}: {exc}"
        ) from None
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad():
            for i, batch in enumerate(
                tqdm(loader, desc="encode", unit="batch", disable=not progress)
            ):
                x = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
                if not isinstance(x, torch.Tensor):
                    raise TypeError(
                        f"batches must be tensors or (x, y) tuples, got {type(x).__name__}"
                    )
                try:
                    out.append(enc(x.to(device, non_blocking=True)).cpu().numpy())
                except ValueError as exc:
                    raise ValueError(f"batch {i}: {exc}") from None
    finally:
        model.train(was_training)
    if not out:
        raise ValueError("the loader yielded no batches")
    return np.concatenate(out, 0)
