"""Ship a model with a torus head as a uint8 encoder.

Usage::

    enc = UInt8Encoder(nn.Sequential(backbone, L2p(64)), bits=8)      # forward -> [B, 32] uint8 codes
    ep = torch.export.export(enc, (x,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    codes = encode(model, loader, bits=8)                              # numpy [N, k] uint8
"""

import numpy as np
import torch
from torch import nn

from ..geometry import to_turns
from .._checks import check_bool, check_float_tensor
from .quantize import _quantize_torch, check_bits, check_finite_turns

__all__ = ["UInt8Encoder", "encode"]


class UInt8Encoder(nn.Module):
    """model(x) (interleaved Clifford output [B, 2k]) -> to_turns -> round(turn * 2**b) mod 2**b as uint8 [B, k].

    A model output with NaN or inf raises ValueError (eager mode; an exported or compiled encoder cannot check data
    and maps NaN to an undefined code: check the model's outputs where you run it). Any floating dtype.

    Usage: ``codes = UInt8Encoder(model, bits=8)(x)``
    """

    def __init__(self, model: nn.Module, bits: int = 8):
        super().__init__()
        if not isinstance(model, nn.Module) and not callable(model):
            raise TypeError(f"model must be a torch.nn.Module (or callable), got {type(model).__name__}")
        self.model = model
        self.bits = check_bits(bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.model(x)
        check_float_tensor(z, "model output")
        check_finite_turns(z, "model output")  # NaN/inf embeddings would otherwise become valid-looking codes
        return _quantize_torch(to_turns(z), self.bits)


def _model_device(model) -> torch.device:
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


def encode(model: nn.Module, loader, bits: int = 8, progress: bool = True, device=None) -> np.ndarray:
    """Stream a DataLoader (batches: tensors or (x, y, ...) tuples) through ``model`` to uint8 codes [N, k].

    Runs in eval mode under no_grad (the model's training flag is restored), with a tqdm progress bar. Each batch
    is moved to ``device`` (default: the device of the model's parameters); codes are collected on the CPU as
    uint8 (peak memory about twice the codes). NaN/inf embeddings raise ValueError naming the batch.
    Usage: ``codes = encode(model, loader, bits=8)``
    """
    from tqdm.auto import tqdm

    check_bool(progress, "progress")
    enc = UInt8Encoder(model, bits)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    try:
        device = _model_device(model) if device is None else torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be a torch device or its name ('cpu', 'cuda:0'), got {device!r}: "
                         f"{exc}") from None
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad():
            for i, batch in enumerate(tqdm(loader, desc="encode", unit="batch", disable=not progress)):
                x = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
                if not isinstance(x, torch.Tensor):
                    raise TypeError(f"batches must be tensors or (x, y) tuples, got {type(x).__name__}")
                try:
                    out.append(enc(x.to(device, non_blocking=True)).cpu().numpy())
                except ValueError as exc:
                    raise ValueError(f"batch {i}: {exc}") from None
    finally:
        model.train(was_training)
    if not out:
        raise ValueError("the loader yielded no batches")
    return np.concatenate(out, 0)
