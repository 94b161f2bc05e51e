"""Every loss in float16, bfloat16, float32 and float64, plain and under ``torch.autocast("cpu")``,
against an independent float64 computation on the same (rounded) input values."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from torus_plugins.losses import (
    CircularSpreadLoss,
    KoLeoLoss,
    ProtoCLRLoss,
    SupConLoss,
    ToroidalCovarianceLoss,
    UniformityLoss,
    VICRegLoss,
)

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
#: absolute tolerance on unit-scale outputs: a few units in the last place of the dtype
ATOL = {torch.float16: 2e-3, torch.bfloat16: 1.6e-2, torch.float32: 2e-6, torch.float64: 1e-12}
#: relative tolerance of losses computed in float32 (half inputs) or float64
LOSS_RTOL = {torch.float16: 1e-5, torch.bfloat16: 1e-5, torch.float32: 1e-4, torch.float64: 1e-10}


def _unit(g, *shape):
    return F.normalize(torch.randn(*shape, generator=g, dtype=torch.float64), dim=-1)


LOSSES = {
    "supcon": (lambda: SupConLoss(0.07), lambda g: (_unit(g, 12, 2, 8), torch.arange(12) % 4)),
    "supcon_simclr": (
        lambda: SupConLoss(0.1, base_temperature=0.1),
        lambda g: (_unit(g, 12, 2, 8),),
    ),
    "protoclr": (
        lambda: ProtoCLRLoss(0.1),
        lambda g: (_unit(g, 12, 8), _unit(g, 12, 8), torch.arange(12) % 3),
    ),
    "koleo": (lambda: KoLeoLoss(), lambda g: (_unit(g, 12, 8),)),
    "uniformity": (lambda: UniformityLoss(), lambda g: (_unit(g, 12, 8),)),
    "circular_spread": (lambda: CircularSpreadLoss(), lambda g: (_unit(g, 12, 8),)),
    "toroidal_cov": (lambda: ToroidalCovarianceLoss(3, 8), lambda g: (_unit(g, 12, 8),)),
    "vicreg": (lambda: VICRegLoss(), lambda g: (_unit(g, 12, 8), _unit(g, 12, 8))),
    "vicreg_toroidal": (
        lambda: VICRegLoss(covariance="toroidal", grid_size=3),
        lambda g: (_unit(g, 12, 8), _unit(g, 12, 8)),
    ),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("autocast", [False, True])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_in_every_dtype_matches_float64(name, dtype, autocast):
    make_loss, make_inputs = LOSSES[name]
    inputs = make_inputs(torch.Generator().manual_seed(7))
    floats = [t.to(dtype).requires_grad_(True) for t in inputs if t.is_floating_point()]
    labels = [t for t in inputs if not t.is_floating_point()]
    with torch.autocast("cpu", enabled=autocast):
        loss = make_loss()(*floats, *labels)
    assert loss.dtype == (torch.float64 if dtype == torch.float64 else torch.float32)
    loss.backward()
    ref_inputs = [
        t.detach().double().requires_grad_(True) for t in floats
    ]  # the same rounded values
    ref = make_loss()(*ref_inputs, *labels)
    ref.backward()
    assert math.isfinite(float(loss))
    assert float(loss) == pytest.approx(float(ref), rel=LOSS_RTOL[dtype], abs=1e-6)
    for got, want in zip(floats, ref_inputs):
        assert got.grad.dtype == dtype and bool(torch.isfinite(got.grad).all())
        scale = float(want.grad.abs().max())
        np.testing.assert_allclose(
            got.grad.double().numpy(),
            want.grad.numpy(),
            atol=max(ATOL[dtype], 1e-5) * max(scale, 1.0) * 4,
        )
