"""Atomic file replacement: readers see the old file or the new one, never a mix, whatever happens.

``atomic_write(path, data)`` writes to a temporary file with a unique name in the target's
directory, ``.<name>.<12 hex digits>.tmp``, flushes it to disk (fsync), renames it onto ``path``
(``os.replace``, atomic on POSIX and Windows) and syncs the directory. Any exception,
KeyboardInterrupt included, removes the temporary file and leaves ``path`` as it was. Concurrent
writers to one path each write their own temporary file: the last rename wins and the file is always
one writer's complete data.

A writer killed outright (SIGKILL, power loss) cannot clean up: its temporary file stays, under the
hidden name above, which no reader opens. While writing, a writer holds an advisory lock (``flock``)
on its temporary file; the next ``atomic_write`` to the same path removes every such file whose lock
is free, i.e. whose writer is gone. Where ``flock`` is unavailable (Windows, some network file
systems) leftovers stay until removed by hand (they are safe to delete when no write is running).

Usage::

    atomic_write("codes.h", text)         # str (ASCII) or bytes
"""

import os
import re
import secrets
from types import ModuleType

fcntl: ModuleType | None  # None where flock is missing (Windows)
try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["atomic_write", "temp_name_pattern"]

_TOKEN_HEX = 12


def temp_name_pattern(path) -> re.Pattern:
    """The names of ``path``'s temporary files (in its directory): ``.<name>.<12 hex>.tmp``.

    Args:
        path: the target file (str or path-like); only its base name is used.

    Returns:
        A compiled pattern to ``fullmatch`` against names in the target's directory.

    Example:
        >>> bool(temp_name_pattern("out/codes.h").fullmatch(".codes.h.0123456789ab.tmp"))
        True
    """
    base = os.path.basename(os.fspath(path))
    return re.compile(re.escape(f".{base}.") + f"[0-9a-f]{{{_TOKEN_HEX}}}" + re.escape(".tmp"))


def _lock(fd: int, wait: bool) -> bool:
    """Lock ``fd`` exclusively (advisory): True if taken, False if held elsewhere or unsupported."""
    if fcntl is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        return True
    except OSError:  # BlockingIOError: a live writer holds it; ENOLCK/EOPNOTSUPP: no locks here
        return False


def _same_file(name: str, fd: int) -> bool:
    """Whether ``name`` still names the file open as ``fd`` (not removed or replaced meanwhile)."""
    try:
        a, b = os.stat(name, follow_symlinks=False), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def remove_stale_temps(path) -> list:
    """Remove the temporary files of ``path`` left by writers that died; return their names.

    A file is removed only if nobody holds its lock (a running writer does) and it is a regular file
    that still has the name it was found under.
    """
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    pattern = temp_name_pattern(path)
    removed: list[str] = []
    if fcntl is None:
        return removed
    try:
        names = [e.name for e in os.scandir(directory) if pattern.fullmatch(e.name)]
    except OSError:
        return removed
    for name in names:
        full = os.path.join(directory, name)
        try:
            fd = os.open(
                full,
                os.O_RDONLY
                | os.O_NONBLOCK
                | getattr(os, "O_NOFOLLOW", 0)
                | getattr(os, "O_CLOEXEC", 0),
            )
        except OSError:
            continue
        try:
            if _lock(fd, wait=False) and _same_file(full, fd) and os.path.isfile(full):
                os.unlink(full)
                removed.append(name)
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def _create_temp(path: str):
    """A new, locked temporary file next to ``path``: (fd, name); mode 0o666 less the umask."""
    directory, base = os.path.split(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_BINARY", 0)
    for _ in range(100):
        name = os.path.join(directory, f".{base}.{secrets.token_hex(_TOKEN_HEX // 2)}.tmp")
        try:
            fd = os.open(name, flags, 0o666)
        except FileExistsError:
            continue
        try:
            _lock(fd, wait=True)
            if fcntl is None or _same_file(name, fd):
                return fd, name
        except BaseException:
            os.close(fd)
            _unlink_quietly(name)
            raise
        os.close(fd)  # a cleaner took it for a dead writer's (between create and lock): new name
    raise FileExistsError(f"could not create a temporary file next to {path!r}")


def _unlink_quietly(name: str) -> None:
    try:
        os.unlink(name)
    except OSError:
        pass


def _fsync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable (POSIX); a no-op where directories can't be opened."""
    try:
        fd = os.open(directory or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, data) -> None:
    """Replace ``path`` atomically by ``data`` (bytes, or str written as ASCII): see the module.

    Temporary files of ``path`` left by dead writers are removed first.

    Args:
        path: the file to replace or create (str or path-like).
        data: the new contents: bytes (or another buffer), or an ASCII str.

    Raises:
        OSError: the temporary file cannot be created, written or renamed (``path`` is then
            unchanged and the temporary file removed).
        TypeError, UnicodeEncodeError: ``data`` is not bytes or ASCII text.
    """
    path = os.fspath(path)
    payload = data.encode("ascii") if isinstance(data, str) else data
    remove_stale_temps(path)
    fd, tmp = _create_temp(path)
    try:
        try:
            fh = open(fd, "wb")
        except BaseException:
            os.close(fd)
            raise
        with fh:  # the lock lives as long as fd: until after the rename
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
            os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    _fsync_directory(os.path.dirname(path))
