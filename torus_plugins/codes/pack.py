"""Bit packing: b bits per angle cost b bits on disk (each row padded to a whole byte).

Usage::

    packed = pack_codes(codes, bits=4)           # [n, k] uint8 -> [n, ceil(k*4/8)] uint8
    codes = unpack_codes(packed, bits=4, n_angles=k)
"""

import numpy as np

from .._checks import check_int
from .quantize import check_bits, check_codes

__all__ = ["pack_codes", "unpack_codes", "packed_row_bytes", "nibble_pack", "nibble_unpack"]


def packed_row_bytes(n_angles: int, bits: int) -> int:
    """Bytes per packed vector: ceil(n_angles * bits / 8).

    Args:
        n_angles: k, the number of angles per vector, an integer >= 0.
        bits: bits per angle, an integer in [1, 8].

    Returns:
        The packed row length in bytes.

    Raises:
        TypeError: ``n_angles`` is not an integer.
        ValueError: ``n_angles`` < 0, or ``bits`` is not an integer in [1, 8].

    Example:
        >>> packed_row_bytes(64, 3)
        24
    """
    n_angles, bits = check_int(n_angles, "n_angles", minimum=0), check_bits(bits)
    return (n_angles * bits + 7) // 8


def nibble_pack(codes: np.ndarray, width: int | None = None) -> np.ndarray:
    """[n, k] codes < 16 -> [n, ceil(W / 2)] uint8: angle 2j in the low nibble of byte j, 2j + 1 in
    the high one.

    :func:`pack_codes`' order at 4 bits, rows zero-padded to W angles. Unchecked: the caller
    guarantees the codes are < 16.

    Args:
        codes: a 2-D numpy uint8 array of codes < 16.
        width: W, the padded number of angles per row, >= k (default k).

    Returns:
        A numpy uint8 array of shape [n, ceil(W / 2)].

    Example:
        >>> nibble_pack(np.array([[1, 2, 3]], dtype=np.uint8))
        array([[33,  3]], dtype=uint8)
    """
    n, k = codes.shape
    width = k if width is None else width
    out = np.zeros((n, (width + 1) // 2), np.uint8)
    even = codes[:, 0::2]
    out[:, : even.shape[1]] = even
    odd = codes[:, 1::2]
    out[:, : odd.shape[1]] |= odd << np.uint8(4)
    return out


def nibble_unpack(packed: np.ndarray, n_angles: int) -> np.ndarray:
    """Inverse of :func:`nibble_pack`: [n, B] -> [n, n_angles] uint8 (n_angles <= 2 B).

    Unchecked, like :func:`nibble_pack`.

    Args:
        packed: a 2-D numpy uint8 array, two codes per byte.
        n_angles: the number of angles to keep per row, <= 2 B.

    Returns:
        A C-contiguous numpy uint8 array of shape [n, n_angles], codes < 16.
    """
    out = np.empty((packed.shape[0], 2 * packed.shape[1]), np.uint8)
    out[:, 0::2] = packed & np.uint8(15)
    out[:, 1::2] = packed >> np.uint8(4)
    return out if n_angles == out.shape[1] else np.ascontiguousarray(out[:, :n_angles])


def pack_codes(codes, bits: int) -> np.ndarray:
    """[..., k] uint8 -> [..., ceil(k*bits/8)] uint8: the low ``bits`` bits of every code, packed.

    Little-endian bit order, row by row; each row is padded to a whole byte with zero bits.

    Args:
        codes: uint8 codes < 2**bits, a numpy array or torch tensor with at least one dimension.
        bits: bits per code, an integer in [1, 8] (8: a contiguous copy of the codes).

    Returns:
        A numpy uint8 array of shape [..., :func:`packed_row_bytes` (k, bits)].

    Raises:
        ValueError: ``bits`` is not an integer in [1, 8], a code is >= 2**bits, or ``codes`` is
            0-dimensional.
        TypeError: ``codes`` is not a numpy array or torch tensor of dtype uint8.

    Example:
        >>> pack_codes(np.array([[1, 2, 3]], dtype=np.uint8), bits=4)
        array([[33,  3]], dtype=uint8)
    """
    bits = check_bits(bits)
    codes = check_codes(codes, bits)
    if codes.ndim == 0:
        raise ValueError("codes must have at least one dimension (the angles)")
    if bits == 8:
        return np.ascontiguousarray(codes)
    lead, k = codes.shape[:-1], codes.shape[-1]
    flat = codes.reshape(-1, k)
    if bits == 4:  # two codes per byte, without an 8x bit temporary
        return nibble_pack(flat).reshape(*lead, packed_row_bytes(k, bits))
    b = np.unpackbits(flat[..., None], axis=-1, bitorder="little")[..., :bits]  # [n, k, bits]
    packed = np.packbits(b.reshape(flat.shape[0], k * bits), axis=-1, bitorder="little")
    return packed.reshape(*lead, packed_row_bytes(k, bits))


def unpack_codes(packed, bits: int, n_angles: int) -> np.ndarray:
    """Inverse of :func:`pack_codes`: [..., ceil(k*bits/8)] uint8 -> [..., k] uint8 codes.

    Args:
        packed: packed rows, a numpy uint8 array or torch tensor whose last dimension is
            :func:`packed_row_bytes` (n_angles, bits).
        bits: bits per code, an integer in [1, 8].
        n_angles: k, the number of angles per row, a positive integer.

    Returns:
        A numpy uint8 array of shape [..., n_angles], codes < 2**bits.

    Raises:
        ValueError: ``bits`` is not an integer in [1, 8], ``n_angles`` is not a positive integer,
            or the rows of ``packed`` do not have the expected number of bytes.
        TypeError: ``packed`` is not a numpy array or torch tensor of dtype uint8.

    Example:
        >>> unpack_codes(np.array([[33, 3]], dtype=np.uint8), bits=4, n_angles=3)
        array([[1, 2, 3]], dtype=uint8)
    """
    bits = check_bits(bits)
    if isinstance(n_angles, bool) or not isinstance(n_angles, (int, np.integer)) or n_angles <= 0:
        raise ValueError(f"n_angles must be a positive integer, got {n_angles!r}")
    packed = check_codes(packed, 8, "packed")
    row = packed_row_bytes(int(n_angles), bits)
    if packed.ndim == 0 or packed.shape[-1] != row:
        raise ValueError(
            f"packed rows must have {row} bytes for {n_angles} angles of {bits} bits, "
            f"got shape {packed.shape}"
        )
    if bits == 8:
        return np.ascontiguousarray(packed)
    lead = packed.shape[:-1]
    flat = packed.reshape(-1, row)
    if bits == 4:
        return nibble_unpack(flat, int(n_angles)).reshape(*lead, n_angles)
    b = np.unpackbits(flat, axis=-1, count=n_angles * bits, bitorder="little")
    b = b.reshape(flat.shape[0], n_angles, bits)
    codes = np.packbits(b, axis=-1, bitorder="little")[..., 0]
    return codes.reshape(*lead, n_angles)
