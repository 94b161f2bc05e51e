"""CLI inputs an adversarial user may give: FIFOs and directories, pickled data, out-of-range
integers. Each gets one ``error:`` line on stderr and exit 2: no hang, no traceback, no advice to
unpickle."""

import collections
import fractions
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

from torus_plugins.cli import build_parser, main


def _embeddings(tmp_path):
    rng = np.random.default_rng(0)
    t = rng.random((60, 4))
    z = np.stack([np.cos(2 * np.pi * t), np.sin(2 * np.pi * t)], -1).reshape(60, -1) / 2
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", rng.integers(0, 3, 60))
    return tmp_path / "z.npy", tmp_path / "y.npy"


def _run_with_timeout(argv, seconds=20):
    result = {}

    def call():
        result["code"] = main(argv)

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"torus-plugins {' '.join(argv)} still running after {seconds} s"
    return result["code"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
@pytest.mark.parametrize("command", ["export", "eval"])
def test_fifo_is_refused_without_hanging(tmp_path, capsys, command):
    fifo = tmp_path / "x.npy"
    os.mkfifo(fifo)
    _, y = _embeddings(tmp_path)
    if command == "export":
        argv = ["export", str(fifo), "--bits", "8", "--out", str(tmp_path / "o.torc")]
    else:
        argv = ["eval", str(fifo), "--labels", str(y), "--geometry", "torusN"]
    assert _run_with_timeout(argv) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "not a regular file but a FIFO" in err
    assert not (tmp_path / "o.torc").exists()


def test_directory_and_labels_fifo_are_refused(tmp_path, capsys):
    z, _ = _embeddings(tmp_path)
    (tmp_path / "d.npy").mkdir()
    out = str(tmp_path / "o")
    assert _run_with_timeout(["export", str(tmp_path / "d.npy"), "--bits", "8", "--out", out]) == 2
    assert "not a regular file but a directory" in capsys.readouterr().err
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "labels.npy")
        labels = str(tmp_path / "labels.npy")
        assert _run_with_timeout(["eval", str(z), "--labels", labels, "--geometry", "torusN"]) == 2
        assert "labels" in capsys.readouterr().err


def _pickled_files(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.savez(tmp_path / "obj.npz", emb=np.array([[1.0, 2.0]], dtype=object))
    torch.save(fractions.Fraction(1, 3), tmp_path / "obj.pt")
    torch.save({"emb": collections.OrderedDict(x=fractions.Fraction(1, 2))}, tmp_path / "nested.pt")
    return ["obj.npy", "obj.npz", "obj.pt", "nested.pt"]


@pytest.mark.parametrize("index", range(4))
def test_pickled_data_is_refused_without_suggesting_to_unpickle(tmp_path, capsys, index):
    name = _pickled_files(tmp_path)[index]
    out = str(tmp_path / "o.torc")
    assert main(["export", str(tmp_path / name), "--bits", "8", "--out", out]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "never unpickled" in err
    for advice in (
        "allow_pickle",
        "weights_only",
        "trust",
        "unsafely",
        "add_safe_globals",
        "Traceback",
    ):
        assert advice not in err, f"{advice!r} in {err!r}"


@pytest.mark.parametrize(
    "argv_tail, needle",
    [
        (
            ["--seed", "99999999999999999999"],
            "--seed: must be an integer in [0, 2147483647], got 99999999999999999999",
        ),
        (["--seed", "-1"], "--seed: must be an integer in [0, 2147483647], got -1"),
        (["--seed", "2147483648"], "got 2147483648"),
        (["--seed", "1e3"], "--seed: must be an integer in [0, 2147483647], got '1e3'"),
    ],
)
def test_eval_integer_arguments_out_of_range(tmp_path, capsys, argv_tail, needle):
    z, y = _embeddings(tmp_path)
    assert main(["eval", str(z), "--labels", str(y), "--geometry", "torusN"] + argv_tail) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


@pytest.mark.parametrize("bits", ["0", "9", "99999999999999999999", "-1", "2.5", "x"])
def test_export_bits_out_of_range(tmp_path, capsys, bits):
    z, _ = _embeddings(tmp_path)
    assert main(["export", str(z), "--bits", bits, "--out", str(tmp_path / "o.torc")]) == 2
    assert "--bits: must be an integer in [1, 8]" in capsys.readouterr().err


def test_every_integer_argument_is_range_checked():
    """No CLI option parses a bare int: each has a range, so nothing overflows a C int later."""
    parser = build_parser()
    for sub in parser._subparsers._group_actions[0].choices.values():
        for action in sub._actions:
            assert action.type is not int, f"{sub.prog} {action.option_strings}: int, no range"


def test_largest_seed_runs(tmp_path, capsys):
    z, y = _embeddings(tmp_path)
    argv = ["eval", str(z), "--labels", str(y), "--geometry", "torusN", "--seed", "2147483647"]
    assert main(argv) == 0


@pytest.mark.slow
def test_console_script_seed_overflow_exit_2(tmp_path):
    z, y = _embeddings(tmp_path)
    exe = os.path.join(os.path.dirname(sys.executable), "torus-plugins")
    bad = subprocess.run(
        [
            exe,
            "eval",
            str(z),
            "--labels",
            str(y),
            "--geometry",
            "torusN",
            "--seed",
            "99999999999999999999",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "error: argument --seed" in bad.stderr
    assert "Traceback" not in bad.stderr
