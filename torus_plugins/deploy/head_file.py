"""The integer head's file (``.torh``): header, int8 weights, int32 bias, CRC32; atomic writes and
bounded reads of regular files only.

Usage::

    save_integer_head("head.torh", head)
    head = load_integer_head("head.torh")
"""

import os
import stat
import struct
import zlib

import numpy as np

from ..codes.atomic import atomic_write
from .integer_head import GEOMETRIES, IntegerHead
from .integer_ops import _MASK32

__all__ = [
    "IntegerHeadFileError",
    "save_integer_head",
    "load_integer_head",
    "HEAD_MAGIC",
    "HEAD_VERSION",
]


class IntegerHeadFileError(ValueError):
    """An integer-head file is truncated, corrupt, or not a supported integer-head file."""


HEAD_MAGIC = b"TORH"
HEAD_VERSION = 1
#: Little-endian: magic, version, geometry (0 torusN, 1 torusC), bits, out, in, input_scale,
#: weight_scale, input_zero_point, multiplier, shift, 3 reserved bytes; then int8 weight
#: [out, in], int32 bias [out], and the CRC32 of every preceding byte.
_HEAD_STRUCT = struct.Struct("<4sHBBIIddiIB3x")


def save_integer_head(path, head: IntegerHead) -> None:
    """Write ``head`` to ``path``: header, int8 weights, int32 bias, CRC32 (atomic; no pickle).

    Args:
        path: the file to write (str or path-like); replaced if it exists.
        head: the head to save.

    Raises:
        TypeError: head is not an IntegerHead.
        OSError: the path cannot be written (nothing is left behind).
    """
    if not isinstance(head, IntegerHead):
        raise TypeError(f"head must be an IntegerHead, got {type(head).__name__}")
    body = _HEAD_STRUCT.pack(
        HEAD_MAGIC,
        HEAD_VERSION,
        GEOMETRIES.index(head.geometry),
        head.bits,
        head.out_features,
        head.in_features,
        head.input_scale,
        head.weight_scale,
        head.input_zero_point,
        head.multiplier,
        head.shift,
    )
    body += head.weight.tobytes() + head.bias.astype("<i4").tobytes()
    atomic_write(path, body + struct.pack("<I", zlib.crc32(body) & _MASK32))


def _read_regular_file(path, max_bytes: int) -> bytes:
    """At most ``max_bytes`` bytes of a regular file (never a FIFO, device or directory)."""
    name = os.fspath(path)
    fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise IntegerHeadFileError(
            f"{name}: not a regular file (mode {stat.filemode(info.st_mode)})"
        )
    with os.fdopen(fd, "rb") as fh:
        return fh.read(max_bytes)


def load_integer_head(path) -> IntegerHead:
    """Read a head written by :func:`save_integer_head`, checking size, CRC and every field.

    Args:
        path: the file to read (str or path-like).

    Returns:
        The :class:`IntegerHead`, with read-only arrays.

    Raises:
        IntegerHeadFileError: (a ValueError) truncated, extended, corrupt or invalid file.
        OSError: the file cannot be opened.
    """
    name = os.fspath(path)
    data = _read_regular_file(name, _HEAD_STRUCT.size)
    if len(data) < _HEAD_STRUCT.size:
        raise IntegerHeadFileError(
            f"{name}: truncated ({len(data)} bytes; the header alone has {_HEAD_STRUCT.size})"
        )
    magic, version, geometry, bits, out, inp, s_in, s_w, zp, mult, shift = _HEAD_STRUCT.unpack(data)
    if magic != HEAD_MAGIC:
        raise IntegerHeadFileError(
            f"{name}: bad magic {magic!r}, not an integer-head file ({HEAD_MAGIC!r})"
        )
    if version != HEAD_VERSION:
        raise IntegerHeadFileError(
            f"{name}: unsupported version {version} (this reader supports {HEAD_VERSION})"
        )
    if out * inp > 1 << 31:
        raise IntegerHeadFileError(f"{name}: implausible shape [{out}, {inp}]")
    expected = _HEAD_STRUCT.size + out * inp + 4 * out + 4
    data = _read_regular_file(name, expected + 1)
    if len(data) != expected:
        raise IntegerHeadFileError(
            f"{name}: size {len(data)} bytes does not match its header "
            f"({expected} expected for a [{out}, {inp}] head)"
        )
    if zlib.crc32(data[:-4]) & _MASK32 != struct.unpack("<I", data[-4:])[0]:
        raise IntegerHeadFileError(f"{name}: checksum mismatch (file corrupt)")
    if geometry >= len(GEOMETRIES):
        raise IntegerHeadFileError(f"{name}: unknown geometry code {geometry}")
    off = _HEAD_STRUCT.size
    weight = np.frombuffer(data, np.int8, out * inp, off).reshape(out, inp)
    bias = np.frombuffer(data, "<i4", out, off + out * inp).astype(np.int32)
    torus_c = GEOMETRIES[geometry] == "torusC"
    try:
        return IntegerHead(
            GEOMETRIES[geometry],
            bits,
            weight,
            bias,
            s_in,
            zp,
            s_w,
            mult if torus_c else 0,
            shift if torus_c else 0,
        )
    except (TypeError, ValueError) as exc:
        raise IntegerHeadFileError(f"{name}: invalid head ({exc})") from None
