"""Heads: geometry checked against independent computations, properties with hypothesis, bad input,
export."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import torus_plugins
from torus_plugins import Clifford, L2p, ProjectionHead, Sphere, TorusMLPHead, to_clifford, to_turns

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=64)


def float_batches(width, min_value=-1e3, max_value=1e3):
    elems = st.floats(min_value, max_value, allow_nan=False, allow_infinity=False, width=64)
    return st.integers(1, 6).flatmap(lambda b: arrays(np.float64, (b, width), elements=elems))


def numpy_l2p(x):
    """Reference: loop over pairs, angle by atan2, back to (cos, sin) / sqrt(k)."""
    b, d = x.shape
    k = d // 2
    out = np.zeros_like(x)
    for i in range(b):
        for j in range(k):
            a, c = x[i, 2 * j], x[i, 2 * j + 1]
            if a == 0 and c == 0:
                continue
            t = math.atan2(c, a)
            out[i, 2 * j], out[i, 2 * j + 1] = (
                math.cos(t) / math.sqrt(k),
                math.sin(t) / math.sqrt(k),
            )
    return out


@settings(max_examples=50, deadline=None)
@given(float_batches(8).filter(lambda a: (np.abs(a.reshape(len(a), 4, 2)).sum(-1) > 1e-6).all()))
def test_l2p_matches_per_pair_reference_and_has_unit_norm(x):
    z = L2p(8)(torch.from_numpy(x))
    np.testing.assert_allclose(z.numpy(), numpy_l2p(x), atol=1e-9)
    np.testing.assert_allclose(torch.linalg.vector_norm(z, dim=-1).numpy(), 1.0, atol=1e-9)
    circles = z.reshape(len(x), 4, 2).norm(dim=-1)
    np.testing.assert_allclose(circles.numpy(), 1 / math.sqrt(4), atol=1e-9)


@settings(max_examples=50, deadline=None)
@given(float_batches(6, 0.1, 10), arrays(np.float64, 3, elements=st.floats(0.01, 100)))
def test_l2p_is_invariant_to_positive_per_pair_rescaling(x, scales):
    head = L2p(6)
    scaled = x * np.repeat(scales, 2)
    torch.testing.assert_close(head(torch.from_numpy(scaled)), head(torch.from_numpy(x)))


def test_l2p_dot_product_is_mean_cosine_of_angle_differences():
    x, y = torch.randn(5, 16, dtype=torch.float64), torch.randn(7, 16, dtype=torch.float64)
    head = L2p(16)
    dot = head(x) @ head(y).T
    tx, ty = 2 * math.pi * to_turns(head(x)), 2 * math.pi * to_turns(head(y))
    expected = torch.cos(tx[:, None, :] - ty[None, :, :]).mean(-1)
    torch.testing.assert_close(dot, expected)


@settings(max_examples=50, deadline=None)
@given(float_batches(5, -20, 20))
def test_clifford_round_trip_and_period(x):
    t = torch.from_numpy(x)
    head = Clifford(5)
    z = head(t)
    assert z.shape == (len(x), 10)
    np.testing.assert_allclose(torch.linalg.vector_norm(z, dim=-1).numpy(), 1.0, atol=1e-9)
    turns = to_turns(z).numpy()
    circ = np.abs(turns - np.mod(x, 1.0))
    np.testing.assert_allclose(np.minimum(circ, 1 - circ), 0.0, atol=1e-9)
    torch.testing.assert_close(head(t + 1.0), z, atol=1e-9, rtol=0)
    torch.testing.assert_close(head(t - 3.0), z, atol=1e-9, rtol=0)


def test_clifford_layout_is_interleaved_cos_sin():
    x = torch.tensor([[0.0, 0.25, 0.125]], dtype=torch.float64)
    s = 1 / math.sqrt(3)
    r = math.sqrt(0.5)
    expected = torch.tensor([[1, 0, 0, 1, r, r]], dtype=torch.float64) * s
    torch.testing.assert_close(Clifford(3)(x), expected)


def test_sphere_equals_f_normalize():
    x = torch.randn(9, 12)
    torch.testing.assert_close(Sphere(12)(x), F.normalize(x, dim=-1))


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, (4, 6), elements=st.floats(0, 0.999999)), st.booleans())
def test_to_clifford_to_turns_round_trip_any_scale(turns, unit):
    z = to_clifford(torch.from_numpy(turns), unit_norm=unit)
    expected_norm = 1.0 if unit else math.sqrt(6)
    np.testing.assert_allclose(
        torch.linalg.vector_norm(z, dim=-1).numpy(), expected_norm, atol=1e-9
    )
    back = to_turns(z * 3.7).numpy()
    diff = np.abs(back - turns)
    np.testing.assert_allclose(np.minimum(diff, 1 - diff), 0, atol=1e-9)
    assert (back >= 0).all() and (back < 1).all()


def test_to_turns_never_returns_one():
    z = torch.tensor([[1.0, -1e-9]], dtype=torch.float32)
    t = to_turns(z)
    assert 0 <= float(t) < 1


@pytest.mark.parametrize("angle_map", ["sigmoid", "turns"])
def test_torus_mlp_head_lands_on_torus(angle_map):
    torch.manual_seed(0)
    head = TorusMLPHead(32, n_circles=2, hidden_dim=16, angle_map=angle_map)
    x = torch.randn(10, 32)
    z = head(x)
    assert z.shape == (10, 4) and head.out_dim == 4 and head.intrinsic_dim == 2
    torch.testing.assert_close(torch.linalg.vector_norm(z, dim=-1), torch.ones(10))
    turns = head.turns(x)
    torch.testing.assert_close(z, to_clifford(turns))
    if angle_map == "sigmoid":
        assert ((turns > 0) & (turns < 1)).all()


def test_sigmoid_map_squashes_the_seam_and_turns_map_does_not():
    """d turn / d raw value near the seam, through the head's own angle map: vanishing for sigmoid,
    1 for turns."""
    grads = {}
    for angle_map, raw in (
        ("sigmoid", 12.0),
        ("turns", 0.99999),
    ):  # both next to the seam at 0 == 1 turn
        head = TorusMLPHead(1, n_circles=1, angle_map=angle_map)
        head.mlp = torch.nn.Identity()  # feed the raw value straight to the angle map
        v = torch.tensor([[raw]], requires_grad=True)
        head.turns(v).sum().backward()
        grads[angle_map] = v.grad.item()
    assert grads["sigmoid"] < 1e-4
    assert grads["turns"] == 1.0


@pytest.mark.parametrize(
    "projection,out",
    [("sphere", 16), ("l2p", 16), ("torusN", 16), ("clifford", 32), ("torusC", 32)],
)
def test_projection_head_widths_and_norm(projection, out):
    head = ProjectionHead(40, 16, geometry=projection, hidden_dim=24)
    z = head(torch.randn(6, 40))
    assert z.shape == (6, out) and head.out_dim == out
    torch.testing.assert_close(torch.linalg.vector_norm(z, dim=-1), torch.ones(6))


def test_head_attributes():
    assert (L2p(64).out_dim, L2p(64).n_circles, L2p(64).intrinsic_dim) == (64, 32, 32)
    assert (Clifford(32).out_dim, Clifford(32).n_circles, Clifford(32).intrinsic_dim) == (
        64,
        32,
        32,
    )
    assert (Sphere(64).out_dim, Sphere(64).n_circles, Sphere(64).intrinsic_dim) == (64, None, 63)
    assert torus_plugins.TorusN is L2p and torus_plugins.TorusC is Clifford


# ---- bad input -----------------------------------------------------------------------------------


def test_l2p_odd_dim_is_rejected_with_the_number():
    with pytest.raises(ValueError, match=r"even.*got 63"):
        L2p(dim=63)


@pytest.mark.parametrize("head", [L2p(8), Clifford(8), Sphere(8)])
def test_wrong_width_names_expected_and_actual(head):
    with pytest.raises(ValueError, match=r"last dimension 8, got shape \(3, 7\)"):
        head(torch.randn(3, 7))


@pytest.mark.parametrize("head", [L2p(8), Clifford(8), Sphere(8)])
def test_integer_input_is_a_type_error(head):
    with pytest.raises(TypeError, match="floating-point.*int64"):
        head(torch.ones(3, 8, dtype=torch.int64))


def test_non_tensor_input_is_a_type_error():
    with pytest.raises(TypeError, match="torch.Tensor.*list"):
        L2p(2)([[1.0, 2.0]])


@pytest.mark.parametrize(
    "bad,error",
    [(0, ValueError), (-2, ValueError), (2.0, TypeError), (True, TypeError), ("8", TypeError)],
)
def test_bad_dims_are_rejected(bad, error):
    with pytest.raises(error, match="dim must be a positive integer"):
        L2p(bad)
    with pytest.raises(error, match="dim must be a positive integer"):
        Clifford(bad)


def test_unknown_projection_and_angle_map():
    with pytest.raises(ValueError, match="geometry must be one of"):
        ProjectionHead(8, 4, geometry="hyperbolic")
    with pytest.raises(ValueError, match="angle_map"):
        TorusMLPHead(8, angle_map="tanh")


# ---- numerics: zero pairs, gradients, dtypes, autocast, export -----------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("autocast", [False, True])
def test_zero_pair_gives_finite_output_and_gradients(dtype, autocast):
    """A zero pair next to a (3, 4) pair, in every dtype: zeros and (3, 4)/(5 sqrt 2) out, never
    NaN/inf; the gradient is finite where the dtype can hold it (g / (sqrt(k) eps) = 7e11 g
    saturates to inf in float16, which F.normalize does too) and never NaN."""
    x = torch.tensor([[0.0, 0.0, 3.0, 4.0]], dtype=dtype, requires_grad=True)
    with torch.autocast("cpu", enabled=autocast):
        z = L2p(4)(x)
    assert z.dtype == dtype and torch.isfinite(z).all()
    expected = torch.tensor([[0.0, 0.0, 0.6, 0.8]], dtype=torch.float64) / math.sqrt(2)
    torch.testing.assert_close(
        z.double(),
        expected,
        atol={torch.float16: 1e-3, torch.bfloat16: 4e-3}.get(dtype, 1e-7),
        rtol=0,
    )
    z.backward(
        torch.tensor([[0.0, 0.0, 1.0, 1.0]], dtype=dtype)
    )  # no gradient into the zero pair itself
    assert torch.isfinite(x.grad).all()
    # free pair: d/dx of (x / (sqrt(2) |x|)) . (1, 1) = ((1, 1) - y (y . (1, 1))) / (sqrt(2) |x|),
    # y = (0.6, 0.8)
    y = torch.tensor([0.6, 0.8], dtype=torch.float64)
    want = (torch.ones(2, dtype=torch.float64) - y * y.sum()) / (math.sqrt(2) * 5.0)
    torch.testing.assert_close(
        x.grad[0, 2:].double(),
        want,
        atol={torch.float16: 1e-3, torch.bfloat16: 4e-3}.get(dtype, 1e-7),
        rtol=0,
    )
    x.grad = None
    L2p(4)(x).sum().backward()
    assert not torch.isnan(x.grad).any()
    if dtype in (torch.float32, torch.float64):
        assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("head", [L2p(8), Clifford(8), Sphere(8)])
def test_gradients_match_finite_differences(head):
    x = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(head, (x,))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(5, 16), (3, 2, 16), (16,)])
def test_l2p_fused_backward_equals_autograd_of_the_plain_formula(dtype, shape):
    from torus_plugins.heads.l2p import l2p_reference

    torch.manual_seed(0)
    x = torch.randn(*shape, dtype=dtype)
    x[..., 2:4] = 0.0  # a zero pair
    g = torch.randn(*shape, dtype=dtype)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    za, zb = L2p(16)(xa), l2p_reference(xb)
    torch.testing.assert_close(za, zb)
    (ga,), (gb,) = torch.autograd.grad(za, xa, g), torch.autograd.grad(zb, xb, g)
    torch.testing.assert_close(ga, gb)
    assert za.grad_fn is not None and "PairNormalize" in type(za.grad_fn).__name__


def test_l2p_fused_backward_takes_non_contiguous_input_and_gradient():
    from torus_plugins.heads.l2p import l2p_reference

    x = torch.randn(6, 8, dtype=torch.float64).T.requires_grad_()
    g = torch.randn(8, 1, dtype=torch.float64).expand(8, 6)
    (ga,) = torch.autograd.grad(L2p(6)(x), x, g)
    (gb,) = torch.autograd.grad(l2p_reference(x), x, g)
    torch.testing.assert_close(ga, gb)


def test_l2p_second_derivatives_match_finite_differences():
    x = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(L2p(8), (x,))


def test_l2p_zero_pair_gradient_is_scaled_gradient_like_f_normalize():
    x = torch.tensor([[0.0, 0.0, 3.0, 4.0]], dtype=torch.float64, requires_grad=True)
    g = torch.tensor([[1.0, -2.0, 0.5, 0.25]], dtype=torch.float64)
    (grad,) = torch.autograd.grad(L2p(4, eps=1e-6)(x), x, g)
    # F.normalize on the zero pair alone: clamped norm eps, so d/dx = g / eps; here also divided by
    # sqrt(k) = sqrt(2)
    torch.testing.assert_close(grad[0, :2], g[0, :2] / (1e-6 * math.sqrt(2)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("head", [L2p(8), Clifford(8), Sphere(8)])
def test_dtypes_are_preserved(head, dtype):
    z = head(torch.randn(4, 8, dtype=dtype))
    assert z.dtype == dtype
    torch.testing.assert_close(torch.linalg.vector_norm(z, dim=-1), torch.ones(4, dtype=dtype))


@pytest.mark.parametrize("head", [L2p(8), Clifford(8), Sphere(8)])
def test_autocast_on_cpu(head):
    lin = torch.nn.Linear(8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = head(lin(torch.randn(4, 8)))
    assert torch.isfinite(z).all()
    torch.testing.assert_close(
        torch.linalg.vector_norm(z.float(), dim=-1), torch.ones(4), atol=2e-2, rtol=0
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: L2p(8),
        lambda: Clifford(4),
        lambda: Sphere(8),
        lambda: ProjectionHead(8, 8).eval(),
        lambda: TorusMLPHead(8).eval(),
    ],
)
def test_torch_export_with_dynamic_batch(make):
    head = make()
    width = head.in_features if hasattr(head, "in_features") else head.dim
    batch = torch.export.Dim("batch", min=2)
    program = torch.export.export(head, (torch.randn(4, width),), dynamic_shapes={"x": {0: batch}})
    x = torch.randn(7, width)
    torch.testing.assert_close(program.module()(x), head(x))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_interleave_equals_stack_for_every_dtype_and_keeps_gradients(dtype):
    from torus_plugins.geometry import interleave

    a = torch.randn(3, 2, 5).to(dtype).requires_grad_()
    b = torch.randn(3, 2, 5).to(dtype).requires_grad_()
    z = interleave(a, b)
    assert z.dtype == dtype and z.shape == (3, 2, 10)
    torch.testing.assert_close(z, torch.stack((a, b), -1).flatten(-2))
    signs = torch.tensor([1.0, -1.0]).repeat(5)
    z.backward((torch.arange(30.0).reshape(3, 2, 5).repeat_interleave(2, -1) * signs).to(dtype))
    torch.testing.assert_close(a.grad, torch.arange(30.0).reshape(3, 2, 5).to(dtype))
    torch.testing.assert_close(b.grad, -torch.arange(30.0).reshape(3, 2, 5).to(dtype))


def test_l2p_works_under_torch_func_grad_and_vmap():
    from torus_plugins.heads.l2p import l2p_reference

    x = torch.randn(5, 8, dtype=torch.float64)
    w = torch.randn(8, dtype=torch.float64)
    head = L2p(8)

    def loss(fn, row):
        return (fn(row) * w).sum()

    per_sample = torch.func.vmap(torch.func.grad(lambda r: loss(head, r)))(x)
    reference = torch.func.vmap(torch.func.grad(lambda r: loss(l2p_reference, r)))(x)
    torch.testing.assert_close(per_sample, reference)
    torch.testing.assert_close(torch.func.vmap(head)(x), l2p_reference(x))


def test_l2p_output_can_be_modified_in_place_before_backward():
    from torus_plugins.heads.l2p import l2p_reference

    x = torch.randn(4, 8, dtype=torch.float64)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    za = L2p(8)(xa)
    za.mul_(2.0)
    torch.nn.functional.relu(za, inplace=True).sum().backward()
    torch.nn.functional.relu(l2p_reference(xb) * 2.0).sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad)


@pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated:FutureWarning"
)  # torch's own make_dual
def test_l2p_forward_mode_ad_equals_jvp_of_the_plain_formula():
    import torch.autograd.forward_ad as fwAD

    from torus_plugins.heads.l2p import l2p_reference

    x = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    x_t = torch.randn(3, 8, dtype=torch.float64)
    with fwAD.dual_level():
        tangent = fwAD.unpack_dual(L2p(8)(fwAD.make_dual(x, x_t))).tangent
    _, expected = torch.func.jvp(l2p_reference, (x.detach(),), (x_t,))
    torch.testing.assert_close(tangent, expected)


def test_l2p_pairs_clamped_at_a_large_eps_get_the_gradient_of_the_linear_forward():
    from torus_plugins.heads.l2p import l2p_reference

    eps = 1e-3
    x = torch.randn(3, 8, dtype=torch.float64)
    x[0, 2:4] = torch.tensor(
        [3e-4, 4e-4], dtype=torch.float64
    )  # norm 5e-4 < eps: y = x / (sqrt(k) * eps)
    g = torch.randn(3, 8, dtype=torch.float64)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    (ga,) = torch.autograd.grad(L2p(8, eps=eps)(xa), xa, g)
    (gb,) = torch.autograd.grad(l2p_reference(xb, eps), xb, g)
    torch.testing.assert_close(ga, gb)
    torch.testing.assert_close(ga[0, 2:4], g[0, 2:4] / (2.0 * eps))  # sqrt(k) = 2
    assert torch.autograd.gradcheck(L2p(8, eps=eps), (x.clone().requires_grad_(),))


def test_export_of_a_trainable_module_ending_in_l2p():
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), L2p(8))
    batch = torch.export.Dim("batch", min=2)
    program = torch.export.export(model, (torch.randn(4, 6),), dynamic_shapes=({0: batch},))
    x = torch.randn(5, 6)
    torch.testing.assert_close(program.module()(x), model(x))
