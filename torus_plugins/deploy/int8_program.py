"""The body's int8 ExecuTorch program: calibration batches, PT2E static int8 quantisation with
ExecuTorch's XNNPACK quantizer, the cut before the last Linear, lowering to XNNPACK, and the
checks of the lowered program against the PT2E reference graph and the float model.

The split and the export folder are described in :mod:`torus_plugins.deploy.export`.
"""

import torch
from torch import nn

from .._optional import require

__all__ = ["calibration_batches"]

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
