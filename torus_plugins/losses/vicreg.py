"""VICReg (Bardes et al. 2022) with an isotropic or toroidal covariance term."""

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import (
    check_bool,
    check_choice,
    check_int,
    check_non_negative_float,
    check_positive_float,
)
from ._common import check_embeddings, compute_dtype, full_precision
from .distributed import maybe_gather
from .toroidal_covariance import ToroidalCovarianceLoss


class VICRegLoss(nn.Module):
    """L = lambda * MSE(z_a, z_b) + mu * (V(z_a) + V(z_b)) / 2 + nu * (Cov(z_a) + Cov(z_b)),

    V(z) = mean_d relu(1 - sqrt(Var z_d + eps)); isotropic Cov(z) = sum_{i != j} C_ij^2 / D (as
    ``lightly.loss.VICRegLoss``, numerically equal); ``covariance='toroidal'`` uses
    :class:`ToroidalCovarianceLoss` (grid ``grid_size``, weights ``penalty``) instead.
    ``components(z_a, z_b)`` returns {loss, invariance_loss, var_loss, cov_loss} (eb_jepa's dict;
    the parts are unweighted). With ``gather_distributed`` all three terms use the batch of all
    ranks (lightly computes the invariance term on the local batch only).

    The positional arguments are lightly's ``VICRegLoss(lambda_param, mu_param, nu_param,
    gather_distributed, eps)``, in its order; the covariance options are keyword-only.

    Args:
        lambda_param: invariance weight (>= 0).
        mu_param: variance weight (>= 0).
        nu_param: covariance weight (>= 0).
        gather_distributed: compute all terms over the batch of all ranks.
        eps: added to the variance before the square root (> 0).
        covariance: "isotropic" (lightly's) or "toroidal".
        grid_size: torus grid of the toroidal term (>= 2).
        penalty: "distance" or "laplacian" (toroidal term).

    Raises:
        TypeError: a weight or ``eps`` is not a real number, ``grid_size`` is not an integer, or
            ``gather_distributed`` is not a bool.
        ValueError: a weight is negative, ``eps`` is not > 0, ``grid_size`` < 2, or
            ``covariance`` or ``penalty`` is not an accepted name (all values must be finite).

    Example:
        >>> vicreg = VICRegLoss(covariance="toroidal", grid_size=12)
        >>> loss = vicreg(torch.randn(32, 256), torch.randn(32, 256))
    """

    def __init__(
        self,
        lambda_param: float = 25.0,
        mu_param: float = 25.0,
        nu_param: float = 1.0,
        gather_distributed: bool = False,
        eps: float = 1e-4,
        *,
        covariance: str = "isotropic",
        grid_size: int = 12,
        penalty: str = "distance",
    ):
        super().__init__()
        check_choice(covariance, "VICRegLoss covariance", ("isotropic", "toroidal"))
        check_choice(penalty, "VICRegLoss penalty", ("distance", "laplacian"))
        self.lambda_param = check_non_negative_float(lambda_param, "VICRegLoss lambda_param")
        self.mu_param = check_non_negative_float(mu_param, "VICRegLoss mu_param")
        self.nu_param = check_non_negative_float(nu_param, "VICRegLoss nu_param")
        grid_size = check_int(grid_size, "VICRegLoss grid_size", minimum=2)
        # eps < 0 gives the sqrt of a negative variance: NaN
        eps = check_positive_float(eps, "VICRegLoss eps")
        self.covariance, self.grid_size, self.eps, self.penalty = (
            covariance,
            grid_size,
            eps,
            penalty,
        )
        self.gather_distributed = check_bool(gather_distributed, "VICRegLoss gather_distributed")
        self._toroidal: dict[int, ToroidalCovarianceLoss] = {}

    def _cov(self, z: torch.Tensor) -> torch.Tensor:
        d = z.shape[1]
        if self.covariance == "toroidal":
            if d not in self._toroidal:
                self._toroidal[d] = ToroidalCovarianceLoss(self.grid_size, d, self.penalty)
            return self._toroidal[d](z)
        zc = z - z.mean(0)
        cov = zc.t() @ zc / (z.shape[0] - 1)
        return (cov.pow(2).sum() - cov.diagonal().pow(2).sum()) / d

    def _var(self, z: torch.Tensor) -> torch.Tensor:
        return F.relu(1.0 - torch.sqrt(z.var(dim=0) + self.eps)).mean()

    @full_precision
    def components(self, z_a: torch.Tensor, z_b: torch.Tensor) -> dict:
        """The loss and its three unweighted parts.

        Args:
            z_a: floating-point tensor of shape [B, D], B >= 2: the first view.
            z_b: the second view, of the shape of ``z_a``.

        Returns:
            A dict of 0-d tensors (float32 for float16/bfloat16 input, else the input dtype):
            ``loss``, ``invariance_loss``, ``var_loss``, ``cov_loss``.

        Raises:
            TypeError: ``z_a`` or ``z_b`` is not a floating-point tensor.
            ValueError: ``z_a`` or ``z_b`` is not 2-D, has fewer than 2 samples or an empty
                dimension, their shapes differ, an input holds
                NaN/inf (validation mode "host"; mode "device" raises
                RuntimeError instead, see :mod:`torus_plugins.validation`), or the loss overflowed
                on finite input.
        """
        check_embeddings(z_a, "VICRegLoss z_a")
        check_embeddings(z_b, "VICRegLoss z_b")
        if z_a.shape != z_b.shape:
            raise ValueError(
                f"VICRegLoss z_a and z_b must have the same shape, got {tuple(z_a.shape)} "
                f"and {tuple(z_b.shape)}"
            )
        z_a, z_b = maybe_gather(self.gather_distributed, z_a, z_b)
        (z_a, z_b), out_dtype = compute_dtype(z_a, z_b)
        inv = F.mse_loss(z_a, z_b)
        var = 0.5 * (self._var(z_a) + self._var(z_b))
        cov = self._cov(z_a) + self._cov(z_b)
        loss = self.lambda_param * inv + self.mu_param * var + self.nu_param * cov
        parts = {"loss": loss, "invariance_loss": inv, "var_loss": var, "cov_loss": cov}
        return {key: value.to(out_dtype) for key, value in parts.items()}

    def forward(self, z_a: torch.Tensor, z_b: torch.Tensor) -> torch.Tensor:
        """The VICReg loss: ``components(z_a, z_b)["loss"]``.

        Args:
            z_a: floating-point tensor of shape [B, D], B >= 2: the first view.
            z_b: the second view, of the shape of ``z_a``.

        Returns:
            A 0-d tensor: float32 for float16/bfloat16 input, else the input dtype.

        Raises:
            TypeError: ``z_a`` or ``z_b`` is not a floating-point tensor.
            ValueError: ``z_a`` or ``z_b`` is not 2-D, has fewer than 2 samples or an empty
                dimension, their shapes differ, an input holds
                NaN/inf (validation mode "host"; mode "device" raises
                RuntimeError instead, see :mod:`torus_plugins.validation`), or the loss overflowed
                on finite input.
        """
        return self.components(z_a, z_b)["loss"]
