"""Toroidal covariance regulariser (jepa-torus V1): off-diagonal covariance weighted by an N x N
torus grid."""

import torch
from torch import nn

from .._checks import check_bool, check_choice, check_int
from ..geometry import torus_spectral_gap  # noqa: F401  (re-exported; lambda_1 of the grid used here)
from ._common import check_embeddings, compute_dtype, full_precision
from .distributed import maybe_gather


def torus_grid_penalty(grid_size: int, penalty: str = "distance") -> torch.Tensor:
    """[N^2, N^2] weights between the cells of an N x N torus grid, cell i at (i mod N, i // N).

    'distance': torus Manhattan distance min(|dx|, N-|dx|) + min(|dy|, N-|dy|), divided by its
    maximum. 'laplacian': |L| of the 4-neighbour torus-grid Laplacian, off-diagonal part rescaled to
    mean 1 (diagonal 4).

    Args:
        grid_size: N, an integer >= 2.
        penalty: ``"distance"`` or ``"laplacian"``.

    Returns:
        A float64 tensor of shape [N^2, N^2], symmetric.

    Raises:
        TypeError: ``grid_size`` is not an integer.
        ValueError: ``grid_size`` < 2, or ``penalty`` is neither name.
    """
    n = check_int(grid_size, "grid_size", minimum=2)
    check_choice(penalty, "penalty", ("distance", "laplacian"))
    idx = torch.arange(n * n)
    x, y = idx % n, idx // n
    dx = (x[:, None] - x[None, :]).abs()
    dy = (y[:, None] - y[None, :]).abs()
    dist = torch.minimum(dx, n - dx) + torch.minimum(dy, n - dy)
    if penalty == "distance":
        return dist.double() / dist.max()
    if penalty == "laplacian":
        adj = (dist == 1).double()
        lap = torch.diag(adj.sum(1)) - adj
        w = lap.abs()
        off = ~torch.eye(n * n, dtype=torch.bool)
        scale = (n * n * (n * n - 1)) / (w * off).sum()
        return torch.where(off, w * scale, w)  # not w[off] *= scale: boolean indexing won't trace
    raise ValueError(f"penalty must be 'distance' or 'laplacian', got {penalty!r}")


class ToroidalCovarianceLoss(nn.Module):
    """L = sum_{i != j} W[pos(i), pos(j)] C_ij^2 / (D (D-1)), pos(d) = d mod N^2, C the covariance.

    Replaces VICReg's isotropic off-diagonal penalty with one weighted by an N x N torus grid
    (jepa-torus V1, same weights and normalisation as its ``ToroidalCovarianceLoss``). The grid's
    spectral gap is ``torus_spectral_gap(N)`` = 2 - 2 cos(2 pi / N). Input [B, dim].

    Args:
        grid_size: N, an integer >= 2.
        dim: D, the input width, an integer >= 2.
        penalty: the weights W, ``"distance"`` or ``"laplacian"`` (:func:`torus_grid_penalty`).
        gather_distributed: gather the batch of all ranks (see :mod:`.distributed`).

    Raises:
        TypeError: ``grid_size`` or ``dim`` is not an integer, or ``gather_distributed`` is not a
            bool.
        ValueError: ``grid_size`` or ``dim`` < 2, or ``penalty`` is neither name.

    Example:
        >>> loss = ToroidalCovarianceLoss(grid_size=12, dim=256)(torch.randn(32, 256))
    """

    weight: torch.Tensor  # buffer [dim, dim]

    def __init__(
        self,
        grid_size: int = 12,
        dim: int = 2048,
        penalty: str = "distance",
        gather_distributed: bool = False,
    ):
        super().__init__()
        grid_size = check_int(grid_size, "ToroidalCovarianceLoss grid_size", minimum=2)
        dim = check_int(
            dim, "ToroidalCovarianceLoss dim (>= 2: no off-diagonal covariance below)", minimum=2
        )
        check_choice(penalty, "ToroidalCovarianceLoss penalty", ("distance", "laplacian"))
        gather_distributed = check_bool(
            gather_distributed, "ToroidalCovarianceLoss gather_distributed"
        )
        w = torus_grid_penalty(grid_size, penalty)
        pos = torch.arange(dim) % (grid_size * grid_size)
        full = w[pos[:, None], pos[None, :]]
        full.fill_diagonal_(0.0)
        self.register_buffer("weight", full.float(), persistent=False)
        self.grid_size, self.dim, self.penalty = grid_size, dim, penalty
        self.gather_distributed = gather_distributed
        self._weights: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}
        # (device, dtype) -> weight: one copy, not a blocking copy every step

    def _weight_like(self, z: torch.Tensor) -> torch.Tensor:
        w = self.weight
        if w.device == z.device and w.dtype == z.dtype:
            return w
        key = (z.device, z.dtype)
        if key not in self._weights:
            self._weights[key] = w.to(device=z.device, dtype=z.dtype)
        return self._weights[key]

    @full_precision
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """The weighted off-diagonal covariance penalty of a batch.

        Args:
            z: floating-point tensor of shape [B, dim], B >= 2.

        Returns:
            A 0-d tensor: float32 for float16/bfloat16 input, else the dtype of ``z``.

        Raises:
            TypeError: ``z`` is not a floating-point tensor.
            ValueError: ``z`` is not 2-D, has fewer than 2 samples, a width other than ``dim``,
                NaN/inf (validation mode "host"; mode "device" raises
                RuntimeError instead, see :mod:`torus_plugins.validation`), or the loss overflowed
                on finite input.
        """
        check_embeddings(z, "ToroidalCovarianceLoss input")
        if z.shape[1] != self.dim:
            raise ValueError(
                f"ToroidalCovarianceLoss input must have last dimension {self.dim}, "
                f"got shape {tuple(z.shape)}"
            )
        (z,) = maybe_gather(self.gather_distributed, z)
        (z,), out_dtype = compute_dtype(z)
        zc = z - z.mean(0, keepdim=True)
        cov = zc.t() @ zc / (z.shape[0] - 1)
        w = self._weight_like(z)
        return ((w * cov.pow(2)).sum() / (self.dim * (self.dim - 1))).to(out_dtype)
