"""Johnson (twisted-ring) codes: Hamming distance == circular L1 distance, so faiss binary indexes search exactly.

A b-bit angle c maps to L = 2**(b-1) bits, bit j = [(c - j) mod 2**b < 2**(b-1)], j = 0..L-1. Rows are packed
little-endian into uint8 bytes and zero-padded to a whole number of bytes (padding never changes a distance).

Usage::

    jc = johnson_encode(codes, bits=4)   # [n, k] -> [n, ceil(k * 8 / 8)] uint8 for faiss.IndexBinaryFlat
"""

import numpy as np

from .._checks import check_int
from .quantize import CHUNK, check_bits, check_codes

__all__ = ["johnson_encode", "johnson_bytes"]


def johnson_bytes(n_angles: int, bits: int) -> int:
    """Bytes per Johnson-coded vector: ceil(n_angles * 2**(bits-1) / 8)."""
    n_angles, bits = check_int(n_angles, "n_angles", minimum=0), check_bits(bits, 1, 4)
    return (n_angles * (1 << (bits - 1)) + 7) // 8


def johnson_encode(codes, bits: int) -> np.ndarray:
    """Johnson code of every angle (bits <= 4), packed per row: [..., k] uint8 -> [..., ceil(k*2**(b-1)/8)].

    Computed with a [2**b, L] bit table in row chunks: no temporary larger than a few MB besides the output.

    Usage: ``faiss.IndexBinaryFlat(8 * jc.shape[1]).add(jc)`` with ``jc = johnson_encode(codes, 4)``
    """
    bits = check_bits(bits, 1, 4)
    codes = check_codes(codes, bits)
    if codes.ndim == 0 or codes.shape[-1] == 0:
        raise ValueError(f"codes must be [..., k] with k >= 1 angles, got shape {codes.shape}")
    m, half = 1 << bits, 1 << (bits - 1)
    table = (np.mod(np.arange(m)[:, None] - np.arange(half)[None, :], m) < half).astype(np.uint8)  # [2**b, L]
    k = codes.shape[-1]
    flat = codes.reshape(-1, k)
    out = np.empty((flat.shape[0], johnson_bytes(k, bits)), np.uint8)
    rows = max(1, CHUNK // max(1, k * half))  # rows per step: the [rows, k*L] bit matrix stays ~CHUNK bytes
    for s in range(0, flat.shape[0], rows):
        chunk = table[flat[s:s + rows]].reshape(-1, k * half)
        out[s:s + rows] = np.packbits(chunk, axis=-1, bitorder="little")
    return out.reshape(*codes.shape[:-1], out.shape[-1])
