"""deploy.export -> deploy.load round trip on tiny models (torusN in an nn.Sequential, torusC in a
module with backbone / projector / head): the program's int8 output is the activation feeding the
last Linear with the head's scale and zero point, codes follow the float pipeline, files are
checked on load, bad input is refused.

Each export runs PT2E calibration and the XNNPACK lowering, a few seconds; importing ExecuTorch and
its first XNNPACK lowering (which traces its own pattern graphs once per process) take most of this
file's time."""

import importlib
import json
import os

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip(
    "executorch", reason="needs the [edge] extra: pip install 'torus-plugins[edge]'"
)

from torus_plugins import Clifford, L2p, to_turns  # noqa: E402
from torus_plugins.codes import quantize  # noqa: E402
from torus_plugins.deploy import (
    ExportFileError,
    IntegerHead,  # noqa: E402
    code_agreement,
    export,
    integer_head_from_linear,
    load,
    load_integer_head,
)

export_module = importlib.import_module("torus_plugins.deploy.export")
SHAPE = (1, 8, 8)


def inputs(n, seed):
    return torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(seed))


class Encoder(nn.Module):
    """backbone / projector / head attributes."""

    def __init__(self, head, out):
        super().__init__()
        self.backbone = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
        )
        self.projector = nn.Sequential(nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, out))
        self.head = head

    def forward(self, x):
        return self.head(self.projector(self.backbone(x)))


def make_model(geometry):
    torch.manual_seed(0)
    if geometry == "torusN":
        model = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(128, 32),
            nn.ReLU(),
            nn.Linear(32, 12),
            L2p(12),
        )
    else:
        model = Encoder(Clifford(6), 6)
        model.train()
        with torch.no_grad():  # BatchNorm statistics of the data
            model(inputs(64, 1))
    return model.eval()


@pytest.fixture(scope="module", params=["torusN", "torusC"])
def exported(request, tmp_path_factory):
    model = make_model(request.param)
    path = tmp_path_factory.mktemp(request.param) / "encoder"
    info = export(model, inputs(96, 2).split(32), path, bits=8, max_batch=16)
    return request.param, model, str(path), info


def float_linear_input(model, x):
    linear = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    seen = []
    handle = linear.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    with torch.no_grad():
        model(x)
    handle.remove()
    return linear, seen[0]


def test_export_writes_the_folder_and_manifest(exported):
    geometry, model, path, info = exported
    assert sorted(os.listdir(path)) == ["encoder.pte", "head.h", "head.torh", "manifest.json"]
    manifest = json.loads(open(os.path.join(path, "manifest.json")).read())
    assert manifest == {k: v for k, v in info.items() if k != "path"}
    assert manifest["geometry"] == geometry and manifest["bits"] == 8
    assert manifest["sample_shape"] == list(SHAPE) and manifest["max_batch"] == 15
    assert manifest["n_angles"] == 6 and manifest["activations"]["width"] == 32
    assert manifest["quantizer"]["calibration_samples"] == 96 and manifest["versions"]["executorch"]
    head = load_integer_head(os.path.join(path, "head.torh"))
    assert (head.input_scale, head.input_zero_point) == (
        manifest["activations"]["scale"],
        manifest["activations"]["zero_point"],
    )
    assert head.input_zero_point == -128  # ReLU before the last Linear: [0, max] onto all of int8
    header = open(os.path.join(path, "head.h")).read()
    assert "torus_head_codes" in header and f"{geometry} integer head" in header
    assert 1000 < manifest["files"]["encoder.pte"]["bytes"] < 200_000


def test_program_output_is_the_int8_input_of_the_last_linear(exported):
    """Dequantised with the head's own scale and zero point, the program's int8 output equals the
    float model's input to the last Linear up to the int8 body's rounding: a wrong zero point
    shifts every value by >= 1 step, a wrong scale or cut point by far more."""
    _, model, path, info = exported
    encoder = load(path)
    x = inputs(200, 3)
    q = encoder.activations(x)
    assert q.dtype == torch.int8 and q.shape == (200, 32)
    _, a = float_linear_input(model, x)
    head = encoder.head
    real = head.input_scale * (q.double() - head.input_zero_point)
    error_steps = (real - a.double()).abs() / head.input_scale
    assert error_steps.mean() < 0.5 and torch.quantile(error_steps.flatten(), 0.99) < 4
    assert q.min() == -128  # ReLU zeros sit exactly at the zero point
    checks = info["checks"]
    assert checks["equal_to_pt2e_reference"] > 0.9 and checks["max_step_from_pt2e_reference"] <= 2
    assert checks["dequantised_error_steps"]["mean"] < 0.5


def test_codes_follow_the_float_pipeline(exported):
    """Device codes against quantize(to_turns(model(x)), 8): random codes would give equal ~ 1/256
    and within one step ~ 3/256; these small models keep most codes, nearly all within a step."""
    geometry, model, path, _ = exported
    encoder = load(path)
    x = inputs(300, 4)
    with torch.no_grad():
        float_codes = quantize(to_turns(model(x)), 8)
    device = encoder(x)
    assert device.dtype == torch.uint8 and device.shape == (300, 6)
    agreement = code_agreement(device, float_codes, 8)
    assert agreement["equal"] > 0.5 and agreement["within_one"] > 0.9, agreement
    assert agreement["mean_steps"] < 1, agreement
    # the head is the IntegerHead of the float Linear at the program's scale and zero point
    linear, _ = float_linear_input(model, x)
    rebuilt = integer_head_from_linear(
        linear,
        input_scale=encoder.scale,
        input_zero_point=encoder.zero_point,
        geometry=geometry,
        bits=8,
    )
    np.testing.assert_array_equal(device.numpy(), rebuilt.codes(encoder.activations(x).numpy()))


def test_a_wrong_zero_point_would_be_caught(exported):
    """The same activations through a head whose zero point is off by one step move clearly
    further from the float codes (here the mean distance about doubles)."""
    geometry, model, path, _ = exported
    encoder = load(path)
    x = inputs(300, 5)
    with torch.no_grad():
        float_codes = quantize(to_turns(model(x)), 8)
    q = encoder.activations(x).numpy()
    h = encoder.head
    shifted = IntegerHead(
        h.geometry, 8, h.weight, h.bias, h.input_scale, h.input_zero_point + 1, h.weight_scale
    )
    right = code_agreement(h.codes(q), float_codes, 8)["mean_steps"]
    wrong = code_agreement(shifted.codes(q), float_codes, 8)["mean_steps"]
    assert wrong > 1.5 * right, (right, wrong)


def test_loaded_encoder_calls(exported):
    _, _, path, _ = exported
    encoder = load(path)
    x = inputs(40, 6)  # more than the program's 15 samples: run in chunks
    codes = encoder(x)
    in_pieces = torch.cat([encoder(c) for c in x.split(7)])
    np.testing.assert_array_equal(codes.numpy(), in_pieces.numpy())
    as_numpy = encoder(x.numpy())
    assert isinstance(as_numpy, np.ndarray) and np.array_equal(as_numpy, codes.numpy())
    np.testing.assert_array_equal(encoder(x.double()).numpy(), codes.numpy())
    assert encoder(x[:0]).shape == (0, 6)
    assert "IntegerEncoder" in repr(encoder) and encoder.bits == 8
    with pytest.raises(ValueError, match=r"shape \[N, 1, 8, 8\]"):
        encoder(x[:, :, :4])
    with pytest.raises(ValueError, match="NaN or inf"):
        encoder(x.index_fill(0, torch.tensor([2]), float("nan")))
    with pytest.raises(TypeError, match="floating-point"):
        encoder(x.long())
    with pytest.raises(TypeError, match="torch tensor or numpy array"):
        encoder([1.0])


def copy_export(path, tmp_path):
    target = tmp_path / "copy"
    target.mkdir()
    for name in os.listdir(path):
        (target / name).write_bytes(open(os.path.join(path, name), "rb").read())
    return target


def test_load_checks_the_files(exported, tmp_path):
    _, _, path, _ = exported
    target = copy_export(path, tmp_path)
    program = bytearray((target / "encoder.pte").read_bytes())
    program[len(program) // 2] ^= 1
    (target / "encoder.pte").write_bytes(bytes(program))
    with pytest.raises(ExportFileError, match="SHA-256 differs"):
        load(target)
    (target / "encoder.pte").unlink()
    with pytest.raises(ExportFileError, match="missing encoder.pte"):
        load(target)
    manifest = json.loads((target / "manifest.json").read_text())
    no_bits = {k: v for k, v in manifest.items() if k != "bits"}
    for broken, match in (
        ("{", "not valid JSON"),
        (json.dumps({**manifest, "format": "x"}), "not a"),
        (json.dumps({**manifest, "version": 99}), "unsupported version"),
        (json.dumps(no_bits), "missing field"),
    ):
        (target / "manifest.json").write_text(broken)
        with pytest.raises(ExportFileError, match=match):
            load(target)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load(tmp_path / "nowhere")
    with pytest.raises(TypeError, match="path must be"):
        load(3)


@pytest.mark.parametrize("exported", ["torusN"], indirect=True)
def test_export_failure_keeps_the_previous_export(exported, tmp_path, monkeypatch):
    """A failure while writing (here the C header) after the whole quantisation, replacing a
    previous export: no temporary folder is left and the previous export stays as it was (a new
    path: test_deploy_split)."""
    _, model, path, _ = exported
    previous = copy_export(path, tmp_path)
    before = {n: (previous / n).read_bytes() for n in os.listdir(previous)}

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export_module, "export_integer_head_c", disk_full)
    with pytest.raises(OSError, match="No space left"):
        export(model, inputs(32, 2).split(16), previous, max_batch=16, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["copy"]
    assert {n: (previous / n).read_bytes() for n in os.listdir(previous)} == before


def test_bits_of_the_head_and_a_fixed_batch_program(tmp_path):
    """bits=4 heads and max_batch=1 (a program for one sample at a time, as on a device)."""
    model = make_model("torusC")
    export(model, inputs(32, 2).split(8), tmp_path / "b4", bits=4, max_batch=1)
    encoder = load(tmp_path / "b4")
    x = inputs(20, 7)
    with torch.no_grad():
        float_codes = quantize(to_turns(model(x)), 4)
    codes = encoder(x)
    assert encoder.bits == 4 and encoder.manifest["max_batch"] == 1 and int(codes.max()) < 16
    assert code_agreement(codes, float_codes, 4)["within_one"] > 0.9
