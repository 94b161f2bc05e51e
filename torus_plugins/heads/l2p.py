"""torusN: pairwise L2 normalisation ("L2p"), the recommended torus head."""

import math

import torch
import torch.autograd.forward_ad as fwAD
from torch import nn

from .._checks import MIN_EPS, check_even, check_float_tensor, check_positive_float, check_width
from ..validation import host_reads_allowed

_FAST_DTYPES = (torch.float32, torch.float64)


def _pair_sum(t: torch.Tensor) -> torch.Tensor:
    """[..., 2k] -> [..., k]: t_2i + t_2i+1."""
    return t[..., 0::2] + t[..., 1::2]


def _repeat_pairs(h: torch.Tensor) -> torch.Tensor:
    """[..., k] -> [..., 2k]: (h_0, h_0, h_1, h_1, ...), one contiguous copy (float32/float64; not
    differentiable: used inside the fused Function and the no-grad path only)."""
    return torch.complex(h, h).contiguous().view(h.dtype)


def _inverse_norms(x: torch.Tensor, eps: float, with_mask: bool = False):
    """1 / (sqrt(k) * max(||(x_2i, x_2i+1)||, eps)), repeated for both coordinates of each pair.

    With ``with_mask`` also returns the factor k of the backward: a [..., k] tensor holding k on
    free pairs and 0 on clamped ones (norm < eps), or the number k if no pair is clamped and a host
    read may say so (eager CPU: one reduction to find out is cheaper than building the mask; on a
    GPU the read would be a synchronisation).
    """
    k = x.shape[-1] // 2
    limit = k * eps * eps
    r2k = _pair_sum(x * x).mul_(k)
    k_mask: int | torch.Tensor = k
    if with_mask and r2k.numel() and (not host_reads_allowed(x) or bool(r2k.amin() < limit)):
        k_mask = torch.where(r2k >= limit, float(k), 0.0).to(x.dtype)
    inv = _repeat_pairs(r2k.clamp_min_(limit).rsqrt_())
    return (inv, k_mask) if with_mask else inv


def l2p_reference(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """z_2i, z_2i+1 = (x_2i, x_2i+1) / (sqrt(k) * max(||(x_2i, x_2i+1)||, eps)) in plain torch ops.

    The L2p formula as differentiable torch ops, used for double backward, tracers and half
    precision. float16/bfloat16 are computed in float32 and cast back: squares of fp16 values
    under/overflow (|x| < 6e-3 or > 256) and eps**2 = 1e-24 rounds to 0 in fp16 (a zero pair would
    give 0/0 = NaN). The input is not checked (:class:`L2p` checks it).

    Args:
        x: floating-point tensor of shape [..., 2k] (an even last dimension).
        eps: lower bound on each pair's norm.

    Returns:
        A tensor of the shape and dtype of ``x``, each pair on a circle of radius 1/sqrt(k).
    """
    if x.dtype not in _FAST_DTYPES:
        return l2p_reference(x.float(), eps).to(x.dtype)
    k = x.shape[-1] // 2
    pairs = x.unflatten(-1, (k, 2))
    inv = torch.rsqrt((pairs * pairs).sum(-1, keepdim=True).clamp_min(eps * eps)) / math.sqrt(k)
    return (pairs * inv).flatten(-2)


def _tracing_checks():
    compiler = getattr(torch, "compiler", None)
    checks = [
        getattr(compiler, "is_compiling", None),
        getattr(compiler, "is_exporting", None),
        torch.jit.is_tracing,
        torch.jit.is_scripting,
        getattr(getattr(torch._C, "_functorch", None), "peek_interpreter_stack", None),
    ]
    return tuple(c for c in checks if c is not None)


_TRACING_CHECKS = _tracing_checks()


def _use_plain_formula() -> bool:
    """True under torch.compile / torch.export / TorchScript tracing, torch.func, forward-mode AD.

    The fused Function reads data (is any pair clamped?), which tracers cannot, and keeps the
    classic ctx-in-forward form without a jvp, which torch.func and forward AD need (the
    setup_context form and saving for jvp cost 5-25% more per call in bench/losses.py's setting).
    Those callers get the plain formula, which they handle natively.
    """
    if getattr(fwAD, "_current_level", -1) >= 0:
        return True
    for check in _TRACING_CHECKS:
        result = check()
        if result is not None and result is not False:
            return True
    return False


def _project(
    x: torch.Tensor, inv: torch.Tensor, k_mask: int | torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """J t for the L2p Jacobian J (symmetric, so J^T g = J g is the backward).

    J t = (t - y * c) * inv with y = x * inv, c = k_mask * pair_sum(t * y), ``k_mask`` being k, or
    0 on pairs clamped at eps (where the forward is linear)."""
    y = x * inv
    c = _repeat_pairs(_pair_sum(t * y).mul_(k_mask))
    return torch.addcmul(t, y, c, value=-1).mul_(inv)


class _PairNormalize(torch.autograd.Function):
    """L2p with a hand-written backward on contiguous full-width tensors.

    Autograd of the plain formula broadcasts over the size-2 pair axis, which CPU kernels run slowly
    (about 3x ``F.normalize``). Here every full-width op is contiguous: y = x * inv and dL/dx = (g -
    y * c) * inv with c = k * pair_sum(g * y) (the tangential projection of g, scaled), c = 0 on
    pairs with norm < eps (as in ``F.normalize``, where the clamped forward is linear). Saves x and
    inv, not the output, so the output may be modified in place.
    """

    @staticmethod
    def forward(ctx, x, eps):
        inv, k_mask = _inverse_norms(x, eps, with_mask=True)
        ctx.save_for_backward(x, inv)
        ctx.eps, ctx.k_mask = eps, k_mask
        return x * inv

    @staticmethod
    def backward(ctx, g):
        x, inv = ctx.saved_tensors
        if (
            torch.is_grad_enabled()
        ):  # create_graph=True: differentiate the plain formula so higher orders are exact
            return torch.autograd.grad(l2p_reference(x, ctx.eps), x, g, create_graph=True)[0], None
        return _project(x, inv, ctx.k_mask, g), None


class L2p(nn.Module):
    """Normalise each adjacent pair (x_2i, x_2i+1) to a point on a circle, then scale to unit norm.

    z_2i, z_2i+1 = (x_2i, x_2i+1) / (sqrt(k) * max(||(x_2i, x_2i+1)||, eps)),  k = dim / 2 circles.

    The output is already in the Clifford layout (cos t_i, sin t_i) / sqrt(k) with t_i =
    atan2(x_2i+1, x_2i), so the dot product of two outputs is (1/k) sum_i cos(t_i - t'_i): a drop-in
    for ``F.normalize``. A zero pair gives zeros and gradient g / (sqrt(k) * eps), as
    ``F.normalize`` gives g / eps. float32/float64 use a fused backward (about as fast as
    ``F.normalize``, see bench/losses.py); double backward, torch.func, forward-mode AD and tracers
    (compile, export) use the plain formula ``l2p_reference``; float16/bfloat16 are computed in
    float32 and cast back (no inf, 0 or NaN where the half-precision squares would under/overflow).

    Args:
        dim: input and output width, an even number (k = dim / 2 circles).
        eps: lower bound on each pair's norm; at least the smallest value whose square does not
            underflow in float32.

    Raises:
        TypeError: ``eps`` is not a real number.
        ValueError: ``dim`` is not a positive even integer, or ``eps`` is not a number above its
            minimum.

    Example:
        >>> z = L2p(dim=64)(torch.randn(8, 64))     # [8, 64] -> [8, 64], 32 circles
        >>> z.shape
        torch.Size([8, 64])
    """

    def __init__(self, dim: int, eps: float = 1e-12):
        super().__init__()
        dim = check_even(dim, "L2p dim")
        self.dim = dim
        self.out_dim = dim
        self.n_circles = dim // 2
        self.intrinsic_dim = dim // 2
        self.eps = check_positive_float(
            eps, "L2p eps", MIN_EPS, "eps**2 must not underflow to 0 in float32"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise each pair of ``x`` onto a circle of radius 1/sqrt(k).

        Args:
            x: floating-point tensor of shape [..., dim].

        Returns:
            A tensor of the shape and dtype of ``x``, of unit norm along the last dimension
            (zero pairs stay zero).

        Raises:
            TypeError: ``x`` is not a floating-point tensor.
            ValueError: its last dimension is not ``dim``.
        """
        check_float_tensor(x)
        check_width(x, self.dim)
        if x.dtype not in _FAST_DTYPES or _use_plain_formula():
            return l2p_reference(x, self.eps)
        if x.requires_grad and torch.is_grad_enabled():
            return _PairNormalize.apply(x, self.eps)
        return x * _inverse_norms(x, self.eps)

    def extra_repr(self) -> str:
        """The constructor arguments shown by ``repr``: ``dim`` and the number of circles.

        Returns:
            A string such as ``"dim=64, n_circles=32"``.
        """
        return f"dim={self.dim}, n_circles={self.n_circles}"


TorusN = L2p
