"""Exact circular-L1 top-k over b-bit codes: a compiled (numba) kernel with a numpy fallback.

Why numba: a numpy uint8 loop runs ~0.2k QPS on 100k x 64 codes; this kernel lays the references out in blocks
of 32 vectors per angle (``[n/32, k, 32]``) so the inner loop is a vertical uint8 SIMD subtract/abs/add over
32 lanes and 8 queries share each loaded block, which gets it to IndexFlatIP speed (see bench/search.py).
Selection keeps a sorted top-k per query while ids stream in ascending order; only a strictly smaller distance
displaces the k-th entry, so ties are broken by smaller id. If numba is missing the numpy fallback gives identical results, only slower.

Usage::

    layout = block_layout(codes, 8)                     # once per reference set
    D, I = topk_l1(queries, layout, codes, 8, k=10)    # int64 [nq, k], ids ascending within equal distance
"""

import numpy as np

from .distance import coordinate_distance

__all__ = ["HAVE_NUMBA", "LANES", "block_layout", "topk_l1", "topk_l1_numpy"]

LANES = 32
QBLOCK = 8

try:  # pragma: no cover - exercised implicitly
    from numba import njit, prange

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    HAVE_NUMBA = False


def block_layout(codes: np.ndarray, bits: int = 8) -> np.ndarray:
    """[n, k] uint8 -> [ceil(n/32), k, 32] uint8 (zero-padded, codes << (8 - bits)): the kernel's layout."""
    n, k = codes.shape
    nb = (n + LANES - 1) // LANES
    pad = np.zeros((nb * LANES, k), np.uint8)
    pad[:n] = codes << np.uint8(8 - bits)
    return np.ascontiguousarray(pad.reshape(nb, LANES, k).transpose(0, 2, 1))


def topk_l1_numpy(queries: np.ndarray, codes: np.ndarray, bits: int, k: int, chunk: int = 64):
    """Reference/fallback: full distance rows, then a stable sort (distance, then id)."""
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

    def _jit(fn):
        try:  # the on-disk cache saves the ~seconds of compilation; fall back if no cache location works
            return njit(parallel=True, cache=True, boundscheck=False, nogil=True)(fn)
        except RuntimeError:  # pragma: no cover
            return njit(parallel=True, cache=False, boundscheck=False, nogil=True)(fn)

    @_jit
    def _topk_kernel(q, xt, n, k, proto, out_d, out_i):  # pragma: no cover - compiled
        nq, dim = q.shape
        nb = xt.shape[0]
        nblk = (nq + QBLOCK - 1) // QBLOCK
        for qb in prange(nblk):
            q0 = qb * QBLOCK
            qn = min(QBLOCK, nq - q0)
            acc = np.zeros_like(proto)
            cnt = np.zeros(QBLOCK, np.int64)
            for b in range(nb):
                acc[:] = 0
                for j in range(dim):
                    for t in range(qn):
                        qj = q[q0 + t, j]
                        for lane in range(LANES):
                            # codes are stored shifted to the top of the byte, so uint8 wrap-around is
                            # mod 2**bits; |int8(a - b)| is then min(d, -d) (and -128 reads back as 128)
                            acc[t, lane] += np.uint8(abs(np.int8(np.uint8(qj - xt[b, j, lane]))))
                # keep a sorted top-k per query; ids arrive in ascending order and only a strictly smaller
                # distance displaces the k-th entry, so equal distances keep the smaller id first.
                for t in range(qn):
                    od = out_d[q0 + t]
                    oi = out_i[q0 + t]
                    c = cnt[t]
                    if c == k:  # cheap vectorised reject of the whole block first
                        m = acc[t, 0]
                        for lane in range(1, LANES):
                            m = min(m, acc[t, lane])
                        if np.int64(m) >= od[k - 1]:
                            continue
                    for lane in range(LANES):
                        i = b * LANES + lane
                        if i >= n:
                            break
                        v = np.int64(acc[t, lane])
                        if c == k and v >= od[k - 1]:
                            continue
                        p = c if c < k else k - 1
                        while p > 0 and od[p - 1] > v:
                            od[p] = od[p - 1]
                            oi[p] = oi[p - 1]
                            p -= 1
                        od[p] = v
                        oi[p] = i
                        if c < k:
                            c += 1
                    cnt[t] = c


def topk_l1(queries: np.ndarray, layout: np.ndarray, codes: np.ndarray, bits: int, k: int):
    """Exact top-k by circular L1: (distances int64 [nq, k], ids int64 [nq, k]); ties -> smaller id first.

    ``layout`` is ``block_layout(codes, bits)`` (ignored without numba). Inputs are assumed validated.
    """
    n, dim = codes.shape
    if not HAVE_NUMBA:
        return topk_l1_numpy(queries, codes, bits, k)
    maxd = dim * 128  # largest (scaled) distance: must fit the accumulator
    acc_dtype = np.uint16 if maxd <= np.iinfo(np.uint16).max else np.uint32
    nq = queries.shape[0]
    out_d = np.empty((nq, k), np.int64)
    out_i = np.empty((nq, k), np.int64)
    if nq:
        shift = np.uint8(8 - bits)
        _topk_kernel(np.ascontiguousarray(queries << shift), layout, n, k, np.zeros((QBLOCK, LANES), acc_dtype),
                     out_d, out_i)
        out_d >>= int(shift)
    return out_d, out_i
