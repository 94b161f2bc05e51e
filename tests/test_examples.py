"""The ebjepa example: --quick end to end (results.json with provenance and per-seed aggregates,
plots, code files), determinism for a seed and thread count, early stopping, and the CIFAR-10 path:
md5 verified before any pickle is opened, Python-3 (str or bytes keys) pickles, clear errors for
missing files and keys."""

import hashlib
import json
import math
import os
import pickle
import sys

import numpy as np
import pytest
import torch

from torus_plugins.codes import load_codes

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
sys.path.insert(0, EXAMPLES)

import common  # noqa: E402
import ebjepa_cifar  # noqa: E402


def test_ebjepa_quick_end_to_end(tmp_path, capsys):
    out = tmp_path / "eb"
    ebjepa_cifar.main(["--quick", "--jobs", "2", "--out", str(out)])  # runs in 2 spawned processes
    printed = capsys.readouterr().out
    for text in (
        "EMBEDDED DEFAULT",
        "1 torch thread(s) per run",
        "load average",
        "wall time",
        "s CPU)",
    ):
        assert text in printed, text
    assert "mean +- std over 1 seed(s)" in printed and "ran the full budget of 2 epochs" in printed
    doc = json.loads((out / "results.json").read_text())
    prov = doc["provenance"]
    for key in (
        "package_version",
        "torch",
        "numpy",
        "faiss",
        "cpu_model",
        "threads",
        "seeds",
        "git_commit",
        "start_time_utc",
        "wall_seconds",
    ):
        assert key in prov, key
    assert prov["threads"] == 1 and prov["seeds"] == [0] and prov["wall_seconds"] > 0
    assert doc["args"]["quick"] is True and doc["args"]["koleo"] > 0
    assert set(doc["metrics"]) == {"sphere", "torusN", "torusC", "torusN-2x"}
    widths = {h: m["embedding_dim"] for h, m in doc["metrics"].items()}
    assert widths == {"sphere": 64, "torusN": 64, "torusC": 128, "torusN-2x": 128}
    for _head, m in doc["metrics"].items():
        rows = {r["setting"]: r for r in m["quantisation_table"]}
        assert {"none", "8-bit grid", "sign"} <= set(rows)
        p1 = rows["none"]["precision_at_1"]
        assert (
            p1["n"] == 1 and 0 <= p1["mean"] <= 1 and p1["std"] == 0 and math.isfinite(p1["mean"])
        )
        assert 0 <= m["linear_probe_acc"]["mean"] <= 1
        assert m["per_seed"][0]["epochs"] == 2 and len(m["per_seed"][0]["history"]["val_p1"]) == 2
    # the torus heads' 8-bit rows use one byte per angle: torusN has dim/2 circles, torusC dim
    # circles
    assert doc["metrics"]["torusN"]["quantisation_table"][1]["bits_per_vector"]["mean"] == 8 * 32
    assert doc["metrics"]["torusC"]["quantisation_table"][1]["bits_per_vector"]["mean"] == 8 * 64
    for png in (
        "p1_vs_bits.png",
        "train_loss.png",
        "val_p1.png",
        "angles_torusN.png",
        "angles_torusC.png",
        "angles_torusN-2x.png",
    ):
        assert (out / png).stat().st_size > 5000
    codes = load_codes(str(out / "codes_torusN_uint8.torc"))
    assert codes.codes.shape == (100, 32) and codes.bits == 8
    assert np.load(out / "labels_test.npy").shape == (100,)
    assert codes.meta["labels"] == "labels_test.npy"
    # the table says why a cell is empty (255 training vectors < 256 PQ centroids); one seed: no std
    table = printed[printed.index("P@1 of test queries") :]
    assert "PQ(8,16)" in table and "- [128 b] [1]" in table and "+-" not in table.split("\n", 1)[1]
    assert "\n[1] training needs >= 256 vectors, have 255" in table
    assert "n/a: the setting is not defined" in table
    # the run ends by listing every file it wrote
    listed = printed[printed.index(f"wrote 11 files to {out}:") :].splitlines()[1:12]
    assert sorted(name.strip() for name in listed) == sorted(p.name for p in out.iterdir())


def quick_args(*extra):
    return ebjepa_cifar.parse_args(["--quick", "--out", "unused", *extra])


def test_heads_are_space_or_comma_separated():
    assert quick_args().heads == ["sphere", "torusN", "torusC", "torusN-2x"]
    for argv in (
        ["--heads", "torusN", "sphere"],
        ["--heads", "torusN,sphere"],
        ["--heads", "torusN,", "sphere"],
        ["--heads", "torusN", "sphere,torusN"],
    ):
        assert quick_args(*argv).heads == ["torusN", "sphere"], argv


def test_out_has_help_text_naming_what_is_written(capsys):
    with pytest.raises(SystemExit):
        ebjepa_cifar.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--out OUT output folder: results.json, PNG plots, uint8 codes" in text


def test_a_run_is_deterministic_for_a_seed_and_thread_count():
    args = quick_args("--max-train", "200")
    a, b = ebjepa_cifar.run("torusC", 3, args), ebjepa_cifar.run("torusC", 3, args)
    assert a["history"] == b["history"] and np.array_equal(a["test_z"], b["test_z"])
    assert a["quantisation_table"] == b["quantisation_table"]
    c = ebjepa_cifar.run("torusC", 4, args)
    assert c["history"] != a["history"]


def test_early_stopping_on_a_plateau_restores_the_best_weights():
    model = torch.nn.Linear(1, 1)
    stop = common.EarlyStopping(patience=3, min_delta=0.01)
    scores = [0.5, 0.6, 0.7, 0.705, 0.709, 0.65, 0.9]
    stopped_at = None
    for epoch, score in enumerate(scores, 1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        if stop.step(score, model):
            stopped_at = epoch
            break
    assert stopped_at == 6 and stop.best_epoch == 3  # 0.705 and 0.709 are not 0.01 better than 0.7
    reason = stop.finish(model, max_epochs=100)
    assert (
        "stopped early at epoch 6" in reason
        and "best epoch 3" in reason
        and model.weight.item() == 3
    )
    late = common.EarlyStopping(patience=2, min_epochs=5)
    assert [late.step(s, model) for s in (0.9, 0.5, 0.5, 0.5, 0.5)] == [False] * 4 + [True]
    assert late.best_epoch == 1
    budget = common.EarlyStopping(patience=5)
    for score in (0.1, 0.2):
        budget.step(score, model)
    assert "full budget of 2 epochs" in budget.finish(model, 2)


@pytest.mark.parametrize(
    "argv, message",
    [(["--heads", "torusX"], "--heads"), (["--dim", "63"], "--dim"), (["--seeds", "0"], "--seeds")],
)
def test_bad_arguments_name_the_flag(argv, message, capsys):
    with pytest.raises(SystemExit):
        ebjepa_cifar.parse_args(argv)
    assert message in capsys.readouterr().err


# ------------------------------------------------------------------------------------ CIFAR-10 path

NAMES = [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch", "batches.meta"]
LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_fake_cifar(root, n=40, keys=str):
    """A tiny CIFAR-10 copy in the real layout, pickled by Python 3: dicts with 'data' uint8 [n,
    3072] rows (channel-major 32x32) and 'labels', and batches.meta with 'label_names'.
    ``keys=bytes`` writes bytes keys."""
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    k = (lambda s: s.encode()) if keys is bytes else (lambda s: s)
    for name in NAMES[:-1]:
        labels = [i % 10 for i in range(n)]
        data = rng.integers(0, 255, (n, 3072), dtype=np.uint8)
        with open(d / name, "wb") as f:
            pickle.dump({k("batch_label"): name, k("labels"): labels, k("data"): data}, f)
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({k("label_names"): LABELS, k("num_vis"): 3072}, f)
    return root


def md5(path):
    return hashlib.md5(open(path, "rb").read()).hexdigest()


@pytest.mark.parametrize("keys", [str, bytes])
def test_python3_cifar_pickles_load_with_skip_md5(tmp_path, keys):
    root = write_fake_cifar(tmp_path / "cifar", keys=keys)
    xtr, ytr, xte, yte, classes = ebjepa_cifar.load_cifar10(str(root), skip_md5=True)
    assert (
        xtr.shape == (200, 3, 32, 32) and xtr.dtype == torch.uint8 and xte.shape == (40, 3, 32, 32)
    )
    assert ytr[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1] and classes == LABELS
    raw = pickle.load(open(root / "cifar-10-batches-py" / "test_batch", "rb"))
    first = raw[b"data" if keys is bytes else "data"][0].reshape(3, 32, 32)
    assert torch.equal(xte[0], torch.from_numpy(first))
    # the folder itself works as --data-dir too
    assert (
        ebjepa_cifar.load_cifar10(str(root / "cifar-10-batches-py"), skip_md5=True)[0].shape[0]
        == 200
    )


def test_cifar_files_matching_the_md5_list_load_without_skip(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    root = write_fake_cifar(tmp_path / "cifar")
    d = root / "cifar-10-batches-py"
    monkeypatch.setattr(CIFAR10, "train_list", [[f, md5(d / f)] for f in NAMES[:5]])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", md5(d / "test_batch")]])
    monkeypatch.setattr(CIFAR10, "meta", dict(CIFAR10.meta, md5=md5(d / "batches.meta")))
    assert ebjepa_cifar.load_cifar10(str(root))[0].shape == (200, 3, 32, 32)


class Payload:
    """Unpickling this creates a file: proof that a pickle was opened."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_wrong_md5_is_refused_before_unpickling(tmp_path, capsys):
    root = write_fake_cifar(tmp_path / "cifar")
    marker = tmp_path / "pickle_was_opened"
    for name in NAMES:
        with open(root / "cifar-10-batches-py" / name, "wb") as f:
            pickle.dump({"data": Payload(str(marker))}, f)
    with pytest.raises(SystemExit) as exc:
        ebjepa_cifar.main(["--quick", "--data-dir", str(root), "--out", str(tmp_path / "out")])
    msg = str(exc.value)
    assert "md5" in msg and "data_batch_1" in msg and "--skip-md5" in msg
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_missing_files_and_keys_are_clear_errors(tmp_path):
    with pytest.raises(SystemExit, match="missing data_batch_1.*test_batch.*batches.meta"):
        ebjepa_cifar.load_cifar10(str(tmp_path / "nowhere"))
    root = write_fake_cifar(tmp_path / "cifar")
    with open(root / "cifar-10-batches-py" / "data_batch_3", "wb") as f:
        pickle.dump({"pixels": np.zeros((2, 3072), np.uint8), "labels": [0, 1]}, f)
    with pytest.raises(SystemExit) as exc:
        ebjepa_cifar.load_cifar10(str(root), skip_md5=True)
    assert "data_batch_3 has no key 'data'" in str(exc.value) and "'pixels'" in str(exc.value)


def test_cifar_end_to_end_quick(tmp_path):
    root = write_fake_cifar(tmp_path / "cifar")
    out = tmp_path / "run"
    res = ebjepa_cifar.main(
        [
            "--quick",
            "--heads",
            "torusN",
            "--data-dir",
            str(root),
            "--skip-md5",
            "--backbone",
            "smallcnn",
            "--out",
            str(out),
        ]
    )
    assert res["provenance"]["args"]["data_dir"] == str(root)
    doc = json.loads((out / "results.json").read_text())
    assert set(doc["metrics"]) == {"torusN"} and doc["args"]["skip_md5"] is True


def test_optimise_refuses_a_non_finite_loss_before_touching_the_weights():
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([w], lr=0.1)
    assert common.optimise(opt, (w * 2).sum(), "train") == 6.0 and torch.allclose(
        w.detach(), torch.full((3,), 0.8)
    )
    for bad in (float("nan"), float("inf")):
        with pytest.raises(RuntimeError, match=f"train step 3: loss became {bad}"):
            common.optimise(opt, (w * bad).sum(), "train step 3")
        assert torch.allclose(w.detach(), torch.full((3,), 0.8))  # no step was taken
