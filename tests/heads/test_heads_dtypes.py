"""Every head in float16, bfloat16, float32 and float64, plain and under ``torch.autocast("cpu")``,
against an independent float64 computation on the same (rounded) input values."""

import copy
import math

import numpy as np
import pytest
import torch

from torus_plugins.geometry import to_clifford, to_turns
from torus_plugins.heads import Clifford, L2p, ProjectionHead, Sphere, TorusMLPHead

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
#: absolute tolerance on unit-scale outputs: a few units in the last place of the dtype
ATOL = {torch.float16: 2e-3, torch.bfloat16: 1.6e-2, torch.float32: 2e-6, torch.float64: 1e-12}


def l2p_ref(x: np.ndarray, eps=1e-12) -> np.ndarray:
    """Pairwise normalisation in numpy float64, independent of the package."""
    k = x.shape[-1] // 2
    pairs = x.reshape(*x.shape[:-1], k, 2)
    norm = np.maximum(np.sqrt((pairs**2).sum(-1, keepdims=True)), eps)
    return (pairs / (math.sqrt(k) * norm)).reshape(x.shape)


def sphere_ref(x: np.ndarray, eps=1e-12) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)


def clifford_ref(t: np.ndarray) -> np.ndarray:
    k = t.shape[-1]
    out = np.empty((*t.shape[:-1], 2 * k))
    out[..., 0::2], out[..., 1::2] = np.cos(2 * np.pi * t), np.sin(2 * np.pi * t)
    return out / math.sqrt(k)


def magnitudes(dtype, seed=0):
    """[6, 8] inputs spanning the dtype's awkward range: tiny (squares underflow fp16), unit, large
    (squares overflow fp16), exact zero pairs, and one pair mixing a huge and a tiny coordinate."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(6, 8, generator=g, dtype=torch.float64)
    x[0] *= 1e-3
    x[1] *= 300.0
    x[2, 2:4] = 0.0
    x[3] *= 3e4 if dtype == torch.float16 else 1e6
    x[4, 0], x[4, 1] = 5e-3, 200.0
    return x.to(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("autocast", [False, True])
@pytest.mark.parametrize("head,ref", [(L2p(8), l2p_ref), (Sphere(8), sphere_ref)])
def test_normalising_heads_against_float64(head, ref, dtype, autocast):
    x = magnitudes(dtype)
    with torch.autocast("cpu", enabled=autocast):
        z = head(x)
    assert z.dtype == dtype and z.shape == x.shape
    assert bool(torch.isfinite(z).all()), z
    np.testing.assert_allclose(
        z.double().numpy(), ref(x.double().numpy()), atol=ATOL[dtype], rtol=0
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("head,ref", [(L2p(8), l2p_ref), (Sphere(8), sphere_ref)])
def test_zero_input_gives_zeros_and_finite_gradient_in_every_dtype(head, ref, dtype):
    """A zero pair (L2p) / zero vector (Sphere): zeros out, never NaN, gradient g / (sqrt(k) eps)
    like F.normalize in float32/float64 (in half precision that gradient is not representable: it
    saturates to +-inf, never NaN)."""
    x = torch.zeros(3, 8, dtype=dtype)
    x[1] = torch.arange(1, 9, dtype=dtype)
    x[1, 4:6] = 0.0  # a zero pair inside a non-zero vector
    x.requires_grad_(True)
    z = head(x)
    np.testing.assert_allclose(
        z.detach().double().numpy(), ref(x.detach().double().numpy()), atol=ATOL[dtype]
    )
    assert bool((z[0] == 0).all())
    g = torch.randn(3, 8, generator=torch.Generator().manual_seed(1)).to(dtype)
    z.backward(g)
    assert not bool(torch.isnan(x.grad).any())
    if dtype in (torch.float32, torch.float64):
        x64 = x.detach().double().requires_grad_(True)
        expected = torch.autograd.grad(head(x64), x64, g.double())[0]
        torch.testing.assert_close(
            x.grad.double(), expected, rtol=1e-5, atol=1e-6 * float(expected.abs().max())
        )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("autocast", [False, True])
def test_clifford_head_and_conversions_against_float64(dtype, autocast):
    g = torch.Generator().manual_seed(2)
    t = (torch.rand(5, 4, generator=g, dtype=torch.float64) * 6 - 3).to(dtype)  # turns in [-3, 3]
    with torch.autocast("cpu", enabled=autocast):
        z = Clifford(4)(t)
        z2 = to_clifford(t)
        back = to_turns(z)
    expected = clifford_ref(t.double().numpy())
    for out in (z, z2):
        assert out.dtype == dtype
        np.testing.assert_allclose(out.double().numpy(), expected, atol=ATOL[dtype])
    # to_turns recovers the angle mod 1, circularly, to the dtype's precision
    diff = np.abs(back.double().numpy() - np.mod(t.double().numpy(), 1.0))
    circ = np.minimum(diff, 1 - diff)
    assert circ.max() <= 10 * ATOL[dtype] and back.min() >= 0 and back.max() < 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "head_fn",
    [
        lambda: TorusMLPHead(6, n_circles=3, hidden_dim=16),
        lambda: ProjectionHead(6, 8, geometry="l2p", hidden_dim=16),
        lambda: ProjectionHead(6, 4, geometry="clifford", hidden_dim=16),
        lambda: ProjectionHead(6, 8, geometry="sphere", hidden_dim=16),
    ],
)
def test_mlp_heads_in_every_dtype_match_their_float64_copy(head_fn, dtype):
    torch.manual_seed(0)
    head = head_fn().eval()
    x = torch.randn(5, 6)
    ref = copy.deepcopy(head).double()(x.to(dtype).double())
    z = head.to(dtype)(x.to(dtype))
    assert z.dtype == dtype and bool(torch.isfinite(z).all())
    # the MLP runs in the dtype itself (its rounding grows with depth): a looser bound than one op
    np.testing.assert_allclose(
        z.double().detach().numpy(), ref.detach().numpy(), atol=8 * ATOL[dtype]
    )


@pytest.mark.parametrize(
    "head_fn",
    [
        lambda: TorusMLPHead(6, n_circles=3, hidden_dim=16),
        lambda: ProjectionHead(6, 8, geometry="l2p", hidden_dim=16),
    ],
)
def test_mlp_heads_under_autocast_train_and_backward(head_fn):
    torch.manual_seed(0)
    head = head_fn()
    x = torch.randn(8, 6)
    with torch.autocast("cpu"):
        z = head(x)
    z.float().sum().backward()
    ref = copy.deepcopy(head).double()(x.double())
    assert bool(torch.isfinite(z).all())
    np.testing.assert_allclose(z.double().detach().numpy(), ref.detach().numpy(), atol=0.05)
    assert all(bool(torch.isfinite(p.grad).all()) for p in head.parameters())
