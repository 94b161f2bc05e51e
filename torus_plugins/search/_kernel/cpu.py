"""What the kernel runs on: the CPU's code paths, the tile geometry, the JIT helper and thread
counts.

A leaf module (numpy, numba and llvmlite only): the IR generation, the compiled scans and the search
entry points all build on it.

Paths: ``PORTABLE`` (generic vector code, every CPU), ``AVX2`` (``psadbw`` on 256-bit vectors) and
``AVX512`` (``vpsadbw`` on 512-bit vectors, AVX-512BW); :data:`AVAILABLE_PATHS` holds those the host
runs, chosen from its features at import. numba must compile for the host itself: a pinned
``NUMBA_CPU_NAME`` or ``NUMBA_CPU_FEATURES`` leaves the portable path only.

Threads: a search is split over threads only past :data:`MIN_TASK_WORK` per thread (``threads`` caps
them), so small searches never wait for woken threads.

Fork: a process forked after a multi-threaded search (``multiprocessing``'s "fork" start method,
DataLoader workers) can search. numba's default threading layer on Linux is GNU OpenMP, which cannot
run threads in a forked child (numba terminates the child: "fork() called from a process already
using GNU OpenMP"); a child forked after that layer ran therefore searches on one thread (the serial
kernel, same results), as torch's DataLoader workers run torch on one thread. With a fork-safe layer
(``tbb``: ``pip install tbb``, or ``NUMBA_THREADING_LAYER=workqueue``; see numba's threading-layer
docs) children keep their threads. The package does not change numba's layer itself: it is a
process-wide choice (``workqueue`` aborts when two threads launch parallel kernels at once, e.g.
your own numba code beside a search).
"""

import os
import threading

import llvmlite.binding as llvm
import numba
import numpy as np
from numba import njit

PORTABLE, AVX2, AVX512 = 0, 1, 2
PATH_NAMES = {PORTABLE: "portable", AVX2: "avx2", AVX512: "avx512"}

BLOCK = 256  # reference rows per block: tiled once per block and thread, kept in L1
TILE = 8  # rows per tile: the 64-bit lanes of a 512-bit vector
CHUNK = 32  # rows are padded to a multiple of this many angles (tile pieces of 64 or 32 angles)
GROUP = 3  # queries per pass over a block's tiles (chunks held in registers); 1 if nq == 1
#: (query + 4) x row x byte operations (~5 ms) per thread before another thread pays off
MIN_TASK_WORK = 1 << 29

#: One parallel search at a time: each uses every numba thread, and numba's workqueue layer aborts
#: when two threads launch parallel kernels at once.
LAUNCH = threading.Lock()


def _host_paths() -> tuple:
    """Paths this host runs: portable always; AVX2 / AVX-512BW on an x86 host whose CPU has them,
    with numba compiling for the host (not a generic or pinned CPU)."""
    config = numba.config  # its settings are set at import from the environment: not typed
    if config.CPU_NAME not in (None, "host") or config.CPU_FEATURES:  # type: ignore[attr-defined]
        return (PORTABLE,)
    try:
        if not llvm.get_process_triple().startswith(("x86_64", "i686")):
            return (PORTABLE,)
        feats = llvm.get_host_cpu_features()
    except Exception:  # pragma: no cover - feature query unavailable
        return (PORTABLE,)
    paths = [PORTABLE]
    if feats.get("avx2"):
        paths.append(AVX2)
        if feats.get("avx512bw") and feats.get("avx512f"):
            paths.append(AVX512)
    return tuple(paths)


AVAILABLE_PATHS = _host_paths()
BEST_PATH = max(AVAILABLE_PATHS)
USES_PSADBW = BEST_PATH in (AVX2, AVX512)


def jit(parallel: bool):
    """numba ``njit`` as every kernel function uses it: cached on disk (saves seconds of compilation
    per process; without a writable cache location, compiled per process), no bounds checks, GIL
    released."""

    def wrap(fn):
        try:
            return njit(parallel=parallel, cache=True, boundscheck=False, nogil=True)(fn)
        except RuntimeError:  # pragma: no cover - no cache location
            return njit(parallel=parallel, cache=False, boundscheck=False, nogil=True)(fn)

    return wrap


def padded_width(n_angles: int) -> int:
    """Angles per stored row: ``n_angles`` rounded up to a multiple of CHUNK (pads hold code 0)."""
    return -(-n_angles // CHUNK) * CHUNK


def query_order(width: int, packed: bool) -> np.ndarray:
    """Angle held at each tile position: the identity, or for nibble-packed rows [0, 2, .., 62, 1,
    3, .., 63] per 64 angles (a last piece of 32 angles: [0, 2, .., 30, 1, .., 31])."""
    if not packed:
        return np.arange(width)
    order = []
    for start in range(0, width, 64):
        size = min(64, width - start)
        half = range(size // 2)
        order += [start + 2 * p for p in half] + [start + 2 * p + 1 for p in half]
    return np.array(order, np.int64)


_ORDERS: dict = {}


def cached_order(width: int, packed: bool) -> np.ndarray:
    """:func:`query_order`, computed once per (width, packed)."""
    key = (width, packed)
    if key not in _ORDERS:
        _ORDERS[key] = query_order(width, packed)
    return _ORDERS[key]


def _threads_unsafe_after_fork() -> bool:
    """Whether numba's started threading layer cannot run threads in a forked child (GNU OpenMP)."""
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel ran yet: a child starts its own layer
        return False
    if layer != "omp":
        return False
    from numba.np.ufunc import omppool  # type: ignore[attr-defined]  # compiled, no stub

    return getattr(omppool, "openmp_vendor", "GNU") == "GNU"


#: True in a process forked after GNU OpenMP ran: it searches on one thread (see the module
#: docstring).
SERIAL_AFTER_FORK = False


def _after_fork_in_child() -> None:
    global SERIAL_AFTER_FORK
    if _threads_unsafe_after_fork():
        SERIAL_AFTER_FORK = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def choose_threads(nq: int, n: int, width: int, threads: int | None = None) -> int:
    """Threads for one search: at most ``threads`` (default: numba's current setting, which follows
    ``NUMBA_NUM_THREADS`` / ``numba.set_num_threads``) and one per MIN_TASK_WORK of work, so that
    small searches never pay for waking threads. Work = (nq + 4) * n * width: every query scans
    every row, and tiling a row costs about what 4 queries do."""
    limit = numba.get_num_threads() if threads is None else int(threads)
    by_work = max(1, ((nq + 4) * n * width) // MIN_TASK_WORK)
    return max(1, min(limit, by_work))


def task_count(nq: int, n: int, width: int, threads: int | None) -> int:
    """Threads a search of nq queries over n rows of ``width`` angles runs on (1: the serial
    kernel)."""
    small = (nq + 4) * n * width < 2 * MIN_TASK_WORK  # skips numba.get_num_threads (~1 us a call)
    if threads == 1 or small or SERIAL_AFTER_FORK:
        return 1
    return choose_threads(nq, n, width, threads)
