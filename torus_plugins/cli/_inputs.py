"""Reading the command line's input files: arrays, labels, code files; InputError."""

import os
import sys

import numpy as np


class InputError(Exception):
    """A user-facing input problem (exit code 2)."""


def _refuse_objects(fh, what: str, path: str) -> None:
    """InputError if the .npy stream ``fh`` (at its start) holds Python objects: loading them would
    mean unpickling, which is never done for a file given on the command line."""
    fmt = np.lib.format
    version = fmt.read_magic(fh)
    read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    _, _, dtype = read(fh)
    if dtype.hasobject:
        raise InputError(
            f"{what} {path!r} holds Python objects (dtype {dtype}), not numbers; only "
            f"numeric arrays are read (files are never unpickled)"
        )


def load_array(path: str, key: str | None = None, what: str = "file") -> np.ndarray:
    """numpy array from .npy / .npz / .pt; InputError with a clear message otherwise.

    Only regular files are opened (a FIFO or device is refused without blocking), and nothing is
    unpickled: object arrays and .pt files holding anything but tensors and plain containers are
    refused.

    Args:
        path: the file; its extension (``.npy``, ``.npz`` or ``.pt``) says how to read it.
        key: the array's name in a ``.npz`` (default: its first array) or its key in a ``.pt``
            dict (default: the file must hold a tensor).
        what: how the file is named in error messages (e.g. ``"labels"``).

    Returns:
        The array, as stored (any numeric dtype and shape; a tensor moved to the CPU).

    Raises:
        InputError: the file does not exist, is not a regular file, has another extension, holds
            Python objects, lacks ``key``, holds no tensor, or cannot be read.
    """
    import pickle

    from ..codes.file_format import CodeFileError, open_regular_file

    if not os.path.exists(path):
        raise InputError(f"{what} {path!r} does not exist")
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".npy", ".npz", ".pt"):
        raise InputError(f"{what} {path!r}: unsupported extension {ext!r} (use .npy, .npz or .pt)")
    try:
        fh = open_regular_file(path)
    except (CodeFileError, OSError) as exc:
        raise InputError(f"{what}: {exc}") from None
    try:
        with fh:
            if ext == ".npy":
                _refuse_objects(fh, what, path)
                fh.seek(0)
                arr = np.load(fh, allow_pickle=False)
            elif ext == ".npz":
                with np.load(fh, allow_pickle=False) as z:
                    names = list(z.files)
                    if not names:
                        raise InputError(f"{what} {path!r} holds no arrays")
                    if key is not None and key not in names:
                        raise InputError(f"{what} {path!r} has no array {key!r}; it has {names}")
                    name = key if key is not None else names[0]
                    member_name = f"{name}.npy" if f"{name}.npy" in z.zip.namelist() else name
                    with z.zip.open(member_name) as member:
                        _refuse_objects(member, f"array {name!r} of {what}", path)
                    arr = z[name]
            else:
                import torch

                try:
                    obj = torch.load(fh, map_location="cpu", weights_only=True)
                except pickle.UnpicklingError:
                    raise InputError(
                        f"{what} {path!r} holds objects other than tensors and plain "
                        f"containers; they are not loaded (files are never unpickled)"
                    ) from None
                if isinstance(obj, dict) and key is not None:
                    obj = obj.get(key)
                if not hasattr(obj, "detach"):
                    raise InputError(
                        f"{what} {path!r} does not hold a tensor (got {type(obj).__name__})"
                    )
                arr = obj.detach().cpu().numpy()
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"cannot read {what} {path!r}: {type(exc).__name__}: {exc}") from exc
    return np.asarray(arr)


def _embeddings(path, key=None, what="embeddings") -> np.ndarray:
    x = load_array(path, key, what)
    if x.ndim != 2 or x.shape[0] == 0:
        raise InputError(f"{what} {path!r} must be a 2-D array [n, d], got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise InputError(f"{what} {path!r} must be numeric, got dtype {x.dtype}")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise InputError(
            f"{what} {path!r} contains {int((~np.isfinite(x)).sum())} NaN or inf value(s)"
        )
    return x


def _labels(path, n, what="labels") -> np.ndarray:
    y = load_array(path, None, what).reshape(-1)
    if y.shape[0] != n:
        raise InputError(f"{what} {path!r} has {y.shape[0]} entries but there are {n} embeddings")
    if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
        raise InputError(f"{what} {path!r} contains NaN or inf")
    return y


OFF_TORUS_TOLERANCE = 1e-3


def _check_geometry(x, geometry, path):
    """InputError for an odd torus width; a warning on stderr when torus pairs are not of equal
    norm."""
    from ..geometry import TorusGeometry, get_geometry

    g = get_geometry(geometry)
    if isinstance(g, TorusGeometry) and x.shape[1] % 2:
        raise InputError(
            f"{g.name} embeddings need an even width (cos, sin pairs); {path!r} has {x.shape[1]}"
        )
    if isinstance(g, TorusGeometry):
        spread = g.pair_norm_spread(x, path)
        if spread > OFF_TORUS_TOLERANCE:
            print(
                f"torus-plugins: warning: {path!r} is not on the torus: its (cos, sin) pairs "
                f"differ in norm by up to {spread:.1%} within a row (a torus head output has "
                "equal pair norms); only the angles atan2(sin, cos) are used. Is it a "
                f"{geometry} head output in the interleaved layout?",
                file=sys.stderr,
            )


CODE_FILE_EXTENSIONS = (".torc",)


def _is_code_file(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in CODE_FILE_EXTENSIONS


def _code_file(path: str, what: str):
    """A checked :class:`~torus_plugins.codes.CodeFile`; InputError for a missing, unreadable or
    corrupt file."""
    from ..codes import load_codes

    if not os.path.exists(path):
        raise InputError(f"{what} {path!r} does not exist")
    try:
        return load_codes(path)
    except OSError as exc:
        raise InputError(f"cannot read {what} {path!r}: {exc}") from exc
