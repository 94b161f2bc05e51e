"""The regulariser terms of the EB-JEPA drop-ins: :class:`TorusVCTerms` (projection onto the torus,
then variance, covariance and uniformity terms) and upstream's variance hinge and off-diagonal
covariance. Exported by :mod:`torus_plugins.adapters.eb_jepa`, whose docstring says what changes
from upstream.
"""

import math

import torch
from torch import nn

from torus_plugins._deprecation import renamed_keywords
from torus_plugins.geometry import embedding_geometry

from .normalize import torus_normalize

__all__ = [
    "TorusVCTerms",
    "hinge_std",
    "offdiag_cov",
    "COVARIANCES",
    "UNIFORMITY_SAMPLES",
    "MAX_EXACT_UNIFORMITY_ROWS",
]

COVARIANCES = ("isotropic", "toroidal")

#: Rows the uniformity term sees at most by default (its memory is quadratic in them).
UNIFORMITY_SAMPLES = 4096
#: Most rows ``uniformity_samples=None`` (every pair) accepts before refusing (1.8 GiB at 8192).
MAX_EXACT_UNIFORMITY_ROWS = 8192


def hinge_std(x: torch.Tensor, margin: float) -> torch.Tensor:
    """mean_d relu(margin - sqrt(var_d + 1e-4)) over the feature dimensions of [N, D]."""
    std = torch.sqrt(x.var(dim=0) + 1e-4)
    return torch.relu(margin - std).mean()


def offdiag_cov(x: torch.Tensor) -> torch.Tensor:
    """Mean over the D(D-1) off-diagonal entries of the squared covariance matrix of [N, D]."""
    n, d = x.shape
    xc = x - x.mean(dim=0, keepdim=True)
    cov = xc.T @ xc / (n - 1)
    off = cov - torch.diag_embed(torch.diagonal(cov))
    return off.pow(2).sum() / (d * (d - 1))


class TorusVCTerms(nn.Module):
    """The shared part: projection onto the torus, then variance, covariance and uniformity terms of
    [N, D].

    Args:
        geometry: sphere, torusN or torusC (any alias), a Geometry object, or None (no projection,
            upstream exactly); 0.1.0's keyword ``projection=`` still works, with a
            DeprecationWarning.
        cov: ``"isotropic"`` (upstream's mean squared off-diagonal covariance) or ``"toroidal"``
            (:class:`torus_plugins.losses.ToroidalCovarianceLoss`; needs a geometry).
        uniformity_coeff: weight of the uniformity term (0: the term is not built).
        grid_size: the toroidal covariance's grid size.
        std_margin: the variance hinge's target std; None: sqrt(1/2) on a torus, else 1.
        penalty: the toroidal covariance's penalty, ``"distance"`` or ``"laplacian"``.
        uniformity_samples: most rows the uniformity term sees (a random subset beyond that), or
            None for every pair always (at most ``MAX_EXACT_UNIFORMITY_ROWS`` rows).

    Raises:
        TypeError: ``uniformity_samples`` neither an int nor None; a geometry of the wrong kind.
        ValueError: ``uniformity_samples`` < 2, an unknown geometry or ``cov``, or
            ``cov="toroidal"`` with ``geometry=None``.
    """

    @renamed_keywords(projection="geometry")
    def __init__(
        self,
        geometry="torusN",
        cov="isotropic",
        uniformity_coeff=1.0,
        grid_size=12,
        std_margin=None,
        penalty="distance",
        uniformity_samples=UNIFORMITY_SAMPLES,
    ):
        super().__init__()
        if uniformity_samples is not None:
            if isinstance(uniformity_samples, bool) or not isinstance(uniformity_samples, int):
                raise TypeError(
                    f"uniformity_samples must be an int or None, got "
                    f"{type(uniformity_samples).__name__}"
                )
            if uniformity_samples < 2:
                raise ValueError(
                    f"uniformity_samples must be >= 2 (pairs of rows), got {uniformity_samples}"
                )
        self.uniformity_samples = uniformity_samples
        self.geometry = None if geometry is None else embedding_geometry(geometry).name
        if cov not in COVARIANCES:
            raise ValueError(f"unknown cov {cov!r}; use one of {COVARIANCES}")
        if cov == "toroidal" and self.geometry is None:
            raise ValueError("cov='toroidal' needs a geometry (sphere, torusN or torusC), got None")
        self.cov = cov
        self.uniformity_coeff = float(uniformity_coeff)
        self.grid_size = grid_size
        self.penalty = penalty
        torus = self.geometry in ("torusN", "torusC")
        self.std_margin = (
            float(std_margin) if std_margin is not None else (math.sqrt(0.5) if torus else 1.0)
        )
        self._toroidal = {}
        self._uniformity = None
        if self.uniformity_coeff:
            from torus_plugins.losses import UniformityLoss

            self._uniformity = UniformityLoss(t=2.0)

    def project(self, z: torch.Tensor):
        """(unit-norm embedding, circle coordinates) of [N, D]; both equal ``z`` with
        geometry=None.

        Args:
            z: embeddings [N, D] (torusN: D even; torusC: read as turns).

        Returns:
            ``(unit, circles)``, each [N, D'] (D' = D, torusC: 2D): the unit-norm projection and
            ``unit * circle_scale(D')``, whose every circle has radius 1.
        """
        if self.geometry is None:
            return z, z
        unit = torus_normalize(z, geometry=self.geometry, dim=1)
        return unit, unit * self.circle_scale(unit.shape[1])

    def circle_scale(self, width: int) -> float:
        """Circle coordinates = unit-norm embedding * this: sqrt(width / 2) on a torus (every
        circle at radius 1), else 1.

        Args:
            width: the projected width D' (twice the number of circles on a torus).

        Returns:
            The scale, a float.
        """
        return math.sqrt(width / 2) if self.geometry in ("torusN", "torusC") else 1.0

    def check_rows(self, n: int) -> None:
        """Raise before any work if the uniformity term would need every pair of too many rows.

        Args:
            n: the number of rows the uniformity term would see.

        Raises:
            ValueError: ``uniformity_samples=None`` and ``n > MAX_EXACT_UNIFORMITY_ROWS``, with a
                uniformity term.
        """
        exact = self._uniformity is not None and self.uniformity_samples is None
        if exact and n > MAX_EXACT_UNIFORMITY_ROWS:
            raise ValueError(
                f"uniformity over every pair of {n} rows needs {n}x{n} matrices "
                f"({4 * n * n / 2**30:.1f} GiB each); uniformity_samples=None accepts at most "
                f"{MAX_EXACT_UNIFORMITY_ROWS} rows: set uniformity_samples (e.g. "
                f"{UNIFORMITY_SAMPLES}) to estimate it on a random subset"
            )

    def cov_term(self, q: torch.Tensor) -> torch.Tensor:
        """Covariance term of [N, D] circle coordinates: mean of the squared off-diagonal
        covariances (isotropic), or :class:`~torus_plugins.losses.ToroidalCovarianceLoss`
        (toroidal).

        Args:
            q: circle coordinates [N, D] (from :meth:`project`), N >= 2.

        Returns:
            The term, a scalar tensor.
        """
        if self.cov == "isotropic":
            return offdiag_cov(q)
        dim = q.shape[1]
        if dim not in self._toroidal:
            from torus_plugins.losses import ToroidalCovarianceLoss

            self._toroidal[dim] = ToroidalCovarianceLoss(
                grid_size=self.grid_size, dim=dim, penalty=self.penalty
            )
        return self._toroidal[dim](q)

    def uniformity_term(self, unit: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        """Uniformity of the rows of ``unit / scale`` [N, D] (pass circle coordinates and their
        :meth:`circle_scale` to skip a full-size copy); on ``uniformity_samples`` random rows when
        N is larger.

        Args:
            unit: unit-norm embeddings [N, D], or circle coordinates with ``scale``.
            scale: what ``unit`` is divided by to get unit-norm rows.

        Returns:
            log mean_{i != j} exp(-2 ||u_i - u_j||^2), a scalar tensor (<= 0); zero without a
            uniformity term (``uniformity_coeff=0``).

        Raises:
            ValueError: too many rows for ``uniformity_samples=None`` (see :meth:`check_rows`).
        """
        if self._uniformity is None:
            return unit.new_zeros(())
        n = unit.shape[0]
        self.check_rows(n)
        if self.uniformity_samples is not None and n > self.uniformity_samples:
            rows = torch.randperm(n, device=unit.device)[: self.uniformity_samples]
            unit = unit[rows]
        return self._uniformity(unit / scale if scale != 1.0 else unit)
