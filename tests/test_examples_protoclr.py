"""The ProtoCLR bird-song example end to end in --quick mode (few-shot metrics finite, provenance,
plots written), determinism with a seed, its --data-dir errors, eval sets with too few clips per
class (checked before training), and the mel front end against librosa."""

import json
import math
import os
import sys

import numpy as np
import pytest
import torch

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
sys.path.insert(0, EXAMPLES)

import protoclr_birb  # noqa: E402

from torus_plugins.codes import load_codes  # noqa: E402


def all_finite(obj) -> bool:
    if isinstance(obj, dict):
        return all(all_finite(v) for v in obj.values())
    if isinstance(obj, list):
        return all(all_finite(v) for v in obj)
    if isinstance(obj, float):
        return math.isfinite(obj)
    return True


def test_protoclr_is_deterministic_with_a_seed(tmp_path):
    args = ["--quick", "--heads", "torusN", "--no-wide", "--koleo", "0.1"]
    a = protoclr_birb.main(args + ["--out", str(tmp_path / "a")])["rows"]["torusN"]["runs"][0]
    b = protoclr_birb.main(args + ["--out", str(tmp_path / "b")])["rows"]["torusN"]["runs"][0]
    assert (
        a["history"] == b["history"] and a["few_shot"] == b["few_shot"] and a["stop"] == b["stop"]
    )


def test_protoclr_quick_end_to_end(tmp_path, capsys):
    out = tmp_path / "birb"
    protoclr_birb.main(["--quick", "--out", str(out)])
    printed = capsys.readouterr().out
    res = json.loads((out / "results.json").read_text())
    prov, metrics = res["provenance"], res["metrics"]
    assert (
        prov["threads"] == 1
        and prov["seeds"] == [0]
        and prov["wall_seconds"] > 0
        and "torch" in prov
    )
    assert (
        "SYNTHETIC" in metrics["data_note"]
        and "1 thread(s) x 1 job(s)" in printed
        and "wall time" in printed
    )
    assert set(metrics["rows"]) == {"sphere", "torusN", "torusN 64"}
    bits = {r: m["uint8_bits_per_vector"] for r, m in metrics["rows"].items()}
    assert bits == {
        "sphere": 8 * 32,
        "torusN": 8 * 16,
        "torusN 64": 8 * 32,
    }  # the wide row: equal bits
    for _row, m in metrics["rows"].items():
        assert set(m["few_shot"]) == {"pow", "synth_test"}
        for per_kind in m["few_shot"].values():
            assert set(per_kind) == {"float", "uint8", "encoder"}
            for leaf in (v for shots in per_kind.values() for v in shots.values()):
                assert 0 <= leaf["mean"] <= 1 and leaf["std"] == 0.0 and leaf["n"] == 1
        run = m["runs"][0]
        assert (
            run["epochs"] == 2
            and "full budget of 2 epochs" in run["stop"]
            and run["stop"] in printed
        )
        assert len(run["history"]["train"]) == len(run["history"]["val"]) == 2 and all_finite(run)
    for png in (
        "few_shot.png",
        "loss_train.png",
        "loss_val.png",
        "spectrograms.png",
        "angles_torusN.png",
        "angles_torusN_64.png",
    ):
        assert (out / png).stat().st_size > 0
    # uint8 codes of the torus rows (seed 0) per eval set, with their labels; the sphere row's grid
    # codes are not torus codes and are not written
    for row, n_angles in (("torusN", 16), ("torusN_64", 32)):
        for split in ("pow", "synth_test"):
            f = load_codes(out / f"codes_{row}_{split}_uint8.torc")
            n = len(np.load(out / f"labels_{split}.npy"))
            assert f.bits == 8 and f.codes.shape == (n, n_angles)
            assert f.meta["split"] == split and f.geometry == "torusN"
    assert not list(out.glob("codes_sphere*"))
    listed = printed[printed.index(f"wrote 14 files to {out}:") :].splitlines()[1:15]
    assert sorted(name.strip() for name in listed) == sorted(
        p.name + ("/" if p.is_dir() else "") for p in out.iterdir()
    )
    # the synthetic set is in the BIRB / ProtoCLR format and labelled as synthetic
    root = out / "synthetic_birb"
    assert json.loads((root / "SYNTHETIC.json").read_text())["synthetic"] is True
    pow_ = torch.load(root / "eval" / "pow.pt", weights_only=True)
    assert set(pow_) == {"data", "label"} and pow_["data"].shape == (18, 24000)
    first = sorted((root / "train").iterdir())[0]
    assert torch.load(sorted(first.glob("*.pt"))[0], weights_only=True).shape == (24000,)


def write_birb(root, eval_counts, pow_counts=(7, 7)):
    """A tiny BIRB-layout folder: 2 training classes, pow with ``pow_counts`` clips per class, and a
    test set 'tiny' whose class folders wren, kite, dove, owl hold ``eval_counts`` clips (1 s, 16
    kHz, noise)."""
    gen = torch.Generator().manual_seed(0)
    for c in ("a", "b"):
        (root / "train" / c).mkdir(parents=True)
        for i in range(6):
            torch.save(torch.randn(16000, generator=gen), root / "train" / c / f"{i}.pt")
    for c, k in zip(("wren", "kite", "dove", "owl"), eval_counts):
        (root / "eval" / "tiny" / c).mkdir(parents=True)
        for i in range(k):
            torch.save(torch.randn(1, 16000, generator=gen), root / "eval" / "tiny" / c / f"{i}.pt")
    label = torch.cat([torch.full((k,), i) for i, k in enumerate(pow_counts)])
    torch.save(
        {"data": torch.randn(len(label), 16000, generator=gen), "label": label},
        root / "eval" / "pow.pt",
    )


def test_protoclr_small_eval_classes_are_skipped_before_training(tmp_path, capsys):
    d = tmp_path / "birb"
    write_birb(d, eval_counts=(7, 3, 6, 5))
    res = protoclr_birb.main(
        [
            "--quick",
            "--heads",
            "torusN",
            "--no-wide",
            "--data-dir",
            str(d),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    printed = capsys.readouterr().out
    skip = printed.index(
        "eval set tiny: skipping 2 class(es) with <= 5 clips: {'kite': 3, 'owl': 5}"
    )
    assert skip < printed.index("rows [")  # said before training starts
    fs = res["rows"]["torusN"]["few_shot"]
    assert set(fs) == {"pow", "tiny"} and all_finite(fs)


@pytest.mark.parametrize("where", ["test set", "pow"])
def test_protoclr_too_small_eval_set_fails_fast(tmp_path, where):
    d = tmp_path / "birb"
    write_birb(
        d,
        eval_counts=(7, 3, 6, 5) if where == "pow" else (6, 2, 4, 5),
        pow_counts=(9, 5) if where == "pow" else (7, 7),
    )
    with pytest.raises(SystemExit) as exc:
        protoclr_birb.main(["--quick", "--data-dir", str(d), "--out", str(tmp_path / "out")])
    msg = str(exc.value)
    assert "fewer than 2 classes have > 5 clips" in msg
    assert (
        ("{1: 5}" in msg)
        if where == "pow"
        else ("{'dove': 4, 'kite': 2, 'owl': 5}" in msg and "tiny" in msg)
    )
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written


@pytest.mark.parametrize("layout", ["missing", "no_eval", "bad_pow"])
def test_protoclr_bad_data_dir_is_a_clear_error(tmp_path, layout):
    d = tmp_path / "birb"
    if layout != "missing":
        for c in ("a", "b"):
            (d / "train" / c).mkdir(parents=True)
            torch.save(torch.zeros(1600), d / "train" / c / "x.pt")
    if layout == "bad_pow":
        (d / "eval").mkdir()
        torch.save({"waves": torch.zeros(2, 1600)}, d / "eval" / "pow.pt")
    with pytest.raises(SystemExit) as exc:
        protoclr_birb.main(["--quick", "--data-dir", str(d), "--out", str(tmp_path / "out")])
    msg = str(exc.value)
    assert "pow.pt" in msg and "train/" in msg
    assert {"missing": str(d), "no_eval": "eval/", "bad_pow": "'data' and 'label'"}[layout] in msg
    assert not (tmp_path / "out").exists()


def test_mel_front_end_matches_librosa():
    """torch.stft + librosa's filterbank vs librosa.feature.melspectrogram + power_to_db (numpy
    STFT)."""
    import librosa

    rng = np.random.default_rng(0)
    t = np.arange(int(0.7 * 16000)) / 16000
    y = (
        0.5 * np.sin(2 * np.pi * (1000 + 800 * t) * t) + 0.05 * rng.standard_normal(len(t))
    ).astype(np.float32)
    ref_power = librosa.feature.melspectrogram(
        y=y.astype(np.float64),
        sr=16000,
        n_fft=1024,
        hop_length=320,
        n_mels=128,
        fmin=50,
        fmax=8000,
        htk=True,
        norm=None,
        power=2.0,
        center=True,
        pad_mode="reflect",
        window="hann",
    )
    ref_db = librosa.power_to_db(ref_power, ref=1.0, amin=1e-10, top_db=None)
    front = protoclr_birb.MelFrontEnd()
    ours_db = front.db(torch.from_numpy(y)[None])[0].numpy()
    assert ours_db.shape == ref_db.shape == (128, 1 + len(y) // 320)
    np.testing.assert_allclose(ours_db, ref_db, atol=0.02)
    # min-max to [0, 1] per clip, then ProtoCLR's standardisation; the 6 s upstream clip gives 301
    # frames
    spec01 = front(torch.from_numpy(y)[None], standardise=False)
    assert (
        spec01.shape == (1, 1, 128, 36)
        and float(spec01.min()) == 0.0
        and float(spec01.max()) == 1.0
    )
    assert front(torch.zeros(2, 6 * 16000)).shape == (2, 1, 128, 301)


def test_heads_are_space_or_comma_separated_and_out_has_help(capsys):
    for argv in (["--heads", "sphere", "torusC"], ["--heads", "sphere,torusC"]):
        assert protoclr_birb.parse_args(argv).heads == ["sphere", "torusC"]
    assert protoclr_birb.parse_args([]).heads == ["sphere", "torusN"]
    with pytest.raises(SystemExit):
        protoclr_birb.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "output folder: results.json, PNG plots, uint8 codes" in text


def test_bad_arguments_are_clear_errors(capsys):
    for argv, text in (
        (["--heads", "hyperbolic"], "invalid choice: 'hyperbolic'"),
        (["--dim", "30"], "--dim must be a positive multiple of 4, got 30"),
    ):
        with pytest.raises(SystemExit):
            protoclr_birb.parse_args(argv)
        assert text in capsys.readouterr().err
