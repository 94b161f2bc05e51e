"""LLVM IR of the kernel's two inner steps, as numba intrinsics: tiling rows and summing a tile's
distances.

Tiling (:func:`make_transpose`). A block of reference rows is copied into tiles of ``TILE`` = 8
rows: tile vector c holds angles 8c..8c+7 of each of the 8 rows, one row per 64-bit lane (an 8 x 8
transpose of 64-bit words), every code shifted to the top of its byte on the way (x = c << (8 - b)).
Nibble-packed rows (two 4-bit codes per byte, the order of :func:`torus_plugins.codes.pack_codes`)
are unpacked on the way: a piece of 32 packed bytes becomes [low nibbles, high nibbles] = angles 0,
2, ..., 62, 1, 3, ..., 63, and the queries are permuted the same way (:func:`.cpu.query_order`; a
distance is a sum over angles, so any common order works).

Distances (:func:`make_tile_sad`). A query's chunk c is its 8 angles broadcast to every lane and
stored as q' = (q << (8 - b)) ^ 128. Then per lane

    psadbw(q' - x, 128) = sum over the lane's 8 angles of |u - 128|,  u = q' - x (mod 256)
                        = 2^(8-b) * circular L1 over those 8 angles

because u = 2^(8-b) * ((c - q) mod 2^b) + 128 (mod 256), so that
|u - 128| = 2^(8-b) * min(|c - q|, 2^b - |c - q|). A tile costs, per query and per 8 angles, one
subtract, one ``psadbw`` and one 64-bit add, and its 8 lanes are 8 finished distances: no horizontal
sum, no width limit. ``AVX512`` runs a tile vector per ``vpsadbw``, ``AVX2`` as two halves,
``PORTABLE`` generic vector code (abs, then a multiply that adds a lane's bytes).

:func:`to_tiles` and :func:`tile_sad` are the compiled entry points the scans call.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .cpu import AVAILABLE_PATHS, AVX2, AVX512, BLOCK, GROUP, PORTABLE, TILE, jit

__all__ = ["make_transpose", "make_tile_sad", "to_tiles", "tile_sad", "UNROLLED"]


def make_transpose(packed: bool):
    """Intrinsic ``f(src, row0, ntiles, shift, tb, tile0)``: rows row0 .. row0 + 8 * ntiles - 1 of
    ``src`` ([n, R] uint8, C order; R = W or W / 2 when packed) -> tiles tile0 .. of ``tb`` (flat
    uint8), each code shifted left by ``shift``. Tile t, chunk c (64 bytes) sits at
    tb[(t * nch + c) * 64], nch = W / 8."""

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
            npieces = builder.udiv(width, ir.Constant(i64, 64))  # whole 64-angle pieces
            tail = builder.urem(width, ir.Constant(i64, 64))  # 0 or 32 angles
            shift = builder.trunc(shift_arg, i8)

            def splat(vt, value, lanes):
                v = builder.insert_element(
                    ir.Constant(vt, ir.Undefined), value, ir.Constant(i32, 0)
                )
                zeros = ir.Constant(ir.VectorType(i32, lanes), [0] * lanes)
                return builder.shuffle_vector(v, v, zeros)

            def load_piece(row, piece, angles):
                """``angles`` codes of one row (64 or 32) as bytes, shifted, in tile order."""
                nbytes = angles // 2 if packed else angles
                vt = ir.VectorType(i8, nbytes)
                off = builder.add(
                    builder.mul(row, row_bytes),
                    builder.mul(piece, ir.Constant(i64, 64 // 2 if packed else 64)),
                )
                ptr = builder.bitcast(builder.gep(sa.data, [off]), vt.as_pointer())
                v = builder.load(ptr, align=1)
                if packed:
                    lo = builder.and_(v, ir.Constant(vt, [15] * nbytes))
                    hi = builder.lshr(v, ir.Constant(vt, [4] * nbytes))
                    v = builder.shuffle_vector(
                        lo, hi, ir.Constant(ir.VectorType(i32, angles), list(range(angles)))
                    )
                vt = ir.VectorType(i8, angles)
                return builder.shl(v, splat(vt, shift, angles))

            def emit_piece(tile, piece, angles):
                words = angles // 8  # 64-bit words per row piece: 8 or 4
                wt = ir.VectorType(i64, words)
                first = builder.add(row0, builder.mul(tile, ir.Constant(i64, TILE)))
                rows = [
                    builder.bitcast(
                        load_piece(builder.add(first, ir.Constant(i64, r)), piece, angles), wt
                    )
                    for r in range(TILE)
                ]

                # transpose [8 rows x words] of 64-bit words into [words chunks x 8 rows]: a
                # butterfly of 2-input shuffles (3 * 8 for 8 words, each one vpunpck/vpermt2q/
                # vshufi64x2)
                def shuf(x, y, idx):
                    mask = ir.Constant(ir.VectorType(i32, len(idx)), idx)
                    return builder.shuffle_vector(x, y, mask)

                n = words
                evens = [x for w in range(0, n, 2) for x in (w, w + n)]  # [0, n, 2, n + 2, ...]
                odds = [w + 1 for w in evens]
                pairs_a = {r: shuf(rows[r], rows[r + 1], evens) for r in (0, 2, 4, 6)}
                pairs_b = {r: shuf(rows[r], rows[r + 1], odds) for r in (0, 2, 4, 6)}
                # word 0 (| word 4), word 2 (| word 6)
                lo = [q for h in range(0, n, 4) for q in (h, h + 1, h + n, h + n + 1)]
                hi = [w + 2 for w in lo]
                quads = {}
                for h in (0, 4):  # rows h .. h + 3: words 0|4, 2|6 from a; 1|5, 3|7 from b
                    quads[h, 0] = shuf(pairs_a[h], pairs_a[h + 2], lo)
                    quads[h, 2] = shuf(pairs_a[h], pairs_a[h + 2], hi)
                    quads[h, 1] = shuf(pairs_b[h], pairs_b[h + 2], lo)
                    quads[h, 3] = shuf(pairs_b[h], pairs_b[h + 2], hi)
                chunks = [None] * n
                for w in range(4):  # rows 0-3 and 4-7 of word w (and of word w + 4)
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


#: Chunk counts (32 / 64 / 128 angles) with a variant that keeps the queries in registers.
UNROLLED = (4, 8, 16)


def make_tile_sad(path: int, group: int):
    """Intrinsic ``f(tb, ntiles, qw, q0, out)``: out[g, 8 t + r] = sum over chunks c of
    psadbw(qw[q0 + g, c] broadcast - tile t chunk c, 128) lane r, for g < ``group`` and tiles t <
    ntiles, and out[g, BLOCK] = the smallest of them (pad rows of a last tile included: they can
    only lower it). ``qw``: [nq_padded, nch] uint64 (8 query bytes per word); ``out``:
    [group, BLOCK + 8] int64. Chunk counts in UNROLLED get straight-line code with the queries'
    broadcast chunks loaded once."""

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
                sad = cgutils.get_or_insert_function(
                    mod, ir.FunctionType(vq, [vb, vb]), "llvm.x86.avx512.psad.bw.512"
                )
                mid = ir.Constant(vb, [128] * 64)

                def lanes_sad(d):
                    return builder.call(sad, [d, mid])
            elif path == AVX2:
                hb, hq = ir.VectorType(i8, 32), ir.VectorType(i64, 4)
                sad = cgutils.get_or_insert_function(
                    mod, ir.FunctionType(hq, [hb, hb]), "llvm.x86.avx2.psad.bw"
                )
                mid = ir.Constant(hb, [128] * 32)
                halves = [
                    ir.Constant(ir.VectorType(i32, 32), list(range(h, h + 32))) for h in (0, 32)
                ]
                join = ir.Constant(ir.VectorType(i32, 8), list(range(8)))

                def lanes_sad(d):
                    lo, hi = (
                        builder.call(sad, [builder.shuffle_vector(d, d, m), mid]) for m in halves
                    )
                    return builder.shuffle_vector(lo, hi, join)
            else:
                absf = cgutils.get_or_insert_function(
                    mod, ir.FunctionType(vb, [vb, ir.IntType(1)]), "llvm.abs.v64i8"
                )
                bytes_lo = ir.Constant(vq, [0x00FF00FF00FF00FF] * TILE)

                def lanes_sad(d):
                    """|u - 128| = abs(int8(u ^ 128)) (abs(-128) = 0x80 = 128 unsigned), then each
                    lane's 8 bytes summed in registers: bytes pairwise into 16-bit fields, then the
                    4 fields by a multiply whose top 16 bits collect them (at most 8 * 128 =
                    1024)."""
                    flipped = builder.xor(d, ir.Constant(vb, [128] * 64))
                    a = builder.call(absf, [flipped, ir.Constant(ir.IntType(1), 0)])
                    w = builder.bitcast(a, vq)
                    high = builder.lshr(w, ir.Constant(vq, [8] * TILE))
                    w = builder.add(builder.and_(w, bytes_lo), builder.and_(high, bytes_lo))
                    w = builder.mul(w, ir.Constant(vq, [0x0001000100010001] * TILE))
                    return builder.lshr(w, ir.Constant(vq, [48] * TILE))

            qptr = builder.bitcast(qwa.data, i64.as_pointer())
            optr = builder.bitcast(outa.data, vq.as_pointer())
            smin = cgutils.get_or_insert_function(
                mod, ir.FunctionType(vq, [vq, vq]), "llvm.smin.v8i64"
            )
            red = cgutils.get_or_insert_function(
                mod, ir.FunctionType(i64, [vq]), "llvm.vector.reduce.smin.v8i64"
            )
            lows = [cgutils.alloca_once(builder, vq) for _ in range(group)]

            def emit(nch_fixed):
                """The tile loop for ``nch_fixed`` chunks (0: any count, a loop over the chunks)."""
                nch = ir.Constant(i64, nch_fixed) if nch_fixed else nch_arg

                def query_chunk(g, c):
                    off = builder.add(builder.mul(builder.add(q0, ir.Constant(i64, g)), nch), c)
                    w = builder.load(builder.gep(qptr, [off]))
                    v = builder.insert_element(
                        ir.Constant(vq, ir.Undefined), w, ir.Constant(i32, 0)
                    )
                    zeros = ir.Constant(ir.VectorType(i32, TILE), [0] * TILE)
                    v = builder.shuffle_vector(v, v, zeros)
                    return builder.bitcast(v, vb)

                def tile_chunk(t, c):
                    off = builder.mul(builder.add(builder.mul(t, nch), c), ir.Constant(i64, 64))
                    ptr = builder.bitcast(builder.gep(tba.data, [off]), vb.as_pointer())
                    return builder.load(ptr, align=8)

                if nch_fixed:
                    held = [
                        [query_chunk(g, ir.Constant(i64, c)) for c in range(nch_fixed)]
                        for g in range(group)
                    ]
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
                        slots = [
                            cgutils.alloca_once_value(builder, ir.Constant(vq, [0] * TILE))
                            for _ in range(group)
                        ]
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
            for g in range(group):  # the block's smallest distance per query, after its BLOCK
                idx = ir.Constant(i64, g * (BLOCK + TILE) + BLOCK)
                lowest = builder.call(red, [builder.load(lows[g])])
                builder.store(lowest, builder.gep(outa.data, [idx]))
            return context.get_dummy_value()

        return sig, codegen

    return tile_sad


_transpose_rows = make_transpose(False)
_transpose_nibbles = make_transpose(True)


def _sad_variant(path: int, group: int):
    """The tile_sad intrinsic of one path and query group size; a path this CPU lacks gets the
    portable one (never called: searches run available paths only)."""
    return make_tile_sad(path if path in AVAILABLE_PATHS else PORTABLE, group)


# per path, a variant for one query (a lone query wastes no lanes) and for GROUP queries (the
# fastest at large nq)
_sad_portable_1, _sad_portable_g = _sad_variant(PORTABLE, 1), _sad_variant(PORTABLE, GROUP)
_sad_avx2_1, _sad_avx2_g = _sad_variant(AVX2, 1), _sad_variant(AVX2, GROUP)
_sad_avx512_1, _sad_avx512_g = _sad_variant(AVX512, 1), _sad_variant(AVX512, GROUP)


@jit(False)
def tile_sad(tb, ntiles, qw, q0, out, path, group):  # pragma: no cover - compiled
    """Distances of queries q0 .. q0 + group - 1 to ``ntiles`` tiles (see make_tile_sad), on
    ``path``."""
    if group == 1:
        if path == AVX512:
            _sad_avx512_1(tb, ntiles, qw, q0, out)
        elif path == AVX2:
            _sad_avx2_1(tb, ntiles, qw, q0, out)
        else:
            _sad_portable_1(tb, ntiles, qw, q0, out)
    elif path == AVX512:
        _sad_avx512_g(tb, ntiles, qw, q0, out)
    elif path == AVX2:
        _sad_avx2_g(tb, ntiles, qw, q0, out)
    else:
        _sad_portable_g(tb, ntiles, qw, q0, out)


@jit(False)
def to_tiles(refs, i0, m, shift, packed, tb, spare):  # pragma: no cover - compiled
    """Rows i0 .. i0 + m - 1 of ``refs`` -> tiles in ``tb``; a last partial tile goes through
    ``spare`` (TILE zero-padded rows). Returns the number of tiles."""
    full = m // TILE
    if packed:
        _transpose_nibbles(refs, i0, full, shift, tb, 0)
    else:
        _transpose_rows(refs, i0, full, shift, tb, 0)
    rest = m - full * TILE
    if rest:
        spare[:] = 0
        spare[:rest] = refs[i0 + full * TILE : i0 + m]
        if packed:
            _transpose_nibbles(spare, 0, 1, shift, tb, full)
        else:
            _transpose_rows(spare, 0, 1, shift, tb, full)
    return full + (1 if rest else 0)
