"""deploy.export's refusals that come before any quantisation (no ExecuTorch needed): where the
model hands over to its torus head (the layouts users write), unsupported heads and shapes, bad
calibration data, bits, paths; the atomic folder write; code agreement against a direct count."""

import importlib
import json
import os
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from torus_plugins import Clifford, L2p, ProjectionHead, Sphere, TorusMLPHead
from torus_plugins.adapters.timm import TorusTimmModel
from torus_plugins.deploy import code_agreement, export, find_split

export_module = importlib.import_module("torus_plugins.deploy.export")
X = torch.randn(8, 1, 6, 6, generator=torch.Generator().manual_seed(0))


def backbone():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
    )


class Encoder(nn.Module):
    """backbone / projector / head attributes, chained in forward."""

    def __init__(self, head, out=8, after=None):
        super().__init__()
        self.backbone, self.projector = backbone(), nn.Sequential(nn.Linear(4, out))
        self.head = head
        self.after = after

    def forward(self, x):
        z = self.head(self.projector(self.backbone(x)))
        return z if self.after is None else self.after(z)


def test_split_of_a_sequential():
    model = nn.Sequential(*backbone(), nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 8), L2p(8)).eval()
    split = find_split(model, X)
    names = (split.head_name, split.linear_name, split.geometry, split.n_angles)
    assert names == ("7", "6", "torusN", 4)
    assert split.linear is model[6]


def test_split_of_backbone_projector_head_attributes():
    split = find_split(Encoder(Clifford(8)).eval(), X)
    assert (split.head_name, split.linear_name, split.geometry, split.n_angles) == (
        "head",
        "projector.0",
        "torusC",
        8,
    )


def test_split_of_the_package_projection_head_and_timm_wrapper():
    model = TorusTimmModel(backbone(), ProjectionHead(4, 16, "l2p", hidden_dim=8)).eval()
    split = find_split(model, X)
    names = (split.head_name, split.linear_name, split.geometry)
    assert names == ("head.projection", "head.mlp.3", "torusN")


def test_split_of_the_mlp_head_reading_turns():
    head = TorusMLPHead(4, n_circles=3, hidden_dim=8, angle_map="turns")
    model = nn.Sequential(backbone(), head).eval()
    split = find_split(model, X)
    assert (split.head_name, split.linear_name, split.geometry, split.n_angles) == (
        "1.torus",
        "1.mlp.3",
        "torusC",
        3,
    )


@pytest.mark.parametrize(
    "model, match",
    [
        (Encoder(Sphere(8)), "SphereGridQuantizer"),
        (nn.Sequential(*backbone(), L2p(4)), "no nn.Linear layer before its torus head"),
        (
            nn.Sequential(*backbone(), nn.Linear(4, 8), nn.ReLU(), L2p(8)),
            "not the output of the last nn.Linear",
        ),
        (
            nn.Sequential(backbone(), TorusMLPHead(4, 3, 8, angle_map="sigmoid")),
            "sigmoid angle map",
        ),
        (nn.Sequential(*backbone(), nn.Linear(4, 8)), "no torus head is called"),
        (Encoder(L2p(8), after=lambda z: 2 * z), "something runs after the head"),
        (Encoder(L2p(8), after=lambda z: (z, z)), "must return the torus head's output"),
    ],
)
def test_unsupported_models_are_refused_with_the_reason(model, match):
    with pytest.raises(ValueError, match=match):
        find_split(model.eval(), X)


def test_a_head_called_twice_is_refused():
    class TwoViews(Encoder):
        def forward(self, x):
            self.head(self.projector(self.backbone(x)))
            return self.head(self.projector(self.backbone(x)))

    with pytest.raises(ValueError, match="called 2 times"):
        find_split(TwoViews(L2p(8)).eval(), X)


def test_export_refuses_the_sphere_and_non_modules_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="sphere head cannot be deployed.*SphereGridQuantizer"):
        export(Encoder(Sphere(8)), [X], tmp_path / "out")
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        export(lambda x: x, [X], tmp_path / "out")
    assert os.listdir(tmp_path) == []


MODEL = Encoder(L2p(8))


@pytest.mark.parametrize(
    "loader, error, match",
    [
        ([], ValueError, "yielded no batches"),
        (iter(()), ValueError, "yielded no batches"),
        (
            [X, X.index_fill(0, torch.tensor([3]), float("nan"))],
            ValueError,
            "batch 1 holds 36 NaN or inf",
        ),
        ([X.clone().fill_(float("inf"))], ValueError, "batch 0 holds 288 NaN or inf"),
        ([X.numpy()], TypeError, "expected a float tensor"),
        ([X.long()], TypeError, "floating-point tensor"),
        ([X, X[:, :, :5]], ValueError, "batch 1 has sample shape"),
        ([X[:0]], ValueError, "batch >= 1"),
        (5, TypeError, "iterable of input batches"),
    ],
)
def test_bad_calibration_data_is_refused(tmp_path, loader, error, match):
    with pytest.raises(error, match=match):
        export(MODEL, loader, tmp_path / "out")
    assert os.listdir(tmp_path) == []


def test_calibration_batches_accept_tuples_from_a_dataloader():
    data = torch.utils.data.TensorDataset(X, torch.arange(len(X)))
    batches = export_module.calibration_batches(torch.utils.data.DataLoader(data, batch_size=3))
    assert [len(b) for b in batches] == [3, 3, 2] and torch.equal(torch.cat(batches), X)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"bits": 0}, ValueError, r"bits must be an integer in \[1, 8\].*got 0"),
        ({"bits": 9}, ValueError, r"got 9"),
        ({"bits": 8.0}, TypeError, "bits must be an integer"),
        ({"bits": True}, TypeError, "bits must be an integer"),
        ({"max_batch": 0}, ValueError, "max_batch must be an integer >= 1"),
        ({"per_channel": 1}, TypeError, "per_channel must be a bool"),
        ({"c_name": "2head"}, ValueError, "c_name must be a C identifier"),
        ({"c_name": None}, TypeError, "c_name must be a string"),
    ],
)
def test_bad_options_are_refused(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        export(MODEL, [X], tmp_path / "out", **kwargs)


def test_paths_that_cannot_be_written_are_refused_before_any_work(tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("keep")
    cases = [
        (tmp_path / "missing" / "out", FileNotFoundError, "does not exist"),
        (tmp_path / "file" / "out", FileNotFoundError, "is not a folder"),
        (tmp_path / "taken", FileExistsError, "already exists"),
        (str(tmp_path / "file"), FileExistsError, "already exists"),
        (7, TypeError, "path must be a str or os.PathLike"),
    ]
    for path, error, match in cases:
        with pytest.raises(error, match=match):
            export(MODEL, [X], path)
    with pytest.raises(ValueError, match="not a previous export"):
        export(MODEL, [X], tmp_path / "taken", overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["file", "taken"]
    assert (tmp_path / "taken" / "mine.txt").read_text() == "keep"


def test_a_missing_edge_extra_is_named(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "executorch", None)  # as if not installed
    with pytest.raises(ModuleNotFoundError, match=r"\[edge\] extra.*torus-plugins\[edge\]"):
        export(MODEL, [X], tmp_path / "out")
    assert os.listdir(tmp_path) == []


# ---- the atomic folder write --------------------------------------------------------------------


def writer(text):
    def write(path):
        with open(path, "w") as fh:
            fh.write(text)

    return write


def failing_writer(path):
    with open(path, "w") as fh:
        fh.write("half a file")
    raise OSError(28, "No space left on device")


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    target = str(tmp_path / "out")
    with pytest.raises(OSError, match="No space left"):
        export_module._write_folder(
            target, {"a.bin": writer("a"), "b.bin": failing_writer}, {}, False
        )
    assert os.listdir(tmp_path) == []


def test_overwrite_replaces_a_previous_export_and_a_failure_keeps_it(tmp_path):
    target = str(tmp_path / "out")
    manifest = {"format": export_module.FORMAT}
    export_module._write_folder(target, {"a.bin": writer("first")}, dict(manifest), False)
    assert export_module.is_export(target)
    with pytest.raises(OSError):
        export_module._write_folder(
            target, {"a.bin": writer("second"), "b": failing_writer}, dict(manifest), True
        )
    assert os.listdir(tmp_path) == ["out"] and (tmp_path / "out" / "a.bin").read_text() == "first"
    export_module._write_folder(target, {"a.bin": writer("second")}, dict(manifest), True)
    assert os.listdir(tmp_path) == ["out"] and (tmp_path / "out" / "a.bin").read_text() == "second"
    written = json.loads((tmp_path / "out" / "manifest.json").read_text())
    digest = written["files"]["a.bin"]
    assert digest["bytes"] == 6 and len(digest["sha256"]) == 64


# ---- code agreement ------------------------------------------------------------------------------


def test_code_agreement_counts_circular_steps():
    device = np.array([[0, 255, 10, 128]], np.uint8)
    reference = np.array([[0, 0, 12, 0]], np.uint8)  # steps 0, 1 (across the wrap), 2, 128
    out = code_agreement(device, reference, bits=8)
    assert out == {
        "equal": 0.25,
        "within_one": 0.5,
        "mean_steps": 131 / 4,
        "max_steps": 128,
        "n_codes": 4,
    }
    wrap = code_agreement(np.array([[15]], np.uint8), np.array([[0]], np.uint8), bits=4)
    assert wrap["within_one"] == 1.0


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_code_agreement_matches_a_direct_count(bits, seed):
    rng = np.random.default_rng(seed)
    a, b = (rng.integers(0, 1 << bits, (5, 3)).astype(np.uint8) for _ in range(2))
    steps = [
        min((int(x) - int(y)) % (1 << bits), (int(y) - int(x)) % (1 << bits))
        for x, y in zip(a.ravel(), b.ravel())
    ]
    out = code_agreement(a, b, bits)
    assert out["equal"] == np.mean([s == 0 for s in steps]) and out["max_steps"] == max(steps)
    assert out["within_one"] == np.mean([s <= 1 for s in steps])
    assert code_agreement(b, a, bits) == out and code_agreement(a, a, bits)["equal"] == 1.0


def test_code_agreement_bad_input():
    a = np.zeros((2, 3), np.uint8)
    with pytest.raises(ValueError, match="same shape"):
        code_agreement(a, a[:1])
    with pytest.raises(TypeError, match="uint8"):
        code_agreement(a.astype(np.int16), a)
    with pytest.raises(ValueError, match="no codes"):
        code_agreement(a[:0], a[:0])
    with pytest.raises(ValueError, match=">= 2\\*\\*bits"):
        code_agreement(a + 16, a, bits=4)
