"""TorusIndexFlat (TorusIndex) and TorusIndexBinaryFlat: exact search equals a brute-force reference
(ties: smaller id first) on every kernel path; faiss-style methods behave like faiss's; concurrent
add + search loses nothing; whole-index I/O."""

import json
import struct
import sys
import threading
import warnings
import zlib

import faiss
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torus_plugins.codes import CodeFileError, johnson_encode, save_codes
from torus_plugins.search import (
    PAD_DISTANCE,
    SearchParameters,
    TorusIndex,
    TorusIndexBinaryFlat,
    TorusIndexFlat,
    TorusIndexIVF,
    index_factory,
    read_index,
    write_index,
)
from torus_plugins.search import _kernel as kernel
from torus_plugins.search._kernel import BLOCK, cpu, prepare_references, scan, topk_l1

CLASSES = {"kernel": TorusIndexFlat, "johnson": TorusIndexBinaryFlat}


def run_interleaved(workers) -> None:
    """Start and join these threads with the interpreter switching threads every microsecond (races
    show up)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        sys.setswitchinterval(old)


def filled(index, x, ids=None, train=None):
    """``index`` after train(train) (if given) and add(x) / add_with_ids(x, ids): faiss's add
    returns None."""
    if train is not None:
        index.train(train)
    if ids is None:
        index.add(x)
    else:
        index.add_with_ids(x, ids)
    return index


def brute_knn(q, x, bits, k):
    """Independent reference: per-query distances, then python sort on (distance, id)."""
    m = 1 << bits
    D, I = [], []
    for row in q.astype(np.int64):
        d = (row[None, :] - x.astype(np.int64)) % m
        dist = np.minimum(d, m - d).sum(1)
        order = sorted(range(len(x)), key=lambda i: (int(dist[i]), i))[:k]
        I.append(order)
        D.append([int(dist[i]) for i in order])
    return np.array(D, np.int64), np.array(I, np.int64)


@pytest.mark.parametrize(
    "bits, backend", [(b, "kernel") for b in range(1, 9)] + [(b, "johnson") for b in range(1, 5)]
)
def test_exact_matches_brute_force_with_ties(bits, backend):
    rng = np.random.default_rng(bits)
    n_angles = 6 if bits <= 2 else 12  # few angles and low bits: many equal distances
    x = rng.integers(0, 1 << bits, (403, n_angles), dtype=np.uint8)
    q = np.concatenate([x[:5], rng.integers(0, 1 << bits, (20, n_angles), dtype=np.uint8)])
    index = filled(CLASSES[backend](n_angles, bits), x)
    for k in (1, 10, 57):
        D, I = index.search(q, k)
        Dr, Ir = brute_knn(q, x, bits, k)
        assert D.dtype == np.int64 and I.dtype == np.int64
        assert np.array_equal(D, Dr) and np.array_equal(I, Ir), (bits, k)


@pytest.mark.parametrize("bits", [1, 4, 8])
def test_all_ties_and_k_equals_n(bits):
    x = np.zeros((70, 4), np.uint8)  # every distance to the query is equal
    x[::2, 0] = 1
    index = filled(TorusIndex(4, bits), x)
    D, I = index.search(np.zeros((3, 4), np.uint8), 70)
    Dr, Ir = brute_knn(np.zeros((3, 4), np.uint8), x, bits, 70)
    assert np.array_equal(I, Ir) and np.array_equal(D, Dr)
    assert I[0, :35].tolist() == list(range(1, 70, 2))


@settings(max_examples=25, deadline=None)
@given(
    bits=st.integers(1, 8),
    n=st.integers(1, 80),
    n_angles=st.integers(1, 9),
    seed=st.integers(0, 2**31),
    data=st.data(),
)
def test_exact_property(bits, n, n_angles, seed, data):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 1 << bits, (n, n_angles), dtype=np.uint8)
    q = rng.integers(0, 1 << bits, (3, n_angles), dtype=np.uint8)
    k = data.draw(st.integers(1, n))
    D, I = filled(TorusIndex(n_angles, bits), x).search(q, k)
    Dr, Ir = brute_knn(q, x, bits, k)
    assert np.array_equal(D, Dr) and np.array_equal(I, Ir)


@pytest.mark.parametrize("portable", [False, True])
@pytest.mark.parametrize("n_angles", [600, 225])
def test_kernel_wide_codes_keep_exact_distances(portable, n_angles):
    rng = np.random.default_rng(9)
    x = rng.integers(
        0, 256, (150, n_angles), dtype=np.uint8
    )  # > 224 angles: 128 * 256 reaches 2**15 (16 bits)
    x[7] = x[3] ^ 0x80  # the largest possible distance, 128 per angle
    q = np.concatenate([x[3:4], rng.integers(0, 256, (8, n_angles), dtype=np.uint8)])
    a = topk_l1(q, prepare_references(x), 8, 150, portable=portable)
    b = brute_knn(q, x, 8, 150)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert a[0][0, -1] == 128 * n_angles and a[1][0, -1] == 7
    assert np.array_equal(a[0][:, :7], brute_knn(q, x, 8, 7)[0])


@pytest.mark.parametrize("portable", [False, True])
@pytest.mark.parametrize("bits", [1, 3, 4, 5, 8])
@pytest.mark.parametrize("n_angles", [1, 31, 32, 33, 64, 224])
def test_kernel_paths_equal_brute_force_across_blocks_and_query_groups(portable, bits, n_angles):
    """Both code paths (psadbw where the CPU has it, and the portable vector code), padded widths,
    reference blocks of BLOCK rows with a ragged tail, and query counts that are not a multiple of
    the query group."""
    rng = np.random.default_rng(bits * 1000 + n_angles)
    n = 2 * BLOCK + 37
    x = rng.integers(0, 1 << bits, (n, n_angles), dtype=np.uint8)
    x[BLOCK + 5] = x[
        0
    ]  # an exact duplicate across a block boundary: tie at distance 0, smaller id first
    q = np.concatenate([x[:1], rng.integers(0, 1 << bits, (6, n_angles), dtype=np.uint8)])
    D, I = topk_l1(q, prepare_references(x), bits, 12, portable=portable)
    Dr, Ir = brute_knn(q, x, bits, 12)
    assert np.array_equal(D, Dr) and np.array_equal(I, Ir)
    assert I[0, 0] == 0 and D[0, 0] == 0
    # the largest distance a row can have (half a turn on every angle) is still ranked, last,
    # exactly
    x[-1] = (x[0].astype(np.int64) + (1 << (bits - 1))) % (1 << bits)
    D, I = topk_l1(x[:1], prepare_references(x), bits, n, portable=portable)
    assert D[0, -1] == n_angles << (bits - 1) and I[0, -1] == n - 1


def test_incremental_add_equals_single_add():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 16, (300, 8), dtype=np.uint8)
    for bits, backend in ((4, "kernel"), (4, "johnson"), (8, "kernel")):
        inc = filled(CLASSES[backend](8, bits), x[:100])
        inc.search(x[:2], 3)  # builds the internal structures, which add() must then extend
        inc.add(x[100:])
        one = filled(CLASSES[backend](8, bits), x)
        assert len(inc) == 300
        for a, b in zip(inc.search(x[:20], 9), one.search(x[:20], 9)):
            assert np.array_equal(a, b)


def test_bad_input():
    index = TorusIndex(8, 4)
    index.add(np.zeros((5, 8), np.uint8))
    with pytest.raises(ValueError, match="n_angles"):
        index.add(np.zeros((5, 7), np.uint8))
    with pytest.raises(ValueError, match="n_angles"):
        index.search(np.zeros((1, 9), np.uint8), 1)
    with pytest.raises(TypeError, match="uint8"):
        index.add(np.zeros((5, 8), np.int32))
    with pytest.raises(TypeError, match="uint8"):
        index.search(np.zeros((1, 8), np.float32), 1)
    with pytest.raises(ValueError, match="2\\*\\*bits"):
        index.add(np.full((1, 8), 16, np.uint8))
    for k in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="k must"):
            index.search(np.zeros((1, 8), np.uint8), k)
    with pytest.raises(ValueError, match="radius"):
        index.range_search(np.zeros((1, 8), np.uint8), float("nan"))
    with pytest.raises(ValueError, match="threads"):
        index.search(np.zeros((1, 8), np.uint8), 1, params=SearchParameters(threads=0))
    with pytest.raises(ValueError, match="ids must be 5 integers"):
        index.add_with_ids(np.zeros((5, 8), np.uint8), np.arange(4))
    with pytest.raises(ValueError, match="bits <= 4"):
        TorusIndexBinaryFlat(8, 8)
    with pytest.raises(ValueError, match="geometry must be one of"):
        TorusIndex(8, 4, geometry="nonsense")
    with pytest.raises(ValueError, match="bits"):
        TorusIndex(8, 9)
    with pytest.raises(ValueError, match="n_angles"):
        TorusIndex(0)


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(8)
    x = rng.integers(0, 256, (120, 10), dtype=np.uint8)
    index = filled(TorusIndex(10, 8), x)
    index.save(tmp_path / "exact.torc")
    back = TorusIndex.load(tmp_path / "exact.torc")
    assert (len(back), back.bits, back.n_angles) == (120, 8, 10)
    assert np.array_equal(back.codes, x)
    for a, b in zip(index.search(x[:7], 5), back.search(x[:7], 5)):
        assert np.array_equal(a, b)
    filled(TorusIndexBinaryFlat(10, 4), x >> 4).save(tmp_path / "johnson.torc")
    assert isinstance(TorusIndexBinaryFlat.load(tmp_path / "johnson.torc"), TorusIndexBinaryFlat)
    assert isinstance(read_index(tmp_path / "johnson.torc"), TorusIndexBinaryFlat)
    with pytest.raises(ValueError, match="holds a TorusIndexBinaryFlat, not a TorusIndexFlat"):
        TorusIndex.load(tmp_path / "johnson.torc")
    ided = filled(TorusIndex(10, 8), x, np.arange(120) * 7 + 3)
    write_index(ided, tmp_path / "ids.torc")
    back = read_index(tmp_path / "ids.torc")
    assert np.array_equal(back.ids, ided.ids)
    for a, b in zip(ided.search(x[:7], 5), back.search(x[:7], 5)):
        assert np.array_equal(a, b)
    save_codes(tmp_path / "plain.torc", x, 8)  # a plain code file reads as a flat index
    assert np.array_equal(
        read_index(tmp_path / "plain.torc").search(x[:3], 4)[1], index.search(x[:3], 4)[1]
    )
    data = (tmp_path / "exact.torc").read_bytes()
    (tmp_path / "cut.torc").write_bytes(data[:-9])
    with pytest.raises(CodeFileError):
        TorusIndex.load(tmp_path / "cut.torc")


def _rewrite_meta(src, dst, edit):
    """Re-encode a code file with edited metadata and a valid CRC (a crafted, self-consistent
    file)."""
    data = src.read_bytes()
    head = struct.Struct("<4sHBBIQHI")
    magic, ver, bits, res, k, n, glen, mlen = head.unpack_from(data)
    off = head.size
    meta = json.loads(data[off + glen : off + glen + mlen])
    edit(meta["torus_index"])
    m = json.dumps(meta).encode()
    body = (
        head.pack(magic, ver, bits, res, k, n, glen, len(m))
        + data[off : off + glen]
        + m
        + data[off + glen + mlen : -4]
    )
    dst.write_bytes(body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF))


@pytest.mark.parametrize(
    "field, value, kind",
    [
        ("type", "HNSW", "flat"),
        ("type", 3, "flat"),
        ("backend", "gpu", "flat"),
        ("backend", "johnson", "flat"),
        ("ids", "!!!", "flat"),
        ("ids", "AAAA", "flat"),
        ("format", 99, "flat"),
        ("nlist", 0, "ivf"),
        ("nlist", "8", "ivf"),
        ("nprobe", -1, "ivf"),
        ("list_sizes", [1, 2], "ivf"),
        ("list_sizes", "x", "ivf"),
        ("nseq", 2, "ivf"),
        ("seq", "AAAA", "ivf"),
        ("centroids", None, "ivf"),
        ("centroids", "AAAA", "ivf"),
        ("idmap", 5, "ivf"),
        ("nprobe", True, "ivf"),
    ],
)
def test_load_with_valid_crc_but_bad_metadata_names_the_field(tmp_path, field, value, kind):
    x = np.random.default_rng(14).integers(0, 256, (40, 8), dtype=np.uint8)
    if kind == "flat":
        index = filled(TorusIndex(8, 8), x)
    else:
        index = filled(TorusIndexIVF(8, 8, nlist=4, nprobe=2), x, train=x)
    write_index(index, tmp_path / "good.tidx")
    _rewrite_meta(
        tmp_path / "good.tidx", tmp_path / "bad.tidx", lambda m: m.__setitem__(field, value)
    )
    with pytest.raises(CodeFileError, match=f"bad index metadata: {field} must be"):
        read_index(tmp_path / "bad.tidx")


def test_load_rejects_metadata_that_is_not_an_object(tmp_path):
    x = np.zeros((3, 4), np.uint8)
    save_codes(tmp_path / "a.torc", x, 8, meta={"torus_index": [1, 2]})
    with pytest.raises(CodeFileError, match="torus_index must be an object"):
        TorusIndex.load(tmp_path / "a.torc")
    ivf = TorusIndexIVF(4, 8, nlist=2)
    ivf.train(np.arange(8, dtype=np.uint8).reshape(2, 4))
    write_index(ivf, tmp_path / "i")
    with pytest.raises(ValueError, match="use read_index"):
        TorusIndex.load(tmp_path / "i")


def test_numba_kernel_is_compiled_and_used():
    """numba is a dependency: the compiled kernel runs (it gains a compiled signature), the CPU's
    best path is picked from its features, and its results equal the brute-force reference."""
    import llvmlite.binding as llvm

    feats = llvm.get_host_cpu_features()
    if llvm.get_process_triple().startswith("x86_64") and feats.get("avx2"):
        assert kernel.USES_PSADBW
        want = kernel.AVX512 if feats.get("avx512bw") else kernel.AVX2
        assert kernel.BEST_PATH == want
    x = np.random.default_rng(3).integers(0, 256, (300, 64), dtype=np.uint8)
    D, I = topk_l1(x[:9], x, 8, 5, threads=1)
    assert scan.tiled_serial.signatures, "the compiled kernel was not called"
    Dr, Ir = brute_knn(x[:9], x, 8, 5)
    assert np.array_equal(D, Dr) and np.array_equal(I, Ir)


class _AdversarialFlat:
    """Stand-in for faiss.IndexBinaryFlat that returns exact top-kk but orders ties by *larger* id
    first, which faiss is free to do; the index must still answer smaller-id-first."""

    def __init__(self, jc):
        self.jc = jc

    def search(self, jq, kk):
        ham = np.unpackbits(jq[:, None, :] ^ self.jc[None, :, :], axis=-1).sum(-1).astype(np.int32)
        ids = np.arange(self.jc.shape[0])
        order = np.lexsort((-np.broadcast_to(ids, ham.shape), ham), axis=-1)[:, :kk]
        return np.take_along_axis(ham, order, 1), order.astype(np.int64)


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_johnson_tie_order_does_not_depend_on_faiss(bits):
    rng = np.random.default_rng(10 + bits)
    x = rng.integers(0, 1 << bits, (300, 5), dtype=np.uint8)
    q = rng.integers(0, 1 << bits, (15, 5), dtype=np.uint8)
    index = filled(TorusIndexBinaryFlat(5, bits), x)
    index._flat, index._flat_n = _AdversarialFlat(johnson_encode(x, bits)), len(x)
    for k in (1, 10, 40):
        D, I = index.search(q, k)
        Dr, Ir = brute_knn(q, x, bits, k)
        assert np.array_equal(D, Dr) and np.array_equal(I, Ir), (bits, k)


def test_nbytes_counts_what_the_index_holds():
    x = np.random.default_rng(11).integers(0, 16, (500, 64), dtype=np.uint8)
    ix8 = filled(TorusIndex(64, 8), x)
    ix8.search(x[:2], 3)
    assert (
        ix8.nbytes == 500 * 64
    )  # searched in place (a multiple of 32 angles): 1/8 of float32 Clifford
    ix4 = filled(TorusIndex(64, 4), x)
    ix4.search(x[:2], 3)
    assert ix4.nbytes == 500 * 32  # 4-bit codes: two per byte, unpacked by the kernel on the fly
    assert np.array_equal(ix4.codes, x) and not ix4.codes.flags.writeable
    ix6 = filled(TorusIndex(40, 6), x[:, :40])
    ix6.search(x[:2, :40], 3)
    assert (
        ix6.nbytes == 500 * 64
    )  # 40 angles: stored once, already padded to the 64-byte search layout
    j4 = filled(TorusIndexBinaryFlat(64, 4), x)
    j4.search(x[:2], 3)
    assert j4.nbytes == 500 * 64 + 500 * 64  # codes plus 8 Johnson bits per 4-bit angle in faiss
    assert filled(TorusIndex(64, 8), x, np.arange(500)).nbytes == 500 * (64 + 8)


def test_concurrent_searches_from_threads_equal_serial_results():
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(12)
    x = rng.integers(0, 256, (2000, 64), dtype=np.uint8)
    queries = [rng.integers(0, 256, (9, 64), dtype=np.uint8) for _ in range(8)]
    index = filled(TorusIndex(64, 8), x)
    serial = [index.search(q, 5) for q in queries]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda q: index.search(q, 5), queries))
    for (a, b), (c, d) in zip(serial, threaded):
        assert np.array_equal(a, c) and np.array_equal(b, d)


def test_topk_l1_rejects_references_it_cannot_read_row_by_row():
    x = np.random.default_rng(13).integers(0, 256, (40, 32), dtype=np.uint8)
    q = x[:2]
    with pytest.raises(ValueError, match="C-contiguous"):
        topk_l1(q, np.asfortranarray(x), 8, 3)
    with pytest.raises(ValueError, match="C-contiguous"):
        topk_l1(q, np.broadcast_to(x[:1], (40, 32)), 8, 3)
    with pytest.raises(TypeError, match="uint8"):
        topk_l1(q, x.astype(np.int64), 8, 3)
    with pytest.raises(ValueError, match="width"):
        topk_l1(np.zeros((2, 40), np.uint8), prepare_references(x), 8, 3)  # 40 angles need width 64


@pytest.mark.parametrize("path", [p for p in (kernel.PORTABLE, kernel.AVX2, kernel.AVX512)])
@pytest.mark.parametrize("n_angles", [64, 96, 128, 256])
def test_every_kernel_path_equals_brute_force_with_ties(path, n_angles):
    """AVX-512 (512-bit vpsadbw, rows of 64k angles), AVX2 and portable: the same answer, ties
    included. A path the CPU lacks must be refused with a clear error, never run."""
    rng = np.random.default_rng(n_angles)
    x = rng.integers(0, 4, (BLOCK + 70, n_angles), dtype=np.uint8)  # 2-bit values: many ties
    x[BLOCK + 3] = x[1]
    q = np.concatenate([x[1:2], rng.integers(0, 4, (10, n_angles), dtype=np.uint8)])
    if path not in kernel.AVAILABLE_PATHS:
        with pytest.raises(ValueError, match="path must be one of"):
            topk_l1(q, prepare_references(x), 2, 5, path=path)
        return
    for bits in (2, 8):
        D, I = topk_l1(q, prepare_references(x), bits, 25, path=path)
        Dr, Ir = brute_knn(q, x, bits, 25)
        assert np.array_equal(D, Dr) and np.array_equal(I, Ir), (path, bits)


def test_threads_argument_gives_the_same_answer(monkeypatch):
    x = np.random.default_rng(15).integers(0, 256, (3000, 64), dtype=np.uint8)
    q = x[:37]
    ref = topk_l1(q, x, 8, 7, threads=1)
    monkeypatch.setattr(cpu, "MIN_TASK_WORK", 1)  # small work still split: the parallel path runs
    assert kernel.choose_threads(37, 3000, 64, 3) == 3
    for t in (2, 3):
        got = filled(TorusIndex(64, 8), x).search(q, 7, params=SearchParameters(threads=t))
        assert np.array_equal(got[0], ref[0]) and np.array_equal(got[1], ref[1])
    monkeypatch.undo()
    assert kernel.choose_threads(1000, 10, 64, 8) == 1  # tiny work: no thread wake-ups
    assert kernel.choose_threads(1000, 1_000_000, 64, 2) == 2  # large work: every thread allowed


# ---------------------------------------------------------------------------- faiss-style behaviour
def _faiss_binary(x, bits, ids=None):
    """faiss on Johnson codes: Hamming == circular L1, so faiss's answers are the reference
    semantics."""
    jc = johnson_encode(x, bits)
    flat = faiss.IndexBinaryFlat(8 * jc.shape[1])
    if ids is None:
        flat.add(jc)
        return flat
    idmap = faiss.IndexBinaryIDMap(flat)
    idmap.add_with_ids(jc, ids)
    idmap.flat = flat  # keep the wrapped index alive
    return idmap


def test_k_larger_than_ntotal_pads_like_faiss():
    x = np.random.default_rng(16).integers(0, 16, (5, 6), dtype=np.uint8)
    D, I = filled(TorusIndexFlat(6, 4), x).search(x[:2], 8)
    Df, If = _faiss_binary(x, 4).search(johnson_encode(x[:2], 4), 8)
    assert np.array_equal(I[:, 5:], If[:, 5:]) and (I[:, 5:] == -1).all()
    assert (D[:, 5:] == PAD_DISTANCE).all() and (Df[:, 5:] == np.iinfo(np.int32).max).all()
    assert np.array_equal(D[:, :5], Df[:, :5])
    D, I = TorusIndexFlat(6, 4).search(x[:2], 3)  # empty index: all padding, like faiss
    assert (I == -1).all() and (D == PAD_DISTANCE).all() and D.shape == (2, 3)


def test_remove_ids_reset_and_ntotal_behave_like_faiss():
    rng = np.random.default_rng(17)
    x = rng.integers(0, 16, (200, 8), dtype=np.uint8)
    q = rng.integers(0, 16, (30, 8), dtype=np.uint8)
    jq = johnson_encode(q, 4)
    # sequential ids: faiss IndexBinaryFlat (like IndexFlat) renumbers the rows that follow a
    # removed one
    ours, ref = filled(TorusIndexFlat(8, 4), x), _faiss_binary(x, 4)
    gone = np.array([0, 3, 150, 199, 500])
    assert ours.remove_ids(gone) == ref.remove_ids(gone) == 4
    assert ours.ntotal == ref.ntotal == 196
    D, I = ours.search(q, 10)
    Df, _ = ref.search(jq, 10)
    assert np.array_equal(D, Df)
    assert np.array_equal(I, brute_knn(q, np.delete(x, [0, 3, 150, 199], 0), 4, 10)[1])
    # explicit ids: faiss IndexBinaryIDMap keeps the other ids
    ids = rng.permutation(10_000)[:200].astype(np.int64)
    ours, ref = filled(TorusIndexFlat(8, 4), x, ids), _faiss_binary(x, 4, ids)
    gone = ids[[5, 6, 100]]
    assert ours.remove_ids(gone) == ref.remove_ids(gone) == 3
    D, I = ours.search(q, 10)
    Df, If = ref.search(jq, 10)
    assert np.array_equal(D, Df)
    keep = np.delete(np.arange(200), [5, 6, 100])
    assert np.array_equal(
        I, ids[keep][brute_knn(q, x[keep], 4, 10)[1]]
    )  # ties: earlier-added first
    with pytest.raises(ValueError, match="add_with_ids"):
        ours.add(x[:1])
    ours.reset()
    assert ours.ntotal == 0 and (ours.search(q, 2)[1] == -1).all()


@pytest.mark.parametrize("radius", [0, 1, 9, 14, 100])
def test_range_search_equals_faiss(radius):
    rng = np.random.default_rng(18)
    x = rng.integers(0, 8, (300, 6), dtype=np.uint8)
    q = np.concatenate([x[:3], rng.integers(0, 8, (9, 6), dtype=np.uint8)])
    lims, D, I = filled(TorusIndexFlat(6, 3), x).range_search(q, radius)
    lf, Df, If = _faiss_binary(x, 3).range_search(johnson_encode(q, 3), radius)
    assert np.array_equal(lims, lf)
    for i in range(len(q)):
        a, b = slice(lims[i], lims[i + 1]), slice(lf[i], lf[i + 1])
        assert sorted(zip(D[a].tolist(), I[a].tolist())) == sorted(
            zip(Df[b].astype(int).tolist(), If[b].tolist())
        )
        assert list(zip(D[a], I[a])) == sorted(zip(D[a], I[a]))  # ours: sorted by distance, then id
    assert D.dtype == I.dtype == lims.dtype == np.int64


def test_index_factory_builds_each_type():
    """faiss's shape: index_factory(d, description), the structure first and the T<bits> encoding
    last."""
    ix = index_factory(64, "T8")
    assert type(ix) is TorusIndexFlat and (ix.n_angles, ix.bits) == (64, 8)
    assert type(index_factory(64, "Flat")) is TorusIndexFlat and index_factory(64, "Flat").bits == 8
    assert index_factory(16, "T4").packed
    binary = index_factory(16, "BFlat,T4")
    assert type(binary) is TorusIndexBinaryFlat and (binary.n_angles, binary.bits) == (16, 4)
    ivf = index_factory(32, "IVF128,T6", geometry="torusC")
    assert type(ivf) is TorusIndexIVF and (ivf.n_angles, ivf.bits, ivf.nlist, ivf.geometry) == (
        32,
        6,
        128,
        "torusC",
    )
    for d, bad in (
        (64, "T9"),
        (0, "T8"),
        (64, "HNSW32,T8"),
        (64, "IVF4096"),
        (64, "BFlat,T8"),
        (64, 5),
        (64, "T8,IVF16"),
        (5, None),
    ):
        with pytest.raises(ValueError):
            index_factory(d, bad)


def test_index_factory_old_string_form_is_deprecated_and_builds_the_same():
    for old, d, new in (
        ("T64x8,Flat", 64, "T8"),
        ("T16x4,FlatJohnson", 16, "BFlat,T4"),
        ("T32x6,IVF128", 32, "IVF128,T6"),
    ):
        with pytest.warns(DeprecationWarning, match=f"use index_factory\\({d}, '{new}'\\)"):
            ix = index_factory(old)
        want = index_factory(d, new)
        assert type(ix) is type(want) and repr(ix) == repr(want)
    for bad in ("T64x9,Flat", "T0x8,Flat", "64x8,Flat", "T64x8,HNSW32"):
        with pytest.raises(ValueError, match="must"), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the well-formed ones also warn
            index_factory(bad)


# ---------------------------------------------------------------------------- concurrency
@pytest.mark.parametrize("cls", ["flat", "johnson", "ivf"])
def test_concurrent_add_and_search_loses_nothing(cls):
    """Several threads add while others search, with thread switches forced every microsecond: every
    code added is held, every search answers exactly over some published prefix, and the final index
    equals brute force."""
    rng = np.random.default_rng(19)
    bits = 4 if cls == "johnson" else 8
    x = rng.integers(0, 1 << bits, (4000, 16), dtype=np.uint8)
    q = x[:6]
    if cls == "ivf":
        index = TorusIndexIVF(16, bits, nlist=8, nprobe=8)
        index.train(x)
    else:
        index = CLASSES["johnson" if cls == "johnson" else "kernel"](16, bits)
    parts = np.array_split(np.arange(len(x)), 80)
    errors, lock = [], threading.Lock()
    ids_of_adds = {}

    def adder(chunk_ids):
        for c in chunk_ids:
            part = parts[c]
            index.add_with_ids(x[part], part)
            with lock:
                ids_of_adds[c] = part

    def searcher():
        for _ in range(15):
            D, I = index.search(q, 5)
            if (I >= len(x)).any() or ((I < 0) != (D == PAD_DISTANCE)).any():
                errors.append(f"unknown id or bad padding: {I}")
                continue
            m = 1 << bits  # every returned distance is the true distance of the returned id
            diff = (q[:, None, :].astype(np.int64) - x[np.maximum(I, 0)].astype(np.int64)) % m
            true = np.minimum(diff, m - diff).sum(-1)
            if (
                not np.array_equal(np.where(I >= 0, true, PAD_DISTANCE), D)
                or (np.diff(D, axis=1) < 0).any()
            ):
                errors.append("a distance that is not the returned id's, or unsorted results")

    run_interleaved(
        [threading.Thread(target=adder, args=(range(i, 80, 4),)) for i in range(4)]
        + [threading.Thread(target=searcher) for _ in range(3)]
    )
    assert not errors, errors[:3]
    assert index.ntotal == len(x) and len(ids_of_adds) == 80
    D, I = index.search(q, 10)
    Dr, Ir = brute_knn(q, x, bits, 10)
    assert np.array_equal(D, Dr)
    if cls == "ivf":
        held = np.concatenate([index._state[2][r.ids[: r.n]] for r in index._state[0] if r.n])
    else:
        held = index.ids
    assert np.array_equal(np.sort(held), np.arange(len(x)))  # every id added is held exactly once
