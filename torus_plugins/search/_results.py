"""faiss-style results: padding for missing results, merging candidate lists, range search by top-k.

Results are (distances int64 [nq, k], ids int64 [nq, k]) sorted by (distance, insertion order); a
slot with no result holds id ``PAD_ID`` (-1) and distance ``PAD_DISTANCE`` (int64 max), as faiss
pads with -1 and its largest distance.
"""

import numpy as np

from .._memory import check_allocation

__all__ = [
    "PAD_DISTANCE",
    "PAD_ID",
    "pad_results",
    "smallest_k",
    "check_result_memory",
    "range_from_topk",
]

#: Distance of a missing result (k > ntotal), like faiss's largest-distance sentinel.
PAD_DISTANCE = np.iinfo(np.int64).max
#: Id of a missing result, as in faiss.
PAD_ID = -1


def pad_results(D: np.ndarray, I: np.ndarray, k: int):
    """Widen [nq, k'] results (k' <= k) to k columns with faiss's sentinels."""
    nq, have = D.shape
    if have == k:
        return D, I
    out_d = np.full((nq, k), PAD_DISTANCE, np.int64)
    out_i = np.full((nq, k), PAD_ID, np.int64)
    out_d[:, :have], out_i[:, :have] = D, I
    return out_d, out_i


def smallest_k(D: np.ndarray, I: np.ndarray, k: int):
    """The k smallest (distance, id) pairs of each row of candidates [nq, m], sorted by distance
    then id: the merge of partial top-k lists (ties -> the smaller id, i.e. the earlier-added
    code)."""
    pick = np.lexsort((I, D), axis=-1)[:, :k]
    return np.take_along_axis(D, pick, 1), np.take_along_axis(I, pick, 1)


def check_result_memory(nq: int, k: int) -> None:
    """AllocationError (a ValueError and MemoryError) naming nq, k and the bytes, before a search
    whose two int64 [nq, k] result arrays cannot fit in the memory available."""
    what = f"search results for nq={nq} queries and k={k} (distances and ids, int64 [nq, k] each)"
    check_allocation(16 * nq * k, what)


def range_from_topk(topk, q: np.ndarray, limit: int, radius, beyond_limit: str | None = None):
    """faiss-style (lims int64 [nq + 1], D int64, I int64) of every result at distance < radius,
    from ``topk(queries, k)`` searches: k grows 4x for the queries whose k-th result is still a
    result inside the radius, up to ``limit``. Padded slots (id -1) end a query's results.

    ``beyond_limit``: None when a search for ``limit`` results returns every result there is (a
    local index: ``limit`` = ntotal); otherwise the message of the ValueError raised when a query
    still has ``limit`` results inside the radius (a server's largest k).
    """
    nq = q.shape[0]
    found_d: list[np.ndarray | None] = [None] * nq
    found_i: list[np.ndarray | None] = [None] * nq
    rows = np.arange(nq)
    k = min(limit, 32)
    while rows.size and k:
        D, I = topk(q[rows], k)
        more = (D[:, -1] < radius) & (I[:, -1] >= 0)
        if k == limit:
            if beyond_limit is not None and more.any():
                raise ValueError(beyond_limit)
            more[:] = False
        for r, d, i, again in zip(rows, D, I, more):
            if not again:
                inside = (d < radius) & (i >= 0)
                found_d[r], found_i[r] = d[inside], i[inside]
        rows = rows[more]
        k = min(limit, 4 * k)
    empty = np.zeros(0, np.int64)
    dists = [empty if f is None else f for f in found_d]
    idx = [empty if f is None else f for f in found_i]
    lims = np.zeros(nq + 1, np.int64)
    lims[1:] = np.cumsum([len(f) for f in dists])
    return lims, np.concatenate([empty, *dists]), np.concatenate([empty, *idx])
