"""Index files whose fields lie, and sizes from user arguments (nlist, k x nq): a clear error
naming the field or argument and the memory it needs, before anything is allocated."""

import base64
import json
import os
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_search import filled

import torus_plugins._memory as memory
from torus_plugins._memory import AllocationError, check_allocation, format_bytes
from torus_plugins.codes import CodeFileError
from torus_plugins.search import (
    TorusIndexFlat,
    TorusIndexIVF,
    index_factory,
    read_index,
    write_index,
)

X = np.random.default_rng(28).integers(0, 256, (40, 8), dtype=np.uint8)
HEAD = struct.Struct("<4sHBBIQHI")


def _ivf(ids=None):
    return filled(TorusIndexIVF(8, 8, nlist=4, nprobe=4), X[:3], ids, train=X)


def _craft(tmp_path, index, edit, name="crafted.tidx"):
    """write_index, then edit the metadata and re-seal the file with a valid CRC."""
    good = tmp_path / "good.tidx"
    write_index(index, good)
    data = good.read_bytes()
    magic, ver, bits, res, k, n, glen, mlen = HEAD.unpack_from(data)
    off = HEAD.size
    meta = json.loads(data[off + glen : off + glen + mlen])
    edit(meta["torus_index"])
    m = json.dumps(meta).encode()
    body = (
        HEAD.pack(magic, ver, bits, res, k, n, glen, len(m))
        + data[off : off + glen]
        + m
        + data[off + glen + mlen : -4]
    )
    out = tmp_path / name
    out.write_bytes(body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF))
    return out


def _ids_b64(values) -> str:
    return base64.b64encode(np.asarray(values, "<i8").tobytes()).decode()


def _peak(fn):
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# ---- id maps -------------------------------------------------------------------------------


@pytest.mark.parametrize("ids", [[-1, -1, -1], [-12345, -12345, -12345], [0, -1, 2]])
def test_ivf_id_map_with_negative_ids_is_refused(tmp_path, ids):
    path = _craft(tmp_path, _ivf([5, 6, 7]), lambda m: m.__setitem__("idmap", _ids_b64(ids)))
    with pytest.raises(CodeFileError, match=r"idmap must be ids >= 0 .*negative"):
        read_index(path)


def test_flat_ids_with_negative_values_are_refused_as_a_bad_file(tmp_path):
    index = filled(TorusIndexFlat(8, 8), X[:3], [5, 6, 7])
    path = _craft(tmp_path, index, lambda m: m.__setitem__("ids", _ids_b64([-1, -1, -1])))
    with pytest.raises(CodeFileError, match=r"ids must be ids >= 0"):
        read_index(path)


def test_repeated_ids_round_trip_as_add_with_ids_allows_them(tmp_path):
    """Ids need not be unique (as in faiss IndexIDMap): a file may repeat them, like its index."""
    for index in (filled(TorusIndexFlat(8, 8), X[:3], [4, 4, 9]), _ivf([4, 4, 9])):
        write_index(index, tmp_path / "r.tidx")
        back = read_index(tmp_path / "r.tidx")
        got, want = back.search(X[:3], 3)[1], index.search(X[:3], 3)[1]
        assert sorted(got.ravel().tolist()) == sorted(want.ravel().tolist())


# ---- sizes declared by the file ------------------------------------------------------------


def test_ivf_file_declaring_2_to_the_24_lists_is_refused_before_allocating(tmp_path):
    path = _craft(tmp_path, _ivf(), lambda m: m.__setitem__("nlist", 1 << 24))
    assert path.stat().st_size < 4000
    with pytest.raises(CodeFileError, match=r"list_sizes must be 16777216 integers"):
        read_index(path)
    _, peak = _peak(lambda: pytest.raises(CodeFileError, read_index, path))
    assert peak < 1 << 20


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("nlist", 1 << 40, "list_sizes must be"),
        (
            "nseq",
            3 * 10**9,
            r"idmap must be 3000000000 values of int64 \(24000000000 bytes\), got '24 bytes'",
        ),
        ("nseq", 1 << 63, "nseq must be an integer in"),
        ("centroids", base64.b64encode(bytes(8)).decode(), "centroids must be 32 values"),
        ("seq", _ids_b64([0, 1]), "seq must be 3 values"),
        ("list_sizes", [1] * 1000, "list_sizes must be 4 integers"),
    ],
)
def test_every_size_field_is_checked_against_the_file(tmp_path, field, value, message):
    path = _craft(tmp_path, _ivf([5, 6, 7]), lambda m: m.__setitem__(field, value))
    _, peak = _peak(lambda: pytest.raises(CodeFileError, read_index, path))
    with pytest.raises(CodeFileError, match=message):
        read_index(path)
    assert peak < 1 << 20


def test_huge_insertion_counter_allocates_nothing_later(tmp_path):
    """nseq with no id map is the next implicit id, not a size: reading and adding stay small."""
    path = _craft(tmp_path, _ivf(), lambda m: m.__setitem__("nseq", 3 * 10**9))
    index = read_index(path)
    held = sorted(index.search(X[:3], 3)[1].ravel().tolist())
    _, peak = _peak(lambda: index.add_with_ids(X[3:5], [77, 78]))
    assert peak < 1 << 20
    ids = index.search(X[:5], 5)[1]
    assert {77, 78} <= set(ids.ravel().tolist()) and set(held) <= set(ids.ravel().tolist())
    assert index.ntotal == 5


def test_implicit_ids_survive_the_switch_to_explicit_ids():
    """Codes added with implicit ids keep them when explicit ids follow, after removals too."""
    index = filled(TorusIndexIVF(8, 8, nlist=4, nprobe=4), X[:10], train=X)
    index.remove_ids(np.array([0, 3, 4]))
    index.add_with_ids(X[10:12], [100, 101])
    D, I = index.search(X[:12], 1)
    expected = [-1 if i in (0, 3, 4) else i for i in range(10)] + [100, 101]
    for i, want in enumerate(expected):
        if want >= 0:
            assert D[i, 0] == 0 and I[i, 0] == want


INT_FIELDS = ["nlist", "nprobe", "nseq"]
TRAINED = {True: _ivf([5, 6, 7]), False: _ivf()}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    field=st.sampled_from(INT_FIELDS + ["list_sizes"]),
    value=st.integers(-(2**64), 2**64),
    explicit=st.booleans(),
)
def test_any_integer_in_a_size_field_is_refused_or_read_in_bounded_memory(
    tmp_path, field, value, explicit
):
    def edit(m):
        m[field] = [value, 0, 0, 0] if field == "list_sizes" else value

    path = _craft(tmp_path, TRAINED[explicit], edit)

    def load():
        try:
            index = read_index(path)
        except CodeFileError:
            return None
        index.add_with_ids(X[3:4], [50])  # once materialised an id per insertion number
        return index.search(X[:2], 2)

    result, peak = _peak(load)
    assert peak < 8 << 20
    if result is not None:
        assert result[0].shape == (2, 2)


# ---- sizes from arguments ------------------------------------------------------------------


@pytest.fixture
def four_gib(monkeypatch):
    """Pretend 4 GiB of memory are available (the real reading is tested in a subprocess below)."""
    monkeypatch.setattr(memory, "available_memory", lambda: 4 << 30)


def test_nlist_that_cannot_fit_names_nlist_and_the_bytes(four_gib):
    makers = (lambda: TorusIndexIVF(64, nlist=10**8), lambda: index_factory(64, "IVF100000000,T8"))
    for make in makers:
        (_, peak) = _peak(lambda make=make: pytest.raises(AllocationError, make))
        assert peak < 1 << 20
        message = (
            r"nlist=100000000.* need 60\.3 GiB \(64800000000 bytes\), more than the "
            r"4\.0 GiB of memory available"
        )
        with pytest.raises(ValueError, match=message):
            make()
    TorusIndexIVF(64, nlist=1 << 20)  # 648 MiB: fits


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_search_whose_results_cannot_fit_names_nq_k_and_the_bytes(four_gib, kind):
    index = filled(TorusIndexFlat(8, 8), X[:3]) if kind == "flat" else _ivf()
    with pytest.raises(
        MemoryError,
        match=r"nq=2 queries and k=1000000000 .* need 29\.8 GiB "
        r"\(32000000000 bytes\)",
    ):
        index.search(X[:2], k=10**9)
    with pytest.raises(AllocationError, match="nq=100000 queries and k=5000"):
        index.search(np.zeros((100_000, 8), np.uint8), k=5000)
    D, I = index.search(X[:2], k=100_000)  # 3 MB: fits; computed over the 3 codes, padded
    assert D.shape == (2, 100_000) and (I[:, 3:] == -1).all() and sorted(I[0, :3]) == [0, 1, 2]


def test_large_k_on_ivf_equals_flat_padded():
    index = filled(TorusIndexIVF(8, 8, nlist=4, nprobe=4), X, train=X)
    flat = filled(TorusIndexFlat(8, 8), X)
    for k in (3, 40, 2000, 70_000):
        D, I = index.search(X[:5], k)
        Df, If = flat.search(X[:5], k)
        assert np.array_equal(D, Df) and np.array_equal(I, If)


def test_allocation_check_and_format():
    assert format_bytes(1536) == "1.5 KiB" and format_bytes(12) == "12 B"
    assert format_bytes(16 << 30) == "16.0 GiB"
    check_allocation(1 << 20, "small")  # below the threshold: not even read
    assert memory.available_memory() > 1 << 20
    with pytest.raises(AllocationError, match=r"^a thing need"):
        check_allocation(1 << 62, "a thing")
    assert issubclass(AllocationError, ValueError) and issubclass(AllocationError, MemoryError)


SCRIPT = textwrap.dedent("""
    import json, resource, sys
    import numpy as np
    from torus_plugins.search import TorusIndexFlat, TorusIndexIVF, index_factory, read_index
    x = np.random.default_rng(0).integers(0, 256, (40, 8), dtype=np.uint8)
    flat = TorusIndexFlat(8, 8)
    flat.add(x[:3])
    ivf = TorusIndexIVF(8, 8, nlist=4, nprobe=4)
    ivf.train(x)
    ivf.add(x[:3])
    used = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + (3 << 30), resource.RLIM_INFINITY))
    out = {}
    cases = {"flat_search": lambda: flat.search(x[:1], k=10 ** 9),
             "ivf_search": lambda: ivf.search(x[:1], k=10 ** 9),
             "ivf_nlist": lambda: TorusIndexIVF(64, nlist=10 ** 8),
             "factory": lambda: index_factory(64, "IVF100000000,T8"),
             "crafted_nlist": lambda: read_index(sys.argv[1])}
    for name, case in cases.items():
        try:
            case()
            out[name] = "no error"
        except BaseException as exc:
            out[name] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(out))
""")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc are Linux's")
def test_real_memory_bound_under_an_address_space_limit(tmp_path):
    """A process limited to 3 GiB more address space: every case fails with the package's error
    (not numpy's MemoryError after allocating, nor the OOM killer)."""
    crafted = _craft(tmp_path, _ivf(), lambda m: m.__setitem__("nlist", 1 << 24))
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(crafted)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in ("flat_search", "ivf_search"):
        assert out[name].startswith(
            "AllocationError: search results for nq=1 queries and k=1000000000"
        ), out
        assert "14.9 GiB (16000000000 bytes)" in out[name]
    for name in ("ivf_nlist", "factory"):
        assert out[name].startswith("AllocationError: TorusIndexIVF(nlist=100000000)"), out
    assert out["crafted_nlist"].startswith("CodeFileError")
    assert "list_sizes must be 16777216" in out["crafted_nlist"]
