"""Plots render to real PNG files."""

import numpy as np

from torus_plugins.metrics import betti_numbers
from torus_plugins.plot import plot_angles, plot_p1_vs_bits, plot_persistence

PNG = b"\x89PNG\r\n\x1a\n"


def check_png(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == PNG
    assert 5_000 < len(data) < 2_000_000


def test_plots(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    t = (np.array([[0.1, 0.2], [0.5, 0.95], [0.8, 0.5]])[y] + 0.05 * rng.normal(size=(300, 2))) % 1
    z = np.stack([np.cos(2 * np.pi * t), np.sin(2 * np.pi * t)], -1).reshape(300, 4)
    check_png(plot_angles(z, y, tmp_path / "angles.png"))
    c = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    _, dgms = betti_numbers(np.c_[np.cos(c), np.sin(c)], maxdim=1)
    check_png(plot_persistence(dgms, tmp_path / "pd.png"))
    runs = {"torusN": [(8, 0.5), (64, 0.9), (512, 0.95)],
            "sphere": [{"bits_per_vector": 16, "precision_at_1": 0.6}, {"bits_per_vector": 8,
                                                                          "precision_at_1": None}]}
    out = plot_p1_vs_bits(runs, tmp_path / "p1.png")
    assert out == str(tmp_path / "p1.png")
    check_png(out)
