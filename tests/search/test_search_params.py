"""Search parameters as faiss's: params= objects per index type, checked fields, and the call forms
of 0.1.0 (positional / keyword threads, nprobe, query_codes=, backend=) kept with a
DeprecationWarning and the same results."""

import numpy as np
import pytest
from test_search import brute_knn, filled

from torus_plugins.search import (
    SearchParameters,
    SearchParametersIVF,
    TorusIndexBinaryFlat,
    TorusIndexFlat,
    TorusIndexIVF,
)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 16, (600, 20), dtype=np.uint8)
    return x, np.concatenate([x[:4], rng.integers(0, 16, (6, 20), dtype=np.uint8)])


def test_flat_params_threads_gives_the_brute_force_answer(data):
    x, q = data
    flat = filled(TorusIndexFlat(20, 4), x)
    Dr, Ir = brute_knn(q, x, 4, 7)
    for threads in (None, 1, 2):
        D, I = flat.search(q, 7, params=SearchParameters(threads=threads))
        assert np.array_equal(D, Dr) and np.array_equal(I, Ir)


def test_ivf_params_nprobe_overrides_the_index_setting(data):
    x, q = data
    ivf = filled(TorusIndexIVF(20, 4, nlist=8, nprobe=1), x, train=x)
    exact = ivf.search(q, 7, params=SearchParametersIVF(nprobe=8))  # every list: exact
    Dr, Ir = brute_knn(q, x, 4, 7)
    assert np.array_equal(exact[0], Dr) and np.array_equal(exact[1], Ir)
    assert ivf.nprobe == 1  # the index is unchanged
    one = ivf.search(q, 7)
    assert np.array_equal(one[0], ivf.search(q, 7, params=SearchParametersIVF(nprobe=1))[0])
    lims, D, I = ivf.range_search(q, 30, params=SearchParametersIVF(nprobe=8))
    for i in range(len(q)):
        d = np.abs(x.astype(int) - q[i].astype(int))
        want = np.flatnonzero(np.minimum(d, 16 - d).sum(1) < 30)
        assert set(I[lims[i] : lims[i + 1]]) == set(want)


def test_params_of_another_index_type_or_a_bad_field_is_an_error(data):
    x, q = data
    flat = filled(TorusIndexFlat(20, 4), x)
    with pytest.raises(
        TypeError,
        match="params must be a SearchParameters for TorusIndexFlat, got SearchParametersIVF",
    ):
        flat.search(q, 3, params=SearchParametersIVF(nprobe=2))
    with pytest.raises(TypeError, match="got dict"):
        flat.search(q, 3, params={"threads": 1})
    with pytest.raises(ValueError, match="nprobe must be an integer >= 1 or None, got 0"):
        SearchParametersIVF(nprobe=0)
    params = SearchParameters()
    with pytest.raises(ValueError, match="threads must be an integer >= 1 or None, got -2"):
        params.threads = -2  # checked on assignment
    with pytest.raises(AttributeError):
        params.nprobe = 3  # no such field (slots)
    with pytest.raises(ValueError, match="params.threads must be None"):
        filled(TorusIndexBinaryFlat(20, 4), x).search(q, 3, params=SearchParameters(threads=2))


def test_the_0_1_0_search_forms_warn_and_give_the_same_results(data):
    x, q = data
    flat = filled(TorusIndexFlat(20, 4), x)
    ivf = filled(TorusIndexIVF(20, 4, nlist=8, nprobe=2), x, train=x)
    want_flat = flat.search(q, 5)
    want_ivf = ivf.search(q, 5, params=SearchParametersIVF(nprobe=8))
    calls = [
        (lambda: flat.search(q, 5, 1), want_flat, r"params=SearchParameters\(threads=1\)"),
        (lambda: flat.search(q, 5, threads=2), want_flat, r"SearchParameters\(threads=2\)"),
        (lambda: flat.search(query_codes=q, k=5), want_flat, "query_codes"),
        (lambda: ivf.search(q, 5, 8), want_ivf, r"SearchParametersIVF\(nprobe=8\)"),
        (lambda: ivf.search(q, 5, nprobe=8, threads=1), want_ivf, "nprobe=8, threads=1"),
    ]
    for call, want, message in calls:
        with pytest.warns(DeprecationWarning, match=message):
            got = call()
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    with pytest.warns(DeprecationWarning):
        lims, D, I = ivf.range_search(q, 30, 8)
    assert np.array_equal(I, ivf.range_search(q, 30, params=SearchParametersIVF(nprobe=8))[2])


def test_the_0_1_0_search_forms_refuse_ambiguous_calls(data):
    x, q = data
    flat = filled(TorusIndexFlat(20, 4), x)
    with pytest.raises(TypeError, match="takes 2 positional arguments"):
        flat.search(q, 5, 1, 2)
    with pytest.raises(TypeError, match="not both"):
        flat.search(q, 5, threads=1, params=SearchParameters())
    with pytest.raises(TypeError, match="multiple values for 'threads'"):
        flat.search(q, 5, 1, threads=1)


def test_backend_johnson_is_deprecated_and_builds_the_binary_index(data):
    x, q = data
    with pytest.warns(DeprecationWarning, match="TorusIndexBinaryFlat"):
        johnson = TorusIndexFlat(20, 4, backend="johnson")
    assert type(johnson) is TorusIndexBinaryFlat
    filled(johnson, x)
    D, I = johnson.search(q, 6)
    Dr, Ir = brute_knn(q, x, 4, 6)
    assert np.array_equal(D, Dr) and np.array_equal(I, Ir)
    with pytest.raises(ValueError, match="backend must be one of"):
        TorusIndexFlat(20, 4, backend="gpu")


def test_add_and_train_return_none_as_in_faiss(data):
    x, _ = data
    flat, ivf = TorusIndexFlat(20, 4), TorusIndexIVF(20, 4, nlist=4)
    assert flat.add(x) is None
    assert ivf.train(x) is None and ivf.add(x) is None
    assert flat.ntotal == ivf.ntotal == len(x)
