"""The ProtoCLR bird-song example end to end in --quick mode (few-shot metrics finite, code files load, plots
written), its --data-dir errors, determinism with a seed, and the mel front end against librosa."""

import json
import math
import os
import sys

import numpy as np
import pytest
import torch

from torus_plugins.codes import load_codes

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
sys.path.insert(0, EXAMPLES)

import protoclr_birb  # noqa: E402


def all_finite(obj) -> bool:
    if isinstance(obj, dict):
        return all(all_finite(v) for v in obj.values())
    if isinstance(obj, list):
        return all(all_finite(v) for v in obj)
    if isinstance(obj, float):
        return math.isfinite(obj)
    return True


def check_code_file(path, n_rows, n_cols):
    loaded = load_codes(path)
    assert loaded.codes.shape == (n_rows, n_cols) and loaded.codes.dtype == np.uint8 and loaded.bits == 8
    return loaded


def test_protoclr_is_deterministic_with_a_seed(tmp_path):
    a = protoclr_birb.main(["--quick", "--heads", "torusN", "--seed", "3", "--out", str(tmp_path / "a")])
    b = protoclr_birb.main(["--quick", "--heads", "torusN", "--seed", "3", "--out", str(tmp_path / "b")])
    ra, rb = a["heads"]["torusN"], b["heads"]["torusN"]
    assert ra["loss_history"] == rb["loss_history"] and ra["few_shot"] == rb["few_shot"]
    assert ((tmp_path / "a" / ra["codes_file"]).read_bytes() == (tmp_path / "b" / rb["codes_file"]).read_bytes())


def test_protoclr_quick_end_to_end(tmp_path):
    out = tmp_path / "birb"
    protoclr_birb.main(["--quick", "--out", str(out)])
    res = json.loads((out / "results.json").read_text())
    assert res["dataset"] == "synthetic_birb" and "SYNTHETIC" in res["data_note"]
    assert set(res["heads"]) == {"sphere", "torusN"}
    for head, r in res["heads"].items():
        assert set(r["few_shot"]) == {"pow", "synth_test"}
        for fs in r["few_shot"].values():
            assert set(fs) == {f"{k}shot_{kind}" for k in (1, 5) for kind in ("float", "uint8", "encoder")}
            for v in fs.values():
                assert 0 <= v["mean"] <= 1 and math.isfinite(v["std"])
        assert all_finite(r)
        n_pow = 3 * 6
        check_code_file(str(out / r["codes_file"]), n_pow, r["n_angles"] or r["embedding_dim"])
    for png in ("few_shot.png", "loss.png", "spectrograms.png", "angles_torusN.png"):
        assert (out / png).stat().st_size > 0
    # the synthetic set is in the BIRB / ProtoCLR format and labelled as synthetic
    root = out / "synthetic_birb"
    assert "SYNTHETIC" in (root / "README.txt").read_text()
    pow_ = torch.load(root / "eval" / "pow.pt", weights_only=True)
    assert set(pow_) == {"data", "label"} and pow_["data"].shape == (18, 16000)
    first = sorted((root / "train").iterdir())[0]
    assert torch.load(sorted(first.glob("*.pt"))[0], weights_only=True).shape == (16000,)


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
    """torch.stft + librosa's filterbank vs librosa.feature.melspectrogram + power_to_db (numpy STFT)."""
    import librosa
    rng = np.random.default_rng(0)
    t = np.arange(int(0.7 * 16000)) / 16000
    y = (0.5 * np.sin(2 * np.pi * (1000 + 800 * t) * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    front = protoclr_birb.MelFrontEnd()
    ours_power = front.power_mel(torch.from_numpy(y)[None].double().float())[0].double().numpy()
    ref_power = librosa.feature.melspectrogram(y=y.astype(np.float64), sr=16000, n_fft=1024, hop_length=320,
                                               n_mels=128, fmin=50, fmax=8000, htk=True, norm=None, power=2.0,
                                               center=True, pad_mode="reflect", window="hann")
    assert ours_power.shape == ref_power.shape == (128, 1 + len(y) // 320)
    np.testing.assert_allclose(ours_power, ref_power, rtol=1e-3, atol=1e-3 * ref_power.max())
    ours_db = front.db(torch.from_numpy(y)[None])[0].numpy()
    ref_db = librosa.power_to_db(ref_power, ref=1.0, amin=1e-10, top_db=None)
    np.testing.assert_allclose(ours_db, ref_db, atol=0.02)
    # the full 6 s clip of the upstream setting gives 301 frames
    assert front(torch.zeros(2, 6 * 16000)).shape == (2, 1, 128, 301)


def test_few_shot_rule_on_separable_toy_data():
    gen = torch.Generator().manual_seed(0)
    labels = torch.arange(4).repeat_interleave(8)
    z = torch.nn.functional.one_hot(labels, 8).float() + 0.05 * torch.randn(32, 8, generator=gen)
    res = protoclr_birb.few_shot(z, z, labels, (1, 5), 10, seed=0)
    assert res["1shot_float"]["mean"] == 1.0 and res["5shot_uint8"]["mean"] == 1.0
