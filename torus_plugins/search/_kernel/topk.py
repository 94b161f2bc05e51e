"""Entry points of the exact circular-L1 kernel: rows laid out for it, top-k over rows or inverted
lists.

Usage::

    refs = prepare_references(codes)               # once per reference set
    D, I = topk_l1(queries, refs, bits=8, k=10)    # int64 [nq, k], ties -> smaller row first
"""

import numpy as np

from ...codes import pack
from .._results import smallest_k
from . import cpu
from .cpu import (
    AVAILABLE_PATHS,
    GROUP,
    PATH_NAMES,
    PORTABLE,
    cached_order,
    padded_width,
    task_count,
)
from .scan import (
    FAR,
    lists_scan,
    prepare_queries,
    probe_scan,
    tiled_parallel,
    tiled_parallel_rows,
    tiled_serial,
)

__all__ = [
    "prepare_references",
    "nibble_pack",
    "topk_l1",
    "tiled_topk",
    "lists_topk",
    "probe_lists",
    "typed_lists",
]


def prepare_references(codes: np.ndarray) -> np.ndarray:
    """[n, k] codes -> [n, W] uint8 zero-padded to W = 32 * ceil(k / 32) angles (pads add distance
    0). Codes already in that layout are returned as they are: no second copy in memory."""
    n, k = codes.shape
    if k == padded_width(k) and codes.dtype == np.uint8 and codes.flags.c_contiguous:
        return codes
    refs = np.zeros((n, padded_width(k)), np.uint8)
    refs[:, :k] = codes
    return refs


def nibble_pack(codes: np.ndarray, width: int | None = None) -> np.ndarray:
    """:func:`torus_plugins.codes.pack.nibble_pack` with rows padded to the kernel width by default
    (k rounded up to 32 angles): [n, k] codes < 16 -> [n, W / 2] uint8."""
    return pack.nibble_pack(codes, padded_width(codes.shape[1]) if width is None else width)


def _check_arrays(queries, refs, bits: int, packed: bool) -> int:
    """The width W of the rows; TypeError / ValueError for arrays the kernel cannot read."""
    for arr, name in ((queries, "queries"), (refs, "refs")):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8 or arr.ndim != 2:
            kind = getattr(arr, "dtype", type(arr).__name__)
            raise TypeError(
                f"{name} must be a 2-D uint8 numpy array, got {kind} with shape "
                f"{getattr(arr, 'shape', None)}"
            )
    if not refs.flags.c_contiguous:
        raise ValueError("refs must be C-contiguous: build them with prepare_references(codes)")
    if packed and bits > 4:
        raise ValueError(f"packed=True holds two codes per byte: bits must be <= 4, got {bits}")
    width = refs.shape[1] * (2 if packed else 1)
    n_angles = queries.shape[1]
    if width != padded_width(n_angles):
        raise ValueError(
            f"references have width {width}{' (packed)' if packed else ''}, expected "
            f"{padded_width(n_angles)} for {n_angles} angles"
        )
    return width


def topk_l1(
    queries: np.ndarray,
    refs: np.ndarray,
    bits: int,
    k: int,
    portable: bool = False,
    threads: int | None = None,
    path: int | None = None,
    packed: bool = False,
):
    """Exact top-k by circular L1: (distances int64 [nq, k], ids int64 [nq, k]), ties -> smaller id.

    Args:
        queries: [nq, n_angles] uint8 codes < 2**bits.
        refs: ``prepare_references(codes)`` (any C-contiguous [n, W] uint8, W = 32 * ceil(n_angles /
            32)), or with ``packed=True`` and bits <= 4 ``nibble_pack(codes)`` ([n, W / 2]).
        bits: bits per code, 1..8.
        k: results per query, 1 <= k <= n (assumed checked).
        portable: force the portable path (``path=PORTABLE``).
        threads: at most this many threads (see :func:`.cpu.choose_threads`).
        path: a kernel path (PORTABLE, AVX2, AVX512; default the best this CPU has).
        packed: rows hold two codes per byte.

    Raises:
        TypeError: queries or refs not 2-D uint8 arrays.
        ValueError: refs not C-contiguous or of the wrong width, or a path this CPU lacks.
    """
    common = (
        type(queries) is np.ndarray
        and type(refs) is np.ndarray
        and queries.ndim == 2
        and refs.ndim == 2
        and queries.dtype == np.uint8
        and refs.dtype == np.uint8
        and refs.flags.c_contiguous
        and not packed
        and refs.shape[1] == padded_width(queries.shape[1])
    )
    if not common:  # the common case (checked in ~1 us) needs no more checks
        _check_arrays(queries, refs, bits, packed)
    if path is None:
        path = PORTABLE if portable else cpu.BEST_PATH
    elif path not in AVAILABLE_PATHS:
        raise ValueError(
            f"path must be one of {[PATH_NAMES[p] for p in AVAILABLE_PATHS]} on this "
            f"CPU, got {PATH_NAMES.get(path, path)!r}"
        )
    width = refs.shape[1] * (2 if packed else 1)
    ntask = task_count(queries.shape[0], refs.shape[0], width, threads)
    return tiled_topk(queries, refs, bits, k, path, ntask, packed)


def tiled_topk(
    queries: np.ndarray,
    refs: np.ndarray,
    bits: int,
    k: int,
    path: int | None = None,
    ntask: int = 1,
    packed: bool = False,
):
    """:func:`topk_l1` on ``ntask`` threads, inputs assumed checked. Many queries split by query
    (each thread scans every row for its queries), few queries by rows (then one merge)."""
    path = cpu.BEST_PATH if path is None else path
    shift = 8 - bits
    order = cached_order(refs.shape[1] * (2 if packed else 1), packed)
    if ntask == 1:
        return tiled_serial(queries, refs, shift, k, path, packed, order)
    nq = queries.shape[0]
    group = 1 if nq == 1 else GROUP
    qw = prepare_queries(np.ascontiguousarray(queries), shift, order, group)
    if qw.shape[0] // group >= ntask:
        out_d = np.empty((nq, k), np.int64)
        out_i = np.empty((nq, k), np.int64)
        with cpu.LAUNCH:
            tiled_parallel(qw, nq, refs, shift, k, path, packed, group, ntask, out_d, out_i)
    else:
        part_d = np.full((ntask, nq, k), FAR, np.int64)
        part_i = np.full((ntask, nq, k), -1, np.int64)
        with cpu.LAUNCH:
            tiled_parallel_rows(qw, nq, refs, shift, k, path, packed, group, ntask, part_d, part_i)
        # row ranges are in id order, so (distance, id) order keeps ties id-ordered
        out_d, out_i = smallest_k(
            part_d.transpose(1, 0, 2).reshape(nq, -1), part_i.transpose(1, 0, 2).reshape(nq, -1), k
        )
    out_d >>= shift
    return out_d, out_i


def typed_lists(lists) -> tuple:
    """The inverted lists as :func:`lists_topk` reads them: numba typed Lists of each list's rows
    and insertion numbers (views, no copy).

    Args:
        lists: a sequence of stores with ``buf`` (rows), ``ids`` (insertion numbers or None when
            empty) and ``n`` (rows held).

    Returns:
        (rows, seqs): two numba typed Lists, one entry per list.
    """
    from numba.typed import List

    rows, seqs = List(), List()
    for r in lists:
        rows.append(r.buf[: r.n])
        seqs.append(r.ids[: r.n] if r.ids is not None else np.zeros(0, np.int64))
    return rows, seqs


def lists_topk(
    queries: np.ndarray, probe: np.ndarray, lists, seqs, bits: int, k: int, packed: bool = False
):
    """Top-k over inverted lists: (distances int64 [nq, k], insertion numbers int64 [nq, k]), FAR /
    -1 where a query's probed lists hold fewer than k codes.

    Args:
        queries: [nq, n_angles] uint8 codes.
        probe: [nq, nprobe] list numbers each query scans.
        lists: numba typed List of the lists' [n_l, W] uint8 rows (C order; [n_l, W / 2]
            nibble-packed if ``packed``).
        seqs: numba typed List of the lists' int64 insertion numbers, increasing within a list.
        bits: bits per code.
        k: results per query.
        packed: rows hold two codes per byte.

    Returns:
        (distances, insertion numbers): a code held in several lists is returned once.
    """
    out_d = np.empty((queries.shape[0], k), np.int64)
    out_s = np.empty((queries.shape[0], k), np.int64)
    width = lists[0].shape[1] * (2 if packed else 1)
    lists_scan(
        np.ascontiguousarray(queries),
        np.ascontiguousarray(probe, dtype=np.int64),
        lists,
        seqs,
        8 - bits,
        k,
        cpu.BEST_PATH,
        packed,
        cached_order(width, packed),
        out_d,
        out_s,
    )
    return out_d, out_s


def probe_lists(queries: np.ndarray, refs: np.ndarray, bits: int, nprobe: int) -> np.ndarray:
    """The ``nprobe`` rows of ``refs`` nearest to each query by circular L1, in increasing row
    order.

    One pass over every row's distance and a counting selection, no sort: the probe step of an
    inverted file, whose scan visits lists in list order anyway. Among rows tied at the boundary
    distance the smaller ones are taken.

    Args:
        queries: [nq, n_angles] uint8 codes.
        refs: ``prepare_references(centroids)`` ([n, W] uint8, unpacked, C order; n >= nprobe).
        bits: bits per code.
        nprobe: rows per query, 1 <= nprobe <= n.

    Returns:
        int64 [nq, nprobe] row numbers, increasing within a query (not nearest first).
    """
    out = np.empty((queries.shape[0], nprobe), np.int64)
    if queries.shape[0]:
        probe_scan(
            np.ascontiguousarray(queries),
            refs,
            8 - bits,
            nprobe,
            cpu.BEST_PATH,
            cached_order(refs.shape[1], False),
            out,
        )
    return out
