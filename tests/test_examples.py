"""The two examples end to end in --quick mode (metrics computed and finite, code files load, plots written),
their --data-dir errors, the CIFAR-10 pickle path on a tiny fake copy, and the mel front end against librosa."""

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


def test_ebjepa_quick_end_to_end(tmp_path):
    out = tmp_path / "eb"
    ebjepa_cifar.main(["--quick", "--out", str(out), "--seed", "1"])
    res = json.loads((out / "results.json").read_text())
    assert res["dataset"] == "sklearn_digits" and "EMBEDDED DEFAULT" in res["data_note"]
    assert set(res["heads"]) == {"sphere", "torusN", "torusC"}
    for head, r in res["heads"].items():
        for key in ("linear_probe_acc", "knn_p1_float", "effective_rank", "torus_score", "intrinsic_dimension",
                    "spectral_gap_ratio"):
            assert isinstance(r[key], float) and math.isfinite(r[key]), (head, key)
        assert 0 <= r["linear_probe_acc"] <= 1 and 0 <= r["knn_p1_float"] <= 1
        assert set(r["knn_p1_bits"]) == {"8", "4", "2", "1"}
        assert len(r["betti"]) == 3 and all(isinstance(b, int) for b in r["betti"])
        assert {row["setting"] for row in r["quantisation_table"]} >= {"none", "8-bit grid", "1-bit"}
        assert all_finite(r)
        n_cols = r["n_angles"] or r["embedding_dim"]
        check_code_file(str(out / r["codes_file"]), res["n_test"], n_cols)
    for png in ("p1_vs_bits.png", "p1_vs_bits_paper_table.png", "loss.png", "angles_torusN.png",
                "angles_torusC.png", "persistence_sphere.png", "persistence_torusN.png", "persistence_torusC.png"):
        assert (out / png).stat().st_size > 0


def write_fake_cifar(root, n_per_batch=40, n_test=30):
    """A tiny CIFAR-10 copy in the real on-disk format: pickled dicts with 'data' uint8 [N, 3072] rows
    (channel-major 32x32), 'labels', 'batch_label', 'filenames', and batches.meta with 'label_names'. (The
    original Python-2 pickles have str keys, which pickle.load(encoding='latin1') returns as str, as these do.)"""
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def batch(n, name):
        labels = [int(i % 10) for i in range(n)]
        data = np.zeros((n, 3072), dtype=np.uint8)
        for i, y in enumerate(labels):       # class-dependent colour so the probe has something to find
            img = rng.integers(0, 60, (3, 32, 32)).astype(np.uint8)
            img[y % 3] += np.uint8(40 + 15 * y)
            data[i] = img.reshape(-1)
        with open(d / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels, "data": data,
                         "filenames": [f"{name}_{i}.png" for i in range(n)]}, f, protocol=2)

    for k in range(1, 6):
        batch(n_per_batch, f"data_batch_{k}")
    batch(n_test, "test_batch")
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({"num_cases_per_batch": n_per_batch, "label_names": names, "num_vis": 3072}, f,
                    protocol=2)
    return root


def test_ebjepa_reads_the_cifar10_pickle_layout(tmp_path):
    root = write_fake_cifar(tmp_path / "cifar")
    xtr, ytr, xte, yte, classes = ebjepa_cifar.load_cifar10(str(root))
    assert xtr.shape == (200, 3, 32, 32) and xtr.dtype == torch.uint8 and xte.shape == (30, 3, 32, 32)
    assert ytr.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1] and len(classes) == 10
    # pointing at the cifar-10-batches-py folder itself works too
    assert ebjepa_cifar.load_cifar10(str(root / "cifar-10-batches-py"))[0].shape[0] == 200
    out = tmp_path / "run"
    res = ebjepa_cifar.main(["--quick", "--heads", "torusN", "--data-dir", str(root), "--out", str(out)])
    assert res["dataset"] == "cifar10" and res["n_train"] == 200 and res["n_test"] == 30
    assert all_finite(json.loads((out / "results.json").read_text()))


@pytest.mark.parametrize("layout", ["missing", "empty", "partial"])
def test_ebjepa_bad_data_dir_is_a_clear_error(tmp_path, layout, capsys):
    d = tmp_path / "data"
    if layout != "missing":
        (d / "cifar-10-batches-py").mkdir(parents=True) if layout == "partial" else d.mkdir()
    if layout == "partial":
        (d / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"x")
    with pytest.raises(SystemExit) as exc:
        ebjepa_cifar.main(["--quick", "--data-dir", str(d), "--out", str(tmp_path / "out")])
    msg = str(exc.value)
    assert str(d) in msg and "cifar-10-batches-py" in msg and "data_batch_1" in msg and "test_batch" in msg
    if layout == "partial":
        assert "lacks" in msg and "batches.meta" in msg
    assert not (tmp_path / "out").exists()   # no silent fallback to the embedded data
