"""Command line via main([...]) and once through the installed console script."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from torus_plugins.cli import main
from torus_plugins.codes import load_codes, quantize


def make(tmp_path, n=120, k=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    t = (rng.random((3, k))[y] + 0.05 * rng.normal(size=(n, k))) % 1.0
    z = np.stack([np.cos(2 * np.pi * t), np.sin(2 * np.pi * t)], -1).reshape(n, -1) / np.sqrt(k)
    np.save(tmp_path / "z.npy", z.astype(np.float32))
    np.save(tmp_path / "y.npy", y)
    return z, t, y


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "heads:" in out and "losses:" in out and "adapters:" in out


def test_list_marks_broken(capsys, monkeypatch):
    from torus_plugins import registry

    monkeypatch.setattr(
        registry,
        "describe",
        lambda kind: [
            {
                "name": "bad",
                "target": "nowhere:X",
                "distribution": None,
                "error": "ModuleNotFoundError: nowhere",
            }
        ],
    )
    assert main(["list"]) == 0
    assert "BROKEN: ModuleNotFoundError: nowhere" in capsys.readouterr().out


def test_eval_text_and_json(tmp_path, capsys):
    make(tmp_path)
    z, y = str(tmp_path / "z.npy"), str(tmp_path / "y.npy")
    assert main(["eval", z, "--labels", y, "--geometry", "torusN"]) == 0
    out = capsys.readouterr().out
    assert (
        "PQ(8,16)" in out and "8-bit grid" in out and "n/a" in out
    )  # n=120 < 256: PQ(8,*) reported n/a
    assert "bits/vec" in out and "raw PQ(4,2)" in out and "width 8" in out
    assert "nan" not in out.lower()
    assert main(["eval", z, "--labels", y, "--geometry", "torusN", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["rows"]) == 15 and doc["rows"][0]["setting"] == "none"
    by = {r["setting"]: r for r in doc["rows"]}
    assert (
        by["8-bit grid"]["bits_per_vector"] == 8 * 4 and by["sign"]["bits_per_vector"] == 8
    )  # k = 4 angles
    assert doc["rows"][0]["precision_at_1"] == pytest.approx(1.0)


def test_eval_pt_npz_and_query(tmp_path, capsys):
    zz, _, y = make(tmp_path)
    torch.save(torch.tensor(zz), tmp_path / "z.pt")
    np.savez(tmp_path / "q.npz", emb=zz[:20])
    np.save(tmp_path / "qy.npy", y[:20])
    assert (
        main(
            [
                "eval",
                str(tmp_path / "z.pt"),
                "--labels",
                str(tmp_path / "y.npy"),
                "--geometry",
                "sphere",
                "--query",
                str(tmp_path / "q.npz"),
                "--query-labels",
                str(tmp_path / "qy.npy"),
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["n_query"] == 20


@pytest.mark.parametrize(
    "case,needle",
    [
        ("missing", "does not exist"),
        ("length", "entries"),
        ("nan", "NaN"),
        ("ext", "unsupported"),
        ("odd", "even width"),
        ("garbage", "cannot read"),
        ("shape", "2-D"),
    ],
)
def test_eval_bad_inputs_exit_2(tmp_path, capsys, case, needle):
    z, _, y = make(tmp_path)
    emb, lab = tmp_path / "z.npy", tmp_path / "y.npy"
    if case == "missing":
        emb = tmp_path / "nope.npy"
    elif case == "length":
        np.save(lab, y[:-3])
    elif case == "nan":
        z[5, 1] = np.nan
        np.save(emb, z)
    elif case == "ext":
        emb = tmp_path / "z.csv"
        emb.write_text("1,2\n")
    elif case == "odd":
        np.save(emb, z[:, :7])
    elif case == "garbage":
        emb.write_bytes(b"not a numpy file")
    elif case == "shape":
        np.save(emb, z[:, 0])
    assert main(["eval", str(emb), "--labels", str(lab), "--geometry", "torusN"]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_usage_error_exit_2(capsys):
    assert main(["eval"]) == 2
    assert main([]) == 2


def test_export_roundtrip(tmp_path, capsys):
    _, t, _ = make(tmp_path)
    out = tmp_path / "z.torc"
    assert main(["export", str(tmp_path / "z.npy"), "--bits", "4", "--out", str(out)]) == 0
    cf = load_codes(out)
    assert cf.bits == 4 and cf.n_angles == 4 and cf.geometry == "torusN"
    expected = quantize(t, 4)
    assert (
        np.asarray(cf.codes) == expected
    ).mean() > 0.99  # float32 input may flip a code at a cell boundary
    assert (
        main(
            [
                "export",
                str(tmp_path / "z.npy"),
                "--bits",
                "4",
                "--out",
                str(out),
                "--geometry",
                "sphere",
            ]
        )
        == 2
    )
    assert main(["export", str(tmp_path / "z.npy"), "--bits", "9", "--out", str(out)]) == 2
    assert "torus" in capsys.readouterr().err


@pytest.mark.slow
def test_console_script(tmp_path):
    make(tmp_path, n=60)
    exe = os.path.join(os.path.dirname(sys.executable), "torus-plugins")
    ok = subprocess.run(
        [
            exe,
            "eval",
            str(tmp_path / "z.npy"),
            "--labels",
            str(tmp_path / "y.npy"),
            "--geometry",
            "torusC",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert len(json.loads(ok.stdout)["rows"]) == 15
    bad = subprocess.run(
        [exe, "eval", str(tmp_path / "missing.npy"), "--labels", "y.npy", "--geometry", "torusN"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr


def test_version_and_help_on_every_argument(capsys):
    from torus_plugins import __version__
    from torus_plugins.cli import build_parser

    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out
    parser = build_parser()
    subs = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, sp in subs.choices.items():
        for action in sp._actions:
            assert action.help, (name, action.dest)


def test_export_offers_only_torus_geometries(tmp_path, capsys):
    make(tmp_path)
    assert main(["export", "-h"]) == 0
    out = capsys.readouterr().out
    assert "{torusN,torusC}" in out and "sphere" not in out
    for g in ("torusN", "torusC"):
        assert (
            main(
                [
                    "export",
                    str(tmp_path / "z.npy"),
                    "--bits",
                    "8",
                    "--out",
                    str(tmp_path / "z.torc"),
                    "--geometry",
                    g,
                ]
            )
            == 0
        )


def test_warns_when_torus_data_is_off_the_torus(tmp_path, capsys):
    z, _, y = make(tmp_path)
    args = [
        "eval",
        str(tmp_path / "z.npy"),
        "--labels",
        str(tmp_path / "y.npy"),
        "--geometry",
        "torusN",
        "--no-pq",
    ]
    assert main(args) == 0
    assert "not on the torus" not in capsys.readouterr().err
    z[:, :2] *= 3  # first pair three times longer than the others
    np.save(tmp_path / "z.npy", z)
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "not on the torus" in err and "200.0%" in err
    x = np.random.default_rng(0).normal(
        size=(40, 6)
    )  # any vectors: fine as sphere, warned as torusN
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.arange(40) % 3)
    assert (
        main(
            [
                "eval",
                str(tmp_path / "x.npy"),
                "--labels",
                str(tmp_path / "y.npy"),
                "--geometry",
                "sphere",
                "--no-pq",
            ]
        )
        == 0
    )
    assert "not on the torus" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "case,needle",
    [
        ("one_point", "at least 2"),
        ("one_class", "single class"),
        ("singletons", "no query has another"),
        ("zero_pair", "exactly zero"),
        ("query_width", "width"),
    ],
)
def test_eval_degenerate_exit_2_never_nan(tmp_path, capsys, case, needle):
    z, _, y = make(tmp_path)
    extra = []
    if case == "one_point":
        z, y = z[:1], y[:1]
    elif case == "one_class":
        y = np.zeros_like(y)
    elif case == "singletons":
        y = np.arange(len(y))
    elif case == "zero_pair":
        z[3, :2] = 0
    elif case == "query_width":
        np.save(tmp_path / "q.npy", z[:10, :6])
        np.save(tmp_path / "qy.npy", y[:10])
        extra = ["--query", str(tmp_path / "q.npy"), "--query-labels", str(tmp_path / "qy.npy")]
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", y)
    code = main(
        [
            "eval",
            str(tmp_path / "z.npy"),
            "--labels",
            str(tmp_path / "y.npy"),
            "--geometry",
            "torusN",
            "--json",
        ]
        + extra
    )
    out, err = capsys.readouterr()
    assert code == 2 and needle in err and "Traceback" not in err and out == ""
