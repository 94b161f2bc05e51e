"""torusN: pairwise L2 normalisation ("L2p"), the recommended torus head."""

import math

import torch
from torch import nn

from .._checks import check_even, check_float_tensor, check_width
from ..geometry import interleave

_FAST_DTYPES = (torch.float32, torch.float64)


def _pair_sum(t: torch.Tensor) -> torch.Tensor:
    """[..., 2k] -> [..., k]: t_2i + t_2i+1."""
    return t[..., 0::2] + t[..., 1::2]


def _repeat_pairs(h: torch.Tensor) -> torch.Tensor:
    """[..., k] -> [..., 2k]: (h_0, h_0, h_1, h_1, ...), one contiguous copy."""
    return interleave(h, h)


def _inverse_norms(x: torch.Tensor, eps: float) -> torch.Tensor:
    """1 / (sqrt(k) * max(||(x_2i, x_2i+1)||, eps)), repeated for both coordinates of each pair."""
    k = x.shape[-1] // 2
    return _repeat_pairs(_pair_sum(x * x).mul_(k).clamp_min_(k * eps * eps).rsqrt_())


def l2p_reference(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """The L2p formula in plain differentiable torch ops (any dtype; used for double backward and bf16/fp16)."""
    k = x.shape[-1] // 2
    pairs = x.unflatten(-1, (k, 2))
    inv = torch.rsqrt((pairs * pairs).sum(-1, keepdim=True).clamp_min(eps * eps)) / math.sqrt(k)
    return (pairs * inv).flatten(-2)


def _functorch_active() -> bool:
    """True inside torch.func transforms. The fused Function keeps the classic ctx-in-forward form, which those
    transforms reject; the setup_context form they need costs ~25% more per call (measured in bench/losses.py)."""
    peek = getattr(getattr(torch._C, "_functorch", None), "peek_interpreter_stack", None)
    return peek is not None and peek() is not None


class _PairNormalize(torch.autograd.Function):
    """L2p with a hand-written backward on contiguous full-width tensors.

    Autograd of the plain formula broadcasts over the size-2 pair axis, which CPU kernels run slowly (about 3x
    ``F.normalize``). Here every full-width op is contiguous:  y = x * inv  and, with c = k * pair_sum(g * y),
    dL/dx = (g - y * c) * inv  (the tangential projection of g, scaled). For pairs with 0 < norm < eps the
    projection is kept where ``F.normalize`` would drop it; a zero pair gets gradient g * inv, as there.
    """

    @staticmethod
    def forward(ctx, x, eps):
        inv = _inverse_norms(x, eps)
        y = x * inv
        ctx.save_for_backward(x, y, inv)
        ctx.eps = eps
        return y

    @staticmethod
    def backward(ctx, g):
        x, y, inv = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph=True: differentiate the plain formula so that higher orders are exact
            return torch.autograd.grad(l2p_reference(x, ctx.eps), x, g, create_graph=True)[0], None
        c = _repeat_pairs(_pair_sum(g * y).mul_(y.shape[-1] // 2))
        return torch.addcmul(g, y, c, value=-1).mul_(inv), None


class L2p(nn.Module):
    """Normalise each adjacent pair (x_2i, x_2i+1) to a point on a circle, then scale to unit norm.

    z_2i, z_2i+1 = (x_2i, x_2i+1) / (sqrt(k) * max(||(x_2i, x_2i+1)||, eps)),  k = dim / 2 circles.

    The output is already in the Clifford layout (cos t_i, sin t_i) / sqrt(k) with t_i = atan2(x_2i+1, x_2i), so
    the dot product of two outputs is (1/k) sum_i cos(t_i - t'_i): a drop-in for ``F.normalize``. A zero pair
    gives zeros (finite, finite gradient), as ``F.normalize`` does. float32/float64 use a fused backward (about as
    fast as ``F.normalize``, see bench/losses.py); other dtypes use the plain formula ``l2p_reference``.

    Usage: ``z = L2p(dim=64)(features)``  # [B, 64] -> [B, 64], 32 circles
    """

    def __init__(self, dim: int, eps: float = 1e-12):
        super().__init__()
        check_even(dim, "L2p dim")
        self.dim = dim
        self.out_dim = dim
        self.n_circles = dim // 2
        self.intrinsic_dim = dim // 2
        self.eps = eps
        self.scale = math.sqrt(self.n_circles)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_float_tensor(x)
        check_width(x, self.dim)
        if x.dtype not in _FAST_DTYPES:
            return l2p_reference(x, self.eps)
        if _functorch_active():  # torch.func (vmap, grad, ...): the plain formula, which every transform supports
            return l2p_reference(x, self.eps)
        if x.requires_grad and torch.is_grad_enabled():
            return _PairNormalize.apply(x, self.eps)
        return x * _inverse_norms(x, self.eps)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, n_circles={self.n_circles}"


TorusN = L2p
