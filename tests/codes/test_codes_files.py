"""Code files: bounded reads of regular files only,
no leftovers after a failed write, C headers that compile for every accepted name, and streaming
memory of the encoders."""

import os
import shutil
import struct
import subprocess
import sys
import threading
import tracemalloc
import zlib

import numpy as np
import pytest
import torch

from torus_plugins.codes import (
    CodeFileError,
    encode,
    export_c_header,
    johnson_encode,
    load_codes,
    pairwise_circular_distance,
    quantize,
    save_codes,
)
from torus_plugins.codes.file_format import _HEAD, MAGIC, VERSION
from torus_plugins.heads import L2p

CODES = np.random.default_rng(0).integers(0, 256, size=(20, 6), dtype=np.uint8)


# ---- reads ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_devices_are_refused(path):
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist on this system")
    with pytest.raises(CodeFileError, match="not a regular file"):
        load_codes(path)


def test_directory_and_fifo_are_refused_without_blocking(tmp_path):
    with pytest.raises(CodeFileError, match="not a regular file"):
        load_codes(tmp_path)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result, done = {}, threading.Event()

    def call():
        try:
            load_codes(fifo)
        except CodeFileError as exc:
            result["error"] = str(exc)
        finally:
            done.set()

    threading.Thread(target=call, daemon=True).start()
    assert done.wait(10), "load_codes blocked on a FIFO"
    assert "not a regular file" in result["error"]


def _header(n, k=4, bits=8, glen=0, mlen=0):
    return _HEAD.pack(MAGIC, VERSION, bits, 0, k, n, glen, mlen)


@pytest.mark.parametrize("n", [10**6, 2**40, 2**64 - 1])
def test_crafted_counts_are_rejected_without_reading_or_allocating(tmp_path, n, monkeypatch):
    """A header declaring a huge count over a small file: the read is capped by the file's real
    size."""
    body = _header(n) + bytes(64)
    path = tmp_path / "crafted.torc"
    path.write_bytes(body + struct.pack("<I", zlib.crc32(body)))
    tracemalloc.start()
    try:
        with pytest.raises(CodeFileError):
            load_codes(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_reads_are_capped_by_the_declared_size(tmp_path, monkeypatch):
    """A valid file followed by 50 MB of garbage: rejected after reading at most declared size + 1
    bytes."""
    path = tmp_path / "long.torc"
    save_codes(path, CODES, bits=8)
    declared = path.stat().st_size
    with open(path, "ab") as fh:
        fh.truncate(declared + 50 * 2**20)  # sparse: costs no disk
    read_sizes = []
    real_fdopen = os.fdopen

    class Counting:
        def __init__(self, fh):
            self.fh = fh

        def read(self, n=-1):
            data = self.fh.read(n)
            read_sizes.append(len(data))
            return data

        def fileno(self):
            return self.fh.fileno()

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    monkeypatch.setattr(os, "fdopen", lambda *a, **k: Counting(real_fdopen(*a, **k)))
    with pytest.raises(CodeFileError):
        load_codes(path)
    assert sum(read_sizes) == declared + 1


# ---- writes leave no temporary file --------------------------------------------------------------


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


WRITERS = [lambda p: save_codes(p, CODES, bits=8), lambda p: export_c_header(p, CODES, bits=8)]


@pytest.mark.parametrize("write", WRITERS, ids=["save_codes", "export_c_header"])
def test_failed_rename_onto_a_directory_leaves_nothing(tmp_path, write):
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep").write_text("x")
    with pytest.raises(OSError):
        write(target)
    assert _leftovers(tmp_path) == [] and (target / "keep").read_text() == "x"


@pytest.mark.parametrize("write", WRITERS, ids=["save_codes", "export_c_header"])
@pytest.mark.parametrize("exc", [OSError(28, "No space left on device"), KeyboardInterrupt()])
@pytest.mark.parametrize("where", ["write", "fsync", "replace"])
def test_interrupted_write_leaves_the_old_file_and_no_tmp(tmp_path, monkeypatch, write, exc, where):
    target = tmp_path / "out"
    target.write_bytes(b"previous content")
    import torus_plugins.codes.atomic as ff

    if where in ("replace", "fsync"):
        monkeypatch.setattr(ff.os, where, lambda *a: (_ for _ in ()).throw(exc))
    else:
        real_open = open

        class Failing:
            def __init__(self, *a, **k):
                self.fh = real_open(*a, **k)

            def write(self, data):
                self.fh.write(data[:10])
                raise exc

            def __enter__(self):
                return self

            def __exit__(self, *e):
                self.fh.close()

        monkeypatch.setattr(ff, "open", Failing, raising=False)
    with pytest.raises(type(exc)):
        write(target)
    assert _leftovers(tmp_path) == []
    assert target.read_bytes() == b"previous content"


def test_invalid_arguments_create_no_file(tmp_path):
    for bad in (
        lambda p: save_codes(p, CODES.astype(np.int16), 8),
        lambda p: save_codes(p, CODES, 4),
        lambda p: export_c_header(p, CODES, 8, name="int"),
        lambda p: save_codes(p, CODES, 8, geometry="é"),
        lambda p: save_codes(p, CODES, 8, meta={"x": object()}),
        lambda p: save_codes(p, CODES, 8, meta=[1]),
        lambda p: save_codes(p, CODES, 8, meta={"x": float("nan")}),
    ):
        with pytest.raises((TypeError, ValueError)):
            bad(tmp_path / "x")
    assert list(tmp_path.iterdir()) == []


# ---- C header ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "int",
        "for",
        "static",
        "size_t",
        "uint8_t",
        "class",
        "bool",
        "NULL",
        "_Bool",
        "__x",
        "_Codes",
        "_codes",
        "1abc",
        "a-b",
        "a b",
        "",
        "codes\n",
        "ñame",
        "a.b",
    ],
)
def test_c_header_rejects_keywords_and_non_identifiers(tmp_path, name):
    with pytest.raises(ValueError, match="name"):
        export_c_header(tmp_path / "x.h", CODES, 8, name=name)
    assert list(tmp_path.iterdir()) == []


def test_c_header_rejects_non_string_name(tmp_path):
    with pytest.raises(TypeError, match="name must be a string"):
        export_c_header(tmp_path / "x.h", CODES, 8, name=3)


COMPILERS = [c for c in ("cc", "c++") if shutil.which(c)]


@pytest.mark.skipif(not COMPILERS, reason="no system C compiler")
@pytest.mark.parametrize("name", ["x", "int_", "Codes2", "my_index_v1", "for1"])
@pytest.mark.parametrize("bits", [3, 8])
def test_c_header_compiles_for_accepted_names_and_matches_python(tmp_path, name, bits):
    codes = CODES & np.uint8((1 << bits) - 1)
    export_c_header(tmp_path / "emb.h", codes, bits, name=name)
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include "emb.h"\n'
        "int main(void) { size_t i, j;\n"
        f"  for (i = 0; i < {name.upper()}_N; ++i) for (j = 0; j < {name.upper()}_N; ++j)\n"
        f'    printf("%u\\n", (unsigned){name}_l1({name}[i], {name}[j], {name.upper()}_K));\n'
        "  return 0; }\n"
    )
    expected = pairwise_circular_distance(codes, codes, bits).ravel()
    for compiler in COMPILERS:
        flags = ["-std=c99", "-pedantic"] if compiler == "cc" else ["-x", "c++", "-std=c++11"]
        exe = tmp_path / f"main_{compiler.replace('+', 'p')}"
        subprocess.run(
            [
                compiler,
                *flags,
                "-Wall",
                "-Wextra",
                "-Werror",
                "-o",
                str(exe),
                str(tmp_path / "main.c"),
            ],
            check=True,
            cwd=tmp_path,
            capture_output=True,
        )
        out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
        np.testing.assert_array_equal(np.array(out, dtype=np.int64), expected)


# ---- streaming memory ----------------------------------------------------------------------------


def _peak(fn):
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantize_peak_memory_is_at_most_twice_the_codes(dtype):
    turns = np.random.default_rng(0).random((100_000, 64)).astype(dtype) * 4 - 2
    codes, peak = _peak(lambda: quantize(turns, 8))
    assert codes.nbytes == 6_400_000
    assert peak <= 2 * codes.nbytes, (
        f"peak {peak / 1e6:.1f} MB for {codes.nbytes / 1e6:.1f} MB of codes"
    )
    sample = turns[::997].astype(np.float64)
    np.testing.assert_array_equal(
        codes[::997], np.mod(np.round(sample * 256), 256).astype(np.uint8)
    )


@pytest.mark.parametrize("bits", [2, 4])
def test_johnson_encode_peak_memory_is_at_most_twice_the_output(bits):
    codes = np.random.default_rng(1).integers(0, 1 << bits, size=(50_000, 64), dtype=np.uint8)
    out, peak = _peak(lambda: johnson_encode(codes, bits))
    assert peak <= 2 * out.nbytes, (
        f"peak {peak / 1e6:.1f} MB for {out.nbytes / 1e6:.1f} MB of Johnson codes"
    )
    # exact: Hamming distance of the packed codes == circular L1 of the angles, on a sample of pairs
    a, b = out[:50], out[50:100]
    hamming = np.unpackbits(a[:, None, :] ^ b[None, :, :], axis=-1).sum(-1)
    np.testing.assert_array_equal(
        hamming, pairwise_circular_distance(codes[:50], codes[50:100], bits)
    )


def test_encode_moves_batches_to_the_model_device_and_shows_progress(capsys):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 8), L2p(8)).double()
    seen = []
    model.register_forward_pre_hook(lambda m, args: seen.append(args[0].device))
    batches = [(torch.randn(7, 5, dtype=torch.float64), torch.zeros(7)) for _ in range(3)]
    codes = encode(model, batches, bits=8, device="cpu")
    assert codes.shape == (21, 4) and codes.dtype == np.uint8
    assert seen == [torch.device("cpu")] * 3
    assert "encode" in capsys.readouterr().err  # tqdm's bar
    with torch.no_grad():
        z = torch.cat([model(x) for x, _ in batches])
    expected = np.mod(
        np.round(np.arctan2(z[:, 1::2].numpy(), z[:, 0::2].numpy()) / (2 * np.pi) * 256), 256
    )
    np.testing.assert_array_equal(codes, expected.astype(np.uint8))
    assert model.training  # restored


def test_encode_on_a_model_without_parameters_and_bad_loaders():
    codes = encode(L2p(4), [torch.randn(3, 4)], progress=False)
    assert codes.shape == (3, 2)
    with pytest.raises(ValueError, match="no batches"):
        encode(L2p(4), [], progress=False)
    with pytest.raises(TypeError, match="batches must be tensors"):
        encode(L2p(4), [["a"]], progress=False)
    with pytest.raises(ValueError, match="device must be a torch device.*'gpu'"):
        encode(L2p(4), [torch.randn(3, 4)], progress=False, device="gpu")
    with pytest.raises(TypeError, match="progress"):
        encode(L2p(4), [torch.randn(3, 4)], progress="yes")


if sys.platform == "win32":  # pragma: no cover
    pytestmark = pytest.mark.skip("FIFOs and /dev are POSIX")
