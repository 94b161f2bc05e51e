"""Exact circular-L1 top-k over b-bit codes: run-time kernel paths, the search entry point, and a numpy reference.

The trick: shift each reference code to the top of its byte, x = c << (8 - b), and each query as
q' = (q << (8 - b)) - 128 (mod 256). Then u = uint8(x - q') = 2^(8-b) * ((c - q) mod 2^b) + 128 (mod 256) and

    |u - 128| = 2^(8-b) * min(|c - q|, 2^b - |c - q|)      (the circular distance, scaled)

so a distance over 8 angles is one byte subtract plus one sum of absolute differences against 128 (x86
``psadbw``: 64 bytes per ``vpsadbw`` on AVX-512BW, 32 on AVX2; a portable zext/abs/reduce elsewhere; the path is
chosen at run time from the CPU's features).

Exact search (:func:`topk_l1`) runs :mod:`torus_plugins.codes.tiled`: 8 rows per tile with one row per 64-bit
lane, so a ``psadbw`` yields 8 finished partial distances and nothing is summed horizontally.

Inverted lists (``tiled.lists_topk``, for :class:`torus_plugins.search.TorusIndexIVF`) run the same tiles, list by
list, over the queries probing each list.

Threads: a search is split over threads only past MIN_TASK_WORK per thread (``threads=`` caps them), so small
searches never wait for woken threads; many queries split by query, few by rows.

Fork: a process forked after a multi-threaded search (``multiprocessing``'s "fork" start method,
DataLoader workers) can search. numba's default threading layer on Linux is GNU OpenMP, which cannot
run threads in a forked child (numba terminates the child: "fork() called from a process already
using GNU OpenMP"); a child forked after that layer ran therefore searches on one thread (the serial
kernel, same results), as torch's DataLoader workers run torch on one thread. With a fork-safe layer
(``tbb``: ``pip install tbb``, or ``NUMBA_THREADING_LAYER=workqueue``; see numba's threading-layer
docs) children keep their threads. The package does not change numba's layer itself: it is a
process-wide choice (``workqueue`` aborts when two threads launch parallel kernels at once, e.g.
your own numba code beside a search).

Why numba (a dependency of this package for this module): a numpy uint8 loop runs ~0.2k QPS on 100k x 64 codes;
the tiled kernel runs 4-5x faiss ``IndexFlatIP`` on the float vectors per thread (bench/search.py, README).
Without numba the numpy reference gives identical results, only slower.

Usage::

    refs = prepare_references(codes)                    # once per reference set (no copy: uint8, C order, k % 32 == 0)
    D, I = topk_l1(queries, refs, bits=8, k=10)        # int64 [nq, k], ids ascending within equal distance
"""

import os
import threading

import numpy as np

from .distance import coordinate_distance

__all__ = ["HAVE_NUMBA", "USES_PSADBW", "AVAILABLE_PATHS", "BEST_PATH", "PATH_NAMES", "prepare_references",
           "topk_l1", "topk_l1_numpy", "choose_threads"]

BLOCK = 256          # reference rows per block
CHUNK = 32           # rows are padded to a multiple of this many angles (pieces of 64 or 32 angles per tile row)
_LAUNCH = threading.Lock()  # one search at a time (each uses every numba thread); the workqueue layer would abort

try:
    import numba
    from numba import njit
    import llvmlite.binding as llvm

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    HAVE_NUMBA = False


PORTABLE, AVX2, AVX512 = 0, 1, 2
PATH_NAMES = {PORTABLE: "portable", AVX2: "avx2", AVX512: "avx512"}


def _host_paths() -> tuple:
    """Kernel paths this host runs: portable always; AVX2 / AVX-512BW on an x86 host whose CPU has them, with
    numba compiling for the host (not a generic or pinned CPU)."""
    if not HAVE_NUMBA:
        return ()
    if numba.config.CPU_NAME not in (None, "host") or numba.config.CPU_FEATURES:
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
BEST_PATH = max(AVAILABLE_PATHS) if AVAILABLE_PATHS else None
USES_PSADBW = BEST_PATH in (AVX2, AVX512)
MIN_TASK_WORK = 1 << 29   # (query + 4) x row x byte operations (~5 ms) per thread before another one pays off


def padded_width(n_angles: int) -> int:
    return -(-n_angles // CHUNK) * CHUNK


def prepare_references(codes: np.ndarray) -> np.ndarray:
    """[n, k] codes -> [n, W] uint8 zero-padded to W = 32 * ceil(k / 32) angles (pads add distance 0).

    Codes whose width is already a multiple of 32 are returned as they are: no second copy in memory.
    """
    n, k = codes.shape
    if k == padded_width(k) and codes.dtype == np.uint8 and codes.flags.c_contiguous:
        return codes  # already the layout: no copy
    refs = np.zeros((n, padded_width(k)), np.uint8)
    refs[:, :k] = codes
    return refs


def topk_l1_numpy(queries: np.ndarray, codes: np.ndarray, bits: int, k: int, chunk: int = 64):
    """Reference: full distance rows, then a stable sort (distance, then id)."""
    nq = queries.shape[0]
    out_d = np.empty((nq, k), np.int64)
    out_i = np.empty((nq, k), np.int64)
    for s in range(0, nq, chunk):
        d = coordinate_distance(queries[s:s + chunk, None, :], codes[None], bits).sum(-1)
        order = np.argsort(d, axis=1, kind="stable")[:, :k]
        out_i[s:s + chunk] = order
        out_d[s:s + chunk] = np.take_along_axis(d, order, 1)
    return out_d, out_i


if HAVE_NUMBA:

    def _jit(parallel):
        def wrap(fn):
            try:  # the on-disk cache saves the seconds of compilation; fall back if no cache location works
                return njit(parallel=parallel, cache=True, boundscheck=False, nogil=True)(fn)
            except RuntimeError:  # pragma: no cover
                return njit(parallel=parallel, cache=False, boundscheck=False, nogil=True)(fn)
        return wrap


def _threads_unsafe_after_fork() -> bool:
    """Whether numba's started threading layer cannot run threads in a forked child (GNU OpenMP)."""
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel ran yet: a child starts its own layer
        return False
    if layer != "omp":
        return False
    from numba.np.ufunc import omppool
    return getattr(omppool, "openmp_vendor", "GNU") == "GNU"


#: True in a process forked after GNU OpenMP ran: it searches on one thread (see module docstring).
SERIAL_AFTER_FORK = False


def _after_fork_in_child() -> None:
    global SERIAL_AFTER_FORK
    if HAVE_NUMBA and _threads_unsafe_after_fork():
        SERIAL_AFTER_FORK = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def choose_threads(nq: int, n: int, width: int, threads: int | None = None) -> int:
    """Threads for one search: at most ``threads`` (default: numba's current setting, which follows
    ``NUMBA_NUM_THREADS`` / ``numba.set_num_threads``) and one per MIN_TASK_WORK of work, so that small searches
    never pay for waking threads. Work = (nq + 4) * n * width: every query scans every row, and tiling a row costs
    about what 4 queries do. Many queries split by query, few by rows (see tiled.tiled_topk)."""
    limit = numba.get_num_threads() if threads is None else int(threads)
    by_work = max(1, ((nq + 4) * n * width) // MIN_TASK_WORK)
    return max(1, min(limit, by_work))


def topk_l1(queries: np.ndarray, refs: np.ndarray, bits: int, k: int, portable: bool = False,
            threads: int | None = None, path: int | None = None, packed: bool = False):
    """Exact top-k by circular L1: (distances int64 [nq, k], ids int64 [nq, k]); ties -> smaller id first.

    ``refs`` is ``prepare_references(codes)`` (or any C-contiguous [n, W] uint8 array, W = 32 * ceil(k / 32)), or
    with ``packed=True`` and bits <= 4, ``tiled.nibble_pack(codes)`` ([n, W / 2], two codes per byte).
    ``path`` forces a kernel path (PORTABLE, AVX2, AVX512; default the best this CPU has); ``portable=True`` is
    ``path=PORTABLE``. ``threads`` caps the threads (see choose_threads). The scan is :mod:`.tiled`'s.
    Inputs are assumed validated (uint8 values < 2**bits, 1 <= k <= n).
    """
    if not (isinstance(queries, np.ndarray) and isinstance(refs, np.ndarray) and queries.dtype == np.uint8
            and refs.dtype == np.uint8 and queries.ndim == 2 and refs.ndim == 2):
        for arr, name in ((queries, "queries"), (refs, "refs")):
            if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8 or arr.ndim != 2:
                raise TypeError(f"{name} must be a 2-D uint8 numpy array, got {getattr(arr, 'dtype', type(arr).__name__)}"
                                f" with shape {getattr(arr, 'shape', None)}")
    if not refs.flags.c_contiguous:
        raise ValueError("refs must be C-contiguous: build them with prepare_references(codes)")
    if packed and bits > 4:
        raise ValueError(f"packed=True holds two codes per byte: bits must be <= 4, got {bits}")
    nq, n_angles = queries.shape
    width = refs.shape[1] * (2 if packed else 1)
    if width != padded_width(n_angles):
        raise ValueError(f"references have width {width}{' (packed)' if packed else ''}, expected "
                         f"{padded_width(n_angles)} for {n_angles} angles")
    if not HAVE_NUMBA:
        codes = _tiled.nibble_unpack(refs, n_angles) if packed else refs[:, :n_angles]
        return topk_l1_numpy(np.ascontiguousarray(queries), codes, bits, k)
    if path is None:
        path = PORTABLE if portable else BEST_PATH
    elif path not in AVAILABLE_PATHS:
        raise ValueError(f"path must be one of {[PATH_NAMES[p] for p in AVAILABLE_PATHS]} on this CPU, "
                         f"got {PATH_NAMES.get(path, path)!r}")
    n = refs.shape[0]
    small = (nq + 4) * n * width < 2 * MIN_TASK_WORK      # (skips numba.get_num_threads: ~1 us per call)
    serial = threads == 1 or small or SERIAL_AFTER_FORK
    ntask = 1 if serial else choose_threads(nq, n, width, threads)
    return _tiled.tiled_topk(queries, refs, bits, k, path, ntask, packed)


from . import tiled as _tiled  # noqa: E402  (tiled builds on this module's paths and _jit)
