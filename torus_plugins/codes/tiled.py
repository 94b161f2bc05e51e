"""Tiled exact scan: circular-L1 top-k with one ``psadbw`` per 8 rows x 8 angles and no horizontal sums.

Layout. A block of reference rows is copied (in L1, once per block and thread) into tiles of 8 rows: tile vector c
holds angles 8c..8c+7 of each of the 8 rows, one row per 64-bit lane (an 8 x 8 transpose of 64-bit words). The
codes are shifted to the top of their byte on the way (x = c << (8 - b)). A query's chunk c is its 8 angles
broadcast to every lane and stored as q' = (q << (8 - b)) ^ 128. Then per lane

    psadbw(q' - x, 128) = sum over the lane's 8 angles of |u - 128|,  u = q' - x (mod 256)
                        = 2^(8-b) * circular L1 over those 8 angles   (see :mod:`torus_plugins.codes.kernel`)

so a tile costs, per query and per 8 angles, one subtract, one ``psadbw`` and one 64-bit add, and its 8 lanes are
8 finished distances: no packing into fields, no horizontal reduction, no width limit. AVX-512BW runs a tile
vector per instruction, AVX2 as two halves, other CPUs generic vector code (chosen as in ``kernel``).

Nibble-packed rows (two 4-bit codes per byte, the order of :func:`torus_plugins.codes.pack_codes`) are unpacked
on the way into the tile: a piece of 32 packed bytes becomes [low nibbles, high nibbles] = angles 0, 2, ..., 62,
1, 3, ..., 63; the queries are permuted the same way (a distance is a sum over angles, so any common order works).
A 4-bit index thus reads 32 bytes per 64 angles.

Three queries (one when there is only one) share each pass over a block's tiles, their broadcast chunks held in
registers. Selection per query and block: the block's minimum is compared with the current k-th distance; only
blocks that improve it are walked, inserting rows in ascending order with a strict test, so ties go to the smaller id.

Usage::

    D, I = tiled_topk(queries, refs, bits=8, k=10)                # refs: prepare_references(codes)
    D, I = tiled_topk(queries, nibble_pack(codes4), bits=4, k=10, packed=True)
"""

import numpy as np

from . import kernel, pack
from .pack import nibble_unpack
from .kernel import AVX2, AVX512, BLOCK, HAVE_NUMBA, PORTABLE

__all__ = ["tiled_topk", "lists_topk", "probe_lists", "nibble_pack", "nibble_unpack", "GROUP"]

GROUP = 3      # queries per pass over a tile block (their broadcast chunks stay in registers); 1 if nq == 1
TILE = 8       # rows per tile (the 64-bit lanes of a 512-bit vector)


def nibble_pack(codes: np.ndarray, width: int | None = None) -> np.ndarray:
    """:func:`torus_plugins.codes.pack.nibble_pack` with rows padded to the kernel width by default
    (k rounded up to 32 angles): [n, k] codes < 16 -> [n, W / 2] uint8."""
    return pack.nibble_pack(codes, kernel.padded_width(codes.shape[1]) if width is None else width)


def query_order(width: int, packed: bool) -> np.ndarray:
    """Angle held at each tile position: the identity, or for packed rows [0, 2, .., 62, 1, 3, .., 63] per 64
    angles (a last piece of 32 angles: [0, 2, .., 30, 1, .., 31])."""
    if not packed:
        return np.arange(width)
    order = []
    for start in range(0, width, 64):
        size = min(64, width - start)
        order += [start + 2 * p for p in range(size // 2)] + [start + 2 * p + 1 for p in range(size // 2)]
    return np.array(order, np.int64)


if HAVE_NUMBA:
    from llvmlite import ir
    from numba import prange, types
    from numba.core import cgutils
    from numba.extending import intrinsic

    def _make_transpose(packed: bool):
        """Intrinsic ``f(src, row0, ntiles, shift, tb, tile0)``: rows row0 .. row0 + 8 * ntiles - 1 of ``src``
        ([n, R] uint8, C order; R = W or W / 2 when packed) -> tiles tile0 .. of ``tb`` (flat uint8), each code
        shifted left by ``shift``. Tile t, chunk c (64 bytes) sits at tb[(t * nch + c) * 64], nch = W / 8."""

        @intrinsic
        def transpose(typingctx, src, row0, ntiles, shift, tb, tile0):
            sig = types.none(src, row0, ntiles, shift, tb, tile0)

            def codegen(context, builder, sig, args):
                i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
                sa = context.make_array(sig.args[0])(context, builder, args[0])
                ta = context.make_array(sig.args[4])(context, builder, args[4])
                row0, ntiles, shift_arg, tile0 = args[1], args[2], args[3], args[5]
                row_bytes = cgutils.unpack_tuple(builder, sa.shape, 2)[1]
                width = builder.mul(row_bytes, ir.Constant(i64, 2)) if packed else row_bytes
                nch = builder.udiv(width, ir.Constant(i64, 8))
                npieces = builder.udiv(width, ir.Constant(i64, 64))        # whole 64-angle pieces
                tail = builder.urem(width, ir.Constant(i64, 64))            # 0 or 32 angles
                shift = builder.trunc(shift_arg, i8)

                def splat(vt, value, lanes):
                    v = builder.insert_element(ir.Constant(vt, ir.Undefined), value, ir.Constant(i32, 0))
                    return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(i32, lanes), [0] * lanes))

                def load_piece(row, piece, angles):
                    """``angles`` codes of one row (64 or 32) as bytes, shifted, in tile order."""
                    nbytes = angles // 2 if packed else angles
                    vt = ir.VectorType(i8, nbytes)
                    off = builder.add(builder.mul(row, row_bytes),
                                      builder.mul(piece, ir.Constant(i64, 64 // 2 if packed else 64)))
                    v = builder.load(builder.bitcast(builder.gep(sa.data, [off]), vt.as_pointer()), align=1)
                    if packed:
                        lo = builder.and_(v, ir.Constant(vt, [15] * nbytes))
                        hi = builder.lshr(v, ir.Constant(vt, [4] * nbytes))
                        v = builder.shuffle_vector(lo, hi, ir.Constant(ir.VectorType(i32, angles),
                                                                       list(range(angles))))
                    vt = ir.VectorType(i8, angles)
                    return builder.shl(v, splat(vt, shift, angles))

                def emit_piece(tile, piece, angles):
                    words = angles // 8                     # 64-bit words per row piece: 8 or 4
                    wt = ir.VectorType(i64, words)
                    rows = [builder.bitcast(load_piece(builder.add(row0, builder.add(
                        builder.mul(tile, ir.Constant(i64, TILE)), ir.Constant(i64, r))), piece, angles), wt)
                        for r in range(TILE)]
                    # transpose [8 rows x words] of 64-bit words into [words chunks x 8 rows]: a butterfly of
                    # 2-input shuffles (3 * 8 for 8 words, each one vpunpck/vpermt2q/vshufi64x2)
                    def shuf(x, y, idx):
                        return builder.shuffle_vector(x, y, ir.Constant(ir.VectorType(i32, len(idx)), idx))

                    n = words
                    evens = [x for w in range(0, n, 2) for x in (w, w + n)]        # [0, n, 2, n + 2, ...]
                    pairs_a = {r: shuf(rows[r], rows[r + 1], evens) for r in (0, 2, 4, 6)}
                    pairs_b = {r: shuf(rows[r], rows[r + 1], [w + 1 for w in evens]) for r in (0, 2, 4, 6)}
                    lo = [q for h in range(0, n, 4) for q in (h, h + 1, h + n, h + n + 1)]   # word 0 (| word 4)
                    hi = [w + 2 for w in lo]                                            # word 2 (| word 6)
                    quads = {}
                    for h in (0, 4):                # rows h .. h + 3: words 0|4, 2|6 from a; 1|5, 3|7 from b
                        quads[h, 0] = shuf(pairs_a[h], pairs_a[h + 2], lo)
                        quads[h, 2] = shuf(pairs_a[h], pairs_a[h + 2], hi)
                        quads[h, 1] = shuf(pairs_b[h], pairs_b[h + 2], lo)
                        quads[h, 3] = shuf(pairs_b[h], pairs_b[h + 2], hi)
                    chunks = [None] * n
                    for w in range(4):              # rows 0-3 and 4-7 of word w (and of word w + 4)
                        chunks[w] = shuf(quads[0, w], quads[4, w], [0, 1, 2, 3, n, n + 1, n + 2, n + 3])
                        if n == 8:
                            chunks[w + 4] = shuf(quads[0, w], quads[4, w], [4, 5, 6, 7, 12, 13, 14, 15])
                    out_t = ir.VectorType(i64, TILE)
                    tptr = builder.bitcast(ta.data, out_t.as_pointer())
                    for w, chunk in enumerate(chunks):
                        c = builder.add(builder.mul(piece, ir.Constant(i64, 8)), ir.Constant(i64, w))
                        idx = builder.add(builder.mul(builder.add(tile0, tile), nch), c)
                        builder.store(chunk, builder.gep(tptr, [idx]), align=8)

                with cgutils.for_range(builder, ntiles) as tl:
                    with cgutils.for_range(builder, npieces) as pl:
                        emit_piece(tl.index, pl.index, 64)
                    with builder.if_then(builder.icmp_unsigned("!=", tail, ir.Constant(i64, 0))):
                        emit_piece(tl.index, npieces, 32)
                return context.get_dummy_value()

            return sig, codegen

        return transpose

    UNROLLED = (4, 8, 16)   # chunk counts (32 / 64 / 128 angles) with a variant that keeps the queries in registers

    def _make_tile_sad(path: int, group: int):
        """Intrinsic ``f(tb, ntiles, qw, q0, out)``: out[g, 8 t + r] = sum over chunks c of
        psadbw(qw[q0 + g, c] broadcast - tile t chunk c, 128) lane r, for g < ``group`` and tiles t < ntiles, and
        out[g, BLOCK] = the smallest of them (pad rows of a last tile included: they can only lower it).
        ``qw``: [nq_padded, nch] uint64 (8 query bytes per word); ``out``: [group, BLOCK + 8] int64.
        Chunk counts in UNROLLED get straight-line code with the queries' broadcast chunks loaded once."""

        @intrinsic
        def tile_sad(typingctx, tb, ntiles, qw, q0, out):
            sig = types.none(tb, ntiles, qw, q0, out)

            def codegen(context, builder, sig, args):
                i8, i32, i64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
                tba = context.make_array(sig.args[0])(context, builder, args[0])
                qwa = context.make_array(sig.args[2])(context, builder, args[2])
                outa = context.make_array(sig.args[4])(context, builder, args[4])
                ntiles, q0 = args[1], args[3]
                nch_arg = cgutils.unpack_tuple(builder, qwa.shape, 2)[1]
                mod = builder.module
                vb, vq = ir.VectorType(i8, 64), ir.VectorType(i64, TILE)
                if path == AVX512:
                    sad = cgutils.get_or_insert_function(mod, ir.FunctionType(vq, [vb, vb]),
                                                         "llvm.x86.avx512.psad.bw.512")
                    mid = ir.Constant(vb, [128] * 64)

                    def lanes_sad(d):
                        return builder.call(sad, [d, mid])
                elif path == AVX2:
                    hb, hq = ir.VectorType(i8, 32), ir.VectorType(i64, 4)
                    sad = cgutils.get_or_insert_function(mod, ir.FunctionType(hq, [hb, hb]), "llvm.x86.avx2.psad.bw")
                    mid = ir.Constant(hb, [128] * 32)
                    halves = [ir.Constant(ir.VectorType(i32, 32), list(range(h, h + 32))) for h in (0, 32)]

                    def lanes_sad(d):
                        lo, hi = (builder.call(sad, [builder.shuffle_vector(d, d, m), mid]) for m in halves)
                        return builder.shuffle_vector(lo, hi, ir.Constant(ir.VectorType(i32, 8), list(range(8))))
                else:
                    absf = cgutils.get_or_insert_function(mod, ir.FunctionType(vb, [vb, ir.IntType(1)]),
                                                          "llvm.abs.v64i8")
                    bytes_lo = ir.Constant(vq, [0x00FF00FF00FF00FF] * TILE)

                    def lanes_sad(d):
                        """|u - 128| = abs(int8(u ^ 128)) (abs(-128) = 0x80 = 128 unsigned), then each lane's 8
                        bytes summed in registers: bytes pairwise into 16-bit fields, then the 4 fields by a
                        multiply whose top 16 bits collect them (at most 8 * 128 = 1024)."""
                        flipped = builder.xor(d, ir.Constant(vb, [128] * 64))
                        a = builder.call(absf, [flipped, ir.Constant(ir.IntType(1), 0)])
                        w = builder.bitcast(a, vq)
                        w = builder.add(builder.and_(w, bytes_lo),
                                        builder.and_(builder.lshr(w, ir.Constant(vq, [8] * TILE)), bytes_lo))
                        w = builder.mul(w, ir.Constant(vq, [0x0001000100010001] * TILE))
                        return builder.lshr(w, ir.Constant(vq, [48] * TILE))

                qptr = builder.bitcast(qwa.data, i64.as_pointer())
                optr = builder.bitcast(outa.data, vq.as_pointer())
                smin = cgutils.get_or_insert_function(mod, ir.FunctionType(vq, [vq, vq]), "llvm.smin.v8i64")
                red = cgutils.get_or_insert_function(mod, ir.FunctionType(i64, [vq]), "llvm.vector.reduce.smin.v8i64")
                lows = [cgutils.alloca_once(builder, vq) for _ in range(group)]

                def emit(nch_fixed):
                    """The tile loop for ``nch_fixed`` chunks (0: any count, a loop over the chunks)."""
                    nch = ir.Constant(i64, nch_fixed) if nch_fixed else nch_arg

                    def query_chunk(g, c):
                        off = builder.add(builder.mul(builder.add(q0, ir.Constant(i64, g)), nch), c)
                        w = builder.load(builder.gep(qptr, [off]))
                        v = builder.insert_element(ir.Constant(vq, ir.Undefined), w, ir.Constant(i32, 0))
                        v = builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(i32, TILE), [0] * TILE))
                        return builder.bitcast(v, vb)

                    def tile_chunk(t, c):
                        off = builder.mul(builder.add(builder.mul(t, nch), c), ir.Constant(i64, 64))
                        return builder.load(builder.bitcast(builder.gep(tba.data, [off]), vb.as_pointer()), align=8)

                    if nch_fixed:
                        held = [[query_chunk(g, ir.Constant(i64, c)) for c in range(nch_fixed)]
                                for g in range(group)]
                    for low in lows:
                        builder.store(ir.Constant(vq, [1 << 62] * TILE), low)
                    with cgutils.for_range(builder, ntiles) as tl:
                        t = tl.index
                        if nch_fixed:
                            accs = [None] * group
                            for c in range(nch_fixed):
                                x = tile_chunk(t, ir.Constant(i64, c))
                                for g in range(group):
                                    s = lanes_sad(builder.sub(held[g][c], x))
                                    accs[g] = s if accs[g] is None else builder.add(accs[g], s)
                        else:
                            slots = [cgutils.alloca_once_value(builder, ir.Constant(vq, [0] * TILE))
                                     for _ in range(group)]
                            with cgutils.for_range(builder, nch) as cl:
                                x = tile_chunk(t, cl.index)
                                for g in range(group):
                                    s = lanes_sad(builder.sub(query_chunk(g, cl.index), x))
                                    builder.store(builder.add(builder.load(slots[g]), s), slots[g])
                            accs = [builder.load(s) for s in slots]
                        for g in range(group):
                            idx = builder.add(ir.Constant(i64, g * (BLOCK // TILE + 1)), t)
                            builder.store(accs[g], builder.gep(optr, [idx]), align=8)
                            builder.store(builder.call(smin, [builder.load(lows[g]), accs[g]]), lows[g])

                done = builder.append_basic_block("tile_sad.done")
                generic = builder.append_basic_block("tile_sad.generic")
                switch = builder.switch(nch_arg, generic)
                for nch_fixed in UNROLLED:
                    block = builder.append_basic_block(f"tile_sad.{nch_fixed}")
                    switch.add_case(ir.Constant(i64, nch_fixed), block)
                    builder.position_at_end(block)
                    emit(nch_fixed)
                    builder.branch(done)
                builder.position_at_end(generic)
                emit(0)
                builder.branch(done)
                builder.position_at_end(done)
                for g in range(group):   # the block's smallest distance per query, after its BLOCK distances
                    idx = ir.Constant(i64, g * (BLOCK + TILE) + BLOCK)
                    builder.store(builder.call(red, [builder.load(lows[g])]), builder.gep(outa.data, [idx]))
                return context.get_dummy_value()

            return sig, codegen

        return tile_sad

    _transpose_rows = _make_transpose(False)
    _transpose_nibbles = _make_transpose(True)
    # per path, a variant for one query (a lone query wastes no lanes) and for GROUP queries (the fastest at
    # large nq); paths this CPU lacks alias the portable ones (never called: topk_l1 selects available paths)
    _sad = {}
    for _p in (PORTABLE, AVX2, AVX512):
        for _g in (1, GROUP):
            _ok = _p in kernel.AVAILABLE_PATHS
            _sad[_p, _g] = _make_tile_sad(_p, _g) if _ok else _sad[PORTABLE, _g]
    _s0_1, _s0_g, _s1_1, _s1_g, _s2_1, _s2_g = (_sad[p, g] for p in (PORTABLE, AVX2, AVX512) for g in (1, GROUP))
    _jit = kernel._jit

    @_jit(False)
    def _tile_sad(tb, ntiles, qw, q0, out, path, group):  # pragma: no cover - compiled
        if group == 1:
            if path == 2:
                _s2_1(tb, ntiles, qw, q0, out)
            elif path == 1:
                _s1_1(tb, ntiles, qw, q0, out)
            else:
                _s0_1(tb, ntiles, qw, q0, out)
        elif path == 2:
            _s2_g(tb, ntiles, qw, q0, out)
        elif path == 1:
            _s1_g(tb, ntiles, qw, q0, out)
        else:
            _s0_g(tb, ntiles, qw, q0, out)

    @_jit(False)
    def _to_tiles(refs, i0, m, shift, packed, tb, spare):  # pragma: no cover - compiled
        """Rows i0 .. i0 + m - 1 -> tiles in tb; a last partial tile goes through ``spare`` (8 zero-padded rows)."""
        full = m // TILE
        if packed:
            _transpose_nibbles(refs, i0, full, shift, tb, 0)
        else:
            _transpose_rows(refs, i0, full, shift, tb, 0)
        rest = m - full * TILE
        if rest:
            spare[:] = 0
            spare[:rest] = refs[i0 + full * TILE:i0 + m]
            if packed:
                _transpose_nibbles(spare, 0, 1, shift, tb, full)
            else:
                _transpose_rows(spare, 0, 1, shift, tb, full)
        return full + (1 if rest else 0)

    @_jit(False)
    def _tiled_scan(qw, nq, refs, shift, k, path, packed, group, g0, g1, out_d, out_i):  # pragma: no cover
        """Top-k of query groups g0 .. g1 - 1 (``group`` queries each) over every row of refs, into out_d / out_i
        (scaled distances)."""
        n = refs.shape[0]
        tb = np.empty(BLOCK * qw.shape[1] * 8, np.uint8)
        spare = np.zeros((TILE, refs.shape[1]), np.uint8)
        buf = np.empty((group, BLOCK + TILE), np.int64)
        cnt = np.zeros(nq, np.int64)
        big = np.int64(1) << 62
        for i0 in range(0, n, BLOCK):
            m = min(BLOCK, n - i0)
            ntiles = _to_tiles(refs, i0, m, shift, packed, tb, spare)
            for gr in range(g0, g1):
                _tile_sad(tb, ntiles, qw, gr * group, buf, path, group)
                for g in range(group):
                    qi = gr * group + g
                    if qi >= nq:
                        break
                    c = cnt[qi]
                    thr = out_d[qi, k - 1] if c == k else big
                    row = buf[g]
                    if row[BLOCK] >= thr:      # the block's smallest distance: nothing to insert
                        continue
                    od = out_d[qi]
                    oi = out_i[qi]
                    for i in range(m):
                        s = row[i]
                        if s >= thr:
                            continue
                        p = c if c < k else k - 1
                        while p > 0 and od[p - 1] > s:
                            od[p] = od[p - 1]
                            oi[p] = oi[p - 1]
                            p -= 1
                        od[p] = s
                        oi[p] = i0 + i
                        if c < k:
                            c += 1
                        thr = od[k - 1] if c == k else big
                    cnt[qi] = c

    @_jit(False)
    def _prepare_tiled_queries(queries, shift, order, group):  # pragma: no cover - compiled
        """[nq, k] codes -> [ceil(nq / group) * group, W / 8] uint64 words of (q << shift) ^ 128 in tile order
        (``order``: the angle at each of the W positions); angles past k and padded queries are 128, i.e.
        distance 0 to a zero pad."""
        nq, k = queries.shape
        rows = (nq + group - 1) // group * group
        out = np.full((rows, order.shape[0]), 0x80, np.uint8)
        for i in range(nq):
            for p in range(order.shape[0]):
                a = order[p]
                if a < k:
                    out[i, p] = np.uint8((queries[i, a] << shift) & 0xFF) ^ np.uint8(0x80)
        return out.view(np.uint64)

    @_jit(False)
    def _tiled_serial(queries, refs, shift, k, path, packed, order):  # pragma: no cover - compiled
        """One-thread search in one compiled call: queries prepared and distances unscaled here."""
        nq = queries.shape[0]
        group = 1 if nq == 1 else GROUP
        qw = _prepare_tiled_queries(queries, shift, order, group)
        out_d = np.empty((nq, k), np.int64)
        out_i = np.empty((nq, k), np.int64)
        _tiled_scan(qw, nq, refs, shift, k, path, packed, group, 0, qw.shape[0] // group, out_d, out_i)
        for i in range(nq):
            for j in range(k):
                out_d[i, j] >>= shift
        return out_d, out_i

    @_jit(True)
    def _tiled_parallel(qw, nq, refs, shift, k, path, packed, group, ntask, out_d, out_i):  # pragma: no cover
        """Query groups split into ``ntask`` contiguous ranges, one per numba thread (each tiles every block)."""
        ngroups = qw.shape[0] // group
        per = (ngroups + ntask - 1) // ntask
        for task in prange(ntask):
            g0 = task * per
            g1 = min(ngroups, g0 + per)
            if g1 > g0:
                _tiled_scan(qw, nq, refs, shift, k, path, packed, group, g0, g1, out_d, out_i)


    @_jit(True)
    def _tiled_parallel_rows(qw, nq, refs, shift, k, path, packed, group, ntask, out_d, out_i):  # pragma: no cover
        """Rows split into ``ntask`` contiguous ranges, one per numba thread, each with its own top-k
        (out_d / out_i [ntask, nq, k], pre-filled with 2**62 / -1 where a range holds fewer than k rows)."""
        n = refs.shape[0]
        per = (n + ntask - 1) // ntask
        for task in prange(ntask):
            r0 = task * per
            r1 = min(n, r0 + per)
            if r1 > r0:
                kk = min(k, r1 - r0)
                _tiled_scan(qw, nq, refs[r0:r1], shift, kk, path, packed, group, 0, qw.shape[0] // group,
                            out_d[task, :, :kk], out_i[task, :, :kk])
                for i in range(nq):
                    for j in range(kk):
                        out_i[task, i, j] += r0


    @_jit(False)
    def _lists_scan(queries, probe, lists, seqs, shift, k, path, packed, order, out_d, out_s):  # pragma: no cover
        """Inverted lists: query i scans lists probe[i, :]; out_d / out_s [nq, k] get its k smallest (distance,
        insertion number) pairs over them (2**62 / -1 where fewer), each insertion number once (a code held in
        several lists is counted once). Lists are visited in order; the queries probing one list are scanned
        together (``GROUP`` per pass, or one) over its tiles, and every row goes straight into its query's top-k
        against that query's current k-th pair: once a query has k results, a block whose smallest distance is
        above its k-th costs one compare, and a row one or two."""
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
        big = np.int64(1) << 62
        out_d[:] = big
        out_s[:] = -1
        cnt = np.zeros(nq, np.int64)
        words = _prepare_tiled_queries(queries, shift, order, 1)
        nch = words.shape[1]
        tb = np.empty(BLOCK * nch * 8, np.uint8)
        width = lists[0].shape[1]
        spare = np.zeros((TILE, width), np.uint8)
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
                qw[t] = np.uint64(0x8080808080808080)   # padded query slots: never read back
            seq = seqs[li]
            for i0 in range(0, n, BLOCK):
                rows = min(BLOCK, n - i0)
                ntiles = _to_tiles(refs, i0, rows, shift, packed, tb, spare)
                for gr in range((m + group - 1) // group):
                    _tile_sad(tb, ntiles, qw, gr * group, buf, path, group)
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
                            continue                 # nothing in this block can enter
                        for r in range(rows):
                            v = row[r]
                            s = seq[i0 + r]
                            if c == k and (v > od[k - 1] or (v == od[k - 1] and s >= os_[k - 1])):
                                continue
                            p = c
                            while p > 0 and (od[p - 1] > v or (od[p - 1] == v and os_[p - 1] > s)):
                                p -= 1
                            if p > 0 and od[p - 1] == v and os_[p - 1] == s:
                                continue             # the same code, met in another list
                            last = c if c < k else k - 1
                            for j in range(last, p, -1):
                                od[j] = od[j - 1]
                                os_[j] = os_[j - 1]
                            od[p] = v
                            os_[p] = s
                            if c < k:
                                c += 1
                        cnt[qi] = c
        for i in range(nq):
            for j in range(k):
                if out_s[i, j] >= 0:
                    out_d[i, j] >>= shift


    @_jit(False)
    def _probe_scan(queries, refs, shift, nprobe, path, order, out):  # pragma: no cover - compiled
        """out[i] = the ``nprobe`` rows of ``refs`` nearest to query i (increasing row number; ties at the
        boundary -> smaller rows). Every row's distance comes from the tiles (all rows tiled once); the selection
        is a counting one over the integer distances (at most W * 128), linear in the number of rows."""
        nq = queries.shape[0]
        n = refs.shape[0]
        group = 1 if nq == 1 else GROUP
        qw = _prepare_tiled_queries(queries, shift, order, group)
        nch = qw.shape[1]
        ntiles_all = (n + TILE - 1) // TILE
        tb = np.empty(ntiles_all * nch * 64, np.uint8)
        spare = np.zeros((TILE, refs.shape[1]), np.uint8)
        _to_tiles(refs, 0, n, shift, False, tb, spare)
        buf = np.empty((group, BLOCK + TILE), np.int64)
        dist = np.empty((group, n), np.int64)
        hist = np.zeros(nch * 8 * 128 + 1, np.int64)
        per_block = BLOCK // TILE
        for gr in range(qw.shape[0] // group):
            for t0 in range(0, ntiles_all, per_block):
                nt = min(per_block, ntiles_all - t0)
                _tile_sad(tb[t0 * nch * 64:], nt, qw, gr * group, buf, path, group)
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
                below = 0                      # rows strictly nearer than the threshold
                thr = 0
                while below + hist[thr] < nprobe:
                    below += hist[thr]
                    thr += 1
                at = nprobe - below            # rows taken at distance == thr (the smallest row numbers)
                j = 0
                for r in range(n):
                    v = d[r]
                    hist[v] = 0
                    if v < thr or (v == thr and at > 0):
                        if v == thr:
                            at -= 1
                        out[qi, j] = r
                        j += 1


def probe_lists(queries: np.ndarray, refs: np.ndarray, bits: int, nprobe: int) -> np.ndarray:
    """The ``nprobe`` rows of ``refs`` ([n, W] uint8, unpacked, C order; n >= nprobe) nearest to each query by
    circular L1: int64 [nq, nprobe], increasing row number within a query (not nearest first); among rows tied at
    the boundary distance the smaller ones. One pass over every row's distance, no sort: the probe step of an
    inverted file, whose scan visits lists in list order anyway."""
    out = np.empty((queries.shape[0], nprobe), np.int64)
    if queries.shape[0]:
        _probe_scan(np.ascontiguousarray(queries), refs, 8 - bits, nprobe, kernel.BEST_PATH,
                    _order(refs.shape[1], False), out)
    return out


def lists_topk(queries: np.ndarray, probe: np.ndarray, lists, seqs, bits: int, k: int, packed: bool = False):
    """Top-k over inverted lists (see _lists_scan): (distances int64 [nq, k] with 2**62 where missing,
    insertion numbers int64 [nq, k] with -1 where missing). ``lists``/``seqs``: numba typed Lists of the lists'
    [n_l, W] uint8 rows (C order; [n_l, W / 2] nibble-packed if ``packed``) and their int64 insertion numbers,
    increasing within each list. A code may sit in several lists (same insertion number): it is returned once."""
    out_d = np.empty((queries.shape[0], k), np.int64)
    out_s = np.empty((queries.shape[0], k), np.int64)
    width = lists[0].shape[1] * (2 if packed else 1)
    _lists_scan(np.ascontiguousarray(queries), np.ascontiguousarray(probe, dtype=np.int64), lists, seqs,
                8 - bits, k, kernel.BEST_PATH, packed, _order(width, packed), out_d, out_s)
    return out_d, out_s


_ORDERS: dict = {}


def _order(width: int, packed: bool) -> np.ndarray:
    key = (width, packed)
    if key not in _ORDERS:
        _ORDERS[key] = query_order(width, packed)
    return _ORDERS[key]


def tiled_topk(queries: np.ndarray, refs: np.ndarray, bits: int, k: int, path: int | None = None,
               ntask: int = 1, packed: bool = False):
    """Exact top-k by circular L1 over [n, W] (or nibble-packed [n, W / 2]) uint8 rows: (D, I) int64 [nq, k],
    ties -> smaller row first. ``path``: kernel path (default the CPU's best); ``ntask``: threads. Inputs are
    assumed checked (see kernel.topk_l1, which checks them and calls this)."""
    path = kernel.BEST_PATH if path is None else path
    shift = 8 - bits
    width = refs.shape[1] * (2 if packed else 1)
    order = _order(width, packed)
    if ntask == 1:
        return _tiled_serial(queries, refs, shift, k, path, packed, order)
    nq = queries.shape[0]
    group = 1 if nq == 1 else GROUP
    qw = _prepare_tiled_queries(np.ascontiguousarray(queries), shift, order, group)
    if qw.shape[0] // group >= ntask:      # enough query groups: each thread takes some, over every row
        out_d = np.empty((nq, k), np.int64)
        out_i = np.empty((nq, k), np.int64)
        with kernel._LAUNCH:
            _tiled_parallel(qw, nq, refs, shift, k, path, packed, group, ntask, out_d, out_i)
    else:                                  # few queries: each thread takes a range of rows, then one merge
        part_d = np.full((ntask, nq, k), np.int64(1) << 62, np.int64)
        part_i = np.full((ntask, nq, k), -1, np.int64)
        with kernel._LAUNCH:
            _tiled_parallel_rows(qw, nq, refs, shift, k, path, packed, group, ntask, part_d, part_i)
        cand_d = part_d.transpose(1, 0, 2).reshape(nq, -1)
        cand_i = part_i.transpose(1, 0, 2).reshape(nq, -1)
        pick = np.lexsort((cand_i, cand_d), axis=-1)[:, :k]     # ranges are in id order: ties stay id-ordered
        out_d = np.take_along_axis(cand_d, pick, 1)
        out_i = np.take_along_axis(cand_i, pick, 1)
    out_d >>= shift
    return out_d, out_i
