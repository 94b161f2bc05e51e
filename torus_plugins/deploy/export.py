"""Export a trained torus encoder for integer inference: int8 ExecuTorch program + integer head.

The model is split where it hands over to its torus head (:mod:`torus_plugins.deploy.split`)::

    x --[ body: int8 ExecuTorch program ]--> q int8 --[ last Linear + head: IntegerHead ]--> codes

* body: everything up to the last nn.Linear, quantised post-training by PT2E with ExecuTorch's
  XNNPACK quantizer (static int8: int8 activations with per-tensor affine parameters, int8 weights,
  per channel by default), calibrated on ``calibration_loader`` and lowered to the XNNPACK backend.
  The program outputs the int8 tensor the quantised graph feeds to the last Linear, with its
  recorded scale and zero point: real = scale * (q - zero_point).
* head: the last Linear in int8 with int32 accumulation, then the integer angle step (torusN: exact
  atan2 of each accumulator pair; torusC: fixed-point turns modulo 2**bits), as ``IntegerHead``
  (``head.torh``) and as a self-contained C99 header (``head.h``). torusC's turns are never
  requantised to int8; the manifest records how many levels per turn the quantizer's int8 grid on
  the Linear's output would have kept.

The export is one folder, written to a temporary folder beside it and renamed into place (no
partial export is ever left at ``path``)::

    path/encoder.pte      ExecuTorch program: float [N, ...] -> int8 activations [N, in_features]
    path/head.torh        integer head (load_integer_head)
    path/head.h           integer head in C99
    path/manifest.json    geometry, bits, shapes, scale and zero point, SHA-256 of each file, checks

Usage::

    info = export(model, calibration_loader, "encoder_int8", bits=8)
    encoder = load("encoder_int8")            # torus_plugins.deploy.load
    codes = encoder(x)                        # uint8 [N, n_angles]
"""

import copy

import torch
from torch import nn

from .._checks import check_c_identifier, check_int
from .c_export import export_integer_head_c
from .export_folder import (
    FORMAT,
    FORMAT_VERSION,
    HEAD_FILE,
    HEADER_FILE,
    MANIFEST_FILE,
    PROGRAM_FILE,
    _check_target,
    _versions,
    _write_folder,
    is_export,
)
from .head_file import save_integer_head
from .int8_program import _checks, _edge_modules, _quantised_program, calibration_batches
from .integer_head import integer_head_from_linear
from .split import find_split

__all__ = [
    "export",
    "calibration_batches",
    "is_export",
    "FORMAT",
    "FORMAT_VERSION",
    "PROGRAM_FILE",
    "HEAD_FILE",
    "HEADER_FILE",
    "MANIFEST_FILE",
]


def export(
    model: nn.Module,
    calibration_loader,
    path,
    *,
    bits: int = 8,
    max_batch: int = 64,
    per_channel: bool = True,
    overwrite: bool = False,
    c_name: str = "torus_head",
) -> dict:
    """Write ``model`` as an int8 ExecuTorch program + integer torus head into the folder ``path``.

    body(x) -> q int8 (real = scale * (q - zero_point)) -> IntegerHead(q) -> uint8 codes
    [N, n_angles], approximating ``codes.quantize(to_turns(model(x)), bits)`` of the float model
    (module docstring: the split and the folder). ``model`` is copied (to CPU, float32, eval
    mode), not changed.

    Args:
        model: trained ``nn.Module`` taking one float tensor [N, ...] and ending with ... ->
            nn.Linear -> torus head (L2p / torusN or Clifford / torusC; the layouts are listed in
            :mod:`torus_plugins.deploy.split`).
        calibration_loader: iterable of float input batches [B, ...] (or tuples/lists starting with
            one, as a DataLoader of (x, y) gives), normalised as the model's inputs; sets the int8
            ranges.
        path: the export folder to create (its parent must exist).
        bits: code width of the head, 1..8.
        max_batch: largest batch asked of the program (its batch dimension is dynamic;
            ``load(path)(x)`` splits larger inputs); 1 gives a fixed batch of one. A body with
            convolutions accepts at most 15 (the manifest's ``max_batch`` is what the program
            accepts; see ``_program_batch_bound``).
        per_channel: int8 weights of the body per output channel (True) or per tensor.
        overwrite: replace ``path`` if it holds a previous export (never any other folder).
        c_name: C identifier prefix of the functions and tables in ``head.h``.

    Returns:
        The manifest written to ``path/manifest.json`` (a dict), with ``"path"`` added.

    Raises:
        TypeError: model not an nn.Module, a batch that is not a float tensor, path not
            str/PathLike, bits or max_batch not integers, c_name not a string.
        ValueError: bits outside 1..8, max_batch < 1, a sphere head (its codes need a fitted grid:
            use ``codes.SphereGridQuantizer``), no torus head or no nn.Linear right before it, a
            calibration loader with no batches or with NaN/inf, a body torch.export cannot capture,
            ``path`` holding something other than a previous export, c_name not a C identifier.
        FileExistsError: ``path`` exists and overwrite is False.
        FileNotFoundError, PermissionError, OSError: ``path`` cannot be written (nothing is left
            behind).
        ImportError: executorch / torchao missing (``pip install 'torus-plugins[edge]'``).
    """
    bits = check_int(bits, "bits", 1, 8)
    max_batch = check_int(max_batch, "max_batch", 1)
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(per_channel, bool):
        raise TypeError(f"per_channel must be a bool, got {type(per_channel).__name__}")
    c_name = check_c_identifier(c_name, "c_name")
    path = _check_target(path, overwrite)
    batches = calibration_batches(calibration_loader)
    model = copy.deepcopy(model).to("cpu", torch.float32).eval()  # XNNPACK: CPU, float32 in
    split = find_split(model, batches[0][:max_batch])
    edge = _edge_modules()
    body = copy.deepcopy(model)
    body.set_submodule(split.head_name, nn.Identity())
    program, batch_bound, reference, (scale, zero_point), out_grid = _quantised_program(
        body, split.linear_name, batches, max_batch, per_channel, edge
    )
    head = integer_head_from_linear(
        split.linear,
        input_scale=scale,
        input_zero_point=zero_point,
        geometry=split.geometry,
        bits=bits,
    )
    requantised = None
    if out_grid is not None:
        turns = split.geometry == "torusC"
        requantised = {
            "scale": out_grid[0],
            "zero_point": out_grid[1],
            "levels_per_turn": 1.0 / out_grid[0] if turns else None,
            "turns_spanned": 255 * out_grid[0] if turns else None,
        }
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "geometry": split.geometry,
        "bits": bits,
        "n_angles": split.n_angles,
        "sample_shape": list(batches[0].shape[1:]),
        "input_dtype": "float32",
        "max_batch": batch_bound,
        "max_batch_requested": max_batch,
        "c_name": c_name,
        "activations": {
            "width": split.linear.in_features,
            "dtype": "int8",
            "scale": scale,
            "zero_point": zero_point,
        },
        "model": {
            "class": type(model).__name__,
            "head": split.head_name,
            "linear": split.linear_name,
        },
        "quantizer": {
            "name": "XNNPACKQuantizer (PT2E, static int8)",
            "per_channel": per_channel,
            "calibration_batches": len(batches),
            "calibration_samples": int(sum(len(b) for b in batches)),
        },
        "checks": _checks(
            program, reference, model, split, (scale, zero_point), batches, batch_bound
        ),
        "requantised_head_input": requantised,
        "versions": _versions(),
    }

    def write_program(file_path):
        with open(file_path, "wb") as fh:
            fh.write(program)

    files = {
        PROGRAM_FILE: write_program,
        HEAD_FILE: lambda p: save_integer_head(p, head),
        HEADER_FILE: lambda p: export_integer_head_c(p, head, name=c_name),
    }
    _write_folder(path, files, manifest, overwrite)
    return {**manifest, "path": path}
