"""Bounds on allocations sized by a user's argument (search k, IVF nlist): a clear error that
names the argument and the bytes it needs, raised before anything is allocated.

The bound is the memory this process can still get: the smallest of the kernel's estimate of
available memory (``MemAvailable`` in ``/proc/meminfo``, else the physical memory), the room left
under ``RLIMIT_AS`` (e.g. ``ulimit -v``) and the room left in the process's cgroup (a container's
memory limit). Requests below ``CHECK_ABOVE`` bytes are not checked (reading those files costs some
microseconds).

Usage::

    check_allocation(nq * k * 16, f"results for nq={nq}, k={k}")   # AllocationError if too big
"""

import os

__all__ = ["AllocationError", "CHECK_ABOVE", "available_memory", "check_allocation", "format_bytes"]

CHECK_ABOVE = 1 << 26  # 64 MiB


class AllocationError(ValueError, MemoryError):
    """An argument asks for more memory than the process can get (a ValueError and MemoryError)."""


def _read_int(path: str) -> int | None:
    try:
        with open(path) as fh:
            text = fh.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # cgroup v2 writes "max" for no limit


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - platforms without sysconf
        return None


def _address_space_room() -> int | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/statm") as fh:
            used = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        used = 0
    return max(0, soft - used)


def _cgroup_room() -> int | None:
    rooms = []
    for limit, usage in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # v2
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",  # v1
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        lim, used = _read_int(limit), _read_int(usage)
        if lim is not None and used is not None and lim < 1 << 60:  # v1 writes ~2**63 for no limit
            rooms.append(max(0, lim - used))
    return min(rooms) if rooms else None


def available_memory() -> int | None:
    """Bytes this process can still allocate (see module docstring); None if nothing is readable.

    Returns:
        The smallest of the available-memory, address-space and cgroup readings, or None.
    """
    readings = (_meminfo_available(), _address_space_room(), _cgroup_room())
    known = [v for v in readings if v is not None]
    return min(known) if known else None


def format_bytes(n: int) -> str:
    """``1536`` -> ``'1.5 KiB'``; binary units up to EiB.

    Args:
        n: a number of bytes.

    Returns:
        Whole bytes below 1 KiB (``'512 B'``), else one decimal and the largest fitting unit.

    Example:
        >>> format_bytes(1536)
        '1.5 KiB'
    """
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} EiB"


def check_allocation(nbytes: int, what: str) -> None:
    """Raise AllocationError if ``nbytes`` cannot fit in the memory available now.

    Args:
        nbytes: bytes the caller is about to allocate.
        what: what needs them, naming the arguments and their values (starts the message).

    Raises:
        AllocationError: ``"<what> need <bytes>, more than the <bytes> of memory available ..."``.
    """
    if nbytes <= CHECK_ABOVE:
        return
    room = available_memory()
    if room is not None and nbytes > room:
        raise AllocationError(
            f"{what} need {format_bytes(nbytes)} ({nbytes} bytes), more than the "
            f"{format_bytes(room)} of memory available to this process"
        )
