"""faiss look-alike: ``remove_ids`` takes faiss ``IDSelector`` objects as well as arrays of ids
(every index), and the flat index accepts a no-op ``train`` as faiss's flat indexes do. Reference:
faiss's own ``sel.is_member(id)`` and faiss ``IndexFlat`` / ``IndexIDMap`` removing with the same
selector."""

import faiss
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_search import filled

from torus_plugins.search import TorusIndexFlat, TorusIndexIVF
from torus_plugins.search.selectors import _typed, explicit_ids, selection_mask, selector_bounds


def codes(n=60, k=16, bits=8, seed=0):
    return np.random.default_rng(seed).integers(0, 1 << bits, (n, k), dtype=np.uint8)


def selectors():
    """(name, factory) of every faiss selector kind, each a function of nothing (fresh objects per
    use)."""
    batch = lambda: faiss.IDSelectorBatch(np.array([3, 20, 39, 1005], np.int64))  # noqa: E731
    return [
        ("range", lambda: faiss.IDSelectorRange(0, 8)),
        ("batch", batch),
        ("array", lambda: faiss.IDSelectorArray(np.array([1, 5, 1002], np.int64))),
        ("bitmap", lambda: faiss.IDSelectorBitmap(np.array([0b10100101, 0b1], np.uint8))),
        ("not", lambda: faiss.IDSelectorNot(faiss.IDSelectorRange(0, 50))),
        ("and", lambda: faiss.IDSelectorAnd(faiss.IDSelectorRange(0, 30), batch())),
        ("or", lambda: faiss.IDSelectorOr(faiss.IDSelectorRange(0, 2), batch())),
        (
            "xor",
            lambda: faiss.IDSelectorXOr(faiss.IDSelectorRange(0, 6), faiss.IDSelectorRange(3, 9)),
        ),
        ("all", faiss.IDSelectorAll),
    ]


@pytest.mark.parametrize("name,make", selectors(), ids=[n for n, _ in selectors()])
def test_selection_mask_equals_faiss_is_member(name, make):
    ids = np.concatenate([np.arange(60), np.arange(1000, 1010), [2**40]]).astype(np.int64)
    sel = make()
    expected = np.array([sel.is_member(int(i)) for i in ids])
    assert np.array_equal(selection_mask(ids, sel), expected)


@given(
    lo=st.integers(-5, 80),
    width=st.integers(0, 80),
    picks=st.lists(st.integers(0, 100), max_size=20),
)
@settings(max_examples=60, deadline=None)
def test_selection_mask_property_against_is_member(lo, width, picks):
    ids = np.arange(100, dtype=np.int64)
    rng = faiss.IDSelectorRange(lo, lo + width)
    batch = faiss.IDSelectorBatch(np.array(picks, np.int64))
    for sel in (
        rng,
        batch,
        faiss.IDSelectorNot(rng),
        faiss.IDSelectorOr(rng, batch),
        faiss.IDSelectorAnd(rng, batch),
    ):
        assert np.array_equal(selection_mask(ids, sel), [sel.is_member(int(i)) for i in ids])


def test_composite_selectors_recover_their_typed_operands():
    """The operands of Not / And come back as their own classes, so a Range operand stays
    vectorised."""
    r, b = faiss.IDSelectorRange(0, 8), faiss.IDSelectorBatch(np.array([3], np.int64))
    both = faiss.IDSelectorAnd(r, b)
    assert type(_typed(both, both.lhs)) is faiss.IDSelectorRange
    assert type(_typed(both, both.rhs)) is faiss.IDSelectorBatch
    neg = faiss.IDSelectorNot(r)
    assert type(neg.sel) is faiss.IDSelector and type(_typed(neg, neg.sel)) is faiss.IDSelectorRange
    assert selector_bounds(r) == (0, 8) and selector_bounds(b) is None


@pytest.mark.parametrize("name,make", selectors(), ids=[n for n, _ in selectors()])
def test_flat_remove_ids_with_a_selector_matches_faiss_index_flat(name, make):
    """Sequential ids shift down after a removal in both (faiss IndexFlat semantics)."""
    x = codes()
    ours = filled(TorusIndexFlat(16, bits=8), x)
    ref = faiss.IndexFlatL2(16)
    ref.add(x.astype(np.float32))
    assert ours.remove_ids(make()) == ref.remove_ids(make())
    assert ours.ntotal == ref.ntotal
    theirs = faiss.rev_swig_ptr(ref.get_xb(), ref.ntotal * 16).reshape(-1, 16)
    assert np.array_equal(ours.codes, theirs)
    assert np.array_equal(ours.ids, np.arange(ours.ntotal))


@pytest.mark.parametrize("name,make", selectors(), ids=[n for n, _ in selectors()])
def test_explicit_ids_remove_like_faiss_index_id_map(name, make):
    """With your own ids (add_with_ids), flat and IVF keep the other ids, as faiss IndexIDMap / IVF
    do."""
    x, ids = codes(), np.arange(60, dtype=np.int64) + 990  # 990..1049 straddle the selectors
    ref = faiss.IndexIDMap(faiss.IndexFlatL2(16))
    ref.add_with_ids(x.astype(np.float32), ids)
    expected = ref.remove_ids(make())
    kept = faiss.vector_to_array(ref.id_map)
    flat = filled(TorusIndexFlat(16, bits=8), x, ids)
    ivf = filled(TorusIndexIVF(16, bits=8, nlist=4, nprobe=4), x, ids, train=x)
    for index in (flat, ivf):
        assert index.remove_ids(make()) == expected and index.ntotal == len(kept)
        D, I = index.search(x, 1)
        found = set(I[:, 0][D[:, 0] == 0].tolist())
        assert found == set(kept.tolist())  # each kept code finds itself
    assert np.array_equal(flat.ids, kept)


def test_arrays_lists_and_ints_still_remove():
    x = codes()
    for ids in (np.array([0, 1, 2]), [0, 1, 2], np.array([0, 1, 2], np.uint32), range(3)):
        index = filled(TorusIndexFlat(16), x)
        assert index.remove_ids(ids) == 3 and index.ntotal == 57
    assert filled(TorusIndexFlat(16), x).remove_ids(5) == 1


@pytest.mark.parametrize("bad", [np.array([0.5, 1.0]), "3", np.zeros((2, 2), np.int64), object()])
def test_bad_remove_ids_argument_is_a_clear_error(bad):
    index = filled(TorusIndexFlat(16), codes())
    with pytest.raises(ValueError, match="integer ids or a faiss IDSelector"):
        index.remove_ids(bad)
    assert index.ntotal == 60


def test_flat_train_is_a_no_op_like_faiss():
    x = codes()
    index = TorusIndexFlat(16, bits=8)
    assert index.is_trained and index.train(x) is None and index.ntotal == 0  # None, as faiss
    index.add(x)
    index.train(x[:5])
    assert index.ntotal == 60  # never touches the stored codes
    ref = faiss.IndexFlatL2(16)
    ref.train(x.astype(np.float32))  # what faiss users write before add
    assert ref.is_trained and ref.ntotal == 0
    with pytest.raises(ValueError, match=r"shape \[n, 16\]"):
        index.train(codes(k=8))
    with pytest.raises(TypeError, match="uint8"):
        index.train(x.astype(np.float32))


def test_explicit_ids_for_stores_that_delete_by_id():
    assert explicit_ids(faiss.IDSelectorArray(np.array([4, 2], np.int64))).tolist() == [4, 2]
    assert explicit_ids([1, 2]).tolist() == [1, 2]
    with pytest.raises(ValueError, match="IDSelectorBatch"):
        explicit_ids(faiss.IDSelectorBatch(np.array([1], np.int64)))


def test_milvus_remove_ids_takes_range_and_array_selectors(tmp_path):
    from torus_plugins.search.milvus import MilvusTorusIndex, require_pymilvus

    client = require_pymilvus().MilvusClient(uri=str(tmp_path / "lite.db"))
    try:
        x = codes(n=40, k=8, bits=4)
        m = MilvusTorusIndex(8, bits=4, collection="selectors", client=client, drop=True)
        m.add_with_ids(x, np.arange(40), progress=False)  # add's ids come from Milvus's allocator
        assert m.remove_ids(faiss.IDSelectorRange(0, 8)) == 8 and m.ntotal == 32
        assert m.remove_ids(faiss.IDSelectorArray(np.array([8, 9, 100], np.int64))) == 2
        assert m.ntotal == 30
        with pytest.raises(ValueError, match="pass the ids to remove as an array"):
            m.remove_ids(faiss.IDSelectorBatch(np.array([10], np.int64)))
        assert m.ntotal == 30
        D, I = m.search(x[10:12], 1)
        assert I[:, 0].tolist() == [10, 11] and (D[:, 0] == 0).all()
    finally:
        client.close()
