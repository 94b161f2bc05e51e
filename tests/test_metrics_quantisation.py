"""The quantisation table: all settings reported, numbers checked against direct computations."""

import numpy as np
import pytest

from torus_plugins.codes import quantize
from torus_plugins.metrics import COLUMNS, format_table, quantisation_table, retrieval

SETTINGS = ["none", "8-bit grid", "1-bit", "PQ(8,16)", "PQ(8,4)", "PQ(8,2)", "PQ(8,1)", "PQ(4,4)", "PQ(4,2)"]


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
    assert by["PQ(8,16)"]["reason"] and "divide" in by["PQ(8,16)"]["reason"]
    assert by["PQ(8,16)"]["precision_at_1"] is None
    for s in ["none", "8-bit grid", "1-bit", "PQ(8,4)", "PQ(4,2)"]:
        assert by[s]["reason"] is None and 0 <= by[s]["precision_at_1"] <= 1
    assert [by[s]["bits_per_vector"] for s in ["none", "8-bit grid", "1-bit", "PQ(8,4)", "PQ(4,2)"]] == \
        [32 * 16, 64, 16, 32, 8]
    assert "n/a" in format_table(rows)


def test_torus_rows_match_direct_computation(torus_rows):
    rows, z, t, y = torus_rows
    by = {r["setting"]: r for r in rows}
    assert by["none"]["precision_at_1"] == pytest.approx(retrieval(z, y, geometry="torusN")["precision_at_1"])
    c8 = quantize(t, 8)
    assert by["8-bit grid"]["precision_at_1"] == pytest.approx(
        retrieval(c8, y, geometry="codes", bits=8)["precision_at_1"])
    assert by["8-bit grid"]["unique_codes"] == len(np.unique(c8, axis=0))
    # 1-bit: signs of (cos, sin) carry the 2-bit angle code; unique rows agree
    signs = (z > 0).astype(np.uint8)
    assert by["1-bit"]["unique_codes"] == len(np.unique(signs, axis=0))
    assert by["1-bit"]["entropy"] <= 2.0 + 1e-9
    assert by["PQ(4,2)"]["entropy"] <= 4.0 + 1e-9 and by["PQ(4,2)"]["unique_codes"] <= 256


def test_sphere_table_and_separate_query():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, 400)
    x = rng.normal(size=(400, 8)) + 2 * rng.normal(size=(4, 8))[y]
    rows = quantisation_table(x[100:], x[:100], y[100:], y[:100], geometry="sphere",
                              pq_settings=((8, 4), (4, 3)))
    by = {r["setting"]: r for r in rows}
    assert list(by) == ["none", "8-bit grid", "1-bit", "PQ(8,4)", "PQ(4,3)"]
    assert by["none"]["precision_at_1"] == pytest.approx(
        retrieval(x[:100], y[:100], x[100:], y[100:], geometry="sphere")["precision_at_1"])
    assert by["1-bit"]["bits_per_vector"] == 8 and by["8-bit grid"]["bits_per_vector"] == 64
    assert by["PQ(4,3)"]["reason"]
    with pytest.raises(ValueError, match="length"):
        quantisation_table(x, None, y[:5], None, geometry="sphere")


def test_one_bit_is_sign_hamming(torus_rows):
    """1-bit row == P@1 of Hamming distance on the sign bits of the Clifford vector (independent brute force)."""
    rows, z, t, y = torus_rows
    s = (z > 0).astype(int)
    ham = (s[:, None, :] != s[None, :, :]).sum(-1)
    np.fill_diagonal(ham, 10 ** 6)
    nn = np.argmin(ham, axis=1)  # first (smallest index) among ties, like the code path
    by = {r["setting"]: r for r in rows}
    assert by["1-bit"]["precision_at_1"] == pytest.approx(float(np.mean(y[nn] == y)))
