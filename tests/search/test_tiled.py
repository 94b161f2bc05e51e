"""The tiled exact scan (torus_plugins.search._kernel): every path, unrolled and generic widths, one
query and query groups, nibble-packed rows, threads; against an independent brute force (python sort
on (distance, id))."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_search import brute_knn, filled  # brute_knn: python sort on (distance, id)

from torus_plugins.codes import pack_codes
from torus_plugins.codes.pack import nibble_unpack
from torus_plugins.search import TorusIndexBinaryFlat, TorusIndexFlat, read_index, write_index
from torus_plugins.search import _kernel as kernel
from torus_plugins.search._kernel import BLOCK, prepare_references, topk_l1

PATHS = [p for p in (kernel.PORTABLE, kernel.AVX2, kernel.AVX512) if p in kernel.AVAILABLE_PATHS]


def test_nibble_pack_is_pack_codes_layout_and_round_trips():
    x = np.random.default_rng(0).integers(0, 16, (37, 64), dtype=np.uint8)
    assert np.array_equal(kernel.nibble_pack(x), pack_codes(x, 4))  # the file format's byte order
    y = x[:, :45]  # odd width: padded to 64 angles
    packed = kernel.nibble_pack(y)
    assert packed.shape == (37, 32)
    assert np.array_equal(nibble_unpack(packed, 45), y)
    assert not nibble_unpack(packed, 64)[:, 45:].any()


@pytest.mark.parametrize("width", [32, 64, 96, 128, 160, 608])
def test_query_order_is_a_permutation_matching_the_unpacked_tiles(width):
    for packed in (False, True):
        order = kernel.query_order(width, packed)
        assert sorted(order.tolist()) == list(range(width))
    # a packed piece of 32 bytes holds [even angles, odd angles] of 64
    assert (
        kernel.query_order(64, True)[:3].tolist() == [0, 2, 4]
        and kernel.query_order(64, True)[32] == 1
    )


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("n_angles", [1, 31, 32, 33, 64, 96, 128, 130, 250])
def test_every_path_and_width_equals_brute_force(path, n_angles):
    """Widths with an unrolled variant (32 / 64 / 128 angles) and without (96, 130, 250: a loop over
    chunks), rows packed or not, a ragged last tile and block, one query (the one-query variant) and
    several."""
    rng = np.random.default_rng(n_angles)
    n = BLOCK + 13
    for bits in (1, 4, 8):
        x = rng.integers(0, 1 << bits, (n, n_angles), dtype=np.uint8)
        x[BLOCK + 2] = x[5]  # a duplicate across the block boundary: smaller id first
        q = np.concatenate([x[5:6], rng.integers(0, 1 << bits, (6, n_angles), dtype=np.uint8)])
        Dr, Ir = brute_knn(q, x, bits, 9)
        layouts = [(prepare_references(x), False)] + (
            [(kernel.nibble_pack(x), True)] if bits <= 4 else []
        )
        for refs, packed in layouts:
            for nq in (1, 2, 7):
                D, I = topk_l1(q[:nq], refs, bits, 9, path=path, packed=packed)
                assert np.array_equal(D, Dr[:nq]) and np.array_equal(I, Ir[:nq]), (bits, packed, nq)
            if n_angles >= 31:  # (fewer angles: other rows tie at distance 0 too)
                assert I[0, :2].tolist() == [5, BLOCK + 2] and D[0, 0] == 0


@pytest.mark.parametrize("ntask", [2, 3])
def test_threads_split_queries_without_changing_the_answer(ntask):
    rng = np.random.default_rng(ntask)
    x = rng.integers(0, 16, (3 * BLOCK + 5, 64), dtype=np.uint8)
    q = rng.integers(0, 16, (20, 64), dtype=np.uint8)
    Dr, Ir = brute_knn(q, x, 4, 5)
    for refs, packed in ((x, False), (kernel.nibble_pack(x), True)):
        D, I = kernel.tiled_topk(q, refs, 4, 5, kernel.BEST_PATH, ntask=ntask, packed=packed)
        assert np.array_equal(D, Dr) and np.array_equal(I, Ir)


@pytest.mark.parametrize("n", [5, 40, 2 * BLOCK + 3])
def test_few_queries_split_rows_over_threads_and_merge_ties_in_id_order(n):
    """1-2 queries with 3 threads: each thread scans a range of rows (some hold fewer than k rows),
    the merge keeps ties in id order."""
    rng = np.random.default_rng(n)
    x = rng.integers(0, 2, (n, 8), dtype=np.uint8)  # 1-bit codes on 8 angles: ties everywhere
    for nq in (1, 2):
        q = rng.integers(0, 2, (nq, 8), dtype=np.uint8)
        for k in (1, min(n, 7), n):
            Dr, Ir = brute_knn(q, x, 1, k)
            for refs, packed in ((prepare_references(x), False), (kernel.nibble_pack(x), True)):
                D, I = kernel.tiled_topk(q, refs, 1, k, kernel.BEST_PATH, ntask=3, packed=packed)
                assert np.array_equal(D, Dr) and np.array_equal(I, Ir), (nq, k, packed)


def test_choose_threads_follows_the_work_size():
    assert kernel.choose_threads(1, 1000, 64, 8) == 1  # a small search never wakes a thread
    assert kernel.choose_threads(1000, 100, 64, 8) == 1
    assert (
        kernel.choose_threads(1, 50_000_000, 64, 2) == 2
    )  # one query over many rows: split by rows
    assert kernel.choose_threads(1000, 1_000_000, 64, 2) == 2
    assert kernel.choose_threads(1000, 1_000_000, 64, 1) == 1  # threads= caps it


def test_largest_distances_are_exact_at_every_width():
    """Half a turn on every angle: 128 * 600 = 76800 per row does not fit 16 bits; 64-bit lanes keep
    it."""
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (40, 600), dtype=np.uint8)
    x[7] = x[3] ^ 0x80
    D, I = topk_l1(x[3:4], prepare_references(x), 8, 40)
    assert D[0, -1] == 128 * 600 and I[0, -1] == 7


def test_packed_refs_are_refused_above_four_bits_and_at_a_wrong_width():
    x = np.zeros((5, 64), np.uint8)
    with pytest.raises(ValueError, match="bits must be <= 4, got 8"):
        topk_l1(x, kernel.nibble_pack(x), 8, 2, packed=True)
    with pytest.raises(ValueError, match=r"width 32 \(packed\), expected 64"):
        topk_l1(x, kernel.nibble_pack(x[:, :32]), 4, 2, packed=True)


@settings(max_examples=40, deadline=None)
@given(
    bits=st.integers(1, 8),
    n=st.integers(1, 40),
    n_angles=st.integers(1, 70),
    nq=st.integers(1, 5),
    shift=st.integers(0, 255),
    seed=st.integers(0, 2**31),
    data=st.data(),
)
def test_tiled_property_brute_force_and_rotation_invariance(
    bits, n, n_angles, nq, shift, seed, data
):
    """Equal to brute force; turning every code of queries and references by the same amount (mod
    2**bits) changes nothing."""
    rng = np.random.default_rng(seed)
    m = 1 << bits
    x = rng.integers(0, m, (n, n_angles), dtype=np.uint8)
    q = rng.integers(0, m, (nq, n_angles), dtype=np.uint8)
    k = data.draw(st.integers(1, n))
    path = data.draw(st.sampled_from(PATHS))
    packed = bits <= 4 and data.draw(st.booleans())
    refs = kernel.nibble_pack(x) if packed else prepare_references(x)
    D, I = topk_l1(q, refs, bits, k, path=path, packed=packed)
    Dr, Ir = brute_knn(q, x, bits, k)
    assert np.array_equal(D, Dr) and np.array_equal(I, Ir)
    turn = lambda c: ((c.astype(np.int64) + shift) % m).astype(np.uint8)  # noqa: E731
    refs2 = kernel.nibble_pack(turn(x)) if packed else prepare_references(turn(x))
    D2, I2 = topk_l1(turn(q), refs2, bits, k, path=path, packed=packed)
    assert np.array_equal(D2, D) and np.array_equal(I2, I)


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_packed_flat_index_equals_the_binary_index_and_survives_a_file(bits, tmp_path):
    rng = np.random.default_rng(bits)
    x = rng.integers(0, 1 << bits, (700, 48), dtype=np.uint8)
    q = np.concatenate([x[:3], rng.integers(0, 1 << bits, (9, 48), dtype=np.uint8)])
    packed = filled(TorusIndexFlat(48, bits), x[:300])
    packed.add(x[300:])
    assert packed.packed and packed.nbytes == 700 * 32  # 64 padded angles, two per byte
    johnson = filled(TorusIndexBinaryFlat(48, bits), x)
    for k in (1, 10, 50):
        a, b = packed.search(q, k), johnson.search(q, k)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert np.array_equal(packed.codes, x)
    write_index(packed, tmp_path / "p.tidx")
    again = read_index(tmp_path / "p.tidx")
    assert again.packed and np.array_equal(again.codes, x)
    assert np.array_equal(again.search(q, 10)[1], packed.search(q, 10)[1])
    assert packed.remove_ids(np.arange(0, 700, 2)) == 350
    assert np.array_equal(packed.codes, x[1::2])
    assert np.array_equal(packed.search(q, 5)[1], brute_knn(q, x[1::2], bits, 5)[1])


@pytest.mark.parametrize("n_angles", [64, 250])
def test_inverted_lists_scan_equals_brute_force_over_the_probed_lists(n_angles):
    """kernel.lists_topk: per query, the k nearest over the rows of its probed lists, ties by
    insertion number (rows of one list are in insertion order; lists interleave insertion numbers).
    250 angles: past the old 16-bit field limit."""
    from numba.typed import List

    rng = np.random.default_rng(n_angles)
    bits, nlist, n = 2, 5, 400
    x = rng.integers(0, 1 << bits, (n, n_angles), dtype=np.uint8)
    x[::7] = x[3]  # many exact duplicates across lists
    owner = rng.integers(0, nlist, n)
    lists, seqs = List(), List()
    for li in range(nlist):
        rows = np.flatnonzero(owner == li)
        lists.append(prepare_references(x[rows]))
        seqs.append(rows.astype(np.int64))
    q = np.concatenate([x[3:4], rng.integers(0, 1 << bits, (6, n_angles), dtype=np.uint8)])
    probe = np.array([rng.permutation(nlist)[:3] for _ in range(len(q))])
    D, S = kernel.lists_topk(q, probe, lists, seqs, bits, 15)
    for i in range(len(q)):
        held = np.flatnonzero(np.isin(owner, probe[i]))
        Dr, Ir = brute_knn(q[i : i + 1], x[held], bits, 15)
        assert np.array_equal(D[i], Dr[0]) and np.array_equal(S[i], held[Ir[0]])


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    bits=st.sampled_from([1, 3, 8]),
    n_angles=st.sampled_from([5, 64, 70]),
    nlist=st.integers(1, 600),
    nq=st.integers(1, 8),
)
def test_probe_lists_is_the_set_of_the_nprobe_nearest_rows(seed, bits, n_angles, nlist, nq):
    """kernel.probe_lists: per query the nprobe rows of smallest (distance, row), in increasing row
    order (the same set as a python sort, ties at the boundary included: few bits make many
    ties)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 1 << bits, (nlist, n_angles), dtype=np.uint8)
    q = rng.integers(0, 1 << bits, (nq, n_angles), dtype=np.uint8)
    refs = prepare_references(x)
    for nprobe in sorted({1, min(nlist, 3), max(1, nlist // 2), nlist}):
        P = kernel.probe_lists(q, refs, bits, nprobe)
        _, Ir = brute_knn(q, x, bits, nprobe)
        assert P.shape == (nq, nprobe)
        assert np.array_equal(P, np.sort(Ir, axis=1))


@pytest.mark.parametrize("packed", [False, True])
def test_inverted_lists_scan_returns_a_code_held_in_several_lists_once(packed):
    """A code assigned to several lists (same insertion number in each) is returned once, and the
    result is the brute-force top-k over the distinct codes of the probed lists."""
    from numba.typed import List

    rng = np.random.default_rng(7)
    bits, nlist, n, n_angles = 4, 6, 300, 64
    x = rng.integers(0, 1 << bits, (n, n_angles), dtype=np.uint8)
    owners = [rng.choice(nlist, 2, replace=False) for _ in range(n)]  # every code in two lists
    lists, seqs = List(), List()
    for li in range(nlist):
        rows = np.array([i for i in range(n) if li in owners[i]], np.int64)
        lists.append(kernel.nibble_pack(x[rows]) if packed else prepare_references(x[rows]))
        seqs.append(rows)
    q = np.concatenate([x[:3], rng.integers(0, 1 << bits, (5, n_angles), dtype=np.uint8)])
    probe = np.array([rng.permutation(nlist)[:4] for _ in range(len(q))])
    D, S = kernel.lists_topk(q, probe, lists, seqs, bits, 20, packed)
    for i in range(len(q)):
        held = np.array([j for j in range(n) if set(owners[j]) & set(probe[i])])
        Dr, Ir = brute_knn(q[i : i + 1], x[held], bits, 20)
        assert len(set(S[i])) == 20
        assert np.array_equal(D[i], Dr[0]) and np.array_equal(S[i], held[Ir[0]])
