"""Find where a model hands over to its torus head: the head module and the nn.Linear feeding it.

A model deploys on integers as body -> last Linear -> torus head, where the head's input is exactly
the Linear's output (a reshape in between is fine, anything that changes values is not). The split
is found by running the model once with forward hooks, so any module layout whose forward calls its
sub-modules works:

* ``nn.Sequential(backbone, ..., nn.Linear(h, 2k), L2p(2k))``;
* a module with ``backbone`` / ``projector`` / ``head`` attributes whose forward chains them;
* the package's ``ProjectionHead`` (``mlp`` ends with the Linear, ``projection`` is the head), also
  inside ``adapters.timm.TorusTimmModel``, and ``TorusMLPHead(angle_map="turns")`` (Linear ->
  Clifford).

Usage::

    split = find_split(model, example_batch)
    split.head_name, split.linear_name, split.geometry  # "head.projection", "head.mlp.3", "torusN"
"""

from dataclasses import dataclass

import torch
from torch import nn

from ..heads import Clifford, L2p, Sphere

__all__ = ["ModelSplit", "find_split", "GEOMETRY_OF_HEAD", "SPHERE_REFUSAL"]

#: Torus head classes and the geometry of their codes (TorusN / TorusC are aliases of these).
GEOMETRY_OF_HEAD = {L2p: "torusN", Clifford: "torusC"}
_HEAD_TYPES = (L2p, Clifford, Sphere)

SPHERE_REFUSAL = (
    "the sphere head cannot be deployed on integers: its codes need a grid fitted to "
    "the data (per-coordinate ranges), not a fixed angle step; quantise sphere "
    "embeddings with torus_plugins.codes.SphereGridQuantizer on the float model"
)


@dataclass(frozen=True)
class ModelSplit:
    """Where the model hands over to its torus head.

    Args:
        head_name: qualified name of the head module (``model.get_submodule(head_name)``).
        geometry: "torusN" (L2p) or "torusC" (Clifford).
        linear_name: qualified name of the nn.Linear whose output is the head's input.
        linear: that nn.Linear.
        n_angles: angles per embedding (out_features / 2 for torusN, out_features for torusC).
    """

    head_name: str
    geometry: str
    linear_name: str
    linear: nn.Linear
    n_angles: int


def _first_tensor(args):
    return args[0] if args and isinstance(args[0], torch.Tensor) else None


def _trace_calls(model: nn.Module, example: torch.Tensor):
    """Run ``model(example)`` recording, in order, ("start" | "end", module, tensor) for every
    module call: the first positional input at the start, the output at the end.

    Returns (events, model output)."""
    events, handles = [], []
    for module in model.modules():
        handles.append(
            module.register_forward_pre_hook(
                lambda m, args: events.append(("start", m, _first_tensor(args)))
            )
        )
        handles.append(
            module.register_forward_hook(lambda m, args, out: events.append(("end", m, out)))
        )
    try:
        with torch.no_grad():
            out = model(example)
    finally:
        for h in handles:
            h.remove()
    return events, out


def _same_values(a, b) -> bool:
    return (
        isinstance(a, torch.Tensor)
        and isinstance(b, torch.Tensor)
        and a.numel() == b.numel()
        and torch.equal(a.reshape(-1), b.reshape(-1))
    )


def find_split(model: nn.Module, example: torch.Tensor) -> ModelSplit:
    """Locate the torus head and the nn.Linear feeding it by running ``model(example)`` once.

    The head is the last torus-head module called (L2p / torusN or Clifford / torusC); its output
    must be the model's output, and its input the output of the last nn.Linear called before it,
    values unchanged. Runs without gradients; call it on a model in eval mode.

    Args:
        model: the trained model.
        example: one input batch for ``model``.

    Returns:
        ModelSplit.

    Raises:
        TypeError: model is not an nn.Module.
        ValueError: no torus head is called (a sphere head is refused: see SphereGridQuantizer),
            the head is called more than once, the model's output is not the head's output, no
            nn.Linear is called before the head, or the head's input is not that Linear's output
            (an activation, normalisation or sigmoid in between).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    names: dict[int, str] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        names.setdefault(id(module), name)
    events, out = _trace_calls(model, example)
    heads = [
        (i, m)
        for i, (kind, m, _) in enumerate(events)
        if kind == "start" and isinstance(m, _HEAD_TYPES)
    ]
    if not heads:
        kinds = ", ".join(sorted({type(m).__name__ for m in model.modules()})[:12])
        raise ValueError(
            f"model: no torus head is called in its forward (expected an L2p / "
            f"torusN or Clifford / torusC module, e.g. ProjectionHead(..., "
            f"projection='l2p')); modules found: {kinds}"
        )
    start, head = heads[-1]
    if isinstance(head, Sphere):
        raise ValueError(f"model: {SPHERE_REFUSAL}")
    head_name = names[id(head)]
    calls = sum(1 for _, m in heads if m is head)
    if calls != 1:
        raise ValueError(
            f"model: the torus head {head_name!r} is called {calls} times in one "
            f"forward; expected once (one embedding per input)"
        )
    head_out = next(t for kind, m, t in events[start:] if kind == "end" and m is head)
    if not isinstance(out, torch.Tensor):
        raise ValueError(
            f"model must return the torus head's output (one tensor), got {type(out).__name__}"
        )
    if out is not head_out and not (out.shape == head_out.shape and torch.equal(out, head_out)):
        raise ValueError(
            f"model: its output is not the output of its torus head {head_name!r} "
            f"(something runs after the head); export a model that ends with the head"
        )
    linears = [
        (m, t) for kind, m, t in events[:start] if kind == "end" and isinstance(m, nn.Linear)
    ]
    if not linears:
        raise ValueError(
            f"model has no nn.Linear layer before its torus head {head_name!r}: the "
            f"integer head is the last Linear layer in int8 followed by the angle "
            f"step, so the model needs ... -> nn.Linear -> head"
        )
    linear, linear_out = linears[-1]
    linear_name = names[id(linear)]
    if not _same_values(events[start][2], linear_out):
        raise ValueError(
            f"model: the input of the torus head {head_name!r} is not the output of "
            f"the last nn.Linear before it ({linear_name!r}); something in between "
            f"changes it (an activation, BatchNorm, a sigmoid angle map, a scale). "
            f"Expected ... -> nn.Linear -> head (fold a BatchNorm1d into the Linear "
            f"with torch.nn.utils.fusion.fuse_linear_bn_eval)"
        )
    if sum(1 for m, _ in linears if m is linear) != 1:
        raise ValueError(
            f"model: the Linear {linear_name!r} feeding the head is called more than "
            f"once in one forward; expected a Linear used once, right before the head"
        )
    geometry = next(g for cls, g in GEOMETRY_OF_HEAD.items() if isinstance(head, cls))
    width = linear.out_features
    return ModelSplit(
        head_name=head_name,
        geometry=geometry,
        linear_name=linear_name,
        linear=linear,
        n_angles=width // 2 if geometry == "torusN" else width,
    )
