"""Run an export of :func:`torus_plugins.deploy.export`: the int8 ExecuTorch program, then the
integer head.

Usage::

    encoder = load("encoder_int8")   # checks the manifest and each file's SHA-256; no pickle
    codes = encoder(x)               # float [N, ...] -> uint8 [N, n_angles] (torch in -> torch out)
    q = encoder.activations(x)       # the program's int8 output [N, in_features]
"""

import hashlib
import json
import os

import numpy as np
import torch

from .._optional import require
from .export_folder import FORMAT, FORMAT_VERSION, HEAD_FILE, MANIFEST_FILE, PROGRAM_FILE
from .head_file import load_integer_head
from .integer_head import IntegerHead

__all__ = ["load", "IntegerEncoder", "ExportFileError", "set_runtime_threads"]

_MAX_FILE = 1 << 30


class ExportFileError(ValueError):
    """An export folder is incomplete, corrupt, or not an export of a supported format."""


def set_runtime_threads(threads: int) -> None:
    """Size ExecuTorch's XNNPACK thread pool (process-wide); 1 for single-thread timings.

    Args:
        threads: the number of threads, an integer >= 1.

    Raises:
        ValueError: ``threads`` is not an integer >= 1.
        ModuleNotFoundError: executorch is not installed (the message names the ``edge`` extra).
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    require("executorch", "edge")
    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

    _unsafe_reset_threadpool(threads)


def _read(folder: str, name: str, digest: dict | None = None) -> bytes:
    path = os.path.join(folder, name)
    try:
        with open(path, "rb") as fh:
            data = fh.read(_MAX_FILE + 1)
    except FileNotFoundError:
        raise ExportFileError(f"{folder}: missing {name}; not a complete export") from None
    if digest is not None and (
        len(data) != digest.get("bytes") or hashlib.sha256(data).hexdigest() != digest.get("sha256")
    ):
        raise ExportFileError(
            f"{path}: size or SHA-256 differs from the manifest (file corrupt or replaced)"
        )
    return data


def _manifest(folder: str) -> dict:
    where = f"{folder}/{MANIFEST_FILE}"
    try:
        manifest = json.loads(_read(folder, MANIFEST_FILE))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportFileError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ExportFileError(f"{where}: not a {FORMAT!r} manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise ExportFileError(
            f"{where}: unsupported version {manifest.get('version')!r} (this "
            f"reader supports {FORMAT_VERSION})"
        )
    needed = ("geometry", "bits", "n_angles", "sample_shape", "max_batch", "activations", "files")
    missing = [k for k in needed if k not in manifest]
    if missing:
        raise ExportFileError(f"{where}: missing field(s) {', '.join(missing)}")
    for name in (PROGRAM_FILE, HEAD_FILE):
        if not isinstance(manifest["files"], dict) or name not in manifest["files"]:
            raise ExportFileError(f"{where}: no digest for {name}")
    return manifest


class IntegerEncoder:
    """A loaded export: ``encoder(x)`` = ``head.codes(program(x))``, uint8 codes [N, n_angles].

    Made by :func:`load`, which checks the files first; the constructor checks nothing.

    Args:
        folder: the export folder (shown by ``repr``).
        manifest: the export's parsed manifest.
        program: the bytes of the int8 ExecuTorch program.
        head: the integer head, consistent with the manifest.

    Attributes:
        geometry, bits, n_angles: of the codes.
        head: the :class:`~torus_plugins.deploy.integer_head.IntegerHead`.
        scale, zero_point: of the program's int8 output (real = scale * (q - zero_point)).
        sample_shape: the input shape of one sample.
        max_batch: the largest batch the program runs at once (larger inputs are split).
        manifest: the export's manifest.
    """

    def __init__(self, folder: str, manifest: dict, program: bytes, head: IntegerHead):
        from executorch.runtime import Runtime

        self.folder, self.manifest, self.head = folder, manifest, head
        self.geometry, self.bits, self.n_angles = head.geometry, head.bits, head.n_angles
        self.scale, self.zero_point = head.input_scale, head.input_zero_point
        self.sample_shape = tuple(manifest["sample_shape"])
        self.max_batch = int(manifest["max_batch"])
        # the Program owns the bytes the Method runs from: keep it alive as long as the Method
        self._program = Runtime.get().load_program(program)
        self._method = self._program.load_method("forward")

    def __repr__(self) -> str:
        shape = ", ".join(map(str, self.sample_shape))
        return (
            f"IntegerEncoder({self.folder!r}, geometry={self.geometry}, bits={self.bits}, "
            f"n_angles={self.n_angles}, input [N, {shape}])"
        )

    def _check_input(self, x) -> torch.Tensor:
        if isinstance(x, np.ndarray):
            if not np.issubdtype(x.dtype, np.floating):
                raise TypeError(f"x must be floating point, got dtype {x.dtype}")
            x = torch.from_numpy(np.ascontiguousarray(x))
        if not isinstance(x, torch.Tensor):
            raise TypeError(
                f"x must be a torch tensor or numpy array of floats, got {type(x).__name__}"
            )
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
        if x.dim() != len(self.sample_shape) + 1 or tuple(x.shape[1:]) != self.sample_shape:
            shape = ", ".join(map(str, self.sample_shape))
            raise ValueError(
                f"x must have shape [N, {shape}] (the exported sample shape), got {tuple(x.shape)}"
            )
        bad = int(x.numel() - torch.isfinite(x).sum())
        if bad:
            raise ValueError(f"x holds {bad} NaN or inf value(s); expected finite inputs")
        return x.detach().to("cpu", torch.float32).contiguous()

    def activations(self, x) -> torch.Tensor:
        """The program's int8 output [N, in_features] for float input ``x``.

        ``x`` has shape ``[N, *sample_shape]``.

        Args:
            x: float input, a torch tensor or numpy array (N may be 0).

        Returns:
            An int8 torch tensor [N, in_features] (real value = scale * (q - zero_point)), run
            ``max_batch`` samples at a time.

        Raises:
            TypeError: ``x`` is not a floating-point tensor or array.
            ValueError: ``x`` has the wrong sample shape or holds NaN/inf.
        """
        x = self._check_input(x)
        if len(x) == 0:
            return torch.empty(0, self.head.in_features, dtype=torch.int8)
        step = self.max_batch
        return torch.cat(
            [self._method.execute((x[i : i + step],))[0] for i in range(0, len(x), step)]
        )

    def __call__(self, x):
        """uint8 codes [N, n_angles] of float input ``x`` ``[N, *sample_shape]``; torch in -> torch
        out, numpy in -> numpy out.

        Raises:
            TypeError: x is not a float tensor / array.
            ValueError: x has the wrong sample shape or holds NaN/inf.
        """
        codes = self.head.codes(self.activations(x).numpy())
        return torch.from_numpy(codes) if isinstance(x, torch.Tensor) else codes


def load(path) -> IntegerEncoder:
    """Load an export folder written by :func:`torus_plugins.deploy.export`.

    The manifest is checked, then the program and head files against its sizes and SHA-256
    digests; the program runs in ``executorch.runtime`` (its operators only, no Python), the head
    in numpy integers.

    Args:
        path: the export folder.

    Returns:
        An :class:`IntegerEncoder`.

    Raises:
        TypeError: path is not str / os.PathLike.
        FileNotFoundError: the folder does not exist.
        ExportFileError: (a ValueError) missing file, bad manifest, digest mismatch, head
            inconsistent with the manifest.
        ImportError: executorch missing (``pip install 'torus-plugins[edge]'``).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"path must be a str or os.PathLike (an export folder), got {type(path).__name__}"
        )
    folder = os.fspath(path)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"path: export folder {folder!r} does not exist or is not a folder")
    require("executorch", "edge")
    manifest = _manifest(folder)
    program = _read(folder, PROGRAM_FILE, manifest["files"][PROGRAM_FILE])
    _read(folder, HEAD_FILE, manifest["files"][HEAD_FILE])
    head = load_integer_head(os.path.join(folder, HEAD_FILE))
    expected = (
        manifest["geometry"],
        manifest["bits"],
        manifest["n_angles"],
        manifest["activations"]["width"],
    )
    if (head.geometry, head.bits, head.n_angles, head.in_features) != expected:
        raise ExportFileError(
            f"{folder}: {HEAD_FILE} (geometry {head.geometry}, bits {head.bits}, "
            f"{head.n_angles} angles, {head.in_features} inputs) does not match "
            f"the manifest {expected}"
        )
    return IntegerEncoder(folder, manifest, program, head)
