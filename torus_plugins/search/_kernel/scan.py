"""Compiled scans: exact circular-L1 top-k over rows, serial or over threads, and over inverted
lists.

Every scan walks blocks of BLOCK rows: a block is tiled once (:func:`.ir.to_tiles`), then each group
of GROUP queries (one when there is only one) gets the block's distances in one pass
(:func:`.ir.tile_sad`). Selection per query and block: the block's smallest distance is compared
with the query's current k-th; only blocks that improve it are walked, and their rows go through
:func:`make_push`'s insertion, the one every scan shares: ordered by (distance, id), so ties go to
the smaller id (the earlier-inserted code).

Distances inside a scan are scaled by 2^(8 - bits) (the codes sit at the top of their byte); the
callers shift them back.
"""

import numpy as np
from numba import prange

from .cpu import BLOCK, GROUP, TILE, jit
from .ir import tile_sad, to_tiles

__all__ = [
    "make_push",
    "push_rows",
    "push_lists",
    "prepare_queries",
    "tiled_serial",
    "tiled_parallel",
    "tiled_parallel_rows",
    "lists_scan",
    "probe_scan",
    "FAR",
]

#: Distance of an empty top-k slot inside the scans (larger than any scaled distance).
FAR = np.int64(1) << 62


def make_push(repeats: bool):
    """The top-k insertion every scan shares, specialised at compile time (``repeats`` is a
    constant numba folds away).

    ``push(od, oi, c, k, v, s)`` inserts (distance ``v``, id ``s``) into the top-k ``od`` / ``oi``
    holding ``c`` pairs sorted by (distance, id) and returns the new count; the caller has checked
    that (v, s) comes before the k-th pair when ``c == k``.

    Args:
        repeats: ids may come in any order and a pair may come twice (inverted lists: a code held
            in two lists); the slot is found first and a pair already held is not added again.
            False: ids only increase from call to call (a scan over rows), so (v, s) goes after
            every pair of distance v, in one pass that moves the pairs after it.

    Returns:
        The compiled ``push``.
    """

    @jit(False)
    def push(od, oi, c, k, v, s):  # pragma: no cover - compiled
        if repeats:
            p = c
            while p > 0 and (od[p - 1] > v or (od[p - 1] == v and oi[p - 1] > s)):
                p -= 1
            if p > 0 and od[p - 1] == v and oi[p - 1] == s:
                return c
            for j in range(c if c < k else k - 1, p, -1):
                od[j] = od[j - 1]
                oi[j] = oi[j - 1]
        else:
            p = c if c < k else k - 1
            while p > 0 and od[p - 1] > v:
                od[p] = od[p - 1]
                oi[p] = oi[p - 1]
                p -= 1
        od[p] = v
        oi[p] = s
        return c + 1 if c < k else c

    return push


#: :func:`make_push` for a scan over rows (ids increasing) and over inverted lists.
push_rows, push_lists = make_push(False), make_push(True)


@jit(False)
def prepare_queries(queries, shift, order, group):  # pragma: no cover - compiled
    """[nq, k] codes -> [ceil(nq / group) * group, W / 8] uint64 words of (q << shift) ^ 128 in tile
    order (``order``: the angle at each of the W positions); angles past k and padded queries are
    128, i.e. distance 0 to a zero pad."""
    nq, k = queries.shape
    rows = (nq + group - 1) // group * group
    out = np.full((rows, order.shape[0]), 0x80, np.uint8)
    for i in range(nq):
        for p in range(order.shape[0]):
            a = order[p]
            if a < k:
                out[i, p] = np.uint8((queries[i, a] << shift) & 0xFF) ^ np.uint8(0x80)
    return out.view(np.uint64)


@jit(False)
def tiled_scan(
    qw, nq, refs, shift, k, path, packed, group, g0, g1, out_d, out_i
):  # pragma: no cover - compiled
    """Top-k of query groups g0 .. g1 - 1 (``group`` queries each) over every row of ``refs``, into
    out_d / out_i (scaled distances, row numbers)."""
    n = refs.shape[0]
    tb = np.empty(BLOCK * qw.shape[1] * 8, np.uint8)
    spare = np.zeros((TILE, refs.shape[1]), np.uint8)
    buf = np.empty((group, BLOCK + TILE), np.int64)
    cnt = np.zeros(nq, np.int64)
    for i0 in range(0, n, BLOCK):
        m = min(BLOCK, n - i0)
        ntiles = to_tiles(refs, i0, m, shift, packed, tb, spare)
        for gr in range(g0, g1):
            tile_sad(tb, ntiles, qw, gr * group, buf, path, group)
            for g in range(group):
                qi = gr * group + g
                if qi >= nq:
                    break
                c = cnt[qi]
                thr = out_d[qi, k - 1] if c == k else FAR
                row = buf[g]
                if row[BLOCK] >= thr:  # the block's smallest distance: nothing to insert
                    continue
                od = out_d[qi]
                oi = out_i[qi]
                for i in range(m):
                    if row[i] < thr:  # rows come in increasing id: a tie never enters
                        c = push_rows(od, oi, c, k, row[i], i0 + i)
                        thr = od[k - 1] if c == k else FAR
                cnt[qi] = c


@jit(False)
def tiled_serial(queries, refs, shift, k, path, packed, order):  # pragma: no cover - compiled
    """One-thread search in one compiled call: queries prepared and distances unscaled here."""
    nq = queries.shape[0]
    group = 1 if nq == 1 else GROUP
    qw = prepare_queries(queries, shift, order, group)
    out_d = np.empty((nq, k), np.int64)
    out_i = np.empty((nq, k), np.int64)
    tiled_scan(qw, nq, refs, shift, k, path, packed, group, 0, qw.shape[0] // group, out_d, out_i)
    for i in range(nq):
        for j in range(k):
            out_d[i, j] >>= shift
    return out_d, out_i


@jit(True)
def tiled_parallel(
    qw, nq, refs, shift, k, path, packed, group, ntask, out_d, out_i
):  # pragma: no cover - compiled
    """Query groups split into ``ntask`` contiguous ranges, one per numba thread (each tiles every
    block)."""
    ngroups = qw.shape[0] // group
    per = (ngroups + ntask - 1) // ntask
    for task in prange(ntask):
        g0 = task * per
        g1 = min(ngroups, g0 + per)
        if g1 > g0:
            tiled_scan(qw, nq, refs, shift, k, path, packed, group, g0, g1, out_d, out_i)


@jit(True)
def tiled_parallel_rows(
    qw, nq, refs, shift, k, path, packed, group, ntask, out_d, out_i
):  # pragma: no cover - compiled
    """Rows split into ``ntask`` contiguous ranges, one per numba thread, each with its own top-k
    (out_d / out_i [ntask, nq, k], pre-filled with FAR / -1 where a range holds fewer than k
    rows)."""
    n = refs.shape[0]
    per = (n + ntask - 1) // ntask
    for task in prange(ntask):
        r0 = task * per
        r1 = min(n, r0 + per)
        if r1 > r0:
            kk = min(k, r1 - r0)
            tiled_scan(
                qw,
                nq,
                refs[r0:r1],
                shift,
                kk,
                path,
                packed,
                group,
                0,
                qw.shape[0] // group,
                out_d[task, :, :kk],
                out_i[task, :, :kk],
            )
            for i in range(nq):
                for j in range(kk):
                    out_i[task, i, j] += r0


@jit(False)
def lists_scan(
    queries, probe, lists, seqs, shift, k, path, packed, order, out_d, out_s
):  # pragma: no cover - compiled
    """Inverted lists: query i scans lists probe[i, :]; out_d / out_s [nq, k] get its k smallest
    (distance, insertion number) pairs over them (FAR / -1 where fewer), each insertion number once
    (a code held in several lists is counted once).

    Lists are visited in order; the queries probing one list are scanned together (GROUP per pass,
    or one) over its tiles, and every row goes straight into its query's top-k (``push_lists``)
    against that query's current k-th pair: once a query has k results, a block whose smallest
    distance is above its k-th costs one compare, and a row one or two.
    """
    nq, nprobe = probe.shape
    nlist = len(lists)
    counts = np.zeros(nlist + 1, np.int64)
    for i in range(nq):
        for j in range(nprobe):
            counts[probe[i, j] + 1] += 1
    for li in range(nlist):
        counts[li + 1] += counts[li]
    fill = counts[:-1].copy()
    who = np.empty(nq * nprobe, np.int64)
    for i in range(nq):
        for j in range(nprobe):
            li = probe[i, j]
            who[fill[li]] = i
            fill[li] += 1
    out_d[:] = FAR
    out_s[:] = -1
    cnt = np.zeros(nq, np.int64)
    words = prepare_queries(queries, shift, order, 1)
    nch = words.shape[1]
    tb = np.empty(BLOCK * nch * 8, np.uint8)
    spare = np.zeros((TILE, lists[0].shape[1]), np.uint8)
    buf = np.empty((GROUP, BLOCK + TILE), np.int64)
    qw = np.empty(((nq + GROUP - 1) // GROUP * GROUP, nch), np.uint64)
    for li in range(nlist):
        a, b = counts[li], counts[li + 1]
        refs = lists[li]
        n = refs.shape[0]
        if a == b or n == 0:
            continue
        m = b - a
        group = 1 if m == 1 else GROUP
        for t in range(m):
            qw[t] = words[who[a + t]]
        for t in range(m, (m + group - 1) // group * group):
            qw[t] = np.uint64(0x8080808080808080)  # padded query slots: never read back
        seq = seqs[li]
        for i0 in range(0, n, BLOCK):
            rows = min(BLOCK, n - i0)
            ntiles = to_tiles(refs, i0, rows, shift, packed, tb, spare)
            for gr in range((m + group - 1) // group):
                tile_sad(tb, ntiles, qw, gr * group, buf, path, group)
                for g in range(group):
                    t = gr * group + g
                    if t >= m:
                        break
                    qi = who[a + t]
                    row = buf[g]
                    c = cnt[qi]
                    od = out_d[qi]
                    os_ = out_s[qi]
                    if c == k and row[BLOCK] > od[k - 1]:
                        continue  # nothing in this block can enter
                    for r in range(rows):
                        v = row[r]
                        s = seq[i0 + r]
                        if c == k and (v > od[k - 1] or (v == od[k - 1] and s >= os_[k - 1])):
                            continue
                        c = push_lists(od, os_, c, k, v, s)
                    cnt[qi] = c
    for i in range(nq):
        for j in range(k):
            if out_s[i, j] >= 0:
                out_d[i, j] >>= shift


@jit(False)
def probe_scan(queries, refs, shift, nprobe, path, order, out):  # pragma: no cover - compiled
    """out[i] = the ``nprobe`` rows of ``refs`` nearest to query i (increasing row number; ties at
    the boundary -> smaller rows).

    Every row's distance comes from the tiles (all rows tiled once); the selection counts the
    integer distances (at most W * 128), linear in the number of rows: no sort.
    """
    nq = queries.shape[0]
    n = refs.shape[0]
    group = 1 if nq == 1 else GROUP
    qw = prepare_queries(queries, shift, order, group)
    nch = qw.shape[1]
    ntiles_all = (n + TILE - 1) // TILE
    tb = np.empty(ntiles_all * nch * 64, np.uint8)
    spare = np.zeros((TILE, refs.shape[1]), np.uint8)
    to_tiles(refs, 0, n, shift, False, tb, spare)
    buf = np.empty((group, BLOCK + TILE), np.int64)
    dist = np.empty((group, n), np.int64)
    hist = np.zeros(nch * 8 * 128 + 1, np.int64)
    per_block = BLOCK // TILE
    for gr in range(qw.shape[0] // group):
        for t0 in range(0, ntiles_all, per_block):
            nt = min(per_block, ntiles_all - t0)
            tile_sad(tb[t0 * nch * 64 :], nt, qw, gr * group, buf, path, group)
            i0 = t0 * TILE
            rows = min(nt * TILE, n - i0)
            for g in range(group):
                for r in range(rows):
                    dist[g, i0 + r] = buf[g, r] >> shift
        for g in range(group):
            qi = gr * group + g
            if qi >= nq:
                break
            d = dist[g]
            for r in range(n):
                hist[d[r]] += 1
            below = 0  # rows strictly nearer than the threshold
            thr = 0
            while below + hist[thr] < nprobe:
                below += hist[thr]
                thr += 1
            at = nprobe - below  # rows taken at distance == thr (the smallest rows)
            j = 0
            for r in range(n):
                v = d[r]
                hist[v] = 0
                if v < thr or (v == thr and at > 0):
                    if v == thr:
                        at -= 1
                    out[qi, j] = r
                    j += 1
