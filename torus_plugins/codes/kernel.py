"""Exact circular-L1 top-k over b-bit codes: run-time kernel paths, the search entry point, and a numpy reference.

The trick: shift each reference code to the top of its byte, x = c << (8 - b), and each query as
q' = (q << (8 - b)) - 128 (mod 256). Then u = uint8(x - q') = 2^(8-b) * ((c - q) mod 2^b) + 128 (mod 256) and

    |u - 128| = 2^(8-b) * min(|c - q|, 2^b - |c - q|)      (the circular distance, scaled)

so a distance over 8 angles is one byte subtract plus one sum of absolute differences against 128 (x86
``psadbw``: 64 bytes per ``vpsadbw`` on AVX-512BW, 32 on AVX2; a portable zext/abs/reduce elsewhere; the path is
chosen at run time from the CPU's features).

Exact search (:func:`topk_l1`) runs :mod:`torus_plugins.codes.tiled`: 8 rows per tile with one row per 64-bit
lane, so a ``psadbw`` yields 8 finished partial distances and nothing is summed horizontally.

Inverted lists (:func:`lists_topk`, for :class:`torus_plugins.search.TorusIndexIVF`) use a row kernel: four
queries share each loaded row and their sums are packed into the 16-bit fields of one int64 (rows up to
MAX_NARROW = 224 angles, where 128 per angle stays below 2**15).

Threads: a search is split over threads only past MIN_TASK_WORK per thread (``threads=`` caps them), so small
searches never wait for woken threads; many queries split by query, few by rows.

Why numba (a dependency of this package for this module): a numpy uint8 loop runs ~0.2k QPS on 100k x 64 codes;
the tiled kernel runs ~4-4.5x faiss ``IndexFlatIP`` on the float vectors per thread (bench/search.py, README).
Without numba the numpy reference gives identical results, only slower.

Usage::

    refs = prepare_references(codes)                    # once per reference set (no copy: uint8, C order, k % 32 == 0)
    D, I = topk_l1(queries, refs, bits=8, k=10)        # int64 [nq, k], ids ascending within equal distance
"""

import threading

import numpy as np

from .distance import coordinate_distance

__all__ = ["HAVE_NUMBA", "USES_PSADBW", "AVAILABLE_PATHS", "BEST_PATH", "PATH_NAMES", "prepare_references",
           "topk_l1", "topk_l1_numpy", "choose_threads"]

BLOCK = 256          # reference rows per block
CHUNK = 32           # angles per vector instruction (bytes in a 256-bit register)
_LAUNCH = threading.Lock()  # one search at a time (each uses every numba thread); the workqueue layer would abort
MAX_NARROW = 224     # padded angles whose largest scaled distance (128 per angle) stays below 2**15

try:
    import numba
    from numba import njit, types
    from numba.core import cgutils
    from numba.extending import intrinsic
    from llvmlite import ir
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


def _prepare_queries(queries: np.ndarray, bits: int, width: int, group: int) -> np.ndarray:
    """[nq, k] -> [ceil(nq / group) * group, W] uint8: (q << (8 - bits)) - 128; pads are 128 (distance 0)."""
    nq, k = queries.shape
    rows = -(-nq // group) * group
    out = np.full((rows, width), 0x80, np.uint8)
    out[:nq, :k] = (queries << np.uint8(8 - bits)) ^ np.uint8(0x80)
    return out


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

    def _make_block_distances(group: int, field: int, path: int, nchunks: int = 0):
        """An intrinsic ``f(refs, shift, i0, m, qs, q0, out)``: for rows i0..i0+m-1 of ``refs`` (each code shifted
        left by ``shift``), out[i - i0] packs the scaled distances to queries q0..q0+group-1 of ``qs`` into
        ``group`` fields of ``field`` bits. Reads rows as row * width bytes: C-contiguous uint8 arrays only.
        ``path``: PORTABLE (generic vectors), AVX2 (256-bit psadbw), AVX512 (512-bit vpsadbw; width % 64 == 0).
        ``nchunks`` > 0: a variant for rows of exactly that many vectors, the group's query vectors held in
        registers across rows and every row unrolled (0: any width, a loop over the row's vectors)."""
        vec = 64 if path == AVX512 else CHUNK

        @intrinsic
        def block_distances(typingctx, refs, shift, i0, m, qs, q0, out):
            sig = types.none(refs, shift, i0, m, qs, q0, out)

            def codegen(context, builder, sig, args):
                i8, i16, i64 = ir.IntType(8), ir.IntType(16), ir.IntType(64)
                lanes = vec // 8                      # i64 lanes of one psadbw result
                vb, vl, vw = ir.VectorType(i8, vec), ir.VectorType(i64, lanes), ir.VectorType(i16, vec)
                refs_arg, shift_arg, i0_arg, m_arg, qs_arg, q0_arg, out_arg = args
                xa = context.make_array(sig.args[0])(context, builder, refs_arg)
                qa = context.make_array(sig.args[4])(context, builder, qs_arg)
                oa = context.make_array(sig.args[6])(context, builder, out_arg)
                shift = builder.trunc(shift_arg, i8)
                shift_v = builder.insert_element(ir.Constant(vb, [0] * vec), shift, ir.Constant(ir.IntType(32), 0))
                shift_v = builder.shuffle_vector(shift_v, shift_v, ir.Constant(ir.VectorType(ir.IntType(32), vec),
                                                                                [0] * vec))
                width = cgutils.unpack_tuple(builder, xa.shape, 2)[1]
                chunks = builder.udiv(width, ir.Constant(i64, vec))
                mod = builder.module

                def load(arr, row, c):
                    offset = builder.add(builder.mul(row, width), builder.mul(c, ir.Constant(i64, vec)))
                    ptr = builder.bitcast(builder.gep(arr.data, [offset]), vb.as_pointer())
                    return builder.load(ptr, align=1)

                if path != PORTABLE:
                    acc_type = vl
                    name = "llvm.x86.avx512.psad.bw.512" if path == AVX512 else "llvm.x86.avx2.psad.bw"
                    sad = cgutils.get_or_insert_function(mod, ir.FunctionType(vl, [vb, vb]), name)
                    mid = ir.Constant(vb, [128] * vec)

                    def chunk_sum(d):
                        return builder.call(sad, [d, mid])
                else:
                    acc_type = i64
                    absf = cgutils.get_or_insert_function(
                        mod, ir.FunctionType(vw, [vw, ir.IntType(1)]), f"llvm.abs.v{vec}i16")
                    red16 = cgutils.get_or_insert_function(mod, ir.FunctionType(i16, [vw]),
                                                           f"llvm.vector.reduce.add.v{vec}i16")
                    mid = ir.Constant(vw, [128] * vec)

                    def chunk_sum(d):  # largest value 32 * 128 = 4096 fits i16
                        a = builder.call(absf, [builder.sub(builder.zext(d, vw), mid), ir.Constant(ir.IntType(1), 0)])
                        return builder.zext(builder.call(red16, [a]), i64)

                vector_acc = path != PORTABLE
                accs = [cgutils.alloca_once(builder, acc_type) for _ in range(group)]
                zero = ir.Constant(acc_type, [0] * lanes if vector_acc else 0)
                if nchunks:  # the group's query vectors, loaded once for the whole block
                    qvs = [[load(qa, builder.add(q0_arg, ir.Constant(i64, t)), ir.Constant(i64, c))
                            for c in range(nchunks)] for t in range(group)]
                with cgutils.for_range(builder, m_arg) as rows:
                    row = builder.add(i0_arg, rows.index)
                    if nchunks:
                        sums = [zero] * group
                        for c in range(nchunks):
                            xv = builder.shl(load(xa, row, ir.Constant(i64, c)), shift_v)
                            for t in range(group):
                                sums[t] = builder.add(sums[t], chunk_sum(builder.sub(xv, qvs[t][c])))
                        for t in range(group):
                            builder.store(sums[t], accs[t])
                    else:
                        for a in accs:
                            builder.store(zero, a)
                        with cgutils.for_range(builder, chunks) as cl:
                            xv = builder.shl(load(xa, row, cl.index), shift_v)  # codes to the top of the byte
                            for t in range(group):
                                qv = load(qa, builder.add(q0_arg, ir.Constant(i64, t)), cl.index)
                                builder.store(builder.add(builder.load(accs[t]), chunk_sum(builder.sub(xv, qv))),
                                              accs[t])
                    packed = None
                    for t in range(group):
                        acc = builder.load(accs[t])
                        if t:
                            acc = builder.shl(acc, ir.Constant(acc_type, [field * t] * lanes if vector_acc
                                                               else field * t))
                        packed = acc if packed is None else builder.or_(packed, acc)
                    if vector_acc:
                        red = cgutils.get_or_insert_function(mod, ir.FunctionType(i64, [vl]),
                                                             f"llvm.vector.reduce.add.v{lanes}i64")
                        packed = builder.call(red, [packed])
                    builder.store(packed, builder.gep(oa.data, [rows.index]))
                return context.get_dummy_value()

            return sig, codegen

        return block_distances

    # only the paths this CPU can run are compiled; the others alias a path that exists (never called)
    _narrow = {PORTABLE: _make_block_distances(4, 16, PORTABLE)}
    for _p in (AVX2, AVX512):
        _ok = _p in AVAILABLE_PATHS
        _narrow[_p] = _make_block_distances(4, 16, _p) if _ok else _narrow[_p - 1]
    _n0, _n1, _n2 = _narrow[PORTABLE], _narrow[AVX2], _narrow[AVX512]
    # unrolled variants for the common widths: 64 / 128 angles (AVX-512), 32 / 64 / 128 angles (AVX2)
    _n1_1, _n1_2, _n1_4 = ((_make_block_distances(4, 16, AVX2, c) for c in (1, 2, 4)) if AVX2 in AVAILABLE_PATHS
                           else (_n0, _n0, _n0))
    _n2_1, _n2_2 = ((_make_block_distances(4, 16, AVX512, c) for c in (1, 2)) if AVX512 in AVAILABLE_PATHS
                    else (_n1, _n1))

    def _jit(parallel):
        def wrap(fn):
            try:  # the on-disk cache saves the seconds of compilation; fall back if no cache location works
                return njit(parallel=parallel, cache=True, boundscheck=False, nogil=True)(fn)
            except RuntimeError:  # pragma: no cover
                return njit(parallel=parallel, cache=False, boundscheck=False, nogil=True)(fn)
        return wrap

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
    ntask = 1 if threads == 1 or small else choose_threads(nq, n, width, threads)
    return _tiled.tiled_topk(queries, refs, bits, k, path, ntask, packed)


if HAVE_NUMBA:

    @_jit(False)
    def _block(refs, shift, i0, m, qs, q0, buf, path, nch):  # pragma: no cover - compiled
        """Narrow (4-query) block distances on the given path, unrolled variant when the width has one."""
        if path == 2:
            if nch == 1:
                _n2_1(refs, shift, i0, m, qs, q0, buf)
            elif nch == 2:
                _n2_2(refs, shift, i0, m, qs, q0, buf)
            else:
                _n2(refs, shift, i0, m, qs, q0, buf)
        elif path == 1:
            if nch == 1:
                _n1_1(refs, shift, i0, m, qs, q0, buf)
            elif nch == 2:
                _n1_2(refs, shift, i0, m, qs, q0, buf)
            elif nch == 4:
                _n1_4(refs, shift, i0, m, qs, q0, buf)
            else:
                _n1(refs, shift, i0, m, qs, q0, buf)
        else:
            _n0(refs, shift, i0, m, qs, q0, buf)

    @_jit(False)
    def _lists_scan(queries, probe, lists, seqs, shift, k, path, out_d, out_s):  # pragma: no cover - compiled
        """Inverted-list scan: query i scans lists probe[i, :]; out_d / out_s [nq, k] get the k smallest
        (distance, insertion number) pairs over them (out_s = -1 where fewer). Queries probing one list go
        through it four at a time."""
        nq, nprobe = probe.shape
        nlist = len(lists)
        width = lists[0].shape[1]
        nch = width // (64 if path == 2 else 32)
        qs = np.full((4, width), 0x80, np.uint8)
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
        cnt = np.zeros(nq, np.int64)
        big = np.int64(1) << 62
        for i in range(nq):
            for j in range(k):
                out_d[i, j] = big
                out_s[i, j] = -1
        buf = np.empty(BLOCK, np.int64)
        limit = 1 << 15
        high = 0
        for t in range(4):
            high |= limit << (16 * t)
        for li in range(nlist):
            a, b = counts[li], counts[li + 1]
            refs = lists[li]
            seq = seqs[li]
            n = refs.shape[0]
            if a == b or n == 0:
                continue
            for g in range(a, b, 4):
                ng = min(4, b - g)
                for t in range(4):
                    if t < ng:
                        qi = who[g + t]
                        for c in range(queries.shape[1]):
                            qs[t, c] = np.uint8((queries[qi, c] << shift) & 0xFF) ^ np.uint8(0x80)
                for i0 in range(0, n, BLOCK):
                    m = min(BLOCK, n - i0)
                    _block(refs, shift, i0, m, qs, 0, buf, path, nch)
                    thr = 0   # field t: kth distance + 1 (ties may enter by insertion number), or "not full"
                    for t in range(ng):
                        qi = who[g + t]
                        thr |= (out_d[qi, k - 1] + 1 if cnt[qi] == k else limit) << (16 * t)
                    for t in range(ng, 4):
                        thr |= 0 << (16 * t)   # padded query slots never hit
                    for i in range(m):
                        hit = ~((buf[i] | high) - thr) & high
                        if hit == 0:
                            continue
                        for t in range(ng):
                            if (hit >> (16 * t + 15)) & 1 == 0:
                                continue
                            qi = who[g + t]
                            v = (buf[i] >> (16 * t)) & 0xFFFF
                            s = seq[i0 + i]
                            c = cnt[qi]
                            if c == k and (v > out_d[qi, k - 1] or (v == out_d[qi, k - 1] and s > out_s[qi, k - 1])):
                                continue
                            p = c if c < k else k - 1
                            while p > 0 and (out_d[qi, p - 1] > v or (out_d[qi, p - 1] == v and out_s[qi, p - 1] > s)):
                                out_d[qi, p] = out_d[qi, p - 1]
                                out_s[qi, p] = out_s[qi, p - 1]
                                p -= 1
                            out_d[qi, p] = v
                            out_s[qi, p] = s
                            if c < k:
                                cnt[qi] = c + 1
                        # thresholds tighten as lists fill
                        thr = 0
                        for t in range(ng):
                            qi = who[g + t]
                            thr |= (out_d[qi, k - 1] + 1 if cnt[qi] == k else limit) << (16 * t)
        for i in range(nq):
            for j in range(k):
                if out_s[i, j] >= 0:
                    out_d[i, j] >>= shift


def lists_topk(queries: np.ndarray, probe: np.ndarray, lists, seqs, bits: int, k: int):
    """Top-k over inverted lists (see _lists_scan): (distances int64 [nq, k] with 2**62 where missing,
    insertion numbers int64 [nq, k] with -1 where missing). ``lists``/``seqs``: numba typed Lists of the lists'
    [n_l, W] uint8 rows (W <= MAX_NARROW) and int64 insertion numbers."""
    path = BEST_PATH
    if path == AVX512 and lists[0].shape[1] % 64:
        path = AVX2
    out_d = np.empty((queries.shape[0], k), np.int64)
    out_s = np.empty((queries.shape[0], k), np.int64)
    _lists_scan(np.ascontiguousarray(queries), np.ascontiguousarray(probe, dtype=np.int64), lists, seqs,
                8 - bits, k, path, out_d, out_s)
    return out_d, out_s


from . import tiled as _tiled  # noqa: E402  (tiled builds on this module's paths and _jit)
