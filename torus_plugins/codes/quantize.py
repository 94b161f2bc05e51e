"""b-bit integer codes of angles: code = round(turn * 2**b) mod 2**b, no fitted parameters.

Usage::

    codes = quantize(turns, bits=8)        # numpy or torch in, same kind out, uint8
    turns_hat = dequantize(codes, bits=8)  # code / 2**b; circular error <= 2**-(b+1) turns
"""

import numpy as np
import torch

__all__ = ["quantize", "dequantize", "check_bits", "check_codes", "check_finite_turns"]


def check_bits(bits, lo: int = 1, hi: int = 8) -> int:
    """``bits`` as an int, checked to be an integer in [lo, hi].

    Args:
        bits: the number of bits per angle (a Python or numpy integer, not a bool).
        lo: the smallest accepted value.
        hi: the largest accepted value.

    Returns:
        ``int(bits)``.

    Raises:
        ValueError: ``bits`` is not an integer in [lo, hi].
    """
    if (
        isinstance(bits, bool)
        or not isinstance(bits, (int, np.integer))
        or not lo <= int(bits) <= hi
    ):
        raise ValueError(f"bits must be an integer in [{lo}, {hi}], got {bits!r}")
    return int(bits)


def check_codes(codes, bits: int, name: str = "codes") -> np.ndarray:
    """``codes`` as a numpy uint8 array, checked to hold b-bit codes (every code < 2**bits).

    Args:
        codes: a numpy array, numpy scalar or torch tensor (moved to the CPU) of dtype uint8.
        bits: the number of bits per code, 1..8.
        name: the argument's name in error messages.

    Returns:
        A numpy uint8 array of the shape of ``codes`` (no copy for a numpy array).

    Raises:
        TypeError: ``codes`` is not a numpy array or torch tensor, or its dtype is not uint8.
        ValueError: a code is >= 2**bits.
    """
    if isinstance(codes, torch.Tensor):
        if codes.dtype != torch.uint8:
            raise TypeError(f"{name} must have dtype uint8, got {codes.dtype}")
        codes = codes.detach().cpu().numpy()
    if isinstance(codes, np.generic):
        codes = np.asarray(codes)
    if not isinstance(codes, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy array or torch tensor of uint8, got {type(codes).__name__}"
        )
    if codes.dtype != np.uint8:
        raise TypeError(f"{name} must have dtype uint8, got {codes.dtype}")
    if bits < 8 and codes.size and int(codes.max()) >= (1 << bits):
        raise ValueError(
            f"{name} holds value {int(codes.max())} >= 2**bits = {1 << bits} (bits={bits})"
        )
    return codes


#: Elements quantised per step: temporaries stay a few MB whatever the input size.
CHUNK = 1 << 18


def _quantize_torch(turns: torch.Tensor, bits: int) -> torch.Tensor:
    """Unchecked torch core (traceable by torch.export): round(turn * 2**b) mod 2**b, exact, uint8.

    Computed as round(r * 2**b) mod 2**b with r = t - trunc(t) in the input's dtype, every step
    exact: r is exact (t and trunc(t) have the same sign and, for |t| >= 1, are within a factor of
    2: Sterbenz), scaling |r| < 1 by 2**b <= 256 is exact and cannot overflow (turns * 256 would
    overflow fp16 for |turn| > 255), and rounding to an integer is exact. It equals
    round(t * 2**b) mod 2**b, half-to-even included, because t * 2**b and r * 2**b differ by a
    multiple of 2**b, an even integer. (t - floor(t) is not exact for -1/2 < t < 0: 1 + t rounds.)
    """
    levels = 1 << bits
    q = torch.round((turns - torch.trunc(turns)) * levels)  # an integer in [-levels, levels]
    return q.to(torch.int16).bitwise_and(levels - 1).to(torch.uint8)  # mod 2**b (two's complement)


def _nonfinite_error(index: int, name: str = "turns") -> ValueError:
    return ValueError(
        f"{name} contains NaN or inf (first at flat index {index}); expected finite values"
    )


def check_finite_turns(turns: torch.Tensor, name: str = "turns") -> None:
    """Check that a torch tensor holds no NaN or inf (skipped while compiling or exporting).

    Args:
        turns: a floating-point tensor.
        name: the argument's name in the error message.

    Raises:
        ValueError: ``turns`` holds NaN or inf (the message gives the first flat index).
    """
    if torch.compiler.is_compiling() or getattr(torch.compiler, "is_exporting", lambda: False)():
        return
    if turns.numel() and not bool(torch.isfinite(turns).all()):
        raise _nonfinite_error(int((~torch.isfinite(turns)).reshape(-1).nonzero()[0]), name)


def _quantize_numpy(turns: np.ndarray, bits: int) -> np.ndarray:
    levels = 1 << bits
    out = np.empty(turns.shape, np.uint8)
    flat_in, flat_out = turns.reshape(-1), out.reshape(-1)
    for s in range(0, flat_in.size, CHUNK):
        t = flat_in[s : s + CHUNK]
        finite = np.isfinite(t)
        if not finite.all():
            raise _nonfinite_error(s + int(np.argmin(finite)))
        q = np.trunc(t)  # one chunk-sized temporary, in the input's dtype, updated in place:
        np.subtract(t, q, out=q)  # t - trunc(t), exact, in (-1, 1)
        q *= levels  # exact: |q| < 1 and levels is a power of two
        np.rint(q, out=q)  # half to even, as torch.round; an integer in [-levels, levels]
        flat_out[s : s + CHUNK] = q.astype(np.int16) & (levels - 1)  # mod 2**b (two's complement)
    return out


def quantize(turns, bits: int = 8):
    """b-bit codes of angles in turns: ``round(turn * 2**b) mod 2**b`` (uint8, same shape and kind).

    numpy in -> numpy out; torch in -> torch out (traceable by ``torch.export``; the finite check
    is skipped while compiling). Exact for every finite turn of either sign in any floating dtype
    (float16, bfloat16, float32, float64, longdouble): the code is the exact real product
    turn * 2**b rounded half to even (a tie at 0.5 -> 0, 1.5 -> 2, -0.5 -> 0, -1.5 -> -2 =
    2**b - 2), then taken mod 2**b; nothing overflows (computed as
    round((turn - trunc(turn)) * 2**b), every step exact). Works in chunks of ``CHUNK`` elements: no
    full-size temporaries besides the uint8 output.

    Args:
        turns: angles in turns, a floating-point numpy array or torch tensor of any shape (a
            Python float, int, list or tuple is read as a float64 array).
        bits: b, an integer in [1, 8].

    Returns:
        uint8 codes in [0, 2**b), of the shape of ``turns``: a torch tensor on the device of a
        tensor input, else a numpy array.

    Raises:
        ValueError: ``bits`` is not an integer in [1, 8], or ``turns`` holds NaN or inf.
        TypeError: ``turns`` is neither a numpy array nor a torch tensor, or not floating point.

    Example:
        >>> quantize(np.array([0.0, 0.25, -0.25, 0.999]), bits=8)
        array([  0,  64, 192,   0], dtype=uint8)
    """
    bits = check_bits(bits)
    if isinstance(turns, torch.Tensor):
        if not turns.is_floating_point():
            raise TypeError(f"turns must be a floating-point tensor, got dtype {turns.dtype}")
        check_finite_turns(turns)
        if torch.compiler.is_compiling() or turns.numel() <= CHUNK or turns.requires_grad:
            return _quantize_torch(turns, bits)
        out = torch.empty(turns.shape, dtype=torch.uint8, device=turns.device)
        flat_in, flat_out = turns.reshape(-1), out.view(-1)
        for s in range(0, flat_in.numel(), CHUNK):
            flat_out[s : s + CHUNK] = _quantize_torch(flat_in[s : s + CHUNK], bits)
        return out
    if isinstance(turns, (list, tuple, float, int)) and not isinstance(turns, bool):
        turns = np.asarray(turns, dtype=np.float64)
    if not isinstance(turns, np.ndarray):
        raise TypeError(f"turns must be a numpy array or torch tensor, got {type(turns).__name__}")
    if not np.issubdtype(turns.dtype, np.floating):
        raise TypeError(f"turns must be floating point, got dtype {turns.dtype}")
    return _quantize_numpy(turns, bits)


def dequantize(codes, bits: int = 8):
    """Turns of b-bit codes: ``code / 2**b`` in [0, 1).

    The inverse of :func:`quantize` up to a circular error <= 2**-(b+1) turns.

    Args:
        codes: uint8 codes < 2**bits, a numpy array or torch tensor of any shape.
        bits: b, an integer in [1, 8].

    Returns:
        float32 turns of the shape of ``codes``: a torch tensor for a tensor input, else a numpy
        array.

    Raises:
        ValueError: ``bits`` is not an integer in [1, 8], or a code is >= 2**bits.
        TypeError: ``codes`` is not a numpy array or torch tensor of dtype uint8.

    Example:
        >>> dequantize(np.array([0, 64, 192], dtype=np.uint8), bits=8)
        array([0.  , 0.25, 0.75], dtype=float32)
    """
    bits = check_bits(bits)
    if isinstance(codes, torch.Tensor):
        check_codes(codes, bits)
        return codes.to(torch.float32) / float(1 << bits)
    codes = check_codes(codes, bits)
    return codes.astype(np.float32) / np.float32(1 << bits)
