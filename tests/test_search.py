"""TorusIndex: exact search equals a brute-force reference (ties: smaller id first); approx mode; errors; I/O."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torus_plugins.codes import CodeFileError
from torus_plugins.codes.kernel import BLOCK, HAVE_NUMBA, prepare_references, topk_l1, topk_l1_numpy
from torus_plugins.search import TorusIndex


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


@pytest.mark.parametrize("bits, backend", [(b, "kernel") for b in range(1, 9)] + [(b, "johnson") for b in range(1, 5)])
def test_exact_matches_brute_force_with_ties(bits, backend):
    rng = np.random.default_rng(bits)
    n_angles = 6 if bits <= 2 else 12  # few angles and low bits: many equal distances
    x = rng.integers(0, 1 << bits, (403, n_angles), dtype=np.uint8)
    q = np.concatenate([x[:5], rng.integers(0, 1 << bits, (20, n_angles), dtype=np.uint8)])
    index = TorusIndex(n_angles, bits, backend=backend).add(x)
    for k in (1, 10, 57):
        D, I = index.search(q, k)
        Dr, Ir = brute_knn(q, x, bits, k)
        assert D.dtype == np.int64 and I.dtype == np.int64
        assert np.array_equal(D, Dr) and np.array_equal(I, Ir), (bits, k)


@pytest.mark.parametrize("bits", [1, 4, 8])
def test_all_ties_and_k_equals_n(bits):
    x = np.zeros((70, 4), np.uint8)  # every distance to the query is equal
    x[::2, 0] = 1
    index = TorusIndex(4, bits).add(x)
    D, I = index.search(np.zeros((3, 4), np.uint8), 70)
    Dr, Ir = brute_knn(np.zeros((3, 4), np.uint8), x, bits, 70)
    assert np.array_equal(I, Ir) and np.array_equal(D, Dr)
    assert I[0, :35].tolist() == list(range(1, 70, 2))


@settings(max_examples=25, deadline=None)
@given(bits=st.integers(1, 8), n=st.integers(1, 80), n_angles=st.integers(1, 9), seed=st.integers(0, 2**31),
       data=st.data())
def test_exact_property(bits, n, n_angles, seed, data):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 1 << bits, (n, n_angles), dtype=np.uint8)
    q = rng.integers(0, 1 << bits, (3, n_angles), dtype=np.uint8)
    k = data.draw(st.integers(1, n))
    D, I = TorusIndex(n_angles, bits).add(x).search(q, k)
    Dr, Ir = brute_knn(q, x, bits, k)
    assert np.array_equal(D, Dr) and np.array_equal(I, Ir)


@pytest.mark.parametrize("portable", [False, True])
@pytest.mark.parametrize("n_angles", [600, 225])
def test_kernel_wide_codes_use_32_bit_fields(portable, n_angles):
    rng = np.random.default_rng(9)
    x = rng.integers(0, 256, (150, n_angles), dtype=np.uint8)  # > 224 angles: 128 * 256 reaches 2**15
    x[7] = x[3] ^ 0x80  # the largest possible distance, 128 per angle
    q = np.concatenate([x[3:4], rng.integers(0, 256, (8, n_angles), dtype=np.uint8)])
    a = topk_l1(q, prepare_references(x), 8, 150, portable=portable)
    b = topk_l1_numpy(q, x, 8, 150)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert a[0][0, -1] == 128 * n_angles and a[1][0, -1] == 7
    assert np.array_equal(a[0][:, :7], brute_knn(q, x, 8, 7)[0])


@pytest.mark.parametrize("portable", [False, True])
@pytest.mark.parametrize("bits", [1, 3, 4, 5, 8])
@pytest.mark.parametrize("n_angles", [1, 31, 32, 33, 64, 224])
def test_kernel_paths_equal_brute_force_across_blocks_and_query_groups(portable, bits, n_angles):
    """Both code paths (psadbw where the CPU has it, and the portable vector code), padded widths, reference
    blocks of BLOCK rows with a ragged tail, and query counts that are not a multiple of the query group."""
    rng = np.random.default_rng(bits * 1000 + n_angles)
    n = 2 * BLOCK + 37
    x = rng.integers(0, 1 << bits, (n, n_angles), dtype=np.uint8)
    x[BLOCK + 5] = x[0]  # an exact duplicate across a block boundary: tie at distance 0, smaller id first
    q = np.concatenate([x[:1], rng.integers(0, 1 << bits, (6, n_angles), dtype=np.uint8)])
    D, I = topk_l1(q, prepare_references(x), bits, 12, portable=portable)
    Dr, Ir = brute_knn(q, x, bits, 12)
    assert np.array_equal(D, Dr) and np.array_equal(I, Ir)
    assert I[0, 0] == 0 and D[0, 0] == 0
    # the largest distance a row can have (half a turn on every angle) is still ranked, last, exactly
    x[-1] = (x[0].astype(np.int64) + (1 << (bits - 1))) % (1 << bits)
    D, I = topk_l1(x[:1], prepare_references(x), bits, n, portable=portable)
    assert D[0, -1] == n_angles << (bits - 1) and I[0, -1] == n - 1


def test_incremental_add_equals_single_add():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 16, (300, 8), dtype=np.uint8)
    for bits, backend in ((4, "kernel"), (4, "johnson"), (8, "kernel")):
        inc = TorusIndex(8, bits, backend=backend).add(x[:100])
        inc.search(x[:2], 3)  # builds the internal structures, which add() must then extend
        inc.add(x[100:])
        one = TorusIndex(8, bits, backend=backend).add(x)
        assert len(inc) == 300
        for a, b in zip(inc.search(x[:20], 9), one.search(x[:20], 9)):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("bits", [3, 8])
def test_approx_mode(bits):
    rng = np.random.default_rng(6)
    centers = rng.integers(0, 1 << bits, (20, 16))
    noise = rng.integers(-1, 2, (2000, 16)) if bits == 8 else rng.integers(0, 1, (2000, 16))
    x = ((centers[rng.integers(0, 20, 2000)] + noise) % (1 << bits)).astype(np.uint8)
    index = TorusIndex(16, bits, mode="approx", nprobe=4).add(x)
    D, I = index.search(x[:50], 10)
    assert D.shape == I.shape == (50, 10)
    assert (D[:, 0] == 0).all()  # a stored vector finds a zero-distance match
    assert (np.diff(D, axis=1) >= 0).all()
    Dr, _ = brute_knn(x[:50], x, bits, 10)
    assert (D >= Dr).all()  # never better than exact
    # distances are the true distances of the returned ids
    m = 1 << bits
    diff = (x[:50, None, :].astype(np.int64) - x[I].astype(np.int64)) % m
    assert np.array_equal(np.minimum(diff, m - diff).sum(-1), D)


def test_approx_falls_back_when_lists_run_short():
    x = np.random.default_rng(7).integers(0, 256, (60, 4), dtype=np.uint8)
    index = TorusIndex(4, 8, mode="approx", nlist=30, nprobe=1)
    index.add(x)
    D, I = index.search(x[:5], 60)  # k = n: the probed list cannot hold them all
    Dr, Ir = brute_knn(x[:5], x, 8, 60)
    assert np.array_equal(D, Dr) and np.array_equal(I, Ir)


def test_bad_input():
    index = TorusIndex(8, 4)
    with pytest.raises(ValueError, match="empty"):
        index.search(np.zeros((1, 8), np.uint8), 1)
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
    for k in (0, 6, -1, 2.0):
        with pytest.raises(ValueError, match="k must"):
            index.search(np.zeros((1, 8), np.uint8), k)
    with pytest.raises(ValueError, match="mode"):
        TorusIndex(8, 4, mode="fast")
    with pytest.raises(ValueError, match="backend must be one of"):
        TorusIndex(8, 4, backend="faiss")
    with pytest.raises(ValueError, match="bits <= 4"):
        TorusIndex(8, 8, backend="johnson")
    with pytest.raises(ValueError, match="bits"):
        TorusIndex(8, 9)
    with pytest.raises(ValueError, match="n_angles"):
        TorusIndex(0)


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(8)
    x = rng.integers(0, 256, (120, 10), dtype=np.uint8)
    for mode in ("exact", "approx"):
        index = TorusIndex(10, 8, mode=mode, nprobe=3).add(x)
        index.save(tmp_path / f"{mode}.torc")
        back = TorusIndex.load(tmp_path / f"{mode}.torc")
        assert (len(back), back.mode, back.bits, back.nprobe, back.n_angles) == (120, mode, 8, 3, 10)
        assert np.array_equal(back.codes, x)
        for a, b in zip(index.search(x[:7], 5), back.search(x[:7], 5)):
            assert np.array_equal(a, b)
    TorusIndex(10, 4, backend="johnson").add(x >> 4).save(tmp_path / "johnson.torc")
    assert TorusIndex.load(tmp_path / "johnson.torc").backend == "johnson"
    data = (tmp_path / "exact.torc").read_bytes()
    (tmp_path / "cut.torc").write_bytes(data[:-9])
    with pytest.raises(CodeFileError):
        TorusIndex.load(tmp_path / "cut.torc")


def test_numba_is_used_when_available():
    pytest.importorskip("numba")
    assert HAVE_NUMBA


class _AdversarialFlat:
    """Stand-in for faiss.IndexBinaryFlat that returns exact top-kk but orders ties by *larger* id first,
    which faiss is free to do; the index must still answer smaller-id-first."""

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
    index = TorusIndex(5, bits, backend="johnson").add(x)
    index._flat = _AdversarialFlat(index._johnson(index.codes))
    for k in (1, 10, 40):
        D, I = index.search(q, k)
        Dr, Ir = brute_knn(q, x, bits, k)
        assert np.array_equal(D, Dr) and np.array_equal(I, Ir), (bits, k)


def test_nbytes_counts_what_the_index_holds():
    x = np.random.default_rng(11).integers(0, 16, (500, 64), dtype=np.uint8)
    ix8 = TorusIndex(64, 8).add(x)
    ix8.search(x[:2], 3)
    assert ix8.nbytes == 500 * 64  # searched in place (a multiple of 32 angles): 1/8 of float32 Clifford
    ix4 = TorusIndex(64, 4).add(x)
    ix4.search(x[:2], 3)
    assert ix4.nbytes == 500 * 64  # 4-bit codes too: shifted in registers, not in memory
    ix6 = TorusIndex(40, 6).add(x[:, :40])
    ix6.search(x[:2, :40], 3)
    assert ix6.nbytes == 500 * 40 + 500 * 64  # 40 angles: the search layout is a copy padded to 64
    j4 = TorusIndex(64, 4, backend="johnson").add(x)
    j4.search(x[:2], 3)
    assert j4.nbytes == 500 * 64 + 500 * 64  # codes plus 8 Johnson bits per 4-bit angle in faiss


def test_concurrent_searches_from_threads_equal_serial_results():
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(12)
    x = rng.integers(0, 256, (2000, 64), dtype=np.uint8)
    queries = [rng.integers(0, 256, (9, 64), dtype=np.uint8) for _ in range(8)]
    index = TorusIndex(64, 8).add(x)
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
