"""Input checks and small helpers shared by the losses.

Shapes, dtypes and options are checked on the host. Checks of tensor values run as
:mod:`torus_plugins.validation` says: a ``ValueError`` after a host read ("host": eager CPU by
default), a ``torch._assert_async`` that never reads the host ("device": accelerators and
torch.compile by default), or not at all ("off").
"""

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_finite, check_float_tensor, check_labels_finite
from ..heads import L2p
from ..validation import check_mode


def check_embeddings(x, name: str, min_batch: int = 2, dims=(2,)) -> None:
    """Check a loss input: floating, finite, ``x.dim()`` in ``dims``, batch size >= ``min_batch``.

    Args:
        x: the input.
        name: its name in error messages.
        min_batch: the smallest accepted batch size (dimension 0).
        dims: the accepted numbers of dimensions.

    Raises:
        TypeError: ``x`` is not a floating-point tensor.
        ValueError: wrong number of dimensions, a batch below ``min_batch``, an empty feature
            dimension or no view, or NaN/inf in "host" mode (in "device" mode a failed check
            raises RuntimeError when the device reports it).
    """
    check_float_tensor(x, name)
    if x.dim() not in dims:
        want = " or ".join(f"{d}-D" for d in dims)
        raise ValueError(f"{name} must be {want}, got shape {tuple(x.shape)}")
    if x.shape[0] < min_batch:
        raise ValueError(
            f"{name} needs a batch of at least {min_batch} samples, got batch size {x.shape[0]}"
        )
    if x.shape[-1] == 0:
        raise ValueError(f"{name} has an empty feature dimension, shape {tuple(x.shape)}")
    if x.dim() == 3 and x.shape[1] == 0:
        raise ValueError(
            f"{name} needs at least 1 view in [B, n_views, D], got shape {tuple(x.shape)}"
        )
    check_finite_values(x, name)


def check_finite_values(x: torch.Tensor, name: str) -> None:
    """No NaN or inf in ``x``: a ValueError counting them ("host"), a device-side assert ("device"),
    or nothing ("off").

    Args:
        x: the tensor to check.
        name: its name in the message.

    Raises:
        ValueError: ``x`` holds NaN or inf, in "host" mode (raised by ``check_finite``).
    """
    mode = check_mode(x)
    if mode == "host":
        check_finite(x, name)
    elif mode == "device" and x.numel():
        torch._assert_async(all_finite(x), f"{name} contains NaN or inf; expected finite values")


def all_finite(x: torch.Tensor) -> torch.Tensor:
    """0-d bool tensor: no NaN or inf in non-empty ``x``, from one min/max reduction (NaN and +-inf
    reach the min or the max; no overflow is possible, unlike a sum). ``torch.isfinite(x).all()`` is
    several times slower on CPU.

    Args:
        x: a non-empty floating-point tensor (``aminmax`` fails on an empty one).

    Returns:
        A 0-d bool tensor on the device of ``x``; nothing is read on the host.
    """
    smallest, largest = x.detach().aminmax()
    return (smallest > -math.inf) & (largest < math.inf)  # False for NaN too


def check_that(ok, message: str, like: torch.Tensor) -> None:
    """The 0-d bool tensor ``ok()`` is True: a ValueError(message) ("host"), a device-side assert
    ("device"), or nothing ("off": ``ok`` is not even computed).

    Args:
        ok: a function returning a 0-d bool tensor (called only when the mode checks).
        message: the error message.
        like: a tensor of the batch, which decides the mode.

    Raises:
        ValueError: ``ok()`` is False in "host" mode.
    """
    mode = check_mode(like)
    if mode == "host":
        if not bool(ok()):
            raise ValueError(message)
    elif mode == "device":
        torch._assert_async(ok(), message)


def check_labels(labels, n: int, name: str = "labels") -> torch.Tensor:
    """One class id per sample: a [n] tensor ([n, 1] is flattened); float ids must be integral.

    Args:
        labels: the class ids, a tensor of shape [n] or [n, 1].
        n: the batch size.
        name: its name in error messages.

    Returns:
        ``labels`` as a 1-D tensor of shape [n] (a view; dtype unchanged).

    Raises:
        TypeError: ``labels`` is not a tensor, or is complex.
        ValueError: its shape is not [n] or [n, 1], or (float) it holds NaN, inf or non-integral
            values in "host" mode (in "device" mode a failed check raises RuntimeError when the
            device reports it).
    """
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(labels).__name__}")
    labels = (
        labels.reshape(-1) if labels.dim() > 1 and labels.numel() == labels.shape[0] else labels
    )
    if labels.dim() != 1 or labels.shape[0] != n:
        raise ValueError(
            f"{name} must have shape [{n}] (one per sample), got shape {tuple(labels.shape)}"
        )
    if labels.is_complex():
        raise TypeError(
            f"{name} must hold integer (or integral real) class ids, got dtype {labels.dtype}"
        )
    if not labels.is_floating_point():
        return labels
    mode = check_mode(labels)
    if mode == "host":
        check_labels_finite(labels, name)
    elif mode == "device":
        torch._assert_async(all_finite(labels), f"{name} contains NaN or inf; expected class ids")
        integral = (labels == labels.round()).all()
        torch._assert_async(
            integral,
            f"{name} must hold integer class ids, got non-integer values of dtype {labels.dtype}",
        )
    return labels


HALF = (torch.float16, torch.bfloat16)


def compute_dtype(*xs, normalised: str | None = None, name: str = "input"):
    """float16/bfloat16 inputs are computed in float32 (their squares, exps and eps under/overflow).

    ``normalised="row"`` / ``"pair"``: the loss normalises each row / each (cos, sin) pair, whose
    gradient is ~1/norm; a half input with a norm below 1/finfo.max would get an infinite gradient
    on the way back, so it is a ValueError here instead.

    Args:
        *xs: the loss's input tensors, all of the first one's dtype.
        normalised: None, ``"row"`` or ``"pair"`` (above).
        name: the inputs' name in error messages.

    Returns:
        (the tensors, upcast to float32 if half; the loss dtype: float32 for half inputs, as
        autocast does for losses, else the input dtype).

    Raises:
        ValueError: a half input has a row or pair norm below 1/finfo.max, in "host" mode (in
            "device" mode a failed check raises RuntimeError when the device reports it).
    """
    out_dtype = xs[0].dtype
    if out_dtype in HALF:
        if normalised is not None:
            _check_normalisable(xs, normalised, name)
        xs = tuple(x.float() for x in xs)
        out_dtype = torch.float32
    return xs, out_dtype


def _check_normalisable(xs, how: str, name: str) -> None:
    limit = 1.0 / torch.finfo(xs[0].dtype).max
    what = "row" if how == "row" else "(cos, sin) pair"
    for x in xs:
        mode = check_mode(x)
        if mode == "off" or not x.numel():
            continue
        v = x.detach().float()
        norms = v.norm(dim=-1) if how == "row" else torch.hypot(v[..., 0::2], v[..., 1::2])
        smallest = norms.min()
        if mode == "device":
            torch._assert_async(
                smallest >= limit,
                f"{name} has a {what} of norm < {limit:.3g}: "
                f"the gradient of normalising it (~1/norm) overflows {x.dtype}; "
                f"expected larger norms, or float32 input",
            )
        elif float(smallest) < limit:
            raise ValueError(
                f"{name} has a {what} of norm {float(smallest):.3g}: the gradient of "
                f"normalising it (~1/norm) overflows {x.dtype}; expected norms >= "
                f"{limit:.3g}, or float32 input"
            )


def full_precision(forward):
    """Run a loss's forward with autocast disabled on its inputs' device, then check its result.

    logits / tau, exp and log of a loss in bfloat16 lose 2-3 significant digits (the inputs are
    upcast by :func:`compute_dtype` instead). A non-finite result on finite inputs is a ValueError
    ("host") or a device-side assert ("device").

    Args:
        forward: the ``forward`` method (or ``components``) of a loss module.

    Returns:
        The wrapped method.
    """

    @functools.wraps(forward)
    def wrapper(self, *args, **kwargs):
        first = next((a for a in args if isinstance(a, torch.Tensor)), None)
        device = first.device.type if first is not None else "cpu"
        if device in ("cpu", "cuda") and _autocast_enabled(device):
            with torch.autocast(device, enabled=False):
                out = forward(self, *args, **kwargs)
        else:
            out = forward(self, *args, **kwargs)
        _check_result(self, out, args)
        return out

    return wrapper


def _autocast_enabled(device: str) -> bool:
    try:
        return torch.is_autocast_enabled(device)
    except TypeError:  # torch < 2.4: no device argument
        return torch.is_autocast_cpu_enabled() if device == "cpu" else torch.is_autocast_enabled()


def _check_result(loss: nn.Module, out, inputs) -> None:
    """The inputs were checked finite, so a non-finite loss means an intermediate overflowed."""
    values = list(out.values()) if isinstance(out, dict) else [out]
    mode = check_mode(values[0])
    if mode == "off":
        return
    if mode == "device":
        stacked = (
            values[0].detach() if len(values) == 1 else torch.stack([v.detach() for v in values])
        )
        largest = stacked.abs().amax()
        finite = largest < math.inf  # False for NaN too; fewer kernels than isfinite
        torch._assert_async(
            finite,
            f"{type(loss).__name__}: the loss overflowed on finite inputs; "
            f"expected embeddings of moderate scale (the package's heads give unit "
            f"norm), or float64",
        )
        return
    if all(math.isfinite(float(v.detach())) for v in values):  # 0-d: one read each, no tensor op
        return
    floats = [
        t for t in inputs if isinstance(t, torch.Tensor) and t.is_floating_point() and t.numel()
    ]
    biggest = max(float(t.detach().abs().max()) for t in floats) if floats else float("nan")
    dtype = floats[0].dtype if floats else None
    raise ValueError(
        f"{type(loss).__name__}: the loss overflowed on finite inputs (largest |input| = "
        f"{biggest:.3g}, dtype {dtype}); expected embeddings of moderate scale (the package's "
        "heads give unit norm): normalise or rescale them, or compute in float64"
    )


def per_circle_unit(z: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Renormalise every (cos, sin) pair of an interleaved vector to norm 1/sqrt(k): the
    :class:`L2p` head.

    Args:
        z: floating-point tensor of shape [..., 2k].
        eps: lower bound on each pair's norm.

    Returns:
        A tensor of the shape and dtype of ``z``.
    """
    return L2p(int(z.shape[-1]), eps=eps)(z)


def unit(z: torch.Tensor) -> torch.Tensor:
    """z / max(||z||, 1e-12) along the last dimension (``F.normalize``).

    Args:
        z: floating-point tensor of shape [..., D].

    Returns:
        A tensor of the shape and dtype of ``z``.
    """
    return F.normalize(z, dim=-1)
