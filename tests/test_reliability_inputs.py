"""Bad input over the public API: every constructor parameter and every tensor
input, fed bad values generated per kind, gives a TypeError/ValueError raised by this package (not
from deep inside torch or numpy) that names the argument and the value; good inputs of any shape
give finite, correct output."""

import math
import traceback

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from torus_plugins.codes import (
    SphereGridQuantizer,
    UInt8Encoder,
    circular_distance,
    coordinate_distance,
    dequantize,
    encode,
    johnson_bytes,
    johnson_encode,
    pack_codes,
    packed_row_bytes,
    pairwise_circular_distance,
    quantize,
    unpack_codes,
)
from torus_plugins.geometry import to_clifford, to_turns, torus_spectral_gap
from torus_plugins.heads import Clifford, L2p, ProjectionHead, Sphere, TorusMLPHead
from torus_plugins.losses import (
    CircularSpreadLoss,
    KoLeoLoss,
    ProtoCLRLoss,
    SupConLoss,
    ToroidalCovarianceLoss,
    UniformityLoss,
    VICRegLoss,
    torus_grid_penalty,
)

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def raised_here(exc: BaseException) -> bool:
    """The error was raised by torus_plugins code (its innermost frame is in the package), not by
    torch/numpy."""
    frames = traceback.extract_tb(exc.__traceback__)
    return "torus_plugins" in frames[-1].filename


def assert_clear_error(fn, *words):
    with pytest.raises((TypeError, ValueError)) as info:
        fn()
    msg = str(info.value)
    assert raised_here(info.value), (
        f"raw error from {traceback.extract_tb(info.value.__traceback__)[-1]}: {msg}"
    )
    for word in words:
        assert word in msg, f"{word!r} not in message {msg!r}"
    return msg


# ---- constructor parameters ----------------------------------------------------------------------

BAD = {
    "pos_float": [0, 0.0, -1, -2.5, float("nan"), float("inf"), "0.1", True, None, [0.1]],
    "nonneg_float": [-1, -1e-9, float("nan"), float("inf"), "1", False, None],
    "pos_int": [0, -3, 2.5, 2.0, "4", True, None, float("nan")],
    "int_ge2": [1, 0, -3, 2.5, 3.0, "4", True, None],
    "even_int": [0, -2, 3, 7, 4.0, "8", True, None],
    "bool": [None, 1, 0, "yes", 1.0],
    "bits": [0, 9, -1, 8.0, "8", True, None],
}

CONSTRUCTORS = [  # (factory, {parameter: kind}) with every other parameter at a valid value
    (lambda **kw: L2p(**{"dim": 8, **kw}), {"dim": "even_int", "eps": "pos_float"}),
    (lambda **kw: Sphere(**{"dim": 8, **kw}), {"dim": "pos_int", "eps": "pos_float"}),
    (lambda **kw: Clifford(**{"dim": 8, **kw}), {"dim": "pos_int"}),
    (
        lambda **kw: TorusMLPHead(**{"in_features": 8, **kw}),
        {"in_features": "pos_int", "n_circles": "pos_int", "hidden_dim": "pos_int"},
    ),
    (
        lambda **kw: ProjectionHead(**{"in_features": 8, "dim": 8, **kw}),
        {
            "in_features": "pos_int",
            "dim": "pos_int",
            "hidden_dim": "pos_int",
            "n_layers": "pos_int",
        },
    ),
    (
        SupConLoss,
        {"temperature": "pos_float", "base_temperature": "pos_float", "gather_distributed": "bool"},
    ),
    (
        ProtoCLRLoss,
        {"tau": "pos_float", "circular_prototypes": "bool", "gather_distributed": "bool"},
    ),
    (
        KoLeoLoss,
        {"eps": "pos_float", "p": "pos_float", "normalize": "bool", "gather_distributed": "bool"},
    ),
    (UniformityLoss, {"t": "pos_float", "gather_distributed": "bool"}),
    (
        VICRegLoss,
        {
            "lambda_param": "nonneg_float",
            "mu_param": "nonneg_float",
            "nu_param": "nonneg_float",
            "eps": "pos_float",
            "grid_size": "int_ge2",
            "gather_distributed": "bool",
        },
    ),
    (
        ToroidalCovarianceLoss,
        {"grid_size": "int_ge2", "dim": "int_ge2", "gather_distributed": "bool"},
    ),
    (CircularSpreadLoss, {"min_spread": "nonneg_float", "gather_distributed": "bool"}),
    (lambda **kw: UInt8Encoder(torch.nn.Identity(), **kw), {"bits": "bits"}),
    (SphereGridQuantizer, {"bits": "bits"}),
]

CASES = [
    (factory, param, bad)
    for factory, params in CONSTRUCTORS
    for param, kind in params.items()
    for bad in BAD[kind]
]


@pytest.mark.parametrize(
    "factory,param,bad",
    CASES,
    ids=[f"{getattr(f, '__name__', 'head')}-{p}-{b!r}" for f, p, b in CASES],
)
def test_constructor_rejects_bad_parameter(factory, param, bad):
    msg = assert_clear_error(lambda: factory(**{param: bad}), param)
    assert "got" in msg


@pytest.mark.parametrize("factory,params", CONSTRUCTORS)
def test_constructors_accept_their_defaults_and_numpy_numbers(factory, params):
    factory()
    good = {
        "pos_float": np.float32(0.5),
        "nonneg_float": np.float64(0.0),
        "pos_int": np.int64(4),
        "int_ge2": np.int32(4),
        "even_int": np.int16(8),
        "bool": np.bool_(False),
        "bits": np.uint8(4),
    }
    for param, kind in params.items():
        factory(**{param: good[kind]})


@pytest.mark.parametrize(
    "factory,kw,word",
    [
        (SupConLoss, {"contrast_mode": "some"}, "contrast_mode"),
        (SupConLoss, {"geometry": "cube"}, "geometry"),
        (VICRegLoss, {"covariance": "x"}, "covariance"),
        (VICRegLoss, {"penalty": "x"}, "penalty"),
        (ToroidalCovarianceLoss, {"penalty": None}, "penalty"),
        (lambda **kw: TorusMLPHead(4, **kw), {"angle_map": "tanh"}, "angle_map"),
        (lambda **kw: ProjectionHead(4, 4, **kw), {"geometry": 3}, "geometry"),
    ],
)
def test_choice_parameters(factory, kw, word):
    assert_clear_error(lambda: factory(**kw), word)


@pytest.mark.parametrize("head", [L2p, Sphere])
def test_head_eps_too_small_to_square_in_float32_is_refused(head):
    assert_clear_error(lambda: head(8, eps=1e-30), "eps must be >= 1e-18", "underflow", "1e-30")
    z = head(8, eps=1e-18)(torch.zeros(2, 8))
    assert bool((z == 0).all())


def test_sign_flipping_parameters_are_refused_with_their_meaning():
    """The instances named in the issue: each used to give a sign flip, NaN or inf."""
    assert_clear_error(lambda: SupConLoss(base_temperature=-1), "base_temperature", "> 0", "-1")
    assert_clear_error(lambda: UniformityLoss(t=-2), "t must be > 0", "-2")
    assert_clear_error(lambda: VICRegLoss(eps=-1), "eps", "> 0")
    assert_clear_error(lambda: KoLeoLoss(eps=0), "eps", "> 0")
    assert_clear_error(lambda: SupConLoss(temperature="0.07"), "temperature", "'0.07' (str)")
    assert_clear_error(lambda: ProtoCLRLoss(tau="0.1"), "tau", "(str)")


@pytest.mark.parametrize(
    "fn,word",
    [
        (lambda v: torus_spectral_gap(v), "grid_size"),
        (lambda v: torus_grid_penalty(v), "grid_size"),
        (lambda v: unpack_codes(np.zeros((1, 1), np.uint8), 8, n_angles=v), "n_angles"),
        (
            lambda v: pairwise_circular_distance(
                np.zeros((2, 3), np.uint8), np.zeros((2, 3), np.uint8), chunk=v
            ),
            "chunk",
        ),
        (lambda v: circular_distance(np.zeros(3, np.uint8), np.zeros(3, np.uint8), p=v), "p"),
        (lambda v: quantize(np.zeros(3), bits=v), "bits"),
        (lambda v: packed_row_bytes(v, 4), "n_angles"),
        (lambda v: johnson_bytes(v, 4), "n_angles"),
    ],
)
@pytest.mark.parametrize("bad", [2.5, 2.0, "2", True, None, -1])
def test_integer_arguments_are_never_truncated(fn, word, bad):
    assert_clear_error(lambda: fn(bad), word)


# ---- tensor inputs: shapes, dtypes and special values --------------------------------------------

SPECIAL = [float("nan"), float("inf"), -float("inf")]
FLOAT_DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
BAD_DTYPES = [torch.int64, torch.int32, torch.uint8, torch.bool, torch.complex64]


@st.composite
def shapes(draw, width):
    """Leading batch dims (possibly none or empty), then the given width."""
    lead = draw(st.lists(st.integers(0, 3), min_size=0, max_size=2))
    return (*lead, width)


HEADS = [
    (lambda: L2p(6), 6),
    (lambda: Sphere(5), 5),
    (lambda: Clifford(3), 3),
    (lambda: TorusMLPHead(4, n_circles=2, hidden_dim=8).eval(), 4),
    (lambda: ProjectionHead(4, 6, hidden_dim=8).eval(), 4),
    (lambda: ProjectionHead(4, 3, geometry="clifford", n_layers=3, hidden_dim=8).eval(), 4),
]


@pytest.mark.parametrize("make,width", HEADS)
@FAST
@given(data=st.data())
def test_heads_any_shape_and_dtype(make, width, data):
    head = make()
    shape = data.draw(shapes(width))
    dtype = data.draw(st.sampled_from(FLOAT_DTYPES))
    x = torch.randn(shape).to(dtype)
    if hasattr(head, "mlp"):
        head = head.to(dtype)
    z = head(x)
    assert z.shape == (*shape[:-1], head.out_dim) and z.dtype == dtype
    assert bool(torch.isfinite(z).all())
    if z.numel():
        norms = torch.linalg.vector_norm(z.double(), dim=-1)
        assert bool(((norms - 1).abs() < 0.02).all())


@pytest.mark.parametrize("make,width", HEADS)
def test_heads_reject_bad_inputs(make, width):
    head = make()
    assert_clear_error(lambda: head(torch.tensor(1.0)), "last dimension", "got shape ()")
    assert_clear_error(
        lambda: head(torch.randn(2, width + 1)), f"last dimension {width}", "got shape"
    )
    assert_clear_error(lambda: head(np.zeros((2, width), np.float32)), "torch.Tensor", "ndarray")
    for dtype in BAD_DTYPES:
        assert_clear_error(
            lambda dtype=dtype: head(torch.zeros(2, width, dtype=dtype)), "floating", str(dtype)
        )


@pytest.mark.parametrize(
    "make", [lambda: TorusMLPHead(4, n_circles=2), lambda: ProjectionHead(4, 6)]
)
def test_mlp_heads_batch_of_one_and_one_dimensional_input(make):
    head = make()
    assert_clear_error(
        lambda: head(torch.randn(1, 4)), "training mode", "at least 2 samples", ".eval()"
    )
    assert_clear_error(lambda: head(torch.randn(4)), "training mode", "shape (4,)")
    head.eval()
    one = torch.randn(4)
    z1, zb = head(one), head(one[None])
    assert z1.shape == (head.out_dim,) and torch.allclose(z1, zb[0])
    views = torch.randn(3, 2, 4)  # [B, n_views, D]: BatchNorm must not read the views as channels
    head.train()
    out = head(views)
    assert out.shape == (3, 2, head.out_dim)
    head.eval()
    torch.testing.assert_close(head(views), head(views.reshape(6, 4)).reshape(3, 2, -1))


def test_geometry_degenerate_shapes():
    assert_clear_error(lambda: to_turns(torch.tensor(0.5)), "z", "at least 1 dimension", "()")
    assert_clear_error(lambda: to_turns(torch.zeros(2, 3)), "even", "3")
    assert_clear_error(lambda: to_turns(torch.zeros(2, 0)), "positive integer", "0")
    assert_clear_error(lambda: to_clifford(torch.zeros(2, 0)), "at least one angle", "(2, 0)")
    assert_clear_error(lambda: to_clifford(torch.tensor(0.25)), "turns", "at least 1 dimension")
    assert_clear_error(lambda: to_clifford(torch.zeros(2), unit_norm="no"), "unit_norm")
    assert to_turns(torch.zeros(0, 4)).shape == (0, 2)
    assert to_clifford(torch.zeros(0, 3)).shape == (0, 6)


# ---- losses --------------------------------------------------------------------------------------


def loss_cases():
    g = torch.Generator().manual_seed(0)
    u = torch.nn.functional.normalize(torch.randn(8, 8, generator=g), dim=-1)
    v = torch.nn.functional.normalize(torch.randn(8, 8, generator=g), dim=-1)
    y = torch.arange(8) % 3
    return (
        [
            ("supcon", lambda a, b, lab: SupConLoss()(torch.stack([a, b], 1), lab), True),
            ("protoclr", lambda a, b, lab: ProtoCLRLoss()(a, b, lab), True),
            ("koleo", lambda a, b, lab: KoLeoLoss()(a), False),
            ("uniformity", lambda a, b, lab: UniformityLoss()(a), False),
            ("spread", lambda a, b, lab: CircularSpreadLoss()(a), False),
            ("tcov", lambda a, b, lab: ToroidalCovarianceLoss(3, 8)(a), False),
            ("vicreg", lambda a, b, lab: VICRegLoss()(a, b), False),
        ],
        u,
        v,
        y,
    )


@pytest.mark.parametrize("bad", SPECIAL)
def test_losses_reject_non_finite_inputs_in_every_dtype(bad):
    cases, u, v, y = loss_cases()
    for _name, fn, _ in cases:
        for dtype in FLOAT_DTYPES:
            a = u.clone().to(dtype)
            a[3, 1] = bad
            assert_clear_error(lambda fn=fn, a=a, dtype=dtype: fn(a, v.to(dtype), y), "NaN or inf")


@pytest.mark.parametrize(
    "labels,word",
    [
        (torch.tensor([0.0, 1, float("nan"), 1, 0, 2, 2, 0]), "NaN or inf"),
        (torch.tensor([0.0, 1, float("inf"), 1, 0, 2, 2, 0]), "NaN or inf"),
        (torch.tensor([0.0, 1, 0.5, 1, 0, 2, 2, 0]), "integer class ids"),
    ],
)
def test_nan_and_fractional_labels_raise(labels, word):
    cases, u, v, _ = loss_cases()
    for _name, fn, uses_labels in cases:
        if uses_labels:
            assert_clear_error(lambda fn=fn: fn(u, v, labels), word)
    # integral float labels are class ids like any other
    ok = torch.tensor([0.0, 1, 2, 1, 0, 2, 2, 0])
    assert float(SupConLoss()(torch.stack([u, v], 1), ok)) == pytest.approx(
        float(SupConLoss()(torch.stack([u, v], 1), ok.long()))
    )


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("kind", ["identical", "one_circle", "tiny_noise"])
def test_circular_spread_on_collapsed_batches_stays_in_range_with_bounded_gradient(dtype, kind):
    g = torch.Generator().manual_seed(1)
    base = torch.randn(1, 16, generator=g)
    if kind == "identical":
        x = base.repeat(64, 1)
    elif kind == "one_circle":  # circle 0 collapsed, the others spread
        x = torch.randn(64, 16, generator=g)
        x[:, 0:2] = base[:, 0:2]
    else:
        x = base + 1e-6 * torch.randn(64, 16, generator=g)
    x = x.to(dtype).requires_grad_(True)
    loss = CircularSpreadLoss()(L2p(16)(x))
    loss.backward()
    assert 0.0 <= float(loss) <= 1.0
    assert bool(torch.isfinite(x.grad).all()) and float(x.grad.abs().max()) < 1e3


@FAST
@given(
    n=st.integers(3, 40),
    k=st.integers(2, 5),
    seed=st.integers(0, 2**16),
    spread=st.sampled_from([0, 1e-6, 1e-3, 0.1, 1.0]),
)
def test_circular_spread_is_in_unit_interval_for_any_batch(n, k, seed, spread):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(1, k, generator=g, dtype=torch.float64) + spread * torch.randn(
        n, k, generator=g, dtype=torch.float64
    )
    z = Clifford(k)(t.float()).requires_grad_(True)
    loss = CircularSpreadLoss()(z)
    loss.backward()
    assert 0.0 <= float(loss) <= 1.0 and bool(torch.isfinite(z.grad).all())


# ---- codes: NaN on every path to quantize, wrong kinds -------------------------------------------


@pytest.mark.parametrize("bad", SPECIAL)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_nan_embeddings_never_become_codes(bad, dtype):
    model = torch.nn.Sequential(torch.nn.Identity(), L2p(4))
    x = torch.randn(5, 4).to(dtype)
    x[2, 1] = bad
    msg = assert_clear_error(lambda: UInt8Encoder(model)(x), "model output", "NaN or inf")
    assert (
        "flat index 8" in msg or "flat index 9" in msg
    )  # row 2, the pair holding the bad coordinate
    loader = [torch.randn(3, 4).to(dtype), x]
    assert_clear_error(lambda: encode(model, loader, progress=False), "batch 1", "NaN or inf")
    t = torch.rand(5, 2).to(dtype)
    t[4, 1] = bad
    assert_clear_error(lambda: quantize(t), "turns", "flat index 9")
    if dtype != torch.bfloat16:
        assert_clear_error(lambda: quantize(t.numpy()), "turns", "flat index 9")
        assert_clear_error(lambda: SphereGridQuantizer().fit(t.numpy()), "NaN or inf")
    assert_clear_error(lambda: SphereGridQuantizer().fit(t), "NaN or inf")


def test_quantize_nan_in_a_later_chunk(monkeypatch):
    import sys

    qmod = sys.modules["torus_plugins.codes.quantize"]
    monkeypatch.setattr(qmod, "CHUNK", 7)
    t = np.random.default_rng(0).random(50)
    t[33] = np.nan
    assert_clear_error(lambda: quantize(t), "flat index 33")
    ok = np.random.default_rng(1).random((9, 11)).astype(np.float32)
    np.testing.assert_array_equal(
        quantize(ok), np.mod(np.round(ok.astype(np.float64) * 256), 256).astype(np.uint8)
    )


@pytest.mark.parametrize(
    "fn,words",
    [
        (lambda: quantize(torch.arange(4)), ("floating", "int64")),
        (lambda: quantize(np.arange(4)), ("floating", "int64")),
        (lambda: quantize("0.5"), ("numpy array or torch tensor", "str")),
        (lambda: dequantize(np.zeros(3, np.int32)), ("uint8", "int32")),
        (lambda: dequantize(np.full(3, 200, np.uint8), bits=4), ("200", "bits=4")),
        (lambda: pack_codes(np.uint8(3), 4), ("at least one dimension",)),
        (lambda: johnson_encode(np.zeros((3, 0), np.uint8), 4), ("k >= 1", "(3, 0)")),
        (lambda: johnson_encode(np.zeros((3, 2), np.uint8), 5), ("bits", "[1, 4]", "5")),
        (
            lambda: coordinate_distance(np.zeros(3, np.float32), np.zeros(3, np.uint8), 8),
            ("uint8", "float32"),
        ),
        (
            lambda: circular_distance(np.zeros(3, np.uint8), np.zeros(4, np.uint8)),
            ("same number of angles",),
        ),
        (lambda: SphereGridQuantizer().encode(np.zeros((2, 3))), ("not fitted",)),
    ],
)
def test_codes_reject_wrong_kinds(fn, words):
    if "not fitted" in words:
        with pytest.raises(RuntimeError, match="not fitted"):
            fn()
        return
    assert_clear_error(fn, *words)


def test_sphere_grid_accepts_bfloat16_and_half():
    x = torch.randn(20, 4)
    ref = SphereGridQuantizer(8).fit(x.bfloat16().double())
    got = SphereGridQuantizer(8).fit(x.bfloat16())
    np.testing.assert_array_equal(got.encode(x.bfloat16()), ref.encode(x.bfloat16().double()))
    assert math.isfinite(
        float(
            SphereGridQuantizer(4)
            .fit(x.half())
            .decode(SphereGridQuantizer(4).fit(x.half()).encode(x.half()))
            .sum()
        )
    )


LOSS_CALLS = {  # name -> (loss, how many float tensors, needs labels, expected rank of each tensor)
    "supcon": (SupConLoss(), 1, True, 3),
    "supcon_unlabelled": (SupConLoss(), 1, False, 3),
    "protoclr": (ProtoCLRLoss(), 2, True, 2),
    "koleo": (KoLeoLoss(), 1, False, 2),
    "uniformity": (UniformityLoss(), 1, False, 2),
    "spread": (CircularSpreadLoss(), 1, False, 2),
    "tcov": (ToroidalCovarianceLoss(2, 4), 1, False, 2),
    "vicreg": (VICRegLoss(), 2, False, 2),
}


@pytest.mark.parametrize("name", sorted(LOSS_CALLS))
@FAST
@given(data=st.data())
def test_losses_on_any_shape_dtype_and_value_give_a_finite_loss_or_a_clear_error(name, data):
    """Never NaN, never a raw torch error: either a finite loss (and finite gradient) or a
    ValueError/TypeError raised by the package."""
    loss, n_tensors, labelled, rank = LOSS_CALLS[name]
    if data.draw(st.booleans()):  # a well-formed shape half of the time: [B, 4] or [B, 2, 4]
        shape = (
            (data.draw(st.integers(3, 6)), 2, 4)[3 - rank :]
            if rank == 3
            else (data.draw(st.integers(3, 6)), 4)
        )
    else:
        shape = tuple(data.draw(st.lists(st.integers(0, 4), min_size=0, max_size=4)))
    dtype = data.draw(st.sampled_from(FLOAT_DTYPES + [torch.int64, torch.bool]))
    special = data.draw(st.sampled_from([None, float("nan"), float("inf"), 0.0, 1e30, 1e-30]))
    g = torch.Generator().manual_seed(data.draw(st.integers(0, 100)))
    tensors = []
    for _ in range(n_tensors):
        t = torch.randn(shape, generator=g)
        if special is not None and t.numel():
            t.view(-1)[0] = special
        tensors.append(t.to(dtype).requires_grad_(dtype.is_floating_point))
    args = list(tensors)
    if labelled:
        n_labels = data.draw(st.sampled_from([shape[0] if shape else 0, 1, 0]))
        args.append(torch.randint(0, 2, (n_labels,), generator=g))
    try:
        out = loss(*args)
    except (TypeError, ValueError) as exc:
        assert raised_here(exc), f"raw error: {exc!r}"
        return
    finally:
        event(f"{'finite' if 'out' in locals() else 'error'}")
    assert out.dim() == 0 and math.isfinite(float(out.detach())), (
        shape,
        dtype,
        special,
        float(out.detach()),
    )
    out.backward()
    for t in tensors:
        assert t.grad is None or bool(torch.isfinite(t.grad).all()), (shape, dtype, special)


def test_loss_overflow_on_finite_inputs_is_a_clear_error():
    z = torch.randn(6, 8)
    z[0, 0] = 1e30  # finite in float32, its square is not
    assert_clear_error(
        lambda: VICRegLoss()(z, torch.randn(6, 8)), "VICRegLoss", "overflowed", "1e+30", "float32"
    )
    assert math.isfinite(float(VICRegLoss()(z.double(), torch.randn(6, 8).double())))


@FAST
@given(
    values=st.lists(
        st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=20
    ),
    width=st.sampled_from([16, 32, 64]),
    bits=st.integers(1, 8),
)
def test_quantize_is_exact_for_any_finite_turn_in_any_width(values, width, bits):
    """round(turn * 2**b) mod 2**b in exact rational arithmetic (half to even), for every finite
    float incl. huge, tiny and subnormal values, in float16 / float32 / float64, numpy and torch."""
    from fractions import Fraction

    np_dtype = {16: np.float16, 32: np.float32, 64: np.float64}[width]
    with np.errstate(over="ignore"):
        t = np.array(values, dtype=np.float64).astype(np_dtype)
    t = t[np.isfinite(t)]
    if not t.size:
        return
    levels = 1 << bits
    expected = np.array(
        [round(Fraction(float(v)) * levels) % levels for v in t], dtype=np.uint8
    )  # round(): even
    np.testing.assert_array_equal(quantize(t, bits), expected)
    np.testing.assert_array_equal(quantize(torch.from_numpy(t), bits).numpy(), expected)


@pytest.mark.parametrize(
    "loss",
    [
        lambda: __import__("torus_plugins.losses", fromlist=["x"]).KoLeoLoss(),
        lambda: __import__("torus_plugins.losses", fromlist=["x"]).UniformityLoss(),
        lambda: __import__("torus_plugins.losses", fromlist=["x"]).SupConLoss(),
    ],
)
def test_zero_views_is_a_clear_error(loss):
    """[B, 0, D] once reached torch.stack([]) (found by the generated loss test above)."""
    with pytest.raises(ValueError, match=r"at least 1 view.*\(4, 0, 8\)"):
        loss()(torch.randn(4, 0, 8))


@pytest.mark.parametrize(
    "make, call",
    [
        (lambda L: L.KoLeoLoss(), lambda loss, x: loss(x)),
        (
            lambda L: L.ProtoCLRLoss(),
            lambda loss, x: loss(x, x.detach().clone().requires_grad_(), torch.tensor([0, 1])),
        ),
        (
            lambda L: L.SupConLoss(),
            lambda loss, x: loss(x[:, None].expand(2, 2, 1), torch.tensor([0, 1])),
        ),
    ],
)
def test_zero_row_in_float16_is_a_clear_error_not_an_infinite_gradient(make, call):
    """Found by the generated loss test: a zero row's normalisation gradient (~1/eps) overflowed
    float16 to inf."""
    import torus_plugins.losses as L

    x = torch.tensor([[0.0], [-0.2935]], dtype=torch.float16, requires_grad=True)
    with pytest.raises(ValueError, match="overflows torch.float16"):
        call(make(L), x)
    y = torch.tensor([[0.5], [-0.2935]], dtype=torch.float16, requires_grad=True)
    call(make(L), y).backward()
    assert torch.isfinite(y.grad).all()
