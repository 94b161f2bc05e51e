"""Code file format (little-endian), version 1:

    offset  size  field
    0       4     magic b"TORC"
    4       2     version (uint16) = 1
    6       1     bits per angle (1..8)
    7       1     reserved (0)
    8       4     number of angles k (uint32)
    12      8     count n (uint64)
    20      2     geometry name length g (uint16), ASCII
    22      4     metadata length m (uint32), UTF-8 JSON (may be 0)
    26      g+m   geometry, metadata
    ...     n*ceil(k*bits/8)  packed codes (see pack_codes)
    end-4   4     CRC32 (zlib) of every preceding byte

Anything truncated, extended, corrupt or unsupported raises :class:`CodeFileError` (a ValueError).
Only regular files are read (not devices, FIFOs or directories), and never more bytes than the
header declares: a code file from an untrusted source is safe to load (no pickle; every byte is
checked). Writes are atomic
(:mod:`.atomic`): a uniquely named temporary file in the same directory, fsync, rename; the
temporary file is removed on any failure.

Usage::

    save_codes("emb.torc", codes, bits=8, geometry="torusN")
    f = load_codes("emb.torc"); f.codes, f.bits, f.n_angles, f.geometry
"""

import json
import os
import stat
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from ..geometry import get_geometry
from .atomic import atomic_write
from .pack import pack_codes, packed_row_bytes, unpack_codes
from .quantize import check_bits, check_codes

__all__ = [
    "CodeFileError",
    "CodeFile",
    "save_codes",
    "load_codes",
    "atomic_write",
    "open_regular_file",
    "MAGIC",
    "VERSION",
]

MAGIC = b"TORC"
VERSION = 1
_HEAD = struct.Struct("<4sHBBIQHI")


class CodeFileError(ValueError):
    """A code file is truncated, corrupt, or not a supported code file."""


@dataclass
class CodeFile:
    """The contents of a code file, as :func:`load_codes` returns them; ``len()`` is n.

    Args:
        codes: the codes, a numpy uint8 array [n, n_angles], each < 2**bits.
        bits: bits per angle, 1..8.
        n_angles: k, the number of angles per vector.
        geometry: the geometry name stored with the codes (e.g. ``"torusN"``).
        meta: the stored JSON metadata (empty when none was saved).
    """

    codes: np.ndarray
    bits: int
    n_angles: int
    geometry: str
    meta: dict = field(default_factory=dict)

    def __len__(self):
        return int(self.codes.shape[0])


def save_codes(path, codes, bits: int, geometry="torusN", meta: dict | None = None) -> None:
    """Write [n, k] uint8 codes packed at ``bits`` bits per angle, with header and CRC32.

    The write is atomic: a temporary file in the same directory, fsync, then rename over ``path``.

    Args:
        path: the file to write (str or path-like); replaced if it exists.
        codes: uint8 codes < 2**bits, [n, k] with k >= 1, a numpy array or torch tensor.
        bits: bits per angle, an integer in [1, 8].
        geometry: the geometry the codes came from, a name of
            :data:`torus_plugins.geometry.GEOMETRY_NAMES` or a Geometry object; its canonical
            name is stored in the header.
        meta: a dict of JSON values stored with the codes, or None.

    Raises:
        ValueError: ``bits`` is not an integer in [1, 8], a code is >= 2**bits, ``codes`` is not
            [n, k] with k >= 1, ``geometry`` is an unknown name, or ``meta`` holds a value JSON
            cannot store (NaN included).
        TypeError: ``codes`` is not a numpy array or torch tensor of dtype uint8, ``geometry`` is
            neither a string nor a Geometry, or ``meta`` is not a dict.
        OSError: the file cannot be written (nothing is left behind).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "emb.torc")
        ...     save_codes(path, np.array([[1, 2, 3]], dtype=np.uint8), bits=4)
        ...     load_codes(path).codes
        array([[1, 2, 3]], dtype=uint8)
    """
    bits = check_bits(bits)
    codes = check_codes(codes, bits)
    if codes.ndim != 2 or codes.shape[1] == 0:
        raise ValueError(f"codes must be 2-D [n, k] with k >= 1, got shape {codes.shape}")
    g = get_geometry(geometry).name.encode("ascii")
    if meta is not None and not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict (stored as JSON) or None, got {type(meta).__name__}")
    try:
        m = json.dumps(meta, sort_keys=True, allow_nan=False).encode("utf-8") if meta else b""
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"meta must hold only JSON values (str, finite numbers, bools, None, "
            f"lists, dicts): {exc}"
        ) from None
    body = (
        _HEAD.pack(MAGIC, VERSION, bits, 0, codes.shape[1], codes.shape[0], len(g), len(m)) + g + m
    )
    body += pack_codes(codes, bits).tobytes()
    atomic_write(path, body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF))


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def open_regular_file(path):
    """Open ``path`` for binary reading only if it is a regular file; never blocks.

    Args:
        path: the file to open (str or path-like).

    Returns:
        A binary file object open for reading; close it (``with``).

    Raises:
        CodeFileError: ``path`` is a FIFO, device, socket or directory (named in the message);
            nothing is read from it, and the open is non-blocking: a FIFO with no writer does not
            hang.
        OSError: ``path`` cannot be opened.

    Usage: ``with open_regular_file("emb.npy") as fh: np.load(fh)``
    """
    name = os.fspath(path)
    fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((what for test, what in _KINDS if test(mode)), "something else")
            raise CodeFileError(
                f"{name}: not a regular file but {kind} "
                f"(mode {stat.filemode(mode)}); refusing to read"
            )
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def load_codes(path) -> CodeFile:
    """Read a code file written by :func:`save_codes`, checking every byte.

    Reads at most the number of bytes the header declares (plus one, to detect extra bytes).

    Args:
        path: the file to read (str or path-like).

    Returns:
        A :class:`CodeFile`: ``codes`` [n, k] uint8, ``bits``, ``n_angles``, ``geometry``, ``meta``.

    Raises:
        CodeFileError: a ValueError: ``path`` is not a regular file, or it is truncated,
            extended, corrupt (CRC32 mismatch) or of an unsupported version.
        OSError: ``path`` cannot be opened.
    """
    name = os.fspath(path)
    with open_regular_file(name) as fh:
        info = os.fstat(fh.fileno())
        head = fh.read(_HEAD.size)
        limit = info.st_size + 1  # never more than the file holds...
        if len(head) == _HEAD.size:
            _, _, bits, _, k, n, glen, mlen = _HEAD.unpack(head)
            declared = _HEAD.size + glen + mlen + n * packed_row_bytes(k, max(1, min(bits, 8))) + 4
            limit = min(
                limit, declared + 1
            )  # ...nor more than the header declares (+1 detects extra bytes)
        data = head + fh.read(max(0, limit - len(head)))
    return parse_codes(data, name=name)


def parse_codes(data: bytes, name: str = "<bytes>") -> CodeFile:
    """Parse the bytes of a code file (see module docstring)."""
    if len(data) < _HEAD.size + 4:
        raise CodeFileError(
            f"{name}: truncated ({len(data)} bytes, the header alone needs {_HEAD.size + 4})"
        )
    magic, version, bits, reserved, k, n, glen, mlen = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise CodeFileError(
            f"{name}: bad magic {magic!r}, not a torus code file (expected {MAGIC!r})"
        )
    body, (crc,) = data[:-4], struct.unpack("<I", data[-4:])
    if zlib.crc32(body) & 0xFFFFFFFF != crc:
        raise CodeFileError(f"{name}: checksum mismatch (file truncated or corrupt)")
    if version != VERSION:
        raise CodeFileError(
            f"{name}: unsupported version {version} (this reader supports {VERSION})"
        )
    if not 1 <= bits <= 8 or reserved != 0 or k == 0:
        raise CodeFileError(
            f"{name}: invalid header (bits={bits}, reserved={reserved}, n_angles={k})"
        )
    row = packed_row_bytes(k, bits)
    expected = _HEAD.size + glen + mlen + n * row + 4
    if len(data) != expected:
        raise CodeFileError(
            f"{name}: size {len(data)} bytes does not match the header ({expected} expected)"
        )
    off = _HEAD.size
    try:
        geometry = data[off : off + glen].decode("ascii")
        meta = json.loads(data[off + glen : off + glen + mlen].decode("utf-8")) if mlen else {}
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # JSONDecodeError is a ValueError
        raise CodeFileError(f"{name}: unreadable geometry/metadata ({type(e).__name__})") from None
    if not isinstance(meta, dict):
        raise CodeFileError(f"{name}: metadata must be a JSON object, got {type(meta).__name__}")
    payload = np.frombuffer(data, np.uint8, count=n * row, offset=off + glen + mlen).reshape(n, row)
    codes = unpack_codes(payload, bits, k)
    return CodeFile(codes=codes, bits=int(bits), n_angles=int(k), geometry=geometry, meta=meta)
