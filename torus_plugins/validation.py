"""Where the losses check tensor values: on the host, on the device, or not at all.

The losses refuse NaN/inf embeddings, NaN or fractional labels, a batch in which no anchor has a
positive, and a loss that overflowed on finite input. Reading a tensor value on the host
(``bool(t)``, ``t.item()``) is free for an eager CPU tensor, but on a GPU it waits for the device (a
synchronisation every step), and under ``torch.compile`` it is a graph break (an error with
``fullgraph=True``). So every value check runs in one of three ways:

* ``"host"``: read on the host; a ``ValueError`` that counts or shows the bad values.
* ``"device"``: ``torch._assert_async`` on a condition computed where the tensor lives: no host
  read, no graph break. A failed check raises ``RuntimeError`` with the message on CPU (eager and
  compiled); on CUDA it is a device-side assert reported at the next synchronisation, after which
  the process must restart (as after any device-side assert, e.g. an out-of-range class index in
  ``cross_entropy``). Nothing reads a tensor value on the host in this mode (except
  ``gather_distributed=True``'s check that all ranks hold the same batch size).
* ``"off"``: not checked: NaN/inf reaches the loss, as in lightly and pytorch-metric-learning.

``"auto"``, the default, is ``"host"`` for eager CPU tensors and ``"device"`` otherwise (tensors on
an accelerator, and every tensor while torch.compile, torch.export or TorchScript traces). Shapes,
dtypes and options are always checked on the host: they are known there without reading the device.

Set the mode for the process with :func:`set_validation` or the environment variable
``TORUS_PLUGINS_VALIDATE`` (read at import), or for a block of code (this thread or task only) with
``with validation_mode(mode):``.

Usage::

    with torus_plugins.validation_mode("host"):  # a GPU batch, with the exact ValueErrors
        loss = SupConLoss()(z, labels)
"""

import contextlib
import contextvars
import os

import torch

__all__ = [
    "MODES",
    "ENV_VAR",
    "set_validation",
    "get_validation",
    "validation_mode",
    "check_mode",
    "host_reads_allowed",
]

MODES = ("auto", "host", "device", "off")
ENV_VAR = "TORUS_PLUGINS_VALIDATE"

_process_mode = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"  # checked when used
_block_mode: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "torus_plugins_validation", default=None
)


def _checked(mode, name: str) -> str:
    if not isinstance(mode, str) or mode.lower() not in MODES:
        raise ValueError(f"{name} must be one of {'|'.join(MODES)}, got {mode!r}")
    return mode.lower()


def set_validation(mode: str) -> None:
    """Set the value-check mode of the whole process.

    Args:
        mode: 'auto', 'host', 'device' or 'off' (any case; see the module docstring).

    Raises:
        ValueError: ``mode`` is not one of the four.
    """
    global _process_mode
    _process_mode = _checked(mode, "validation mode")


def get_validation() -> str:
    """The mode in force here: the innermost ``with validation_mode(...)``, else the process's.

    Returns:
        'auto', 'host', 'device' or 'off'.

    Raises:
        ValueError: ``TORUS_PLUGINS_VALIDATE`` holds something else.
    """
    mode = _block_mode.get()
    if mode is not None:
        return mode
    return _checked(_process_mode, f"the environment variable {ENV_VAR}")


@contextlib.contextmanager
def validation_mode(mode: str):
    """Use ``mode`` for the value checks run inside the block (this thread or asyncio task only).

    Args:
        mode: 'auto', 'host', 'device' or 'off'.

    Yields:
        None; the previous mode is restored when the block exits, also on an exception.

    Raises:
        ValueError: ``mode`` is not one of the four.

    Example:
        >>> with validation_mode("off"):
        ...     get_validation()
        'off'
    """
    token = _block_mode.set(_checked(mode, "validation mode"))
    try:
        yield
    finally:
        _block_mode.reset(token)


def _tracer_checks():
    compiler = getattr(torch, "compiler", None)
    dynamo = getattr(compiler, "is_compiling", None) or getattr(torch._dynamo, "is_compiling", None)
    checks = (dynamo, getattr(compiler, "is_exporting", None), torch.jit.is_tracing)
    return tuple(check for check in checks if check is not None)


_TRACER_CHECKS = _tracer_checks()


def _tracing() -> bool:
    """True while torch.compile (dynamo), torch.export or TorchScript traces."""
    return any(check() for check in _TRACER_CHECKS)


def _eager_cpu(t: torch.Tensor) -> bool:
    return t.device.type == "cpu" and not _tracing()


def check_mode(t: torch.Tensor) -> str:
    """How a value check on ``t`` runs now ('auto' resolved for ``t``).

    Args:
        t: a tensor of the batch being checked (its device decides 'auto').

    Returns:
        'host', 'device' or 'off'.
    """
    mode = get_validation()
    if mode == "auto":
        return "host" if _eager_cpu(t) else "device"
    return mode


def host_reads_allowed(t: torch.Tensor) -> bool:
    """Whether a computation on ``t`` may read values on the host (e.g. to pick a cheaper shape).

    Args:
        t: a tensor of the computation.

    Returns:
        True for eager CPU tensors (no synchronisation there) unless the mode is 'device', which
        promises no host read at all; True everywhere in 'host' mode, which accepts a
        synchronisation per read; False otherwise.
    """
    mode = get_validation()
    return mode == "host" or (mode != "device" and _eager_cpu(t))
