"""Johnson (twisted-ring) codes: Hamming distance == circular L1 distance, so faiss binary indexes search exactly.

A b-bit angle c maps to L = 2**(b-1) bits, bit j = [(c - j) mod 2**b < 2**(b-1)], j = 0..L-1. Rows are packed
little-endian into uint8 bytes and zero-padded to a whole number of bytes (padding never changes a distance).

Usage::

    jc = johnson_encode(codes, bits=4)   # [n, k] -> [n, ceil(k * 8 / 8)] uint8 for faiss.IndexBinaryFlat
"""

import numpy as np

from .quantize import check_bits, check_codes

__all__ = ["johnson_encode", "johnson_bytes"]


def johnson_bytes(n_angles: int, bits: int) -> int:
    """Bytes per Johnson-coded vector: ceil(n_angles * 2**(bits-1) / 8)."""
    return (n_angles * (1 << (bits - 1)) + 7) // 8


def johnson_encode(codes, bits: int) -> np.ndarray:
    """Johnson code of every angle (bits <= 4), packed per row: [..., k] uint8 -> [..., ceil(k*2**(b-1)/8)].

    Usage: ``faiss.IndexBinaryFlat(8 * jc.shape[1]).add(jc)`` with ``jc = johnson_encode(codes, 4)``
    """
    bits = check_bits(bits, 1, 4)
    codes = check_codes(codes, bits)
    if codes.ndim == 0:
        raise ValueError("codes must have at least one dimension (the angles)")
    m, half = 1 << bits, 1 << (bits - 1)
    j = np.arange(half, dtype=np.int16)
    b = (np.mod(codes[..., None].astype(np.int16) - j, m) < half).astype(np.uint8)  # [..., k, L]
    b = b.reshape(*codes.shape[:-1], codes.shape[-1] * half)
    return np.packbits(b, axis=-1, bitorder="little")
