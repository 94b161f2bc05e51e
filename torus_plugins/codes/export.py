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
from .quantize import _quantize_torch, check_bits

__all__ = ["UInt8Encoder", "encode"]


class UInt8Encoder(nn.Module):
    """model(x) (interleaved Clifford output [B, 2k]) -> to_turns -> round(turn * 2**b) mod 2**b as uint8 [B, k].

    Usage: ``codes = UInt8Encoder(model, bits=8)(x)``
    """

    def __init__(self, model: nn.Module, bits: int = 8):
        super().__init__()
        self.model = model
        self.bits = check_bits(bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _quantize_torch(to_turns(self.model(x)), self.bits)


def encode(model: nn.Module, loader, bits: int = 8, progress: bool = True) -> np.ndarray:
    """Stream a DataLoader (batches: tensors or (x, y, ...) tuples) through ``model`` to uint8 codes [N, k].

    Runs in eval mode under no_grad (the model's training flag is restored), with a tqdm progress bar.
    Usage: ``codes = encode(model, loader, bits=8)``
    """
    from tqdm.auto import tqdm

    enc = UInt8Encoder(model, bits)
    was_training = model.training
    model.eval()
    out = []
    try:
        with torch.no_grad():
            for batch in tqdm(loader, desc="encode", unit="batch", disable=not progress):
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                if not isinstance(x, torch.Tensor):
                    raise TypeError(f"batches must be tensors or (x, y) tuples, got {type(x).__name__}")
                out.append(enc(x).cpu().numpy())
    finally:
        model.train(was_training)
    if not out:
        raise ValueError("the loader yielded no batches")
    return np.concatenate(out, 0)
