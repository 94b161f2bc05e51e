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
import hashlib
import json
import os
import platform
import shutil
import tempfile
from importlib import metadata

import torch
from torch import nn

from .._checks import check_c_identifier, check_int
from .._optional import require
from .c_export import export_integer_head_c
from .head_file import save_integer_head
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

FORMAT = "torus-plugins-int8-encoder"
FORMAT_VERSION = 1
PROGRAM_FILE, HEAD_FILE, HEADER_FILE = "encoder.pte", "head.torh", "head.h"
MANIFEST_FILE = "manifest.json"
#: Samples of the batch the body is traced with (>= 2: torch.export specialises a batch of 1).
TRACE_BATCH = 8


def _edge_modules() -> dict:
    """The ExecuTorch / torchao pieces, or an ImportError naming the [edge] extra."""
    require("executorch", "edge")
    require("torchao", "edge")
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from executorch.exir import to_edge_transform_and_lower
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    return {
        "partitioner": XnnpackPartitioner,
        "quantizer": XNNPACKQuantizer,
        "config": get_symmetric_quantization_config,
        "lower": to_edge_transform_and_lower,
        "prepare": prepare_pt2e,
        "convert": convert_pt2e,
    }


def is_export(path) -> bool:
    """True if ``path`` is a folder holding an export manifest (overwrite=True may replace it).

    Args:
        path: a folder (str or path-like).

    Returns:
        Whether its manifest file exists, is JSON and names this export format; False on any
        read or parse error.
    """
    try:
        with open(os.path.join(path, MANIFEST_FILE), "rb") as fh:
            return json.loads(fh.read(1 << 20)).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _check_target(path, overwrite: bool) -> str:
    """The export folder as an absolute path; refuses, before any work, what cannot be written."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"path must be a str or os.PathLike (the export folder), got {type(path).__name__}"
        )
    if not isinstance(overwrite, bool):
        raise TypeError(f"overwrite must be a bool, got {type(overwrite).__name__}")
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        kind = "is not a folder" if os.path.exists(parent) else "does not exist"
        raise FileNotFoundError(
            f"path: cannot write the export folder {path!r}: its parent {parent!r} {kind}"
        )
    if os.path.lexists(path):
        if not overwrite:
            raise FileExistsError(
                f"path: {path!r} already exists; choose a new folder or pass "
                f"overwrite=True (which replaces only a previous export)"
            )
        if not (os.path.isdir(path) and not os.path.islink(path) and is_export(path)):
            raise ValueError(
                f"path: {path!r} exists and is not a previous export (no "
                f"{MANIFEST_FILE} of format {FORMAT!r}); refusing to replace it even "
                f"with overwrite=True"
            )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PermissionError(
            f"path: cannot write the export folder {path!r}: no write permission in {parent!r}"
        )
    return path


def _as_batch(batch, index: int) -> torch.Tensor:
    x = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
    where = f"calibration_loader batch {index}"
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{where}: expected a float tensor or a (tensor, ...) tuple, got {type(batch).__name__}"
        )
    if not x.is_floating_point():
        raise TypeError(f"{where}: expected a floating-point tensor, got dtype {x.dtype}")
    if x.dim() < 1 or x.shape[0] == 0:
        raise ValueError(f"{where}: expected [batch >= 1, ...], got shape {tuple(x.shape)}")
    bad = int(x.numel() - torch.isfinite(x).sum())
    if bad:
        raise ValueError(
            f"{where} holds {bad} NaN or inf value(s); calibration data must be "
            f"finite (the int8 ranges are read from it)"
        )
    return x.detach().to("cpu", torch.float32)


def calibration_batches(calibration_loader) -> list:
    """Every batch of ``calibration_loader`` as a float32 CPU tensor, checked. They are held in
    memory: a few hundred samples calibrate int8 ranges well.

    Args:
        calibration_loader: iterable of float tensors [B, ...], or of tuples/lists starting with
            one (as a DataLoader of (x, y) gives).

    Returns:
        list of float32 tensors.

    Raises:
        TypeError: not iterable, or a batch that is not a float tensor (or a tuple starting with
            one).
        ValueError: no batches, an empty or non-finite batch, batches of different sample shapes.
    """
    try:
        iterator = iter(calibration_loader)
    except TypeError:
        raise TypeError(
            f"calibration_loader must be an iterable of input batches (e.g. a "
            f"DataLoader), got {type(calibration_loader).__name__}"
        ) from None
    batches = [_as_batch(b, i) for i, b in enumerate(iterator)]
    if not batches:
        raise ValueError("calibration_loader yielded no batches; expected at least one batch")
    shape = batches[0].shape[1:]
    for i, b in enumerate(batches):
        if b.shape[1:] != shape:
            raise ValueError(
                f"calibration_loader batch {i} has sample shape {tuple(b.shape[1:])}, "
                f"batch 0 has {tuple(shape)}; expected one shape"
            )
    return batches


def _chunks(x: torch.Tensor, size: int):
    return (x[i : i + size] for i in range(0, len(x), size))


def _module_path(node) -> str | None:
    """The qualified name of the module that produced a graph node (innermost nn_module_stack)."""
    stack = node.meta.get("nn_module_stack") or {}
    return list(stack.values())[-1][0] if stack else None


def _is_op(node, name: str) -> bool:
    return node.op == "call_function" and getattr(node.target, "_name", "").endswith(name)


def _cut_before_linear(graph_module, linear_name: str):
    """Make the converted PT2E graph return the int8 tensor it feeds to ``linear_name``.

    Returns (scale, zero_point) of that tensor, and (scale, zero_point) of the int8 grid the
    quantizer put on the Linear's output (what requantising the head's input would keep) or None.
    """
    graph = graph_module.graph
    nodes = [n for n in graph.nodes if _is_op(n, "aten::linear") and _module_path(n) == linear_name]
    if len(nodes) != 1:
        raise ValueError(
            f"model: found {len(nodes)} linear operations of {linear_name!r} in the "
            f"exported graph; expected exactly one"
        )
    linear = nodes[0]
    dequant = linear.args[0]
    quant = dequant.args[0] if _is_op(dequant, "dequantize_per_tensor") else None
    if quant is None or not _is_op(quant, "quantize_per_tensor"):
        raise ValueError(
            f"model: the XNNPACK quantizer left the input of {linear_name!r} in float "
            f"(no per-tensor int8 quantisation in front of it)"
        )
    scale, zero_point, qmin, qmax, dtype = quant.args[1:6]
    if dtype != torch.int8 or (qmin, qmax) != (-128, 127):
        raise ValueError(
            f"model: the input of {linear_name!r} is quantised to {dtype} "
            f"[{qmin}, {qmax}], expected int8 [-128, 127]"
        )
    out_grid = next(
        (
            (float(u.args[1]), int(u.args[2]))
            for u in linear.users
            if _is_op(u, "quantize_per_tensor")
        ),
        None,
    )
    graph.output_node().args = ((quant,),)
    graph.eliminate_dead_code()
    graph_module.recompile()
    return (float(scale), int(zero_point)), out_grid


def _example(batches: list, size: int) -> torch.Tensor:
    """``size`` calibration samples (repeated if there are fewer) to trace with."""
    x = torch.cat(batches)[:size]
    return x.repeat(-(-size // len(x)), *([1] * (x.dim() - 1)))[:size]


def _program_batch_bound(manager) -> int:
    """The largest batch the lowered program accepts (the bound its memory is planned for).

    It can be below the requested one: while XNNPACK lowers a convolution, torch's fake
    convolution picks a CPU backend by batch size, which adds the guard batch < 16 to a trace with
    fewer than 16 samples (and batch >= 16 to a larger one).
    """
    program = manager.exported_program()
    name = program.graph_signature.user_inputs[0]
    node = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name == name)
    return int(node.meta["spec"].shape[0])


def _export_graph(module, example, max_batch):
    dynamic = ({0: torch.export.Dim("batch", min=1, max=max_batch)},) if max_batch > 1 else None
    try:
        return torch.export.export(module, (example,), dynamic_shapes=dynamic)
    except Exception as exc:  # noqa: BLE001 - any tracing failure is reported with what to change
        raise ValueError(
            f"model: torch.export could not capture the body (up to the last Linear) "
            f"with a batch of 1..{max_batch}: {type(exc).__name__}: "
            f"{str(exc)[:600]}; the body must be exportable (no data-dependent Python "
            f"control flow; max_batch=1 gives a fixed batch of one)"
        ) from exc


def _quantised_program(
    body: nn.Module, linear_name: str, batches: list, max_batch: int, per_channel: bool, edge: dict
):
    """PT2E static int8 quantisation of ``body`` (calibrated on ``batches``), cut before the last
    Linear and lowered to XNNPACK.

    Returns (program bytes, its batch bound, reference GraphModule, (scale, zero_point), output
    grid)."""
    example = _example(batches, min(max_batch, TRACE_BATCH))
    captured = _export_graph(body, example, max_batch).module()
    quantizer = edge["quantizer"]().set_global(edge["config"](is_per_channel=per_channel))
    # The conv-BatchNorm patterns match training-mode batch_norm (quantisation-aware training);
    # prepare_pt2e has already folded every BatchNorm of an eval-mode graph, and tracing those
    # patterns costs seconds each.
    quantizer.SUPPORTED_PATTERNS = [p for p in quantizer.SUPPORTED_PATTERNS if "_bn" not in p.name]
    prepared = edge["prepare"](captured, quantizer)
    with torch.no_grad():
        for batch in batches:
            for chunk in _chunks(batch, max_batch):
                prepared(chunk)
    reference = edge["convert"](prepared)
    qparams, out_grid = _cut_before_linear(reference, linear_name)
    lowered = edge["lower"](
        _export_graph(reference, example, max_batch), partitioner=[edge["partitioner"]()]
    )
    program = lowered.to_executorch()
    return program.buffer, _program_batch_bound(program), reference, qparams, out_grid


def _linear_inputs(model: nn.Module, linear: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """The float input of ``linear`` when ``model`` runs on ``x``."""
    seen = []
    handle = linear.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    return seen[0].reshape(-1, linear.in_features)


def _checks(program: bytes, reference, model, split, qparams, batches, max_batch) -> dict:
    """Run the program on the first calibration samples (in batches of ``max_batch`` and alone):
    its int8 output against the PT2E reference graph's, and its dequantised output against the
    float model's input to the last Linear (in quantisation steps)."""
    from executorch.runtime import Runtime

    loaded = Runtime.get().load_program(program)  # owns the bytes the method runs from: keep it
    method = loaded.load_method("forward")
    x = torch.cat(batches)[:256]
    device = torch.cat([method.execute((c,))[0] for c in _chunks(x, max_batch)])
    with torch.no_grad():
        ref = torch.cat([reference(c) for c in _chunks(x, max_batch)])
    width = split.linear.in_features
    if device.dtype != torch.int8 or tuple(device.shape) != (len(x), width):
        raise RuntimeError(
            f"the ExecuTorch program returned {device.dtype} "
            f"{tuple(device.shape)}, expected int8 {(len(x), width)}"
        )
    if not torch.equal(method.execute((x[:1],))[0], device[:1]):
        raise RuntimeError(
            "the ExecuTorch program gives different activations for a sample alone and in a batch"
        )
    step = (device.long() - ref.long()).abs()
    scale, zero_point = qparams
    real = scale * (device.double() - zero_point)
    error = (real - _linear_inputs(model, split.linear, x).double()).abs() / scale
    return {
        "samples": len(x),
        "equal_to_pt2e_reference": float((step == 0).double().mean()),
        "max_step_from_pt2e_reference": int(step.max()),
        "dequantised_error_steps": {"mean": float(error.mean()), "max": float(error.max())},
    }


def _digest(path: str) -> dict:
    with open(path, "rb") as fh:
        data = fh.read()
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("torus-plugins", "torch", "executorch", "torchao", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def _write_folder(path: str, files: dict, manifest: dict, overwrite: bool) -> None:
    """Write ``files`` (name -> writer(file path)) and the manifest (with the files' digests) into
    a temporary folder beside ``path``, then rename it onto ``path``. On any failure the temporary
    folder is removed and ``path`` is left as it was (a previous export included)."""
    parent, name = os.path.split(path)
    tmp = tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=parent)
    old = None
    try:
        for file_name, write in files.items():
            write(os.path.join(tmp, file_name))
        manifest["files"] = {f: _digest(os.path.join(tmp, f)) for f in files}
        with open(os.path.join(tmp, MANIFEST_FILE), "w") as fh:
            json.dump(manifest, fh, indent=1)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        if overwrite and os.path.lexists(path):
            old = tempfile.mkdtemp(prefix=f".{name}.", suffix=".old", dir=parent)
            os.rename(path, os.path.join(old, name))
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not os.path.lexists(path):  # put the previous export back
            os.rename(os.path.join(old, name), path)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


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
