"""MilvusTorusIndex against embedded Milvus Lite and a real Milvus 2.3.5 standalone server (started
here on 127.0.0.1 by tests/milvus_server.py): results equal TorusIndexFlat, ids and metadata kept,
collections checked on reopen, ids never reused; on the server, SIGKILL after acknowledged adds and
during a batch, four concurrent client processes, and a server that is down.

Needs the [milvus] extra; without it these tests fail with the install command (they never skip).
The server tests skip, with the reason, only where the milvus package has no server build (it
ships Linux x86_64 only)."""

import base64
import multiprocessing
import sys
import threading
import time

import numpy as np
import pytest
from milvus_server import LocalMilvus, free_ports, server_unavailable_reason
from test_search import filled  # faiss's add returns None: add, then the index

from torus_plugins.search import PAD_DISTANCE, TorusIndexFlat
from torus_plugins.search._milvus_server import MISSING
from torus_plugins.search.milvus import (
    MilvusAddError,
    MilvusError,
    MilvusTorusIndex,
    SearchParametersMilvus,
    require_pymilvus,
)

DOWN_TIMEOUT = 2  # s: the timeout of the clients that talk to a dead server


def pymilvus_or_fail():
    try:
        return require_pymilvus()
    except ImportError as e:
        pytest.fail(f"{e}\n(`make test` installs the dev extra, which includes [milvus])")


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One Milvus standalone server per test process (pytest-xdist worker), on loopback, stopped
    at the end."""
    pymilvus_or_fail()
    reason = server_unavailable_reason()
    if reason and "not installed" in reason:
        pytest.fail(f"{reason}\n(`make test` installs the dev extra, which includes [milvus])")
    if reason:
        pytest.skip(reason)
    srv = LocalMilvus(tmp_path_factory.mktemp("milvus-server"), start_timeout=120).start()
    yield srv
    srv.kill()  # its data is thrown away: no need to wait for a graceful shutdown (up to 10 s)


@pytest.fixture(scope="module", params=["lite", pytest.param("server", marks=pytest.mark.slow)])
def backend(request, tmp_path_factory):
    """kwargs that put an index on Milvus Lite (one shared client, a local file) or the server."""
    pymilvus = pymilvus_or_fail()
    if request.param == "lite":
        path = str(tmp_path_factory.mktemp("milvus") / "lite.db")
        c = pymilvus.MilvusClient(uri=path)
        yield {"client": c, "uri": path}
        c.close()
    else:
        yield {"uri": request.getfixturevalue("server").uri}


def ties_data(rng, n, n_angles, bits):
    return rng.integers(0, 1 << bits, (n, n_angles), dtype=np.uint8)


@pytest.mark.parametrize("bits, n_angles", [(1, 8), (2, 6), (4, 16)])
def test_exact_bits_equal_torus_index_with_ties(backend, bits, n_angles):
    rng = np.random.default_rng(bits)
    x = ties_data(rng, 1500, n_angles, bits)
    q = np.concatenate([x[:3], ties_data(rng, 12, n_angles, bits)])
    m = MilvusTorusIndex(n_angles, bits, collection=f"exact{bits}", drop=True, **backend)
    ids = np.concatenate([m.add(x[:700], progress=False), m.add(x[700:], progress=False)])
    assert m.ntotal == 1500 and np.unique(ids).size == 1500 and (np.diff(ids) > 0).all()
    flat = filled(TorusIndexFlat(n_angles, bits), x)
    for k in (1, 10, 40):
        D, I = m.search(q, k)
        Dr, Ir = flat.search(q, k)
        # ids from Milvus's allocator increase in insertion order: ties fall as in TorusIndexFlat
        assert np.array_equal(D, Dr) and np.array_equal(I, ids[Ir]), (bits, k)


@pytest.mark.parametrize("bits", [4, 8])
def test_given_ids_and_metadata_equal_torus_index(backend, bits):
    rng = np.random.default_rng(40 + bits)
    x = ties_data(rng, 1200, 12, bits)
    # sorted: Milvus breaks ties by id, TorusIndexFlat by position
    ids = np.sort(rng.choice(10**9, 1200, replace=False)).astype(np.int64)
    meta = [{"row": i, "name": f"img{i}", "tags": [i % 3, "t"]} for i in range(1200)]
    m = MilvusTorusIndex(12, bits, collection=f"given{bits}", drop=True, rerank=1200, **backend)
    assert m.add_with_ids(x, ids, metadata=meta, progress=False, batch_size=333) is None
    q = np.concatenate([x[:5], ties_data(rng, 10, 12, bits)])
    D, I = m.search(q, 15)  # rerank * k >= ntotal: exact at 8 bits too
    Dr, Ir = filled(TorusIndexFlat(12, bits), x, ids).search(q, 15)
    assert np.array_equal(D, Dr) and np.array_equal(I, Ir)
    where = {int(i): r for r, i in enumerate(ids)}
    assert m.metadata(I[0]) == [meta[where[int(i)]] for i in I[0]]


def test_eight_bits_rerank_is_exact_with_a_full_shortlist_and_close_by_default(backend):
    rng = np.random.default_rng(8)
    centres = rng.integers(0, 256, (30, 16))
    x = (centres[rng.integers(0, 30, 2000)] + rng.integers(-6, 7, (2000, 16))) % 256
    x = x.astype(np.uint8)
    q = x[rng.integers(0, 2000, 25)]
    flat = filled(TorusIndexFlat(16, 8), x)
    Dr, Ir = flat.search(q, 10)
    m = MilvusTorusIndex(16, 8, collection="eight", drop=True, rerank=200, **backend)
    m.add_with_ids(x, np.arange(2000), progress=False)
    D, I = m.search(q, 10)  # 200 * 10 = the whole collection: exact
    assert np.array_equal(D, Dr) and np.array_equal(I, Ir)
    m.rerank = 8
    D, I = m.search(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, Ir)])
    assert recall >= 0.9
    assert (D >= Dr).all()
    # the true distances of the ids given
    diff = (q[:, None, :].astype(np.int64) - x[I].astype(np.int64)) % 256
    assert np.array_equal(np.minimum(diff, 256 - diff).sum(-1), D)


def test_ids_metadata_remove_reopen_and_padding(backend):
    rng = np.random.default_rng(3)
    x = ties_data(rng, 300, 8, 4)
    ids = rng.permutation(10**6)[:300].astype(np.int64)
    meta = [{"label": int(i % 7), "name": f"img{i}"} for i in range(300)]
    m = MilvusTorusIndex(8, 4, collection="ided", drop=True, **backend)
    m.add_with_ids(x, ids, metadata=meta, progress=False)
    D, I = m.search(x[:5], 6)
    Dr, Ir = filled(TorusIndexFlat(8, 4), x, ids).search(x[:5], 6)
    assert np.array_equal(D, Dr)
    assert I[0, 0] == ids[0]
    assert m.metadata([ids[4], -1, 12345678]) == [meta[4], None, None]
    assert m.remove_ids(np.concatenate([ids[:10], ids[:3], [12345678]])) == 10 and m.ntotal == 290
    again = MilvusTorusIndex(8, 4, collection="ided", **backend)  # reopen the collection
    assert again.ntotal == 290
    D, I = again.search(x[:2], 400)  # k > ntotal: pads like faiss
    assert (I[:, 290:] == -1).all() and (D[:, 290:] == PAD_DISTANCE).all()
    assert not set(ids[:10]) & set(I.ravel().tolist())
    with pytest.raises(ValueError, match="metadata must be a list of 2 dicts"):
        m.add(x[:2], metadata=[{}])
    with pytest.raises(ValueError, match=r"metadata\[1\] must be JSON-serialisable"):
        m.add(x[:2], metadata=[{}, {"x": np.int64(3)}])
    assert again.ntotal == 290  # a refused add writes nothing
    m.add_with_ids(
        x[:1], ids[10:11], metadata=[{"replaced": True}], progress=False
    )  # held id: replaced
    assert again.ntotal == 290 and again.metadata(ids[10:11]) == [{"replaced": True}]
    again.reset()
    assert again.ntotal == 0


@pytest.mark.parametrize(
    "made, opened",
    [((8, 4), (16, 3)), ((8, 4), (32, 2)), ((8, 4), (64, 1)), ((8, 8), (8, 6)), ((8, 4), (8, 8))],
)
def test_reopen_with_other_codes_of_the_same_width_is_refused(backend, made, opened):
    """8 x 4 bits and 16 x 3, 32 x 2, 64 x 1 have the same Johnson width (64 bits); 8 x 8 and
    8 x 6 the same vectors and code bytes: the recorded layout tells them apart."""
    name = f"made{made[0]}x{made[1]}"
    MilvusTorusIndex(*made, collection=name, drop=True, **backend)
    with pytest.raises(
        ValueError,
        match=rf"holds {made[0]} angles x {made[1]} bits .*not the "
        rf"{opened[0]} angles x {opened[1]} bits",
    ):
        MilvusTorusIndex(*opened, collection=name, **backend)
    assert MilvusTorusIndex(*made, collection=name, **backend).ntotal == 0


def test_collection_not_made_by_the_index_is_refused(backend):
    pymilvus = pymilvus_or_fail()
    client = backend.get("client") or pymilvus.MilvusClient(uri=backend["uri"])
    if client.has_collection("foreign"):
        client.drop_collection("foreign")
    client.create_collection("foreign", dimension=8)  # a float-vector quick-start collection
    with pytest.raises(ValueError, match="'foreign' was not made by MilvusTorusIndex"):
        MilvusTorusIndex(8, 4, collection="foreign", **backend)


def test_default_ids_are_never_reused(backend):
    rng = np.random.default_rng(28)
    x = ties_data(rng, 11, 16, 8)
    m = MilvusTorusIndex(16, 8, collection="fresh", drop=True, **backend)
    ids = m.add(x[:10], progress=False)
    assert m.remove_ids(ids[9:10]) == 1
    new = m.add(x[10:], progress=False)
    assert new[0] not in set(ids.tolist())
    reopened = MilvusTorusIndex(16, 8, collection="fresh", **backend)
    newer = reopened.add(x[10:], progress=False)  # another client, the same allocator
    assert newer[0] not in set(ids.tolist()) | set(new.tolist())
    D, I = reopened.search(x, 1)
    assert (np.delete(D[:, 0], 9) == 0).all() and D[9, 0] > 0  # x[9] was removed
    assert I[0, 0] == ids[0] and I[10, 0] == new[0]  # x[10] twice: the smaller id
    assert m.remove_ids(ids) == 9
    assert set(reopened.add(x[:9], progress=False).tolist()).isdisjoint(ids)


def test_the_0_1_0_add_and_search_forms_warn_and_do_the_same(backend):
    """add(codes, ids, metadata) / add(codes, ids=...) store under those ids and return them;
    search(q, k, batch) is search(q, k, params=SearchParametersMilvus(batch=...)). No save: a
    collection lives on the server."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 16, (40, 8), dtype=np.uint8)
    m = MilvusTorusIndex(8, 4, collection="legacy", drop=True, **backend)
    with pytest.warns(DeprecationWarning, match="use add_with_ids"):
        got = m.add(x[:20], np.arange(20) + 100, [{"r": i} for i in range(20)])
    assert np.array_equal(got, np.arange(20) + 100)
    with pytest.warns(DeprecationWarning, match="use add_with_ids"):
        assert np.array_equal(
            m.add(x[20:], ids=np.arange(20) + 200, progress=False), np.arange(20) + 200
        )
    assert m.metadata([105])[0] == {"r": 5}
    with pytest.warns(DeprecationWarning, match="SearchParametersMilvus"):
        D, I = m.search(x[:5], 3, 2)
    Dr, Ir = m.search(x[:5], 3, params=SearchParametersMilvus(batch=2))
    assert np.array_equal(D, Dr) and np.array_equal(I, Ir)
    ref = filled(
        TorusIndexFlat(8, 4), x, np.concatenate([np.arange(20) + 100, np.arange(20) + 200])
    )
    assert np.array_equal(I, ref.search(x[:5], 3)[1])
    assert not hasattr(m, "save") and not hasattr(MilvusTorusIndex, "load")


def test_bad_arguments_name_the_argument(backend):
    with pytest.raises(ValueError, match="timeout must be a number of seconds > 0, got 0"):
        MilvusTorusIndex(8, 4, timeout=0, **backend)
    m = MilvusTorusIndex(8, 4, collection="args", drop=True, **backend)
    with pytest.raises(ValueError, match="ids must be >= 0"):
        m.add_with_ids(np.zeros((2, 8), np.uint8), [-3, 1])
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        m.add(np.zeros((2, 8), np.uint8), batch_size=0)
    assert m.ntotal == 0


def test_server_without_binary_vectors_is_named(tmp_path):
    """Milvus Lite 3.x has no BINARY_VECTOR. It needs pymilvus 3 and cannot be installed beside
    Milvus Lite 2.5, so its answer (its version string and the exact error it returns to
    create_collection) is replayed here by a real Milvus Lite 2.5 client that reports them."""
    pymilvus = pymilvus_or_fail()
    from pymilvus.exceptions import MilvusException

    class Lite3(pymilvus.MilvusClient):
        def get_server_version(self, **kwargs):
            return "milvus_lite-3.2.2"

        def create_collection(self, *args, **kwargs):
            raise MilvusException(
                code=6,
                message="field 'johnson' uses Milvus type BinaryVector "
                "which MilvusLite does not support. Phase 10.2 supports: BOOL, "
                "INT8/16/32/64, ...",
            )

    with pytest.raises(
        MilvusError,
        match=r"\(milvus_lite-3\.2\.2\) does not support binary "
        r"vectors",
    ):
        MilvusTorusIndex(8, 4, uri="http://127.0.0.1:1", client=Lite3(uri=str(tmp_path / "x.db")))


def test_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "pymilvus", None)
    with pytest.raises(ImportError, match=r"torus-plugins\[milvus\]"):
        MilvusTorusIndex(8, 4, uri="unused.db")
    assert "setuptools>=77,<81" in MISSING


# ------------------------------------------------------------------------------ server faults
def held_rows(index, ids, with_codes):
    """{id: (metadata, code bytes or None)} of the ids the collection holds, by primary key."""
    fields = ["meta", "codes"] if with_codes else ["meta"]
    out = {}
    for s in range(0, len(ids), 4000):
        for r in index._call(
            "query",
            index.client.query,
            index.collection,
            ids=[int(i) for i in ids[s : s + 4000]],
            output_fields=fields,
        ):
            assert int(r["id"]) not in out, f"id {r['id']} held twice"
            code = base64.b64decode(r["codes"]) if with_codes else None
            out[int(r["id"])] = (r["meta"], code)
    return out


def assert_down_error_is_quick(call, what):
    t0 = time.monotonic()
    with pytest.raises(MilvusError, match=r"is the server running and reachable\?") as err:
        call()
    took = time.monotonic() - t0
    assert took < 2 * DOWN_TIMEOUT + 10, f"{what}: {took:.1f} s"
    return err.value


@pytest.mark.slow
def test_acknowledged_adds_survive_sigkill_and_a_dead_server_answers_in_bounded_time(server):
    rng = np.random.default_rng(24)
    x = ties_data(rng, 3000, 16, 8)
    meta = [{"row": i} for i in range(3000)]
    m = MilvusTorusIndex(16, 8, uri=server.uri, collection="durable", drop=True)
    ids = np.concatenate(
        [
            m.add(x[:1000], metadata=meta[:1000], progress=False),
            m.add(x[1000:], metadata=meta[1000:], progress=False, batch_size=250),
        ]
    )
    assert m.remove_ids(ids[:7]) == 7
    server.kill()  # right after the acknowledgements: no flush, no shutdown
    m.timeout = DOWN_TIMEOUT
    try:
        assert_down_error_is_quick(lambda: m.search(x[:2], 3), "search")
        err = assert_down_error_is_quick(
            lambda: m.add_with_ids(x[:4], [1, 2, 3, 4], progress=False), "add"
        )
        assert isinstance(err, MilvusAddError) and err.acknowledged == 0
        assert_down_error_is_quick(
            lambda: MilvusTorusIndex(
                16, 8, uri=server.uri, collection="durable", timeout=DOWN_TIMEOUT
            ),
            "open",
        )
    finally:
        server.start()
    again = MilvusTorusIndex(16, 8, uri=server.uri, collection="durable", rerank=3000)
    assert again.ntotal == 2993
    held = held_rows(again, ids, with_codes=True)
    lost = [i for i in range(7, 3000) if held.get(int(ids[i])) != (meta[i], x[i].tobytes())]
    assert not lost, f"{len(lost)} acknowledged codes lost or changed, e.g. rows {lost[:5]}"
    assert not set(ids[:7].tolist()) & set(held)
    q = x[rng.integers(0, 3000, 20)]
    D, I = again.search(q, 10)
    Dr, Ir = filled(TorusIndexFlat(16, 8), x[7:], ids[7:]).search(q, 10)
    assert np.array_equal(D, Dr) and np.array_equal(I, Ir)


class KillDuringUpsert:
    """The real client, except that the server is SIGKILLed a few ms into the at-th upsert."""

    def __init__(self, client, server, at):
        self.client, self.server, self.at, self.calls = client, server, at, 0
        self.timer = threading.Timer(0.005, server.kill)

    def upsert(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.at:
            self.timer.start()
        return self.client.upsert(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.client, name)


@pytest.mark.slow
def test_kill_during_a_batch_then_resend_what_the_error_names(server):
    pymilvus = pymilvus_or_fail()
    rng = np.random.default_rng(25)
    n, batch = 6000, 1000
    x = ties_data(rng, n, 16, 4)
    meta = [{"row": i} for i in range(n)]
    client = KillDuringUpsert(pymilvus.MilvusClient(uri=server.uri), server, at=4)
    m = MilvusTorusIndex(16, 4, uri=server.uri, collection="midbatch", drop=True, client=client)
    m.timeout = DOWN_TIMEOUT
    try:
        resend = (
            r"codes\[:(\d+)\] are stored .* index\.add_with_ids\(codes\[\1:\], err\.ids\[\1:\], "
            r"metadata=metadata\[\1:\]\)"
        )
        with pytest.raises(MilvusAddError, match=resend) as info:
            m.add(x, metadata=meta, batch_size=batch, progress=False)
    finally:
        client.timer.join()
        if server.pid is None:
            server.start()
    m.timeout = 60
    err = info.value
    a = err.acknowledged  # 3000 unless the kill landed after the 4th batch's answer
    assert a % batch == 0 and a >= 3000 and err.ids.shape == (n,) and np.unique(err.ids).size == n
    held = held_rows(m, err.ids, with_codes=False)  # the same client, reconnected
    lost = [i for i in range(a) if held.get(int(err.ids[i]), (None,))[0] != meta[i]]
    assert not lost, f"{len(lost)} acknowledged codes lost, e.g. rows {lost[:5]}"
    assert not set(err.ids[a + batch :].tolist()) & set(held), (
        "a batch after the failed one is held"
    )
    partial = len(set(err.ids[a : a + batch].tolist()) & set(held))  # the failed batch: any part
    m.add_with_ids(x[a:], err.ids[a:], metadata=meta[a:], batch_size=batch, progress=False)
    held = held_rows(m, err.ids, with_codes=False)  # every id once (held_rows checks)
    assert m.ntotal == n and all(held[int(err.ids[i])][0] == meta[i] for i in range(n)), partial
    D, I = m.search(x[:30], 5)
    Dr, Ir = filled(TorusIndexFlat(16, 4), x, err.ids).search(x[:30], 5)
    assert np.array_equal(D, Dr) and np.array_equal(I, Ir)


def add_and_search(uri, proc, n):
    """One client process: adds n codes in 4 batches with default ids, searching its own after
    each."""
    rng = np.random.default_rng(100 + proc)
    x = rng.integers(0, 16, (n, 16), dtype=np.uint8)
    index = MilvusTorusIndex(16, 4, uri=uri, collection="shared", timeout=60)
    ids = []
    for s in range(0, n, n // 4):
        part = slice(s, s + n // 4)
        ids.append(
            index.add(
                x[part], metadata=[{"proc": proc, "row": r} for r in range(n)[part]], progress=False
            )
        )
        D, I = index.search(x[part][:8], 1)  # its acknowledged codes are visible at once
        assert (D[:, 0] == 0).all(), D[:, 0]
    return np.concatenate(ids), x


@pytest.mark.slow
def test_four_client_processes_lose_nothing_and_share_no_id(server):
    from concurrent.futures import ProcessPoolExecutor

    n = 1000
    MilvusTorusIndex(16, 4, uri=server.uri, collection="shared", drop=True)
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(add_and_search, server.uri, p, n) for p in range(4)]
        results = [f.result(timeout=240) for f in futures]
    ids = np.concatenate([r[0] for r in results])
    x = np.concatenate([r[1] for r in results])
    assert np.unique(ids).size == 4 * n, "two clients were given the same id"
    m = MilvusTorusIndex(16, 4, uri=server.uri, collection="shared")
    assert m.ntotal == 4 * n
    held = held_rows(m, ids, with_codes=False)
    assert all(held[int(ids[i])][0] == {"proc": i // n, "row": i % n} for i in range(4 * n))
    q = x[::97]
    D, I = m.search(q, 10)
    order = np.argsort(ids)  # TorusIndexFlat breaks ties by position, Milvus by id
    Dr, Ir = filled(TorusIndexFlat(16, 4), x[order], ids[order]).search(q, 10)
    assert np.array_equal(D, Dr) and np.array_equal(I, Ir)


def test_no_server_is_a_clear_error_in_bounded_time():
    pymilvus_or_fail()
    uri = f"http://127.0.0.1:{free_ports(1)[0]}"
    t0 = time.monotonic()
    with pytest.raises(
        MilvusError,
        match=rf"cannot connect to Milvus at {uri} .*is the server "
        rf"running",
    ):
        MilvusTorusIndex(8, 4, uri=uri, timeout=DOWN_TIMEOUT)
    assert time.monotonic() - t0 < 2 * DOWN_TIMEOUT + 10
