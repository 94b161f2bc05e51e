"""Integer codes: quantisation, packing, circular distance, Johnson codes, baselines, file format,
export."""

import itertools
import math
import os
import shutil
import struct
import subprocess
import zlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch import nn

from torus_plugins import L2p, to_turns
from torus_plugins.codes import (
    CodeFileError,
    ProductQuantizer,
    SphereGridQuantizer,
    UInt8Encoder,
    circular_distance,
    dequantize,
    encode,
    export_c_header,
    johnson_encode,
    load_codes,
    pack_codes,
    pairwise_circular_distance,
    quantize,
    save_codes,
    unpack_codes,
)
from torus_plugins.codes.file_format import parse_codes

FAST = settings(max_examples=60, deadline=None)
bits_st = st.integers(1, 8)


def codes_st(bits, shape):
    return hnp.arrays(np.uint8, shape, elements=st.integers(0, (1 << bits) - 1))


def brute_circ(a, b, bits, p=1):
    """Independent reference: python ints, explicit loop."""
    m, s = 1 << bits, 0
    for x, y in zip(a.tolist(), b.tolist()):
        d = (x - y) % m
        c = min(d, m - d)
        s += c if p == 1 else c * c
    return s


# ---------------------------------------------------------------- quantize
def test_quantize_known_values():
    t = np.array([0.0, 0.25, 0.5, 0.99, 0.999, 1.0, -0.25, 1.5])
    assert quantize(t, 2).tolist() == [0, 1, 2, 0, 0, 0, 3, 2]
    assert quantize(t, 8).tolist() == [0, 64, 128, 253, 0, 0, 192, 128]
    assert quantize(t, 8).dtype == np.uint8


def test_quantize_torch_matches_numpy_and_keeps_kind():
    t = torch.rand(50, 7, dtype=torch.float64)
    for bits in range(1, 9):
        qt = quantize(t, bits)
        assert isinstance(qt, torch.Tensor) and qt.dtype == torch.uint8 and qt.shape == t.shape
        assert np.array_equal(qt.numpy(), quantize(t.numpy(), bits))
        back = dequantize(qt, bits)
        assert isinstance(back, torch.Tensor) and back.dtype == torch.float32


@FAST
@given(bits=bits_st, t=hnp.arrays(np.float64, 20, elements=st.floats(-3, 3, allow_nan=False)))
def test_round_trip_error_bound(bits, t):
    back = dequantize(quantize(t, bits), bits).astype(np.float64)
    err = np.abs(((back - t) + 0.5) % 1.0 - 0.5)  # circular error in turns
    assert (err <= 2.0 ** -(bits + 1) + 1e-9).all()
    assert ((back >= 0) & (back < 1)).all()


@pytest.mark.parametrize("bad", [0, 9, -1, True, 2.0, "8"])
def test_bits_out_of_range(bad):
    with pytest.raises(ValueError, match="bits"):
        quantize(np.zeros(3), bad)


def test_quantize_rejects_nonfinite_and_ints():
    for v in (np.nan, np.inf):
        with pytest.raises(ValueError, match="NaN or inf"):
            quantize(np.array([0.1, v]), 8)
        with pytest.raises(ValueError, match="NaN or inf"):
            quantize(torch.tensor([0.1, v]), 8)
    with pytest.raises(TypeError):
        quantize(np.array([1, 2]), 8)
    with pytest.raises(TypeError):
        quantize(torch.tensor([1, 2]), 8)


def test_dequantize_rejects_bad_codes():
    with pytest.raises(TypeError, match="uint8"):
        dequantize(np.array([1, 2], np.int64), 8)
    with pytest.raises(ValueError, match=">= 2\\*\\*bits"):
        dequantize(np.array([1, 16], np.uint8), 4)
    with pytest.raises(TypeError, match="uint8"):
        dequantize(torch.tensor([1, 2]), 8)


# ---------------------------------------------------------------- pack
@FAST
@given(bits=bits_st, n=st.integers(0, 5), k=st.integers(1, 13), data=st.data())
def test_pack_round_trip_and_size(bits, n, k, data):
    codes = data.draw(codes_st(bits, (n, k)))
    packed = pack_codes(codes, bits)
    assert packed.shape == (n, math.ceil(k * bits / 8)) and packed.dtype == np.uint8
    assert np.array_equal(unpack_codes(packed, bits, k), codes)


def test_pack_is_dense_and_checks():
    codes = np.arange(64, dtype=np.uint8).reshape(1, 64) % 16
    assert pack_codes(codes, 4).nbytes == 32
    assert pack_codes(codes[0], 4).shape == (32,)
    with pytest.raises(ValueError, match="bytes"):
        unpack_codes(np.zeros((2, 5), np.uint8), 4, 64)
    with pytest.raises(ValueError):
        pack_codes(codes, 3)  # codes up to 15 do not fit in 3 bits


# ---------------------------------------------------------------- distance
def test_circular_distance_against_loops():
    rng = np.random.default_rng(0)
    for bits in range(1, 9):
        a = rng.integers(0, 1 << bits, (6, 9), dtype=np.uint8)
        b = rng.integers(0, 1 << bits, (4, 9), dtype=np.uint8)
        for p in (1, 2):
            D = pairwise_circular_distance(a, b, bits, p)
            ref = np.array([[brute_circ(x, y, bits, p) for y in b] for x in a])
            assert np.array_equal(D, ref)
            assert circular_distance(a[0], b[0], bits, p) == ref[0, 0]


def test_circular_distance_uint8_wraparound():
    a, b = np.array([0, 255, 10], np.uint8), np.array([255, 0, 200], np.uint8)
    assert circular_distance(a, b, 8) == 1 + 1 + 66
    assert circular_distance(a, b, 8, p=2) == 1 + 1 + 66 * 66
    with pytest.raises(ValueError, match="p must"):
        circular_distance(a, b, 8, p=3)
    with pytest.raises(ValueError, match="same number"):
        circular_distance(a, b[:2], 8)


@FAST
@given(bits=bits_st, c=st.integers(0, 255), data=st.data())
def test_wraparound_invariance(bits, c, data):
    a, b = data.draw(codes_st(bits, 7)), data.draw(codes_st(bits, 7))
    m = 1 << bits
    shift = lambda x: ((x.astype(np.int64) + c) % m).astype(np.uint8)  # noqa: E731
    for p in (1, 2):
        assert circular_distance(shift(a), shift(b), bits, p) == circular_distance(a, b, bits, p)


@FAST
@given(bits=bits_st, data=st.data())
def test_metric_axioms(bits, data):
    a, b, c = (data.draw(codes_st(bits, 5)) for _ in range(3))
    d = lambda x, y: int(circular_distance(x, y, bits))  # noqa: E731
    assert d(a, a) == 0 and d(a, b) == d(b, a) >= 0
    assert (d(a, b) == 0) == np.array_equal(a, b)
    assert d(a, c) <= d(a, b) + d(b, c)
    assert d(a, b) <= 5 * (1 << (bits - 1))


# ---------------------------------------------------------------- Johnson
@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_johnson_hamming_equals_circular_l1_exhaustive(bits):
    m = 1 << bits
    vals = np.arange(m, dtype=np.uint8)[:, None]
    J = johnson_encode(vals, bits)
    assert J.shape == (m, 1)
    for x, y in itertools.product(range(m), repeat=2):
        ham = int(np.unpackbits(J[x] ^ J[y]).sum())
        d = (x - y) % m
        assert ham == min(d, m - d), (bits, x, y)


def test_johnson_vectors_match_distance():
    rng = np.random.default_rng(1)
    for bits in (1, 2, 3, 4):
        a = rng.integers(0, 1 << bits, (20, 11), dtype=np.uint8)
        J = johnson_encode(a, bits)
        assert J.shape == (20, math.ceil(11 * 2 ** (bits - 1) / 8))
        ham = np.unpackbits(J[:, None, :] ^ J[None, :, :], axis=-1).sum(-1)
        assert np.array_equal(ham, pairwise_circular_distance(a, a, bits))
    with pytest.raises(ValueError, match="bits"):
        johnson_encode(a, 5)


def test_one_bit_clifford_is_two_bit_johnson():
    # signs of (cos, sin) of the 2-bit angle <-> its Johnson code, up to a fixed relabelling of the
    # bits
    codes = np.arange(4, dtype=np.uint8)[:, None]
    J = np.unpackbits(johnson_encode(codes, 2), axis=-1, bitorder="little")[:, :2]
    theta = 2 * np.pi * (codes[:, 0] + 0.5) / 4
    signs = np.stack([np.cos(theta) > 0, np.sin(theta) > 0], 1).astype(np.uint8)
    ham_j = (J[:, None] != J[None]).sum(-1)
    ham_s = (signs[:, None] != signs[None]).sum(-1)
    assert np.array_equal(ham_j, ham_s)


# ---------------------------------------------------------------- baselines
def test_sphere_grid_quantizer():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((200, 6))
    sq = SphereGridQuantizer(bits=6).fit(x)
    codes = sq.encode(x)
    assert codes.dtype == np.uint8 and codes.max() <= 63 and codes.min() == 0
    step = (x.max(0) - x.min(0)) / 63
    assert (np.abs(sq.decode(codes) - x) <= step / 2 + 1e-6).all()
    with pytest.raises(RuntimeError, match="fit"):
        SphereGridQuantizer(4).encode(x)
    with pytest.raises(ValueError, match="dimensions"):
        sq.encode(x[:, :3])


def test_product_quantizer():
    with pytest.raises(ValueError, match="divide"):
        ProductQuantizer(10, 4, 8)
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 256, (600, 16), dtype=np.uint8)
    pq = ProductQuantizer(16, 4, 4)
    assert pq.bits_per_vector == 16
    pq.train(codes).add(codes)
    assert len(pq) == 600
    D, I = pq.search(codes[:20], 5)
    assert I.shape == (20, 5) and (I >= 0).all()
    assert (
        I[:, 0] == np.arange(20)
    ).mean() >= 0.2  # crude codec, but far better than chance (1/600)
    with pytest.raises(ValueError, match="k must"):
        pq.search(codes[:2], 601)


# ---------------------------------------------------------------- export
def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), L2p(16))


def test_uint8_encoder_matches_quantize_and_exports_dynamic():
    model = _model().eval()
    enc = UInt8Encoder(model, bits=8).eval()
    x = torch.randn(5, 8)
    out = enc(x)
    assert out.dtype == torch.uint8 and out.shape == (5, 8)
    assert torch.equal(out, quantize(to_turns(model(x)), 8))
    batch = torch.export.Dim("batch", min=1, max=1024)
    ep = torch.export.export(enc, (x,), dynamic_shapes=({0: batch},))
    for b in (1, 3, 17):
        xb = torch.randn(b, 8)
        assert torch.equal(ep.module()(xb), enc(xb))
    enc4 = UInt8Encoder(model, bits=4)
    assert int(enc4(x).max()) < 16


def test_encode_streams_loader():
    model = _model(1)
    model.train()
    x = torch.randn(23, 8)
    ds = torch.utils.data.TensorDataset(x, torch.zeros(23))
    loader = torch.utils.data.DataLoader(ds, batch_size=5)
    codes = encode(model, loader, bits=6, progress=False)
    assert model.training  # restored
    model.eval()
    with torch.no_grad():
        ref = quantize(to_turns(model(x)), 6).numpy()
    assert isinstance(codes, np.ndarray) and np.array_equal(codes, ref)
    plain = encode(model, torch.utils.data.DataLoader(x, batch_size=7), bits=6, progress=False)
    assert np.array_equal(plain, ref)


# ---------------------------------------------------------------- file format
@FAST
@given(
    bits=bits_st,
    n=st.integers(0, 6),
    k=st.integers(1, 9),
    geometry=st.sampled_from(["torusN", "torusC", "sphere", "codes"]),
    data=st.data(),
)
def test_save_load_round_trip(tmp_path_factory, bits, n, k, geometry, data):
    codes = data.draw(codes_st(bits, (n, k)))
    path = tmp_path_factory.mktemp("c") / "x.torc"
    save_codes(path, codes, bits, geometry=geometry)
    f = load_codes(path)
    assert np.array_equal(f.codes, codes) and f.codes.dtype == np.uint8
    assert (f.bits, f.n_angles, f.geometry, len(f)) == (bits, k, geometry, n)


def _small_file(tmp_path, bits=5):
    codes = np.random.default_rng(4).integers(0, 1 << bits, (7, 9), dtype=np.uint8)
    path = tmp_path / "c.torc"
    save_codes(path, codes, bits, meta={"note": "x"})
    return path, path.read_bytes(), codes


def test_file_is_small(tmp_path):
    codes = np.zeros((100, 64), np.uint8)
    save_codes(tmp_path / "a", codes, 4)
    assert os.path.getsize(tmp_path / "a") == 100 * 32 + 26 + len("torusN") + 4


def test_truncation_at_every_offset(tmp_path):
    _, data, _ = _small_file(tmp_path)
    for cut in range(len(data)):
        with pytest.raises(CodeFileError):
            parse_codes(data[:cut])
    with pytest.raises(CodeFileError):
        parse_codes(data + b"\0")


def test_every_flipped_byte_is_detected(tmp_path):
    _, data, codes = _small_file(tmp_path)
    assert np.array_equal(parse_codes(data).codes, codes)
    for i in range(len(data)):
        for flip in (0x01, 0x80, 0xFF):
            bad = bytearray(data)
            bad[i] ^= flip
            with pytest.raises(CodeFileError):
                parse_codes(bytes(bad))


def test_wrong_version_and_magic(tmp_path):
    path, data, _ = _small_file(tmp_path)
    bad = bytearray(data[:-4])
    bad[4:6] = struct.pack("<H", 2)
    bad = bytes(bad) + struct.pack("<I", zlib.crc32(bytes(bad)))
    with pytest.raises(CodeFileError, match="unsupported version 2"):
        parse_codes(bad)
    with pytest.raises(CodeFileError, match="magic"):
        parse_codes(b"NOPE" + data[4:])
    assert issubclass(CodeFileError, ValueError)


# ---------------------------------------------------------------- C export
CC = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


@pytest.mark.skipif(CC is None, reason="no C compiler (cc/gcc/clang) on PATH")
@pytest.mark.parametrize("bits", [8, 3])
def test_c_header_compiles_and_matches(tmp_path, bits):
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 1 << bits, (6, 13), dtype=np.uint8)
    codes[0] = 0
    codes[1] = (1 << bits) - 1  # wrap-around pair
    export_c_header(tmp_path / "emb.h", codes, bits, name="emb")
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include "emb.h"\n'
        "int main(void) {\n  for (int i = 0; i < EMB_N; ++i) {\n"
        "    for (int j = 0; j < EMB_N; ++j) {\n"
        '      printf("%u\\n", (unsigned)emb_l1(emb[i], emb[j], EMB_K));\n    }\n  }\n'
        "  return EMB_BITS == BITS ? 0 : 3;\n}\n".replace("BITS ?", f"{bits} ?")
    )
    exe = tmp_path / "main"
    subprocess.run(
        [
            CC,
            "-std=c99",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-pedantic",
            "-O2",
            "-o",
            str(exe),
            str(tmp_path / "main.c"),
        ],
        check=True,
        cwd=tmp_path,
    )
    res = subprocess.run([str(exe)], capture_output=True, text=True, check=True)
    got = np.array([int(v) for v in res.stdout.split()]).reshape(6, 6)
    assert np.array_equal(got, pairwise_circular_distance(codes, codes, bits))


def test_c_header_rejects_bad_name(tmp_path):
    with pytest.raises(ValueError, match="identifier"):
        export_c_header(tmp_path / "x.h", np.zeros((1, 2), np.uint8), 8, name="1bad-name")
