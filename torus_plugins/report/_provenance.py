"""Provenance of a run: versions, CPU, threads, seeds, git commit, wall time."""

import datetime
import os
import platform
import subprocess
import time

import numpy as np

from ._results import to_jsonable


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else ``platform.processor()`` /
    ``platform.machine()``.

    Returns:
        The model name, or ``"unknown"``.
    """
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def git_commit(path: str | None = None) -> str | None:
    """The git commit of the checkout holding ``path`` (default: this package).

    Args:
        path: a folder inside a git work tree; default the package's own folder.

    Returns:
        The commit hash, with ``+dirty`` appended if tracked files have uncommitted changes; None
        when git or the repository is unavailable.
    """
    where = path or os.path.dirname(os.path.abspath(__file__))

    def run(*cmd):
        return subprocess.run(
            ["git", "-C", where, *cmd], capture_output=True, text=True, timeout=10
        )

    try:
        head = run("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        dirty = run("status", "--porcelain", "--untracked-files=no").stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except ImportError:
        return None
    return str(getattr(mod, "__version__", "unknown"))


def provenance(args=None, seeds=(), threads: int | None = None) -> dict:
    """Where and how a run happened: versions, machine, threads, seeds, commit, start time.

    Args:
        args: the run's arguments, a dict or an ``argparse.Namespace`` (or None).
        seeds: the seeds the run uses (integers).
        threads: the torch intra-op thread count used (default: ``torch.get_num_threads()``).

    Returns:
        A dict of JSON values plus a private monotonic start stamp ``_t0`` that :func:`finish`
        turns into ``wall_seconds``.

    Raises:
        TypeError: ``args`` is neither a dict nor an object with ``__dict__``.
        ValueError: ``args`` holds a non-finite float.
    """
    import torch

    from .. import __version__

    if threads is None:
        threads = torch.get_num_threads()
    if args is not None and not isinstance(args, dict):
        args = vars(args)
    return {
        "package": "torus-plugins",
        "package_version": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "faiss": _version("faiss"),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "threads": int(threads),
        "seeds": [int(s) for s in seeds],
        "git_commit": git_commit(),
        "start_time_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "load_average_at_start": _load_average(),
        "args": to_jsonable(args) if args is not None else None,
        "_t0": time.perf_counter(),
    }


def _load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def describe(prov: dict) -> str:
    """One line for a run's output: CPU model, threads, load average, seeds.

    Args:
        prov: a dict from :func:`provenance` or :func:`finish`.

    Returns:
        The line, without a newline.
    """
    return (
        f"machine: {prov['cpu_model']} ({prov['cpu_count']} CPUs), {prov['threads']} torch "
        f"thread(s) per run, load average {prov['load_average_at_start']}; "
        f"seeds {prov['seeds']}"
    )


def finish(prov: dict) -> dict:
    """A copy of ``prov`` with ``wall_seconds`` (since ``provenance()``), end time, load average.

    Args:
        prov: a dict from :func:`provenance` (with its ``_t0`` stamp).

    Returns:
        A new dict without ``_t0``, with ``wall_seconds``, ``end_time_utc`` and
        ``load_average_at_end`` added.
    """
    out = {k: v for k, v in prov.items() if k != "_t0"}
    out["wall_seconds"] = round(time.perf_counter() - prov["_t0"], 1)
    out["end_time_utc"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    out["load_average_at_end"] = _load_average()
    return out
