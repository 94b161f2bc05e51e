"""Bad inputs give a clear ValueError/TypeError naming the problem."""

import pytest
import torch

import torus_plugins.losses as L
from torus_plugins.losses import (
    CircularSpreadLoss,
    KoLeoLoss,
    ProtoCLRLoss,
    SupConLoss,
    ToroidalCovarianceLoss,
    UniformityLoss,
    VICRegLoss,
)


def test_exports():
    for name in [
        "KoLeoLoss",
        "SupConLoss",
        "ProtoCLRLoss",
        "UniformityLoss",
        "CircularSpreadLoss",
        "ToroidalCovarianceLoss",
        "VICRegLoss",
        "clip_gradients",
        "torus_spectral_gap",
    ]:
        assert hasattr(L, name)


@pytest.mark.parametrize(
    "loss,args",
    [
        (KoLeoLoss(), (torch.randn(1, 8),)),
        (UniformityLoss(), (torch.randn(1, 8),)),
        (SupConLoss(), (torch.randn(1, 2, 8),)),
        (VICRegLoss(), (torch.randn(1, 8), torch.randn(1, 8))),
        (ToroidalCovarianceLoss(3, 8), (torch.randn(1, 8),)),
        (ProtoCLRLoss(), (torch.randn(1, 8), torch.randn(1, 8), torch.tensor([0]))),
        (CircularSpreadLoss(), (torch.randn(2, 8),)),
    ],
)
def test_batch_too_small(loss, args):
    with pytest.raises(ValueError, match="batch"):
        loss(*args)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize(
    "loss,make",
    [
        (KoLeoLoss(), lambda x: (x,)),
        (UniformityLoss(), lambda x: (x,)),
        (SupConLoss(), lambda x: (torch.stack([x, x], 1),)),
        (VICRegLoss(), lambda x: (x, x.detach().clone())),
        (ProtoCLRLoss(), lambda x: (x, x, torch.arange(4))),
        (CircularSpreadLoss(), lambda x: (x,)),
    ],
)
def test_non_finite(loss, make, bad):
    x = torch.randn(4, 8)
    x[1, 2] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        loss(*make(x))


def test_shape_errors():
    with pytest.raises(ValueError, match=r"3-D"):
        SupConLoss()(torch.randn(4, 8))
    with pytest.raises(ValueError, match="2-D or 3-D"):
        KoLeoLoss()(torch.randn(4, 2, 2, 8))
    with pytest.raises(ValueError, match="same shape"):
        VICRegLoss()(torch.randn(4, 8), torch.randn(4, 6))
    with pytest.raises(ValueError, match="same shape"):
        ProtoCLRLoss()(torch.randn(4, 8), torch.randn(5, 8), torch.arange(4))
    with pytest.raises(ValueError, match="last dimension 8"):
        ToroidalCovarianceLoss(3, 8)(torch.randn(4, 6))
    with pytest.raises(ValueError, match="even"):
        CircularSpreadLoss()(torch.randn(5, 7))
    with pytest.raises(ValueError, match="2 circles"):
        CircularSpreadLoss()(torch.randn(5, 2))
    with pytest.raises(ValueError, match="even"):
        SupConLoss(geometry="torusN")(torch.randn(4, 2, 7))
    with pytest.raises(TypeError, match="floating"):
        KoLeoLoss()(torch.ones(4, 8, dtype=torch.long))


def test_labels_and_views():
    with pytest.raises(ValueError, match=r"labels must have shape \[4\]"):
        SupConLoss()(torch.randn(4, 2, 8), torch.arange(5))
    with pytest.raises(ValueError, match=r"y must have shape \[4\]"):
        ProtoCLRLoss()(torch.randn(4, 8), torch.randn(4, 8), torch.arange(3))
    with pytest.raises(ValueError, match="n_views >= 2"):
        SupConLoss()(torch.randn(4, 1, 8))
    with pytest.raises(ValueError, match="no anchor has a positive"):
        SupConLoss()(torch.randn(4, 1, 8), torch.arange(4))
    with pytest.raises(
        TypeError, match=r"labels must hold integer .* class ids, got dtype torch.complex64"
    ):
        SupConLoss()(torch.randn(4, 2, 8), torch.tensor([0, 1, 0, 1], dtype=torch.complex64))
    # one view is fine when classes repeat
    assert torch.isfinite(SupConLoss()(torch.randn(4, 1, 8), torch.tensor([0, 0, 1, 1])))


def test_bad_options():
    with pytest.raises(ValueError, match="geometry"):
        SupConLoss(geometry="cube")
    with pytest.raises(ValueError, match="contrast_mode"):
        SupConLoss(contrast_mode="some")
    with pytest.raises(ValueError, match="penalty"):
        ToroidalCovarianceLoss(3, 8, penalty="x")
    with pytest.raises(ValueError, match="covariance"):
        VICRegLoss(covariance="x")
    for name in ["hyprs", "SPHERE", "torul", "TorusN", "torus", "torusc", None]:
        SupConLoss(geometry=name)
