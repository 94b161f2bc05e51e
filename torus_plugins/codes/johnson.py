"""Johnson (twisted-ring) codes: Hamming distance == circular L1 distance, so faiss binary indexes
search exactly.

A b-bit angle c maps to L = 2**(b-1) bits, bit j = [(c - j) mod 2**b < 2**(b-1)], j = 0..L-1. Rows
are packed little-endian into uint8 bytes and zero-padded to a whole number of bytes (padding never
changes a distance).

Usage::

    jc = johnson_encode(codes, bits=4)   # [n, k] -> [n, k] uint8 for faiss.IndexBinaryFlat
"""

import numpy as np

from .._checks import check_int
from .quantize import CHUNK, check_bits, check_codes

__all__ = ["johnson_encode", "johnson_bytes"]


def johnson_bytes(n_angles: int, bits: int) -> int:
    """Bytes per Johnson-coded vector: ceil(n_angles * 2**(bits-1) / 8).

    Args:
        n_angles: k, the number of angles per vector, an integer >= 0.
        bits: bits per angle, an integer in [1, 4].

    Returns:
        The Johnson-coded row length in bytes.

    Raises:
        TypeError: ``n_angles`` is not an integer.
        ValueError: ``n_angles`` < 0, or ``bits`` is not an integer in [1, 4].
    """
    n_angles, bits = check_int(n_angles, "n_angles", minimum=0), check_bits(bits, 1, 4)
    return (n_angles * (1 << (bits - 1)) + 7) // 8


def johnson_encode(codes, bits: int) -> np.ndarray:
    """bit j of angle c = [(c - j) mod 2**b < 2**(b-1)], packed per row: [..., k] -> [..., J] uint8.

    J = :func:`johnson_bytes` (k, bits). The Hamming distance of two encoded rows equals the
    circular L1 distance of their codes. Computed with a [2**b, L] bit table in row chunks: no
    temporary larger than a few MB besides the output.

    Args:
        codes: uint8 codes < 2**bits of shape [..., k], k >= 1, a numpy array or torch tensor.
        bits: bits per angle, an integer in [1, 4].

    Returns:
        A numpy uint8 array of shape [..., J], for ``faiss.IndexBinaryFlat(8 * J)``.

    Raises:
        ValueError: ``bits`` is not an integer in [1, 4], a code is >= 2**bits, or ``codes`` has
            no angle axis or k = 0.
        TypeError: ``codes`` is not a numpy array or torch tensor of dtype uint8.

    Example:
        >>> johnson_encode(np.array([[0, 8]], dtype=np.uint8), bits=4)   # 8 bits per angle
        array([[  1, 254]], dtype=uint8)
    """
    bits = check_bits(bits, 1, 4)
    codes = check_codes(codes, bits)
    if codes.ndim == 0 or codes.shape[-1] == 0:
        raise ValueError(f"codes must be [..., k] with k >= 1 angles, got shape {codes.shape}")
    m, half = 1 << bits, 1 << (bits - 1)
    table = (np.mod(np.arange(m)[:, None] - np.arange(half)[None, :], m) < half).astype(
        np.uint8
    )  # [2**b, L]
    k = codes.shape[-1]
    flat = codes.reshape(-1, k)
    out = np.empty((flat.shape[0], johnson_bytes(k, bits)), np.uint8)
    rows = max(
        1, CHUNK // max(1, k * half)
    )  # rows per step: the [rows, k*L] bit matrix stays ~CHUNK bytes
    for s in range(0, flat.shape[0], rows):
        chunk = table[flat[s : s + rows]].reshape(-1, k * half)
        out[s : s + rows] = np.packbits(chunk, axis=-1, bitorder="little")
    return out.reshape(*codes.shape[:-1], out.shape[-1])
