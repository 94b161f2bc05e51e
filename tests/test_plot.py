"""Plots render to real PNG files; inputs are per-seed values (error bars) or single numbers."""

import numpy as np
import pytest

from torus_plugins.metrics import betti_numbers
from torus_plugins.plot import (
    plot_angles,
    plot_few_shot,
    plot_loss_curves,
    plot_p1_vs_bits,
    plot_persistence,
    plot_spectrograms,
)
from torus_plugins.report import aggregate, aggregate_rows

PNG = b"\x89PNG\r\n\x1a\n"


def check_png(path, shape=None):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == PNG
    assert 5_000 < len(data) < 2_000_000
    if shape is not None:
        import matplotlib.image

        assert matplotlib.image.imread(str(path)).shape[:2] == shape


def torus_sample(n=300, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    t = (rng.random((3, k))[y] + 0.05 * rng.normal(size=(n, k))) % 1
    return np.stack([np.cos(2 * np.pi * t), np.sin(2 * np.pi * t)], -1).reshape(n, 2 * k) / np.sqrt(
        k
    ), y


def test_angles_several_pairs_with_class_names(tmp_path):
    z, y = torus_sample(k=6)
    one = plot_angles(z, y, tmp_path / "one.png", n_pairs=1)
    three = plot_angles(z, y, tmp_path / "three.png", n_pairs=3, class_names=["cat", "dog", "frog"])
    check_png(one)
    check_png(three)
    import matplotlib.image

    w1 = matplotlib.image.imread(one).shape[1]
    w3 = matplotlib.image.imread(three).shape[1]
    assert w3 > 2 * w1 - 200  # three panels side by side
    # only as many pairs as there are circles
    z2, y2 = torus_sample(k=2)
    check_png(plot_angles(z2, y2, tmp_path / "k2.png", n_pairs=3))
    with pytest.raises(ValueError, match="n_pairs"):
        plot_angles(z, y, tmp_path / "bad.png", n_pairs=0)


def test_persistence(tmp_path):
    c = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    _, dgms = betti_numbers(np.c_[np.cos(c), np.sin(c)], maxdim=1)
    check_png(plot_persistence(dgms, tmp_path / "pd.png"))


def test_p1_vs_bits_accepts_pairs_rows_and_seed_aggregates(tmp_path):
    seeds = [
        [
            {"setting": "none", "bits_per_vector": 1024, "precision_at_1": p},
            {"setting": "8-bit grid", "bits_per_vector": 128, "precision_at_1": p - 0.01},
            {"setting": "PQ(8,1)", "bits_per_vector": 8, "precision_at_1": None},
        ]
        for p in (0.9, 0.8, 0.85)
    ]
    runs = {
        "torusN": aggregate_rows(seeds),
        "sphere": [(8, [0.5, 0.6]), (64, 0.9), (512, (0.9, 0.95), "none")],
    }
    out = plot_p1_vs_bits(runs, tmp_path / "p1.png")
    assert out == str(tmp_path / "p1.png")
    check_png(out)


def test_few_shot_panels_and_loss_curves(tmp_path):
    res = {
        "validation: pow": {
            "sphere": {1: [0.5, 0.6, 0.55], 5: [0.8, 0.82]},
            "torusN": {1: aggregate([0.4, 0.5]), 5: 0.7},
        },
        "test: PER": {"sphere": {1: [0.3, 0.35], 5: [0.6, 0.62]}},
    }
    check_png(plot_few_shot(res, tmp_path / "fs.png"))
    with pytest.raises(ValueError, match="empty"):
        plot_few_shot({}, tmp_path / "x.png")
    curves = {"sphere": [[3.0, 2.0, 1.5], [3.1, 2.1]], "torusN": [2.5, 2.0, 1.0]}
    check_png(plot_loss_curves(curves, tmp_path / "loss.png"))


def test_spectrograms_one_row_per_four_panels(tmp_path):
    rng = np.random.default_rng(0)
    specs = [-80 + 60 * rng.random((128, 150)) for _ in range(5)]
    names = ["wren", "kite", "dove", "owl", "crow"]
    one_row = plot_spectrograms(
        specs[:4], names[:4], tmp_path / "four.png", seconds=3.0, ylabel="mel band"
    )
    two_rows = plot_spectrograms(
        specs, names, tmp_path / "five.png", seconds=3.0, title="synthetic"
    )
    check_png(one_row)
    check_png(two_rows)
    import matplotlib.image

    h1, h2 = (matplotlib.image.imread(p).shape[0] for p in (one_row, two_rows))
    assert h2 > 1.8 * h1 - 50  # a fifth clip starts a second row
    with pytest.raises(ValueError, match="one title per 2-D array"):
        plot_spectrograms(specs, names[:2], tmp_path / "x.png", seconds=3.0)
    with pytest.raises(ValueError, match=r"\(128,\)"):
        plot_spectrograms([specs[0][:, 0]], ["wren"], tmp_path / "x.png", seconds=3.0)
