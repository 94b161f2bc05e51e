"""The training hot path: every head and loss compiles whole (``torch.compile(fullgraph=True)``)
to the eager values and gradients, and in the "device" validation mode (what a GPU or a compiled
step gets by default) one forward+backward reads no tensor value on the host, while bad input
still fails loudly.

Compile cost (measured on 2 shared cores): the "aot_eager" backend traces forward and backward in
about 1 s per case; a real inductor compile costs about 8 s of CPU with a cold cache (under 1 s
warm), so there is one per family (heads, contrastive, spreading, covariance), not one per case.
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

import torus_plugins
from torus_plugins import Clifford, L2p, ProjectionHead, Sphere, TorusMLPHead
from torus_plugins.losses import (
    CircularSpreadLoss,
    KoLeoLoss,
    ProtoCLRLoss,
    SupConLoss,
    ToroidalCovarianceLoss,
    UniformityLoss,
    VICRegLoss,
)
from torus_plugins.validation import (
    check_mode,
    get_validation,
    host_reads_allowed,
    set_validation,
    validation_mode,
)

# ---- counting host reads -------------------------------------------------------------------------

#: aten ops that read a value on the host (item, bool(t), int(t)...) or whose output shape depends
#: on values (on a GPU each waits for the device).
SYNCING_OPS = {
    "aten::_local_scalar_dense",
    "aten::item",
    "aten::is_nonzero",
    "aten::equal",
    "aten::allclose",
    "aten::nonzero",
    "aten::masked_select",
    "aten::_unique",
    "aten::_unique2",
    "aten::unique_dim",
    "aten::unique_consecutive",
    "aten::bincount",
    "aten::histc",
}
#: Python-level reads that bypass the dispatcher.
PYTHON_READS = ("tolist", "numpy")


class HostReads(TorchDispatchMode):
    """Records every syncing op (and boolean-mask indexing, which runs ``nonzero`` inside its
    kernel) dispatched while active, backward included. Use through :func:`count_host_reads`."""

    def __init__(self):
        super().__init__()
        self.reads = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func._schema.name
        if name in SYNCING_OPS or (
            name == "aten::repeat_interleave" and len(args) == 1 and "output_size" not in kwargs
        ):
            self.reads.append(name)
        elif name.startswith(("aten::index", "aten::_index_put")) and len(args) > 1:
            indices = args[1] if isinstance(args[1], (list, tuple)) else ()
            if any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in indices):
                self.reads.append(f"{name} with a boolean mask")
        return func(*args, **kwargs)


def count_host_reads(fn, monkeypatch):
    """Run ``fn()``; the list of host reads it made (dispatched ops, Python-level tolist/numpy)."""
    mode = HostReads()
    for attr in PYTHON_READS:
        original = getattr(torch.Tensor, attr)

        def spy(self, *args, _original=original, _attr=attr, **kwargs):
            mode.reads.append(f"Tensor.{_attr}")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, attr, spy)
    with mode:
        fn()
    monkeypatch.undo()
    return mode.reads


def test_the_counter_sees_every_kind_of_host_read(monkeypatch):
    """Each read below is seen, in forward and in backward: else "no read" would mean nothing."""
    x = torch.randn(6, 4, requires_grad=True)
    reads = [
        lambda: bool(x.sum() > 0),
        lambda: int(x.argmax()),
        lambda: float(x.detach().sum()),
        lambda: x.detach().sum().item(),
        lambda: x.tolist(),
        lambda: x.detach().numpy(),
        lambda: torch.unique(x),
        lambda: x[x > 0],
        lambda: torch.nonzero(x),
        lambda: F.one_hot(torch.tensor([0, 2])),
    ]
    for read in reads:
        assert count_host_reads(read, monkeypatch), read

    class ReadInBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            return t * 2

        @staticmethod
        def backward(ctx, g):
            return g * float(g.abs().max())

    assert count_host_reads(lambda: ReadInBackward.apply(x).sum().backward(), monkeypatch)
    assert count_host_reads(lambda: (x * 2).sum().backward(), monkeypatch) == []


# ---- every head and loss -------------------------------------------------------------------------


def _inputs(seed=0, b=8, d=8):
    g = torch.Generator().manual_seed(seed)
    z = F.normalize(torch.randn(b, d, generator=g), dim=-1)
    return g, z


def _views(seed=0):
    g, z = _inputs(seed)
    return torch.stack([z, F.normalize(z + 0.3 * torch.randn(z.shape, generator=g), dim=-1)], 1)


def _two_views_and_labels():
    return _views()[:, 0], _views()[:, 1], torch.tensor([3, 1, 3, 7, 1, 1, 0, 3])


#: name -> (module factory, inputs factory). Small inputs: compiling, not computing, is tested.
CASES = {
    "Sphere": (lambda: Sphere(8), lambda: (_inputs()[1] * 3,)),
    "L2p": (lambda: L2p(8), lambda: (_inputs()[1] * 3,)),
    "Clifford": (lambda: Clifford(4), lambda: (torch.rand(8, 4, generator=_inputs()[0]),)),
    "TorusMLPHead": (lambda: TorusMLPHead(8, n_circles=3, hidden_dim=16), lambda: (_inputs()[1],)),
    "ProjectionHead": (
        lambda: ProjectionHead(8, 6, geometry="l2p", hidden_dim=16),
        lambda: (_inputs()[1],),
    ),
    "KoLeoLoss": (KoLeoLoss, lambda: (_inputs()[1],)),
    "KoLeoLoss[B,V,D]": (KoLeoLoss, lambda: (_views(),)),
    "SupConLoss": (SupConLoss, lambda: (_views(), torch.arange(8) % 3)),
    "SupConLoss(SimCLR)": (SupConLoss, lambda: (_views(),)),
    "SupConLoss(torusN,one)": (
        lambda: SupConLoss(geometry="torusN", contrast_mode="one"),
        lambda: (_views(), torch.arange(8) % 3),
    ),
    "ProtoCLRLoss": (ProtoCLRLoss, _two_views_and_labels),
    "ProtoCLRLoss(circular)": (
        lambda: ProtoCLRLoss(circular_prototypes=True),
        _two_views_and_labels,
    ),
    "UniformityLoss": (UniformityLoss, lambda: (_views(),)),
    "CircularSpreadLoss": (CircularSpreadLoss, lambda: (_inputs()[1],)),
    "ToroidalCovarianceLoss": (
        lambda: ToroidalCovarianceLoss(2, 8, penalty="laplacian"),
        lambda: (_inputs()[1],),
    ),
    "VICRegLoss": (VICRegLoss, lambda: (_views()[:, 0], _views()[:, 1])),
    "VICRegLoss(toroidal)": (
        lambda: VICRegLoss(covariance="toroidal", grid_size=2, penalty="laplacian"),
        lambda: (_views()[:, 0], _views()[:, 1]),
    ),
}
HEADS = {"Sphere", "L2p", "Clifford", "TorusMLPHead", "ProjectionHead"}
#: One real inductor compile per family; the others use aot_eager (same graphs, no C++ codegen).
INDUCTOR = {"L2p", "SupConLoss", "KoLeoLoss", "VICRegLoss"}


def train_step(module, inputs):
    """One forward+backward: (output, gradients of every floating input). A head's output is
    weighted so that its gradient is not just the projection of a constant."""
    xs = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
    out = module(*xs)
    weights = torch.linspace(-1.0, 2.0, out.numel()).reshape(out.shape)
    (out * weights).sum().backward()
    return out.detach(), [x.grad for x in xs if x.is_floating_point()]


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize("name", CASES)
def test_one_training_step_reads_nothing_on_the_host_in_device_mode(name, monkeypatch):
    make, inputs = CASES[name]
    module, args = make(), inputs()
    expected = train_step(copy.deepcopy(module), args)  # default mode on CPU: host checks
    with validation_mode("device"):
        reads = count_host_reads(lambda: train_step(module, args), monkeypatch)
        out, grads = train_step(copy.deepcopy(module), args)
    assert reads == [], f"{name} read the host: {reads}"
    torch.testing.assert_close(out, expected[0])
    for got, want in zip(grads, expected[1]):
        torch.testing.assert_close(got, want)
    if name not in HEADS:  # the same step in "host" mode reads: the counter sees the checks
        with validation_mode("host"):
            assert count_host_reads(lambda: train_step(module, args), monkeypatch)


@pytest.mark.parametrize("name", CASES)
def test_compiles_whole_to_the_eager_values_and_gradients(name):
    make, inputs = CASES[name]
    module, args = make(), inputs()
    eager_out, eager_grads = train_step(copy.deepcopy(module), args)
    backend = "inductor" if name in INDUCTOR else "aot_eager"
    compiled = torch.compile(copy.deepcopy(module), fullgraph=True, backend=backend)
    out, grads = train_step(compiled, args)
    torch.testing.assert_close(out, eager_out, rtol=1e-5, atol=1e-5)
    assert len(grads) == len(eager_grads)
    for got, want in zip(grads, eager_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_the_upstream_equivalents_compile_too():
    """The bar: lightly's KoLeo and VICReg and F.normalize compile whole (pml's SupConLoss does
    not; ours compile regardless). lightly's VICReg only without inductor: in torch 2.14 inductor
    fails on its boolean-mask indexing (see bench/losses.py)."""
    lightly_loss = pytest.importorskip("lightly.loss")
    z = _views()
    cases = [
        (lambda t: F.normalize(t, dim=-1), (z[:, 0],)),
        (lightly_loss.KoLeoLoss(), (z[:, 0],)),
        (lightly_loss.VICRegLoss(), (z[:, 0], z[:, 1])),
    ]
    for fn, args in cases:
        torch._dynamo.reset()
        torch.compile(fn, fullgraph=True, backend="aot_eager")(*args)


# ---- bad input stays loud in every mode but "off" ------------------------------------------------


def _with(t, index, value):
    t = t.clone()
    t[index] = value
    return t


NAN, INF = float("nan"), float("inf")
BAD_INPUTS = {  # loss, inputs with one bad value, words of the message
    "nan embedding": (KoLeoLoss, lambda: (_with(_inputs()[1], (2, 3), NAN),), "NaN or inf"),
    "inf embedding": (
        SupConLoss,
        lambda: (_with(_views(), (1, 0, 5), INF), torch.arange(8) % 3),
        "NaN or inf",
    ),
    "nan label": (
        SupConLoss,
        lambda: (_views(), torch.tensor([0.0, 1, NAN, 1, 0, 2, 2, 0])),
        "NaN or inf",
    ),
    "fractional label": (
        ProtoCLRLoss,
        lambda: (*_two_views_and_labels()[:2], torch.tensor([0.0, 1, 0.5, 1, 0, 2, 2, 0])),
        "integer class ids",
    ),
    "no positive": (
        SupConLoss,
        lambda: (_views()[:, :1], torch.arange(8)),
        "no anchor has a positive",
    ),
    "overflow": (
        VICRegLoss,
        lambda: (_with(_inputs()[1], (0, 0), 1e30), _inputs(1)[1]),
        "overflowed",
    ),
    "fp16 zero row": (
        KoLeoLoss,
        lambda: (torch.tensor([[0.0], [-0.2935]], dtype=torch.float16),),
        "overflows torch.float16",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_is_a_value_error_in_eager_cpu_and_an_assert_in_device_mode(case):
    make, inputs, words = BAD_INPUTS[case]
    with pytest.raises(ValueError, match=words):
        make()(*inputs())
    with validation_mode("device"), pytest.raises(RuntimeError, match=words):
        make()(*inputs())


@pytest.mark.parametrize("case", ["nan embedding", "nan label", "no positive", "overflow"])
def test_bad_input_fails_loudly_in_a_compiled_step(case):
    """Default mode under torch.compile: device-side asserts compiled into the graph."""
    make, inputs, words = BAD_INPUTS[case]
    compiled = torch.compile(make(), fullgraph=True, backend="aot_eager")
    with pytest.raises(RuntimeError, match=words):
        compiled(*inputs())


def test_off_mode_lets_nan_through_like_lightly():
    from lightly.loss import KoLeoLoss as LightlyKoLeo

    x = _inputs()[1].clone()
    x[2, 3] = float("nan")
    with validation_mode("off"):
        ours = KoLeoLoss()(x)
    assert torch.isnan(ours) and torch.isnan(LightlyKoLeo()(x))


# ---- the mode switch -----------------------------------------------------------------------------


def test_auto_mode_is_host_in_eager_cpu_and_device_when_compiling():
    x = torch.zeros(3)
    assert get_validation() == "auto" and check_mode(x) == "host" and host_reads_allowed(x)
    seen = []

    def probe(t):
        seen.append((check_mode(t), host_reads_allowed(t)))
        return t + 1

    torch.compile(probe, fullgraph=True, backend="eager")(x)
    assert seen == [("device", False)]
    for mode, expected in [
        ("host", ("host", True)),
        ("device", ("device", False)),
        ("off", ("off", True)),
    ]:
        with validation_mode(mode):
            assert (check_mode(x), host_reads_allowed(x)) == expected
        assert get_validation() == "auto"


def test_set_validation_and_environment_variable(monkeypatch):
    try:
        set_validation("OFF")
        assert get_validation() == "off"
        with validation_mode("host"):
            assert get_validation() == "host"
        assert get_validation() == "off"
    finally:
        set_validation("auto")
    message = r"validation mode must be one of auto\|host\|device\|off, got 'strict'"
    with pytest.raises(ValueError, match=message):
        set_validation("strict")
    with pytest.raises(ValueError, match="validation mode"):
        with validation_mode(None):
            pass
    import torus_plugins.validation as v

    monkeypatch.setattr(v, "_process_mode", "sometimes")  # as read from TORUS_PLUGINS_VALIDATE
    with pytest.raises(ValueError, match="TORUS_PLUGINS_VALIDATE must be one of .*'sometimes'"):
        KoLeoLoss()(_inputs()[1])
    assert torus_plugins.validation_mode is v.validation_mode
    assert torus_plugins.set_validation is set_validation


def test_toroidal_weight_is_copied_once_per_device_and_dtype(monkeypatch):
    """A loss never moved with .to(device) (VICReg builds its toroidal term itself) must not copy
    its [D, D] weight at every step: on a GPU each copy from host memory blocks."""
    loss = VICRegLoss(covariance="toroidal", grid_size=2)
    z = _views().double()

    class Copies(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.copies = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func._schema.name in ("aten::_to_copy", "aten::copy_") and args[0].shape == (8, 8):
                self.copies.append(func._schema.name)
            return func(*args, **(kwargs or {}))

    with Copies() as first:
        loss(z[:, 0], z[:, 1])
    with Copies() as second:
        out = loss(z[:, 0], z[:, 1])
    assert first.copies and second.copies == [] and out.dtype == torch.float64
