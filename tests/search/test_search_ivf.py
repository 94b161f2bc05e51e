"""TorusIndexIVF: probing every list equals exact search (ties included), recall on clustered data,
faiss-style methods, persistence, and train racing add, search, remove, reset and write_index."""

import threading
import time

import numpy as np
import pytest
from test_search import brute_knn, filled, run_interleaved

from torus_plugins.search import (
    PAD_DISTANCE,
    SearchParametersIVF,
    TorusIndexFlat,
    TorusIndexIVF,
    read_index,
    write_index,
)
from torus_plugins.search.centroids import clifford, train_torus_centroids


def clustered(rng, n, n_angles, bits, centres=20, noise=2):
    c = rng.integers(0, 1 << bits, (centres, n_angles))
    x = c[rng.integers(0, centres, n)] + rng.integers(-noise, noise + 1, (n, n_angles))
    return (x % (1 << bits)).astype(np.uint8)


@pytest.mark.parametrize("bits, n_angles", [(1, 5), (2, 6), (4, 12), (6, 40), (8, 64)])
def test_all_lists_probed_equals_brute_force_with_ties(bits, n_angles):
    rng = np.random.default_rng(bits)
    x = clustered(rng, 900, n_angles, bits, noise=1)
    q = np.concatenate([x[:4], rng.integers(0, 1 << bits, (12, n_angles), dtype=np.uint8)])
    index = filled(TorusIndexIVF(n_angles, bits, nlist=16, nprobe=16), x[:500], train=x)
    index.add(x[500:])
    assert index.ntotal == 900 and index.list_sizes.sum() == 900
    for k in (1, 10, 60):
        D, I = index.search(q, k)
        Dr, Ir = brute_knn(q, x, bits, k)
        assert np.array_equal(D, Dr) and np.array_equal(I, Ir), (bits, k)
    flat = filled(TorusIndexFlat(n_angles, bits), x)
    for r in (0, 3, n_angles):
        a, b = index.range_search(q, r), flat.range_search(q, r)
        assert all(np.array_equal(u, v) for u, v in zip(a, b))


@pytest.mark.parametrize("bits", [3, 4, 5])
def test_codes_of_four_bits_or_fewer_are_held_two_per_byte_and_survive_a_file(bits, tmp_path):
    rng = np.random.default_rng(bits)
    x = clustered(rng, 700, 40, bits)
    index = filled(TorusIndexIVF(40, bits, nlist=8, nprobe=8), x, train=x)
    row = 32 if bits <= 4 else 64  # 40 angles padded to 64: 32 bytes packed, 64 not
    assert index.packed == (bits <= 4) and index.nbytes == 700 * (row + 8) + 8 * 64
    write_index(index, tmp_path / "ivf.tidx")
    again = read_index(tmp_path / "ivf.tidx")
    assert again.packed == index.packed and np.array_equal(again.list_sizes, index.list_sizes)
    q = x[:9]
    for ix in (index, again):
        D, I = ix.search(q, 12)
        Dr, Ir = brute_knn(q, x, bits, 12)
        assert np.array_equal(D, Dr) and np.array_equal(I, Ir)


def test_recall_on_clustered_data_and_monotone_in_nprobe():
    rng = np.random.default_rng(1)
    x = clustered(rng, 6000, 32, 8, centres=50, noise=6)
    q = clustered(np.random.default_rng(2), 100, 32, 8, centres=50, noise=6)
    q = x[rng.integers(0, len(x), 100)]
    index = filled(TorusIndexIVF(32, 8, nlist=50), x, train=x)
    _, Ir = brute_knn(q, x, 8, 10)
    recalls = []
    for nprobe in (1, 4, 50):
        _, I = index.search(q, 10, params=SearchParametersIVF(nprobe=nprobe))
        recalls.append(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, Ir)]))
    assert recalls[0] >= 0.9 and recalls[-1] == 1.0
    assert recalls == sorted(recalls)


def test_short_lists_pad_like_faiss_and_distances_are_true():
    rng = np.random.default_rng(3)
    x = clustered(rng, 400, 8, 8, centres=8, noise=1)
    index = filled(TorusIndexIVF(8, 8, nlist=8, nprobe=1), x, train=x)
    D, I = index.search(x[:5], 300)  # one list cannot hold 300
    assert ((I == -1) == (D == PAD_DISTANCE)).all() and (I == -1).any()
    ok = I >= 0
    diff = (x[:5, None, :].astype(np.int64) - x[np.maximum(I, 0)].astype(np.int64)) % 256
    assert np.array_equal(np.minimum(diff, 256 - diff).sum(-1)[ok], D[ok])


def test_ids_remove_reset_and_persistence(tmp_path):
    rng = np.random.default_rng(4)
    x = clustered(rng, 700, 16, 6)
    ids = rng.permutation(100_000)[:700].astype(np.int64)
    index = filled(TorusIndexIVF(16, 6, nlist=10, nprobe=10), x, ids, train=x)
    q = x[:9]
    D, I = index.search(q, 12)
    Dr, Ir = brute_knn(q, x, 6, 12)
    assert np.array_equal(D, Dr) and np.array_equal(I, ids[Ir])
    assert index.remove_ids(ids[:50]) == 50 and index.ntotal == 650
    D, I = index.search(q, 12)
    Dr, Ir = brute_knn(q, x[50:], 6, 12)
    assert np.array_equal(D, Dr) and np.array_equal(
        I, ids[50:][Ir]
    )  # other ids kept, as in faiss IVF
    write_index(index, tmp_path / "ivf.tidx")
    back = read_index(tmp_path / "ivf.tidx")
    assert isinstance(back, TorusIndexIVF) and (back.nlist, back.nprobe, back.ntotal) == (
        10,
        10,
        650,
    )
    assert np.array_equal(back.centroids, index.centroids)
    for a, b in zip(back.search(q, 12), index.search(q, 12)):
        assert np.array_equal(a, b)
    back.add_with_ids(x[:3], np.array([1, 2, 3]))  # a read index keeps growing
    assert back.ntotal == 653
    with pytest.raises(ValueError, match="add_with_ids"):
        back.add(x[:1])
    index.reset()
    assert index.ntotal == 0 and index.is_trained and (index.search(q, 3)[1] == -1).all()
    seq = filled(TorusIndexIVF(16, 6, nlist=10), x, train=x)
    write_index(seq, tmp_path / "seq.tidx")
    assert np.array_equal(read_index(tmp_path / "seq.tidx").search(q, 5)[1], seq.search(q, 5)[1])
    write_index(TorusIndexIVF(16, 6, nlist=10), tmp_path / "untrained.tidx")
    assert not read_index(tmp_path / "untrained.tidx").is_trained


def test_errors_are_clear():
    x = np.zeros((5, 8), np.uint8)
    index = TorusIndexIVF(8, 8, nlist=10)
    with pytest.raises(ValueError, match="not trained"):
        index.add(x)
    with pytest.raises(ValueError, match="not trained"):
        index.search(x, 1)
    with pytest.raises(ValueError, match="at least nlist=10"):
        index.train(x)
    with pytest.raises(ValueError, match="nprobe"):
        index.nprobe = 0
    with pytest.raises(ValueError, match="nlist"):
        TorusIndexIVF(8, 8, nlist=0)


def test_centroids_are_circular_means():
    """Points around a centre that straddles the seam (turn 0 == 1): the centroid lands on the
    centre, not on the linear mean half a turn away."""
    rng = np.random.default_rng(5)
    x = ((np.array([0, 128, 250]) + rng.integers(-3, 4, (300, 3))) % 256).astype(np.uint8)
    c = train_torus_centroids(x, 8, 1)
    assert np.all(np.abs(((c[0].astype(int) - [0, 128, 250]) + 128) % 256 - 128) <= 1)
    v = clifford(x, 8)
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)


def test_wide_codes_use_the_list_by_list_path_with_the_same_answer():
    """Past 224 angles the compiled list scan (16-bit fields) hands over to one kernel call per list
    (32-bit fields): still exact with every list probed."""
    rng = np.random.default_rng(6)
    x = clustered(rng, 300, 230, 8, centres=6, noise=3)
    q = np.concatenate([x[:2], rng.integers(0, 256, (5, 230), dtype=np.uint8)])
    index = filled(TorusIndexIVF(230, 8, nlist=6, nprobe=6), x, train=x)
    D, I = index.search(q, 15)
    Dr, Ir = brute_knn(q, x, 8, 15)
    assert np.array_equal(D, Dr) and np.array_equal(I, Ir)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 40)),
        st.tuples(st.just("remove"), st.integers(0, 2**31)),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=20, deadline=None)
@given(
    ops=_OPS,
    bits=st.sampled_from([2, 5, 8]),
    seed=st.integers(0, 2**31),
    kind=st.sampled_from(["flat", "ivf"]),
)
def test_any_add_remove_sequence_searches_like_brute_force(ops, bits, seed, kind):
    """After any sequence of add_with_ids / remove_ids, search (every list probed) and range_search
    equal a brute force over the codes still held, ties by insertion order; ntotal and ids agree."""
    rng = np.random.default_rng(seed)
    n_angles = 5
    train = rng.integers(0, 1 << bits, (40, n_angles), dtype=np.uint8)
    index = (
        TorusIndexFlat(n_angles, bits)
        if kind == "flat"
        else TorusIndexIVF(n_angles, bits, nlist=4, nprobe=4)
    )
    if kind == "ivf":
        index.train(train)
    held_codes, held_ids, next_id = [], [], 0
    for op, arg in ops:
        if op == "add":
            codes = rng.integers(0, 1 << bits, (arg, n_angles), dtype=np.uint8)
            ids = np.arange(next_id, next_id + arg) * 3 + 1
            next_id += arg
            index.add_with_ids(codes, ids)
            held_codes += list(codes)
            held_ids += ids.tolist()
        elif held_ids:
            gone = set(
                rng.choice(held_ids, size=min(len(held_ids), 1 + arg % 5), replace=False).tolist()
            )
            assert index.remove_ids(np.array(sorted(gone) + [-5])) == len(gone)
            keep = [i for i, v in enumerate(held_ids) if v not in gone]
            held_codes = [held_codes[i] for i in keep]
            held_ids = [held_ids[i] for i in keep]
    assert index.ntotal == len(held_ids)
    q = rng.integers(0, 1 << bits, (3, n_angles), dtype=np.uint8)
    D, I = index.search(q, 7)
    if held_ids:
        x, ids = np.array(held_codes), np.array(held_ids)
        kk = min(7, len(ids))
        Dr, Ir = brute_knn(q, x, bits, kk)
        assert np.array_equal(D[:, :kk], Dr) and np.array_equal(I[:, :kk], ids[Ir])
        lims, Dg, Ig = index.range_search(q, 3 << (bits - 2))
        for i in range(3):
            d = np.minimum(
                (q[i].astype(int) - x) % (1 << bits), (x - q[i].astype(int)) % (1 << bits)
            ).sum(1)
            assert sorted(Ig[lims[i] : lims[i + 1]].tolist()) == sorted(
                ids[d < (3 << (bits - 2))].tolist()
            )
    assert (I[:, len(held_ids) :] == -1).all() and (D[:, len(held_ids) :] == PAD_DISTANCE).all()


# ------------------------------------------------------------------- train racing the other methods


def _pause_in(index, name, after=False):
    """Replace index.<name> by a wrapper whose first call in every thread named "paused..." releases
    ``entered`` and waits for ``go`` (before or after the real call)."""
    real, entered, go, seen = getattr(index, name), threading.Semaphore(0), threading.Event(), set()

    def wrapper(*args, **kwargs):
        me = threading.current_thread()
        first = me.name.startswith("paused") and me not in seen
        seen.add(me)
        if first and not after:
            entered.release()
            assert go.wait(10)
        out = real(*args, **kwargs)
        if first and after:
            entered.release()
            assert go.wait(10)
        return out

    setattr(index, name, wrapper)
    return entered, go


def test_search_on_a_snapshot_taken_before_train_answers_with_its_own_centroids():
    """A search that took its snapshot before a re-train (paused right after taking it) probes the
    OLD centroids over the OLD lists: the same answer as before the train, never new centroids over
    old lists."""
    x = clustered(np.random.default_rng(7), 600, 16, 8, centres=8, noise=2)
    y = clustered(np.random.default_rng(8), 600, 16, 8, centres=8, noise=2)
    index = filled(TorusIndexIVF(16, 8, nlist=8, nprobe=1), x, train=x)
    q = x[::30]
    before = index.search(q, 5), index.range_search(q, 40)
    assert (before[0][0][:, 0] == 0).all()
    entered, go = _pause_in(index, "_search_view")
    got = {}
    threads = [
        threading.Thread(
            target=lambda: got.update(search=index.search(q, 5)), name="paused search"
        ),
        threading.Thread(
            target=lambda: got.update(range=index.range_search(q, 40)), name="paused range"
        ),
    ]
    for t in threads:
        t.start()
    for _ in threads:
        assert entered.acquire(timeout=10)  # both hold their snapshot
    index.train(y)  # new centroids, new lists, while the searches hold the old ones
    index.add(y)
    go.set()
    for t in threads:
        t.join(10)
    assert set(got) == {"search", "range"}, "a paused search raised"
    assert all(np.array_equal(a, b) for a, b in zip(got["search"], before[0]))
    assert all(np.array_equal(a, b) for a, b in zip(got["range"], before[1]))
    D, I = index.search(y[::30], 1)  # the new snapshot is consistent too
    assert (D[:, 0] == 0).all() and np.array_equal(I[:, 0], np.arange(0, 600, 30))


def test_add_racing_train_lands_under_the_new_centroids():
    """An add whose codes were assigned against the old centroids, when train publishes new ones
    before it takes the lock, re-assigns them: each code sits in the list of its nearest NEW
    centroid and is found with one list probed. An add that finished before train is emptied by it,
    as by reset."""
    x = clustered(np.random.default_rng(9), 600, 16, 8, centres=8, noise=2)
    y = clustered(np.random.default_rng(10), 600, 16, 8, centres=8, noise=2)
    batch = np.unique(y, axis=0)[:200]
    index = filled(TorusIndexIVF(16, 8, nlist=8, nprobe=1), x, train=x)
    index.train(y)
    assert index.ntotal == 0 and index.is_trained
    index.train(x)
    entered, go = _pause_in(index, "_group_by_list", after=True)
    t = threading.Thread(
        target=lambda: index.add_with_ids(batch, np.arange(1000, 1200)), name="paused add"
    )
    t.start()
    assert entered.acquire(timeout=10)  # assigned against x's centroids, lock not yet taken
    index.train(y)
    go.set()
    t.join(10)
    assert index.ntotal == len(batch)
    diff = (batch[:, None, :].astype(np.int64) - index.centroids[None].astype(np.int64)) % 256
    nearest = np.minimum(diff, 256 - diff).sum(-1).argmin(1)
    assert np.array_equal(index.list_sizes, np.bincount(nearest, minlength=8))
    D, I = index.search(batch, 1)
    assert (D[:, 0] == 0).all() and np.array_equal(I[:, 0], np.arange(1000, 1200))


def test_train_racing_add_search_remove_reset_and_write_never_mixes_or_misplaces(tmp_path):
    """Threads add distinct batches, search, range-search, remove, write the index and check every
    published snapshot while one thread re-trains (and resets) several times, with thread switches
    forced every microsecond. Every snapshot holds each code in the list of its nearest centroid of
    THAT snapshot; every result names a code that was added, at its true distance; every add lands
    whole or is emptied whole by a later train/reset; an add started after the last train/reset is
    held; afterwards every held code is found at distance 0 of itself with one list probed and with
    all lists probed."""
    rng = np.random.default_rng(11)
    nlist, m = 8, 256
    x = np.unique(rng.integers(0, m, (2000, 16), dtype=np.uint8), axis=0)[
        :1800
    ]  # distinct codes, id = row
    x = x[rng.permutation(len(x))]
    samples = [
        clustered(np.random.default_rng(20 + i), 320, 16, 8, centres=nlist, noise=3)
        for i in range(4)
    ]
    index = TorusIndexIVF(16, 8, nlist=nlist, nprobe=2)
    index.train(samples[0])
    batches = np.array_split(np.arange(len(x)), 90)
    errors, log_lock = [], threading.Lock()
    generation, started, finished, removed = (
        [0],
        {},
        [],
        set(),
    )  # generation: train/reset calls returned
    adding, ops_started = [3], [0]  # adder threads still running, train/reset calls begun

    def wait_until(ready):
        deadline = time.monotonic() + 30
        while not ready():
            if time.monotonic() > deadline:
                raise TimeoutError("a thread waited 30 s for another (which probably failed)")
            time.sleep(1e-4)

    def wait_for(n_finished):
        """Spread the other writers over the adds: wait until n_finished adds returned (or all
        did)."""
        wait_until(lambda: len(finished) >= n_finished or not adding[0])

    def dist(q, ids):
        diff = (q[:, None, :].astype(np.int64) - x[np.maximum(ids, 0)].astype(np.int64)) % m
        return np.minimum(diff, m - diff).sum(-1)

    def guarded(fn):
        def run(*args):
            try:
                fn(*args)
            except Exception as e:  # noqa: BLE001 - collected, asserted empty below
                errors.append(f"{fn.__name__}: {e!r}")

        return run

    @guarded
    def adder(which):
        for b in which:
            wait_until(
                lambda b=b: ops_started[0] >= b // 15
            )  # batches 15p.. overlap train/reset number p
            with log_lock:
                started[b] = generation[0]
            index.add_with_ids(x[batches[b]], batches[b])
            with log_lock:
                finished.append(b)
        with log_lock:
            adding[0] -= 1

    @guarded
    def trainer():
        for i, op in enumerate(["train", "train", "reset", "train", "train"]):
            wait_for(15 * (i + 1) - 6)
            ops_started[0] += 1
            index.train(samples[1 + i % 3]) if op == "train" else index.reset()
            with log_lock:
                generation[0] += 1

    @guarded
    def searcher():
        q, nprobe = x[::45], 1
        while adding[0]:
            nprobe = nlist + 1 - nprobe
            D, I = index.search(q, 4, params=SearchParametersIVF(nprobe=nprobe))
            if (I >= len(x)).any() or ((I < 0) != (D == PAD_DISTANCE)).any():
                errors.append("search: unknown id or bad padding")
            elif (
                not np.array_equal(np.where(I >= 0, dist(q, I), PAD_DISTANCE), D)
                or (np.diff(D, 1) < 0).any()
            ):
                errors.append("search: a distance that is not the returned id's, or unsorted")
            lims, D, I = index.range_search(q, 300, params=SearchParametersIVF(nprobe=nprobe))
            rows = np.repeat(np.arange(len(q)), np.diff(lims))
            if (
                (I < 0).any()
                or (I >= len(x)).any()
                or not np.array_equal(dist(q[rows], I[:, None])[:, 0], D)
            ):
                errors.append("range_search: an unknown id or a wrong distance")

    def misplaced(snapshot) -> int:
        """Codes of a snapshot not in the list of their nearest centroid of that snapshot."""
        if snapshot.centroids is None:
            return 0
        c = snapshot.centroids.astype(np.int64)
        bad = 0
        for li, rows in enumerate(snapshot.lists):
            if rows.n:
                diff = (index.layout.codes(rows)[:, None, :].astype(np.int64) - c[None]) % m
                bad += int((np.minimum(diff, m - diff).sum(-1).argmin(1) != li).sum())
        return bad

    @guarded
    def checker():
        while adding[0]:
            if misplaced(index._state):
                errors.append(
                    "a published snapshot holds a code outside its nearest centroid's list"
                )

    @guarded
    def remover():
        for i in range(10):
            wait_for(8 * (i + 1))
            with log_lock:
                gone = batches[finished[-1]][::3]
                removed.update(gone.tolist())
            index.remove_ids(gone)

    @guarded
    def writer():
        for i in range(3):
            wait_for(25 * (i + 1))
            write_index(index, tmp_path / f"w{i}.tidx")
            back = read_index(tmp_path / f"w{i}.tidx")
            if misplaced(back._state):
                errors.append("write_index wrote lists of other centroids")

    run_interleaved(
        [threading.Thread(target=adder, args=(range(i, 90, 3),)) for i in range(3)]
        + [threading.Thread(target=f) for f in (trainer, searcher, checker, remover, writer)]
    )
    assert not errors, errors[:3]

    st = index._state
    assert misplaced(st) == 0
    held = np.concatenate(
        [np.zeros(0, np.int64)] + [st.idmap[r.ids[: r.n]] for r in st.lists if r.n]
    )
    assert np.unique(held).size == held.size == index.ntotal  # no code twice
    held_set = set(held.tolist())
    assert held_set.isdisjoint(removed) and held_set <= set(range(len(x)))
    for b, gen in started.items():  # removals only hit finished adds
        want = set(batches[b].tolist()) - removed
        have = held_set & set(batches[b].tolist())
        assert have in (set(), want), f"batch {b} partly held"
        if gen == generation[0]:
            assert have == want, f"batch {b}, added after the last train/reset, was lost"
    for nprobe in (1, nlist):
        D, I = index.search(x[held], 1, params=SearchParametersIVF(nprobe=nprobe))
        assert (D[:, 0] == 0).all() and np.array_equal(I[:, 0], held)
