"""The export folder: its file names and manifest format, refusals before any work, and the
atomic write (a temporary folder beside ``path``, renamed into place).

The layout is described in :mod:`torus_plugins.deploy.export`; :func:`is_export` recognises a
folder written by it.
"""

import hashlib
import json
import os
import platform
import shutil
import tempfile
from importlib import metadata

__all__ = [
    "is_export",
    "FORMAT",
    "FORMAT_VERSION",
    "PROGRAM_FILE",
    "HEAD_FILE",
    "HEADER_FILE",
    "MANIFEST_FILE",
]

FORMAT = "torus-plugins-int8-encoder"
FORMAT_VERSION = 1
PROGRAM_FILE, HEAD_FILE, HEADER_FILE = "encoder.pte", "head.torh", "head.h"
MANIFEST_FILE = "manifest.json"


def is_export(path) -> bool:
    """True if ``path`` is a folder holding an export manifest (overwrite=True may replace it).

    Args:
        path: a folder (str or path-like).

    Returns:
        Whether its manifest file exists, is JSON and names this export format; False on any
        read or parse error.
    """
    try:
        with open(os.path.join(path, MANIFEST_FILE), "rb") as fh:
            return json.loads(fh.read(1 << 20)).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _check_target(path, overwrite: bool) -> str:
    """The export folder as an absolute path; refuses, before any work, what cannot be written."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"path must be a str or os.PathLike (the export folder), got {type(path).__name__}"
        )
    if not isinstance(overwrite, bool):
        raise TypeError(f"overwrite must be a bool, got {type(overwrite).__name__}")
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        kind = "is not a folder" if os.path.exists(parent) else "does not exist"
        raise FileNotFoundError(
            f"path: cannot write the export folder {path!r}: its parent {parent!r} {kind}"
        )
    if os.path.lexists(path):
        if not overwrite:
            raise FileExistsError(
                f"path: {path!r} already exists; choose a new folder or pass "
                f"overwrite=True (which replaces only a previous export)"
            )
        if not (os.path.isdir(path) and not os.path.islink(path) and is_export(path)):
            raise ValueError(
                f"path: {path!r} exists and is not a previous export (no "
                f"{MANIFEST_FILE} of format {FORMAT!r}); refusing to replace it even "
                f"with overwrite=True"
            )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(
            f"path: cannot write the export folder {path!r}: no write permission in {parent!r}"
        )
    return path


def _digest(path: str) -> dict:
    with open(path, "rb") as fh:
        data = fh.read()
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("torus-plugins", "torch", "executorch", "torchao", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _write_folder(path: str, files: dict, manifest: dict, overwrite: bool) -> None:
    """Write ``files`` (name -> writer(file path)) and the manifest (with the files' digests) into
    a temporary folder beside ``path``, then rename it onto ``path``. On any failure the temporary
    folder is removed and ``path`` is left as it was (a previous export included)."""
    parent, name = os.path.split(path)
    tmp = tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=parent)
    old = None
    try:
        for file_name, write in files.items():
            write(os.path.join(tmp, file_name))
        manifest["files"] = {f: _digest(os.path.join(tmp, f)) for f in files}
        with open(os.path.join(tmp, MANIFEST_FILE), "w") as fh:
            json.dump(manifest, fh, indent=1)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite and os.path.lexists(path):
            old = tempfile.mkdtemp(prefix=f".{name}.", suffix=".old", dir=parent)
            os.rename(path, os.path.join(old, name))
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not os.path.lexists(path):  # put the previous export back
            os.rename(os.path.join(old, name), path)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
