"""MilvusTorusIndex against embedded Milvus Lite (started here): results equal TorusIndexFlat, ids and metadata
kept. Needs the [milvus] extra; without it these tests fail with the install command (they never skip)."""

import sys

import numpy as np
import pytest

from torus_plugins.search import PAD_DISTANCE, TorusIndexFlat
from torus_plugins.search.milvus import MISSING, MilvusTorusIndex, require_pymilvus


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    try:
        pymilvus = require_pymilvus()
    except ImportError as e:
        pytest.fail(f"{e}\n(`make test` installs the dev extra, which includes [milvus])")
    c = pymilvus.MilvusClient(uri=str(tmp_path_factory.mktemp("milvus") / "lite.db"))
    yield c
    c.close()


def ties_data(rng, n, n_angles, bits):
    return rng.integers(0, 1 << bits, (n, n_angles), dtype=np.uint8)


@pytest.mark.parametrize("bits, n_angles", [(1, 8), (2, 6), (4, 16)])
def test_exact_bits_equal_torus_index_with_ties(client, bits, n_angles):
    rng = np.random.default_rng(bits)
    x = ties_data(rng, 1500, n_angles, bits)
    q = np.concatenate([x[:3], ties_data(rng, 12, n_angles, bits)])
    m = MilvusTorusIndex(n_angles, bits, collection=f"exact{bits}", client=client, drop=True)
    m.add(x[:700], progress=False).add(x[700:], progress=False)  # ids continue across batches
    assert m.ntotal == 1500
    flat = TorusIndexFlat(n_angles, bits).add(x)
    for k in (1, 10, 40):
        D, I = m.search(q, k)
        Dr, Ir = flat.search(q, k)
        assert np.array_equal(D, Dr) and np.array_equal(I, Ir), (bits, k)


def test_eight_bits_rerank_is_exact_with_a_full_shortlist_and_close_by_default(client):
    rng = np.random.default_rng(8)
    centres = rng.integers(0, 256, (30, 16))
    x = ((centres[rng.integers(0, 30, 2000)] + rng.integers(-6, 7, (2000, 16))) % 256).astype(np.uint8)
    q = x[rng.integers(0, 2000, 25)]
    flat = TorusIndexFlat(16, 8).add(x)
    Dr, Ir = flat.search(q, 10)
    m = MilvusTorusIndex(16, 8, collection="eight", client=client, drop=True, rerank=200)
    m.add(x, progress=False)
    D, I = m.search(q, 10)  # 200 * 10 = the whole collection: exact
    assert np.array_equal(D, Dr) and np.array_equal(I, Ir)
    m.rerank = 8
    D, I = m.search(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, Ir)])
    assert recall >= 0.9
    assert (D >= Dr).all()
    diff = (q[:, None, :].astype(np.int64) - x[I].astype(np.int64)) % 256  # true distances of the ids given
    assert np.array_equal(np.minimum(diff, 256 - diff).sum(-1), D)


def test_ids_metadata_remove_reopen_and_padding(client, tmp_path):
    rng = np.random.default_rng(3)
    x = ties_data(rng, 300, 8, 4)
    ids = rng.permutation(10**6)[:300].astype(np.int64)
    meta = [{"label": int(i % 7), "name": f"img{i}"} for i in range(300)]
    m = MilvusTorusIndex(8, 4, collection="ided", client=client, drop=True)
    m.add(x, ids=ids, metadata=meta, progress=False)
    D, I = m.search(x[:5], 6)
    Dr, Ir = TorusIndexFlat(8, 4).add_with_ids(x, ids).search(x[:5], 6)
    assert np.array_equal(D, Dr)
    assert I[0, 0] == ids[0]
    assert m.metadata([ids[4], -1, 12345678]) == [meta[4], None, None]
    assert m.remove_ids(ids[:10]) == 10 and m.ntotal == 290
    again = MilvusTorusIndex(8, 4, collection="ided", client=client)  # reopen the collection
    assert again.ntotal == 290
    D, I = again.search(x[:2], 400)  # k > ntotal: pads like faiss
    assert (I[:, 290:] == -1).all() and (D[:, 290:] == PAD_DISTANCE).all()
    assert not set(ids[:10]) & set(I.ravel().tolist())
    with pytest.raises(ValueError, match="does not hold 8 angles x 8 bits"):
        MilvusTorusIndex(8, 8, collection="ided", client=client)
    with pytest.raises(ValueError, match="metadata must be a list of 2 dicts"):
        m.add(x[:2], metadata=[{}])
    again.reset()
    assert again.ntotal == 0


def test_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "pymilvus", None)
    with pytest.raises(ImportError, match=r"torus-plugins\[milvus\]"):
        MilvusTorusIndex(8, 4, uri="unused.db")
    assert "setuptools>=77,<81" in MISSING
