"""tqdm progress for the package's long steps (IVF k-means, ripser), on stderr when it helps.

``progress=None`` (the default of the functions that take it): a bar when stderr is a terminal
(tqdm's own ``disable=None`` rule), nothing in a log file, a pipe or a test; ``True``: always;
``False``: never. A bar appears only after ``DELAY`` seconds, so short calls print nothing, and is
removed when done (``leave=False``).

* ``progress_bar(total, desc, progress)``: a tqdm bar to ``update()`` per step (k-means iterations).
* ``running(desc, progress)``: a context manager for ONE long call with no steps to count (ripser):
  a bar showing the elapsed time, refreshed by a background thread until the block ends.

Usage::

    with progress_bar(20, "k-means", progress) as bar:
        for _ in range(20):
            step(); bar.update()
    with running("ripser H0-H2, 300 landmarks", progress):
        dgms = ripser(...)
"""

import contextlib
import sys
import threading
import time

__all__ = ["DELAY", "check_progress", "progress_bar", "running"]

DELAY = 1.0  # seconds before a bar appears
REFRESH = 0.5  # seconds between refreshes of a running() bar


def check_progress(progress, name: str = "progress"):
    """``progress`` if it is None, True or False; TypeError naming ``name`` otherwise.

    Args:
        progress: the caller's ``progress`` argument.
        name: the argument's name in the error message.

    Returns:
        ``progress`` unchanged.

    Raises:
        TypeError: ``progress`` is not None, True or False (0 and 1 included).
    """
    if progress is not None and not isinstance(progress, bool):
        raise TypeError(
            f"{name} must be None (a bar when stderr is a terminal), True or False, "
            f"got {progress!r} ({type(progress).__name__})"
        )
    return progress


def _disable(progress):
    """tqdm's ``disable``: None lets tqdm hide the bar when its file is not a terminal."""
    return None if progress is None else not progress


def progress_bar(total: int, desc: str, progress=None, unit: str = "it"):
    """A tqdm bar of ``total`` steps on stderr (see the module docstring for ``progress``).

    Args:
        total: the number of steps.
        desc: the bar's label.
        progress: None (a bar when stderr is a terminal), True or False.
        unit: the steps' unit shown by the bar.

    Returns:
        A ``tqdm`` bar (also a context manager); call ``update()`` per step.

    Raises:
        TypeError: ``progress`` is not None, True or False.
    """
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        disable=_disable(check_progress(progress)),
        delay=DELAY,
        leave=False,
        file=sys.stderr,
    )


@contextlib.contextmanager
def running(desc: str, progress=None):
    """Show ``desc`` and the elapsed time while the block runs (one call that reports no steps).

    A daemon thread refreshes the bar every ``REFRESH`` seconds; it is joined and the bar closed
    when the block exits, also on an exception.

    Args:
        desc: the bar's label.
        progress: None (a bar when stderr is a terminal), True or False.

    Yields:
        The ``tqdm`` bar.

    Raises:
        TypeError: ``progress`` is not None, True or False.
    """
    from tqdm.auto import tqdm

    bar = tqdm(
        total=None,
        desc=desc,
        bar_format="{desc}: {elapsed} elapsed",
        delay=DELAY,
        leave=False,
        disable=_disable(check_progress(progress)),
        file=sys.stderr,
    )
    done = threading.Event()

    def tick():
        start = time.monotonic()
        while not done.wait(REFRESH):
            if time.monotonic() - start >= DELAY:
                bar.refresh()

    thread = (
        None
        if bar.disable
        else threading.Thread(target=tick, name="torus-plugins-progress", daemon=True)
    )
    if thread is not None:
        thread.start()
    try:
        yield bar
    finally:
        done.set()
        if thread is not None:
            thread.join()
        bar.close()
