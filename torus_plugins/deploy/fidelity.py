"""How closely integer-deployed codes follow the float pipeline's codes.

Usage::

    float_codes = quantize(to_turns(model(x)), bits=8)
    code_agreement(encoder(x), float_codes, bits=8)    # {"equal": 0.93, "within_one": 0.999, ...}
"""

import numpy as np

from ..codes.distance import coordinate_distance
from ..codes.quantize import check_bits, check_codes

__all__ = ["code_agreement"]


def code_agreement(device, reference, bits: int = 8) -> dict:
    """Per-angle agreement of two code arrays of one shape, in circular code steps
    d = min((a - b) mod 2**b, (b - a) mod 2**b).

    Args:
        device: uint8 codes [N, k] (numpy or torch), e.g. the integer pipeline's.
        reference: uint8 codes [N, k], e.g. ``quantize(to_turns(z), bits)`` of the float model.
        bits: code width, 1..8.

    Returns:
        {"equal": fraction with d = 0, "within_one": fraction with d <= 1, "mean_steps": mean d,
        "max_steps": max d, "n_codes": N * k}.

    Raises:
        TypeError: codes that are not uint8.
        ValueError: bits outside 1..8, codes >= 2**bits, different shapes, no codes.
    """
    bits = check_bits(bits)
    device = check_codes(device, bits, "device")
    reference = check_codes(reference, bits, "reference")
    if device.shape != reference.shape:
        raise ValueError(
            f"device and reference must have the same shape, got {device.shape} and "
            f"{reference.shape}"
        )
    if device.size == 0:
        raise ValueError("device and reference hold no codes; expected at least one")
    d = coordinate_distance(device, reference, bits)
    return {
        "equal": float(np.mean(d == 0)),
        "within_one": float(np.mean(d <= 1)),
        "mean_steps": float(d.mean()),
        "max_steps": int(d.max()),
        "n_codes": int(d.size),
    }
