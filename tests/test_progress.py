"""Progress on the long steps: IVF k-means iterations and ripser show a tqdm bar on a terminal (or
with progress=True), nothing otherwise, and the bar changes no result."""

import threading
import time

import numpy as np
import pytest

from torus_plugins import _progress
from torus_plugins.metrics import betti_numbers, shape_metrics
from torus_plugins.search import TorusIndexIVF, train_torus_centroids


@pytest.fixture
def no_delay(monkeypatch):
    """Show bars at once (the default waits 1 s so that short calls print nothing)."""
    monkeypatch.setattr(_progress, "DELAY", 0.0)
    monkeypatch.setattr(_progress, "REFRESH", 0.02)


def codes(n=2000, k=16, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, k), dtype=np.uint8)


def test_ivf_train_bar_counts_kmeans_iterations_and_changes_nothing(no_delay, capsys, monkeypatch):
    bars = []

    def recorded(*args, **kwargs):  # (bar, shown?) as created: close() disables a bar
        bar = make_bar(*args, **kwargs)
        bars.append((bar, not bar.disable))
        return bar

    make_bar = _progress.progress_bar
    monkeypatch.setattr(_progress, "progress_bar", recorded)
    x = codes()
    quiet = TorusIndexIVF(16, bits=8, nlist=32)
    quiet.train(x, progress=False)
    assert capsys.readouterr().err == "" and not bars[-1][1]
    shown = TorusIndexIVF(16, bits=8, nlist=32)
    shown.train(x, progress=True)
    err = capsys.readouterr().err
    assert "IVF k-means, 32 lists:   0%" in err and "0/20" in err  # shown at once on stderr
    bar, shown_bar = bars[-1]
    assert shown_bar and bar.n == bar.total == 20  # one step per iteration
    # one faiss call of 20 iterations == 20 calls of one iteration from the previous centroids
    assert np.array_equal(quiet.centroids, shown.centroids)
    assert np.array_equal(
        train_torus_centroids(x, 8, 32, niter=5, progress=True),
        train_torus_centroids(x, 8, 32, niter=5, progress=False),
    )


def test_default_progress_is_silent_when_stderr_is_not_a_terminal(no_delay, capsys):
    TorusIndexIVF(16, bits=8, nlist=8).train(codes(500))  # progress=None; stderr is no TTY
    rng = np.random.default_rng(0)
    th = 2 * np.pi * rng.random((300, 2))
    betti_numbers(np.c_[np.cos(th), np.sin(th)], landmarks=60)
    assert capsys.readouterr().err == ""


def test_ripser_shows_its_elapsed_time(no_delay, capsys):
    rng = np.random.default_rng(0)
    th = 2 * np.pi * rng.random((400, 2))
    torus = np.c_[np.cos(th[:, 0]), np.sin(th[:, 0]), np.cos(th[:, 1]), np.sin(th[:, 1])]
    betti, _ = betti_numbers(torus, landmarks=80, progress=True)
    err = capsys.readouterr().err
    assert "ripser H0-H2, 80 landmarks" in err and "elapsed" in err
    assert betti == betti_numbers(torus, landmarks=80, progress=False)[0]
    ticking = [t for t in threading.enumerate() if t.name == "torus-plugins-progress"]
    assert not ticking  # the refresh thread was joined


def test_running_refreshes_while_one_long_call_runs(no_delay, capsys):
    with _progress.running("one long call", progress=True):
        time.sleep(0.5)
    err = capsys.readouterr().err
    assert err.count("one long call: 00:00 elapsed") >= 2  # shown, then refreshed by the thread
    with _progress.running("silent", progress=False):
        time.sleep(0.05)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("bad", ["yes", 1, 0.5])
def test_bad_progress_is_a_type_error_naming_it(bad):
    with pytest.raises(TypeError, match="progress must be None"):
        TorusIndexIVF(16, bits=8, nlist=8).train(codes(100), progress=bad)
    with pytest.raises(TypeError, match="progress must be None"):
        shape_metrics(np.random.default_rng(0).random((50, 3)), progress=bad)
