"""b-bit integer codes of angles: code = round(turn * 2**b) mod 2**b, no fitted parameters.

Usage::

    codes = quantize(turns, bits=8)        # numpy or torch in, same kind out, uint8
    turns_hat = dequantize(codes, bits=8)  # code / 2**b; circular error <= 2**-(b+1) turns
"""

import numpy as np
import torch

__all__ = ["quantize", "dequantize", "check_bits", "check_codes"]


def check_bits(bits, lo: int = 1, hi: int = 8) -> int:
    """Raise ValueError unless ``bits`` is an integer in [lo, hi]; return it as int."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not lo <= int(bits) <= hi:
        raise ValueError(f"bits must be an integer in [{lo}, {hi}], got {bits!r}")
    return int(bits)


def check_codes(codes, bits: int, name: str = "codes") -> np.ndarray:
    """Return ``codes`` as a numpy uint8 array; TypeError unless uint8, ValueError if any code >= 2**bits."""
    if isinstance(codes, torch.Tensor):
        if codes.dtype != torch.uint8:
            raise TypeError(f"{name} must have dtype uint8, got {codes.dtype}")
        codes = codes.detach().cpu().numpy()
    if not isinstance(codes, np.ndarray):
        raise TypeError(f"{name} must be a numpy array or torch tensor of uint8, got {type(codes).__name__}")
    if codes.dtype != np.uint8:
        raise TypeError(f"{name} must have dtype uint8, got {codes.dtype}")
    if bits < 8 and codes.size and int(codes.max()) >= (1 << bits):
        raise ValueError(f"{name} holds value {int(codes.max())} >= 2**bits = {1 << bits} (bits={bits})")
    return codes


def _quantize_torch(turns: torch.Tensor, bits: int) -> torch.Tensor:
    """Unchecked torch core (traceable by torch.export): round(turn * 2**b) mod 2**b as uint8."""
    levels = 1 << bits
    q = torch.round(turns * levels).to(torch.int64)
    return torch.remainder(q, levels).to(torch.uint8)


def quantize(turns, bits: int = 8):
    """b-bit codes of angles in turns: ``round(turn * 2**b) mod 2**b`` (uint8, same shape, same kind).

    numpy in -> numpy out; torch in -> torch out (traceable by ``torch.export``; the finite check is skipped
    while compiling). Rounding is half-to-even in both. Any finite real turn is accepted (taken mod 1).

    Usage: ``codes = quantize(to_turns(z), bits=8)``
    """
    bits = check_bits(bits)
    if isinstance(turns, torch.Tensor):
        if not turns.is_floating_point():
            raise TypeError(f"turns must be a floating-point tensor, got dtype {turns.dtype}")
        if not torch.compiler.is_compiling() and not bool(torch.isfinite(turns).all()):
            raise ValueError("turns contains NaN or inf values")
        return _quantize_torch(turns, bits)
    if isinstance(turns, (list, tuple, float, int)):
        turns = np.asarray(turns, dtype=np.float64)
    if not isinstance(turns, np.ndarray):
        raise TypeError(f"turns must be a numpy array or torch tensor, got {type(turns).__name__}")
    if not np.issubdtype(turns.dtype, np.floating):
        raise TypeError(f"turns must be floating point, got dtype {turns.dtype}")
    if not np.isfinite(turns).all():
        raise ValueError("turns contains NaN or inf values")
    levels = 1 << bits
    q = np.round(turns.astype(np.float64) * levels).astype(np.int64)
    return np.mod(q, levels).astype(np.uint8)


def dequantize(codes, bits: int = 8):
    """Turns of b-bit codes: ``code / 2**b`` in [0, 1) (float32; numpy or torch like the input).

    Usage: ``turns = dequantize(codes, bits=8)``
    """
    bits = check_bits(bits)
    if isinstance(codes, torch.Tensor):
        check_codes(codes, bits)
        return codes.to(torch.float32) / float(1 << bits)
    codes = check_codes(codes, bits)
    return codes.astype(np.float32) / np.float32(1 << bits)
