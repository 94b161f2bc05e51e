"""Torus-aware losses and regularisers. Every loss takes this package's unit-norm head outputs as
is.

Usage::

    from torus_plugins.losses import SupConLoss, KoLeoLoss, clip_gradients
    z = torch.stack([head(f1), head(f2)], dim=1)             # [B, 2, D], unit norm
    loss = SupConLoss(0.07)(z, labels) + 0.1 * KoLeoLoss()(z)
"""

from ..geometry import torus_spectral_gap
from .circular_spread import CircularSpreadLoss, fisher_lee_matrix
from .clip import clip_gradients
from .koleo import KoLeoLoss
from .protoclr import ProtoCLRLoss
from .supcon import SupConLoss
from .toroidal_covariance import ToroidalCovarianceLoss, torus_grid_penalty
from .uniformity import UniformityLoss
from .vicreg import VICRegLoss

__all__ = [
    "KoLeoLoss",
    "SupConLoss",
    "ProtoCLRLoss",
    "UniformityLoss",
    "CircularSpreadLoss",
    "ToroidalCovarianceLoss",
    "VICRegLoss",
    "clip_gradients",
    "torus_spectral_gap",
    "fisher_lee_matrix",
    "torus_grid_penalty",
]
