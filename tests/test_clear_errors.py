"""Clear errors on inputs found in review: crafted file metadata, budgets, code widths, ids, scores,
extras."""

import struct
import sys
import zlib

import numpy as np
import pytest

from torus_plugins.codes import TorusProductQuantizer, quantize
from torus_plugins.codes.file_format import _HEAD, MAGIC, VERSION, CodeFileError, parse_codes
from torus_plugins.metrics import get_geometry, grid_bits_at_budget, quantisation_table, torus_score
from torus_plugins.search import TorusIndex


def crafted(meta: bytes) -> bytes:
    """A code file with a valid header and CRC whose metadata bytes are ``meta`` (one 4-angle 8-bit
    row)."""
    g = b"torusN"
    body = _HEAD.pack(MAGIC, VERSION, 8, 0, 4, 1, len(g), len(meta)) + g + meta + bytes(4)
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


@pytest.mark.parametrize(
    "meta, message",
    [
        (b"[" * 100_000 + b"]" * 100_000, "unreadable"),
        (b"[1, 2]", "must be a JSON object"),
        (b"7", "must be a JSON object"),
        (b'{"a": NaN', "unreadable"),
    ],
)
def test_crafted_metadata_is_a_code_file_error(meta, message):
    with pytest.raises(CodeFileError, match=message):
        parse_codes(crafted(meta))
    assert parse_codes(crafted(b'{"a": 1}')).meta == {"a": 1}  # the same file with an object loads


@pytest.mark.parametrize("budget", [True, -8, 0, 256.7, "256"])
def test_grid_bits_at_budget_rejects_non_integer_budgets(budget):
    with pytest.raises(ValueError, match="bits_per_vector must be a positive integer"):
        grid_bits_at_budget("sphere", 64, budget)
    assert (
        grid_bits_at_budget("sphere", 64, 256) == 4
        and grid_bits_at_budget("sphere", 64, 250) is None
    )


def test_codes_geometry_refuses_another_bit_width():
    codes = np.arange(12, dtype=np.uint8).reshape(3, 4)
    g = get_geometry("codes")
    assert np.array_equal(g.codes(codes), codes) and np.array_equal(g.codes(codes, bits=8), codes)
    with pytest.raises(ValueError, match="bits must be 8"):
        g.codes(codes, bits=4)


def test_torus_pq_decode_checks_the_code_shape():
    t = np.random.default_rng(0).random((300, 4))
    pq = TorusProductQuantizer(4, 2, 4, seed=0).train(t).add(t)
    packed = pq.encode(t[:5])
    assert pq.decode(packed).shape == (5, 4)
    for bad in (
        packed[:, :0],
        packed[0],
        packed.astype(np.int64),
        np.zeros((5, packed.shape[1] + 1), np.uint8),
    ):
        with pytest.raises(ValueError, match=r"codes must be uint8 of shape \[n, 1\]"):
            pq.decode(bad)


def test_negative_ids_are_refused_since_minus_one_marks_padding():
    codes = quantize(np.random.default_rng(1).random((3, 8)), 8)
    with pytest.raises(ValueError, match="ids must be >= 0"):
        TorusIndex(8, 8).add_with_ids(codes, np.array([5, -1, 7]))
    index = TorusIndex(8, 8)
    index.add_with_ids(codes, np.array([5, 6, 7]))
    D, I = index.search(codes[:1], 4)
    assert I[0, 0] == 5 and I[0, -1] == -1


@pytest.mark.parametrize(
    "betti, ratio, error, message",
    [
        (None, 1.0, TypeError, "betti"),
        ((1, 2), 1.0, ValueError, "betti"),
        ((1, 2, 1), "1.0", TypeError, "gap_ratio"),
        ((1, 2, 1), True, TypeError, "gap_ratio"),
        ((1, 2, 1), float("nan"), ValueError, "gap_ratio"),
    ],
)
def test_torus_score_checks_its_arguments(betti, ratio, error, message):
    with pytest.raises(error, match=message):
        torus_score(betti, ratio)
    assert torus_score(np.array([1, 2, 1]), 1.0) == 1.0


def test_quantisation_table_without_faiss_names_the_extra(monkeypatch):
    """A missing extra is an ImportError naming it, not a table of failed rows."""
    monkeypatch.setitem(sys.modules, "faiss", None)
    z = np.random.default_rng(2).normal(size=(20, 8))
    with pytest.raises(ImportError, match=r"torus-plugins\[search\]"):
        quantisation_table(
            z / np.linalg.norm(z, axis=1, keepdims=True),
            None,
            np.arange(20) % 2,
            None,
            geometry="sphere",
        )
