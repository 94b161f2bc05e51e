"""The CLI round trip a newcomer runs: ``export`` writes ref.torc, ``search`` queries it, ``eval``
reads it -- through the installed console script once, then every CLI line of the export-and-search
how-to page (docs/howto/export-search.md), and the error paths (one ``error:`` line, exit 2, no
traceback)."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from torus_plugins.cli import main
from torus_plugins.codes import load_codes, quantize, save_codes
from torus_plugins.metrics import retrieval
from torus_plugins.search import SearchParametersIVF, TorusIndexFlat, TorusIndexIVF, write_index

EXE = os.path.join(os.path.dirname(sys.executable), "torus-plugins")
CLI_PAGE = Path(__file__).resolve().parents[1] / "docs" / "howto" / "export-search.md"


def torus_data(n=150, k=8, seed=0):
    """(unit-norm torusN embeddings [n, 2k] float32, labels [n], turns [n, k]), 3 noisy classes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    t = (rng.random((3, k))[y] + 0.04 * rng.normal(size=(n, k))) % 1.0
    z = np.stack([np.cos(2 * np.pi * t), np.sin(2 * np.pi * t)], -1).reshape(n, -1) / np.sqrt(k)
    return z.astype(np.float32), y, t


def cli(*args, cwd):
    return subprocess.run(
        [EXE, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def run(*argv) -> int:
    return main([str(a) for a in argv])


@pytest.mark.slow
def test_round_trip_export_search_eval_through_the_console_script(tmp_path):
    z, y, _ = torus_data()
    np.save(tmp_path / "emb.npy", z)
    np.save(tmp_path / "labels.npy", y)
    np.save(tmp_path / "queries.npy", z[:5])
    ex = cli("export", "emb.npy", "--bits", "8", "--out", "ref.torc", cwd=tmp_path)
    assert ex.returncode == 0, ex.stderr
    ref = load_codes(tmp_path / "ref.torc")
    codes = np.asarray(ref.codes)
    assert ref.bits == 8 and codes.shape == (150, 8)

    se = cli("search", "ref.torc", "queries.npy", "-k", "3", cwd=tmp_path)
    assert se.returncode == 0, se.stderr
    lines = se.stdout.splitlines()
    assert lines[0].split("\t") == ["query", "rank", "id", "distance"]
    assert len(lines) == 1 + 5 * 3
    got = np.array([list(map(int, line.split("\t"))) for line in lines[1:]])
    flat = TorusIndexFlat(8, bits=8)
    flat.add(codes)
    D, I = flat.search(codes[:5], 3)  # queries quantised as export
    assert np.array_equal(got[:, 2].reshape(5, 3), I) and np.array_equal(got[:, 3].reshape(5, 3), D)
    assert (got[::3, 2] == np.arange(5)).all() and (got[::3, 3] == 0).all()  # itself first

    ev = cli("eval", "ref.torc", "--labels", "labels.npy", "--json", cwd=tmp_path)
    assert ev.returncode == 0, ev.stderr
    row = json.loads(ev.stdout)["rows"][0]
    expected = retrieval(codes, y, geometry="codes", bits=8)
    assert row["setting"] == "8-bit grid" and row["bits_per_vector"] == 64
    for key in ("precision_at_1", "mean_average_precision_at_r"):
        assert row[key] == pytest.approx(expected[key]), key
    assert "Traceback" not in ex.stderr + se.stderr + ev.stderr


def test_eval_of_the_code_file_equals_the_grid_row_of_the_float_table(tmp_path, capsys):
    z, y, _ = torus_data(n=120, k=4)
    np.save(tmp_path / "z.npy", z.astype(np.float64))
    np.save(tmp_path / "y.npy", y)
    for bits in (8, 4):
        out = tmp_path / f"z{bits}.torc"
        assert run("export", tmp_path / "z.npy", "--bits", bits, "--out", out) == 0
        capsys.readouterr()
        assert run("eval", out, "--labels", tmp_path / "y.npy", "--json") == 0
        stored = json.loads(capsys.readouterr().out)["rows"][0]
        assert stored["setting"] == f"{bits}-bit grid" and stored["bits_per_vector"] == bits * 4
        if bits == 8:  # the float table's 8-bit grid row stores exactly what export wrote
            assert (
                run(
                    "eval",
                    tmp_path / "z.npy",
                    "--labels",
                    tmp_path / "y.npy",
                    "--geometry",
                    "torusN",
                    "--no-pq",
                    "--json",
                )
                == 0
            )
            table = {r["setting"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
            for key in (
                "precision_at_1",
                "mean_average_precision_at_r",
                "circular_variance",
                "entropy",
                "unique_codes",
                "bits_per_vector",
            ):
                assert stored[key] == pytest.approx(table["8-bit grid"][key]), key


def test_search_outputs_npz_tsv_radius_and_ivf_files(tmp_path, capsys):
    _, _, t = torus_data(n=300, k=16)
    codes = quantize(t, 8)
    ref, q = tmp_path / "ref.torc", tmp_path / "q.torc"
    save_codes(ref, codes, 8)
    save_codes(q, codes[:7], 8)
    np.save(tmp_path / "q_codes.npy", codes[:7].astype(np.int64))  # integer codes, any dtype
    flat = TorusIndexFlat(16, bits=8)
    flat.add(codes)
    D, I = flat.search(codes[:7], 400)  # k > ntotal pads like faiss
    assert run("search", ref, q, "-k", 400, "--out", tmp_path / "r.npz") == 0
    assert "wrote 7 queries x k=400" in capsys.readouterr().out
    with np.load(tmp_path / "r.npz") as r:
        assert np.array_equal(r["distances"], D) and np.array_equal(r["ids"], I)
        assert (r["ids"][:, 300:] == -1).all()
    assert run("search", ref, tmp_path / "q_codes.npy", "-k", 400, "--out", tmp_path / "r.tsv") == 0
    rows = np.loadtxt(tmp_path / "r.tsv", dtype=np.int64, skiprows=1)
    assert len(rows) == 7 * 300 and (rows[:, 2] >= 0).all()  # no padding in the text
    assert np.array_equal(rows[:, 2].reshape(7, 300), I[:, :300])

    lims, Dr, Ir = flat.range_search(codes[:7], 900)
    assert run("search", ref, q, "--radius", 900, "--out", tmp_path / "rr.npz") == 0
    with np.load(tmp_path / "rr.npz") as r:
        assert np.array_equal(r["lims"], lims)
        assert np.array_equal(r["distances"], Dr) and np.array_equal(r["ids"], Ir)

    ivf = TorusIndexIVF(16, bits=8, nlist=8, nprobe=1)
    ivf.train(codes)
    ivf.add_with_ids(codes, np.arange(300) + 1000)
    write_index(ivf, tmp_path / "ref.tidx")
    capsys.readouterr()
    assert run("search", tmp_path / "ref.tidx", q, "-k", 5, "--nprobe", 8) == 0
    got = np.loadtxt(capsys.readouterr().out.splitlines()[1:], dtype=np.int64).reshape(7, 5, 4)
    De, Ie = ivf.search(
        codes[:7], 5, params=SearchParametersIVF(nprobe=8)
    )  # every list probed: exact
    assert np.array_equal(got[..., 2], Ie) and np.array_equal(got[..., 3], De)
    assert (Ie[:, 0] == 1000 + np.arange(7)).all()


def test_search_quantises_float_queries_like_export(tmp_path, capsys):
    z, _, _ = torus_data(n=80, k=8)
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "q.npy", z[10:20])
    for g in ("torusN", "torusC"):
        for name in ("z", "q"):
            assert (
                run(
                    "export",
                    tmp_path / f"{name}.npy",
                    "--bits",
                    6,
                    "--out",
                    tmp_path / f"{name}.torc",
                    "--geometry",
                    g,
                )
                == 0
            )
        capsys.readouterr()
        assert run("search", tmp_path / "z.torc", tmp_path / "q.npy", "-k", 4) == 0
        from_floats = capsys.readouterr().out
        assert run("search", tmp_path / "z.torc", tmp_path / "q.torc", "-k", 4) == 0
        assert capsys.readouterr().out == from_floats


@pytest.mark.parametrize(
    "case,needle",
    [
        ("missing_index", "does not exist"),
        ("corrupt_index", "truncated"),
        ("out_ext", "unsupported extension"),
        ("query_width", "width 10"),
        ("code_cols", "have 5 columns"),
        ("code_range", "must be in [0, 15]"),
        ("code_bits", "4 bits"),
        ("nprobe_flat", "--nprobe applies to IVF"),
        ("k_zero", "argument -k/--k: must be an integer in [1, "),
        ("query_1d", "2-D"),
        ("float_codes_index", "give the queries as codes"),
    ],
)
def test_search_bad_input_is_one_error_line_exit_2(tmp_path, capsys, case, needle):
    codes = np.random.default_rng(0).integers(0, 16, (40, 8), dtype=np.uint8)
    save_codes(tmp_path / "ref.torc", codes, 4)
    index, queries, extra = tmp_path / "ref.torc", tmp_path / "q.npy", []
    np.save(queries, codes[:3])
    if case == "missing_index":
        index = tmp_path / "nope.torc"
    elif case == "corrupt_index":
        index.write_bytes(index.read_bytes()[:20])
    elif case == "out_ext":
        extra = ["--out", tmp_path / "r.csv"]
    elif case == "query_width":
        np.save(queries, np.zeros((2, 10), np.float32) + 0.5)
    elif case == "code_cols":
        np.save(queries, codes[:3, :5])
    elif case == "code_range":
        np.save(queries, codes[:3].astype(np.int64) + 16)
    elif case == "code_bits":
        save_codes(tmp_path / "q8.torc", codes[:3], 8)
        queries = tmp_path / "q8.torc"
    elif case == "nprobe_flat":
        extra = ["--nprobe", 4]
    elif case == "k_zero":
        extra = ["-k", 0]
    elif case == "query_1d":
        np.save(queries, codes[0])
    elif case == "float_codes_index":
        save_codes(index, codes, 4, geometry="sphere")
        np.save(queries, np.zeros((2, 16), np.float32) + 0.5)
    assert run("search", index, queries, *extra) == 2
    out, err = capsys.readouterr()
    assert err.startswith("torus-plugins search: error:") and needle in err, err
    assert err.count("\n") == 1 and "Traceback" not in err and out == ""


@pytest.mark.parametrize(
    "case,needle",
    [
        ("needs_geometry", "--geometry is required"),
        ("geometry_differs", "differs from the geometry"),
        ("labels", "entries"),
        ("query_not_codes", "must be a code file too"),
        ("query_shape", "8 angles x 4 bits"),
        ("query_labels", "--query needs --query-labels"),
        ("missing", "does not exist"),
    ],
)
def test_eval_code_file_bad_input_exit_2(tmp_path, capsys, case, needle):
    z, y, t = torus_data(n=60, k=8)
    save_codes(tmp_path / "r.torc", quantize(t, 8), 8)
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", y)
    args = ["eval", tmp_path / "r.torc", "--labels", tmp_path / "y.npy"]
    if case == "needs_geometry":
        args[1] = tmp_path / "z.npy"
    elif case == "geometry_differs":
        args += ["--geometry", "torusC"]
    elif case == "labels":
        np.save(tmp_path / "y.npy", y[:-1])
    elif case == "query_not_codes":
        args += ["--query", tmp_path / "z.npy", "--query-labels", tmp_path / "y.npy"]
    elif case == "query_shape":
        save_codes(tmp_path / "q.torc", quantize(t, 4), 4)
        args += ["--query", tmp_path / "q.torc", "--query-labels", tmp_path / "y.npy"]
    elif case == "query_labels":
        args += ["--query", tmp_path / "r.torc"]
    elif case == "missing":
        args[1] = tmp_path / "nope.torc"
    assert run(*args) == 2
    out, err = capsys.readouterr()
    assert needle in err and err.count("\n") == 1 and "Traceback" not in err and out == ""


def test_eval_code_file_with_query_codes(tmp_path, capsys):
    _, y, t = torus_data(n=90, k=8)
    codes = quantize(t, 8)
    save_codes(tmp_path / "r.torc", codes[20:], 8)
    save_codes(tmp_path / "q.torc", codes[:20], 8)
    np.save(tmp_path / "ry.npy", y[20:])
    np.save(tmp_path / "qy.npy", y[:20])
    assert (
        run(
            "eval",
            tmp_path / "r.torc",
            "--labels",
            tmp_path / "ry.npy",
            "--query",
            tmp_path / "q.torc",
            "--query-labels",
            tmp_path / "qy.npy",
            "--json",
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    expected = retrieval(codes[:20], y[:20], codes[20:], y[20:], geometry="codes", bits=8)
    assert doc["n_query"] == 20 and doc["n_reference"] == 70
    assert doc["rows"][0]["precision_at_1"] == pytest.approx(expected["precision_at_1"])


def docs_cli_lines() -> list:
    """The ``torus-plugins ...`` lines of the export-and-search page's CLI block (optional ``[...]``
    parts and comments removed)."""
    blocks = re.findall(r"```bash\n(.*?)```", CLI_PAGE.read_text(), re.S)
    block = next(b for b in blocks if "torus-plugins search" in b)
    lines = []
    for line in block.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line.startswith("torus-plugins"):
            lines.append(re.sub(r"\s*\[[^\]]*\]", "", line))
    return lines


def test_every_documented_cli_line_runs(tmp_path, capsys, monkeypatch):
    lines = docs_cli_lines()
    assert any(" search " in line for line in lines)
    assert any("eval ref.torc" in line for line in lines)
    z, y, t = torus_data(n=200, k=8)  # < 256 vectors: 8-bit PQ rows skipped, with their reason
    np.save(tmp_path / "emb.npy", z)
    np.save(tmp_path / "labels.npy", y)
    np.save(tmp_path / "queries.npy", z[:4])
    save_codes(tmp_path / "queries.torc", quantize(t[:4], 8), 8)
    monkeypatch.chdir(tmp_path)
    for line in lines:
        argv = shlex.split(line)[1:]
        if "ref.tidx" in argv:  # an index file written from Python: an IVF index
            ref = np.asarray(load_codes(tmp_path / "ref.torc").codes)
            ivf = TorusIndexIVF(ref.shape[1], 8, nlist=16)
            ivf.train(ref)
            ivf.add(ref)
            write_index(ivf, tmp_path / "ref.tidx")
        assert main(argv) == 0, (line, capsys.readouterr().err)
    assert (tmp_path / "ref.torc").exists() and (tmp_path / "results.npz").exists()
