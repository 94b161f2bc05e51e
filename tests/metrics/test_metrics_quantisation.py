"""The quantisation table: all settings reported, numbers checked against direct computations."""

import faiss
import numpy as np
import pytest

from torus_plugins.codes import ProductQuantizer, TorusProductQuantizer, quantize
from torus_plugins.codes.torus_pq import unpack_pq_codes
from torus_plugins.metrics import (
    COLUMNS,
    NONE,
    SIGN,
    SPHERE,
    TORUS_N,
    CodesGeometry,
    format_table,
    get_geometry,
    get_setting,
    grid,
    grid_bits_at_budget,
    pq,
    quantisation_table,
    raw_pq,
    retrieval,
    table_settings,
)

PQS = ["PQ(8,16)", "PQ(8,4)", "PQ(8,2)", "PQ(8,1)", "PQ(4,4)", "PQ(4,2)"]
SETTINGS = ["none", "8-bit grid", "sign"] + PQS + ["raw " + s for s in PQS]


def data(n=300, k=8, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    t = (rng.random((4, k))[y] + 0.1 * rng.normal(size=(n, k))) % 1.0
    th = 2 * np.pi * t
    z = np.stack([np.cos(th), np.sin(th)], -1).reshape(n, -1) / np.sqrt(k)
    return z, t, y


@pytest.fixture(scope="module")
def torus_rows():
    z, t, y = data()
    return quantisation_table(z, None, y, None, geometry="torusN"), z, t, y


def test_all_settings_reported(torus_rows):
    rows = torus_rows[0]
    assert [r["setting"] for r in rows] == SETTINGS
    assert all(set(r) == set(COLUMNS) for r in rows)
    by = {r["setting"]: r for r in rows}
    # k = 8 angles: M = 16 does not divide 8 -> a row with a reason, not dropped
    for s in ("PQ(8,16)", "raw PQ(8,16)"):
        assert by[s]["reason"] and "divide" in by[s]["reason"]
        assert by[s]["precision_at_1"] is None
    for s in ["none", "8-bit grid", "sign", "PQ(8,4)", "PQ(4,2)", "raw PQ(8,4)"]:
        assert by[s]["reason"] is None and 0 <= by[s]["precision_at_1"] <= 1
    assert [
        by[s]["bits_per_vector"]
        for s in ["none", "8-bit grid", "sign", "PQ(8,4)", "PQ(4,2)", "raw PQ(8,4)"]
    ] == [32 * 16, 64, 16, 32, 8, 32]
    assert by["8-bit grid"]["bits_per_value"] == "8 per angle"
    assert by["sign"]["bits_per_value"] == "1 per output coordinate"
    assert "n/a" in format_table(rows)


def test_torus_rows_match_direct_computation(torus_rows):
    rows, z, t, y = torus_rows
    by = {r["setting"]: r for r in rows}
    assert by["none"]["precision_at_1"] == pytest.approx(
        retrieval(z, y, geometry="torusN")["precision_at_1"]
    )
    c8 = quantize(t, 8)
    assert by["8-bit grid"]["precision_at_1"] == pytest.approx(
        retrieval(c8, y, geometry="codes", bits=8)["precision_at_1"]
    )
    assert by["8-bit grid"]["unique_codes"] == len(np.unique(c8, axis=0))
    # sign: signs of (cos, sin) carry the 2-bit angle code; the stored columns are the sign bits
    signs = (z > 0).astype(np.uint8)
    assert by["sign"]["unique_codes"] == len(np.unique(signs, axis=0))
    assert by["sign"]["entropy"] <= 1.0 + 1e-9
    assert by["PQ(4,2)"]["entropy"] <= 4.0 + 1e-9 and by["PQ(4,2)"]["unique_codes"] <= 256


def test_sphere_table_and_separate_query():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, 400)
    x = rng.normal(size=(400, 8)) + 2 * rng.normal(size=(4, 8))[y]
    rows = quantisation_table(
        x[100:], x[:100], y[100:], y[:100], geometry="sphere", pq_settings=((8, 4), (4, 3))
    )
    by = {r["setting"]: r for r in rows}
    assert list(by) == [
        "none",
        "8-bit grid",
        "sign",
        "PQ(8,4)",
        "PQ(4,3)",
    ]  # no raw-value rows on the sphere
    assert by["none"]["precision_at_1"] == pytest.approx(
        retrieval(x[:100], y[:100], x[100:], y[100:], geometry="sphere")["precision_at_1"]
    )
    assert by["sign"]["bits_per_vector"] == 8 and by["8-bit grid"]["bits_per_vector"] == 64
    assert by["PQ(4,3)"]["reason"]
    with pytest.raises(ValueError, match="length"):
        quantisation_table(x, None, y[:5], None, geometry="sphere")


def test_sign_is_hamming(torus_rows):
    """sign row == P@1 of Hamming distance on the sign bits of the Clifford vector (independent
    brute force)."""
    rows, z, t, y = torus_rows
    s = (z > 0).astype(int)
    ham = (s[:, None, :] != s[None, :, :]).sum(-1)
    np.fill_diagonal(ham, 10**6)
    nn = np.argmin(ham, axis=1)  # first (smallest index) among ties, like the code path
    by = {r["setting"]: r for r in rows}
    assert by["sign"]["precision_at_1"] == pytest.approx(float(np.mean(y[nn] == y)))


# ---------------------------------------------------------------- one meaning of "n-bit"


@pytest.mark.parametrize("width", [2, 8, 64, 512])
def test_bits_per_vector_definition(width):
    k = width // 2
    for g in ("torusN", "torusC"):
        assert NONE.bits_per_vector(g, width) == 32 * width
        assert [grid(b).bits_per_vector(g, width) for b in (8, 4, 2, 1)] == [8 * k, 4 * k, 2 * k, k]
        assert SIGN.bits_per_vector(g, width) == width == grid(2).bits_per_vector(g, width)
        assert pq(8, 4).bits_per_vector(g, width) == raw_pq(8, 4).bits_per_vector(g, width) == 32
    assert [grid(b).bits_per_vector("sphere", width) for b in (8, 1)] == [8 * width, width]
    assert SIGN.bits_per_vector("sphere", width) == width
    # equal budget: a torus b-bit grid costs what a sphere b/2-bit grid costs at the same width
    assert grid_bits_at_budget("sphere", width, grid(8).bits_per_vector("torusN", width)) == 4
    assert grid_bits_at_budget("torusN", width, grid(4).bits_per_vector("sphere", width)) == 8


def test_settings_names_roundtrip_and_errors():
    for g in ("sphere", "torusN", "torusC"):
        for s in table_settings(g):
            assert get_setting(s.name) == s and s.applies_to(g)
            assert str(s.bits_per_vector(g, 64)) in s.describe(g, 64)
    assert get_setting("1-bit") == SIGN  # the paper's name for the sign setting
    assert not raw_pq(8, 4).applies_to("sphere")
    with pytest.raises(ValueError, match="applies to"):
        raw_pq(8, 4).bits_per_vector("sphere", 64)
    with pytest.raises(ValueError, match="even width"):
        grid(8).bits_per_vector("torusN", 7)
    for bad in ("2-bit", "PQ(8)", ""):
        with pytest.raises(ValueError, match="unknown setting"):
            get_setting(bad)
    with pytest.raises(ValueError, match="bits"):
        grid(9)
    with pytest.raises(ValueError, match="nbits"):
        pq(0, 4)


def test_geometry_objects_equal_strings():
    z, t, y = data(n=60, k=4)
    for name in ("sphere", "torusN", "torusC"):
        g = get_geometry(name)
        assert get_geometry(g) is g and str(g) == name
        assert retrieval(z, y, geometry=g) == retrieval(z, y, geometry=name)
    assert np.allclose(TORUS_N.turns(z), t)
    assert np.allclose(TORUS_N.unit_vectors(3 * z), z)
    assert np.allclose(SPHERE.unit_vectors(3 * z), z)
    c = quantize(t, 6)
    g6 = get_geometry("codes", bits=6)
    assert isinstance(g6, CodesGeometry) and g6.bits == 6
    assert np.allclose(g6.turns(c), c / 64.0)
    assert TORUS_N.values_per_vector(8) == 4 and SPHERE.values_per_vector(8) == 8
    assert TORUS_N.pair_norm_spread(z) < 1e-12
    off = z.copy()
    off[:, 0] *= 2
    assert TORUS_N.pair_norm_spread(off) > 0.3
    with pytest.raises(ValueError, match="geometry must be one of"):
        get_geometry("hyperbolic")


def test_table_rows_follow_settings_definition():
    z, t, y = data(n=300, k=8)
    rows = quantisation_table(z, None, y, None, geometry="torusC", settings=[grid(4), SIGN])
    assert [r["bits_per_vector"] for r in rows] == [grid(4).bits_per_vector("torusC", 16), 16]
    assert rows[0]["precision_at_1"] == pytest.approx(
        retrieval(quantize(t, 4), y, geometry="codes", bits=4)["precision_at_1"]
    )


# -------------------------------------------------------- PQ against independent numpy computations


def _centroids(index):
    pq = index.pq
    return faiss.vector_to_array(pq.centroids).reshape(pq.M, pq.ksub, pq.dsub)


def _numpy_encode(x, cent):
    """Sub-code = nearest centroid of each sub-vector (squared L2), computed without faiss."""
    M, ksub, dsub = cent.shape
    sub = x.reshape(len(x), M, dsub)
    d = ((sub[:, :, None, :] - cent[None]) ** 2).sum(-1)  # [n, M, ksub]
    return d.argmin(-1), d.min(-1)


@pytest.mark.parametrize("nbits,M", [(8, 4), (4, 2), (6, 8)])
def test_pq_codes_and_distances_match_numpy(nbits, M):
    rng = np.random.default_rng(nbits * 10 + M)
    t = rng.random((400, 8))
    tpq = TorusProductQuantizer(8, M, nbits, seed=1).train(t).add(t)
    z = (
        np.stack([np.cos(2 * np.pi * t), np.sin(2 * np.pi * t)], -1)
        .reshape(400, 16)
        .astype(np.float32)
    )
    cent = _centroids(tpq.index)
    codes, err = _numpy_encode(z, cent)
    got = tpq.subcodes(t)
    # identical codes except where two centroids are equally near (float ties)
    assert (got == codes).mean() > 0.999
    # asymmetric distances: ||q - decode(code)||^2, and the ids sorted by them
    q = rng.random((20, 8))
    zq = np.stack([np.cos(2 * np.pi * q), np.sin(2 * np.pi * q)], -1).reshape(20, 16)
    rec = cent[np.arange(M)[None, :], got].reshape(400, 16)
    dist = ((zq[:, None, :] - rec[None]) ** 2).sum(-1)
    D, I = tpq.search(q, 5)
    assert np.allclose(D, np.sort(dist, 1)[:, :5], atol=1e-4)
    assert np.allclose(dist[np.arange(20)[:, None], I], D, atol=1e-4)
    # decode: angles of the reconstruction
    assert np.allclose(
        np.exp(2j * np.pi * tpq.decode(tpq.encode(t))),
        np.exp(1j * np.arctan2(rec[:, 1::2], rec[:, 0::2])),
        atol=1e-5,
    )
    # the raw-value PQ wrapper: same checks on 8-bit values
    v = quantize(t, 8).astype(np.float32)
    pq = ProductQuantizer(8, M, nbits)
    pq.index.pq.cp.min_points_per_centroid = 1
    pq.train(v).add(v)
    c2 = _centroids(pq.index)
    codes2, _ = _numpy_encode(v, c2)
    assert (unpack_pq_codes(pq.index.sa_encode(v), M, nbits) == codes2).mean() > 0.999
    D2, I2 = pq.search(v[:20], 5)
    rec2 = c2[np.arange(M)[None, :], codes2].reshape(400, 8)
    d2 = ((v[:20, None, :] - rec2[None]) ** 2).sum(-1)
    assert np.allclose(D2, np.sort(d2, 1)[:, :5], rtol=1e-4, atol=1e-2)


def test_torus_pq_respects_wrap_around_raw_pq_does_not():
    """Two classes whose angles straddle the seam (0.98 / 0.02 turns) vs a class at 0.5: on the
    circle classes 0 and 1 are the same cluster, on the 0..255 line raw PQ splits it."""
    rng = np.random.default_rng(0)
    n = 600
    y = rng.integers(0, 2, n)
    centre = np.where(y == 0, 0.0, 0.5)[:, None]
    t = np.mod(centre + 0.03 * rng.normal(size=(n, 4)), 1.0)
    tpq = TorusProductQuantizer(4, 1, 4, seed=0).train(t).add(t)
    v = quantize(t, 8).astype(np.float32)
    pq = ProductQuantizer(4, 1, 4)
    pq.index.pq.cp.seed = 0
    pq.train(v).add(v)
    p1 = lambda I: float(np.mean(y[I[:, 1]] == y))  # noqa: E731  (column 0 is usually the query itself)
    assert p1(tpq.search(t, 2)[1]) > 0.99
    # a reconstruction of a seam point is near the seam on the circle
    rec = tpq.decode(tpq.encode(t[y == 0]))
    assert np.all(np.minimum(rec, 1 - rec) < 0.1)
    raw_rec = pq.index.sa_decode(pq.index.sa_encode(v[y == 0])) / 256.0
    assert np.any(np.minimum(raw_rec, 1 - raw_rec) > 0.2)  # raw PQ averages 0.98 and 0.02 into ~0.5


def test_pq_rows_match_independent_adc():
    """The table's torus PQ row == P@1 of the nearest decoded vector (numpy ADC), up to
    tie-breaking."""
    z, t, y = data(n=300, k=8, seed=5)
    s = pq(4, 2)
    row = quantisation_table(z, None, y, None, geometry="torusN", settings=[s], seed=3)[0]
    tpq = TorusProductQuantizer(8, 2, 4, seed=3).train(t).add(t)
    rec = np.exp(2j * np.pi * tpq.decode(tpq.encode(t)))
    zq = np.exp(2j * np.pi * t)
    dist = (np.abs(zq[:, None, :] - rec[None]) ** 2).sum(-1)
    np.fill_diagonal(dist, np.inf)
    best = dist.min(1, keepdims=True)
    tied = np.isclose(dist, best, rtol=1e-5, atol=1e-6)
    lo = np.mean([np.all(y[tied[i]] == y[i]) for i in range(len(y))])
    hi = np.mean([np.any(y[tied[i]] == y[i]) for i in range(len(y))])
    assert lo - 1e-9 <= row["precision_at_1"] <= hi + 1e-9
    assert hi - lo < 0.2  # the bound is informative
