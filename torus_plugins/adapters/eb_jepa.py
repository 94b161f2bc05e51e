"""EB-JEPA: torus drop-ins for eb_jepa.losses.VICRegLoss and VCLoss (torus projection +
uniformity/toroidal cov).

Two lines at the top of ``examples/image_jepa/main.py`` (or ``video_jepa/main.py``), before its
``from eb_jepa.losses import ...``::

    import eb_jepa.losses
    from torus_plugins.adapters.eb_jepa import patch; patch(eb_jepa.losses, geometry="torusN")

After the patch, ``VICRegLoss(std_coeff, cov_coeff)`` and ``VCLoss(std_coeff, cov_coeff, proj)``
built by the script are the drop-ins below: same constructor arguments, same outputs, plus keyword
options that ``patch`` binds (``geometry``, ``cov``, ``uniformity_coeff``, ``grid_size``,
``std_margin``, ``uniformity_samples``).

What changes inside (everything else follows upstream: invariance = MSE between views, variance =
hinge on each coordinate's std with eps 1e-4, covariance = mean squared off-diagonal covariance,
summed over the two views):

* the embeddings are first put on the torus: ``geometry`` = torusN (pairs -> circles), torusC (read
  as turns), sphere, or None (upstream exactly). The terms are computed on the circle coordinates
  (cos t_i, sin t_i), i.e. the unit-norm projection times sqrt(k), so every circle has radius 1;
* ``std_margin`` defaults to 1 without a torus and to sqrt(1/2) on it (the std of cos t for uniform
  t: the hinge is met by evenly spread angles instead of pushing them to two antipodes);
* ``cov="toroidal"`` replaces the isotropic covariance term with
  :class:`torus_plugins.losses.ToroidalCovarianceLoss`;
* ``uniformity_coeff`` (default 1) adds ``torus_plugins.losses.UniformityLoss`` (t=2) on the
  unit-norm embeddings of each view (VCLoss: on its B*T*H*W positions).
* ``uniformity_samples`` (default 4096) bounds that term's memory, which is quadratic in the
  number of rows it sees: when a view has more rows (VCLoss on a video, [64, 16, 10, 64, 64] ->
  2.6M positions at the video example's defaults), the term is computed on ``uniformity_samples``
  rows drawn without replacement, afresh at every call, by ``torch.randperm`` on torch's default
  generator (reproducible under ``torch.manual_seed``). It is then a Monte-Carlo estimate of the
  same log-mean-exp over a random subset of pairs (about 16.8M of them): its memory stays near
  0.5 GB whatever B, T, H, W. Fewer rows than that: every pair, exactly as before.
  ``uniformity_samples=None`` asks for every pair always, and raises a ``ValueError`` above 8192
  rows (N x N float matrices, about 1.8 GiB at 8192 rows) instead of exhausting memory.

``VICRegLoss.forward(z1, z2)`` -> dict with ``loss``, ``invariance_loss``, ``var_loss``,
``cov_loss`` and, when ``uniformity_coeff`` != 0, ``uniformity_loss``. ``loss`` *includes* the
uniformity term: ``loss = invariance_loss + std_coeff * var_loss + cov_coeff * cov_loss +
uniformity_coeff * uniformity_loss``. Uniformity is a log-mean-exp of negative squared distances
(<= 0, about -3.5 when spread out on a 32-circle torus), so ``loss`` goes negative in training; log
``loss - uniformity_coeff * uniformity_loss`` to compare with an upstream run.
``VCLoss.forward(x[B, C, T, H, W], actions=None)`` -> ``(loss, unweighted_loss, dict)`` as
upstream; the dict holds ``std_loss``, ``cov_loss`` and, when enabled, ``uniformity_loss``
(floats); both losses include it.

Not covered: ``VC_IDM_Sim_Regularizer`` (the ``ac_video_jepa`` example's variance/covariance +
temporal similarity + inverse-dynamics regulariser) and ``BCS`` (SIGReg) are left as upstream's, on
Euclidean features.
"""

import math

import torch
import torch.nn.functional as _F
from torch import nn

from torus_plugins._deprecation import renamed_keywords
from torus_plugins.geometry import embedding_geometry

from .normalize import Patch, check_patchable, torus_normalize, unpatch, with_defaults

__all__ = ["VICRegLoss", "VCLoss", "TorusVCTerms", "patch", "unpatch"]

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


class VICRegLoss(nn.Module):
    """Drop-in for ``eb_jepa.losses.VICRegLoss(std_coeff, cov_coeff)`` with a torus projection.

    Args:
        std_coeff: weight of the variance (std hinge) term.
        cov_coeff: weight of the covariance term.
        geometry, cov, uniformity_coeff, grid_size, std_margin, penalty, uniformity_samples: as in
            :class:`TorusVCTerms`.

    Raises:
        TypeError, ValueError: a bad option, as in :class:`TorusVCTerms`.
    """

    @renamed_keywords(projection="geometry")
    def __init__(
        self,
        std_coeff=1.0,
        cov_coeff=1.0,
        geometry="torusN",
        cov="isotropic",
        uniformity_coeff=1.0,
        grid_size=12,
        std_margin=None,
        penalty="distance",
        uniformity_samples=UNIFORMITY_SAMPLES,
    ):
        super().__init__()
        self.std_coeff = std_coeff
        self.cov_coeff = cov_coeff
        self.terms = TorusVCTerms(
            geometry, cov, uniformity_coeff, grid_size, std_margin, penalty, uniformity_samples
        )
        self.last_terms = {}

    def forward(self, z1, z2):
        """loss = invariance + std_coeff * var + cov_coeff * cov + uniformity_coeff * uniformity.

        Invariance is the MSE between the two views' circle coordinates; var, cov and uniformity
        are summed over the two views. The detached terms are also kept in ``self.last_terms``.

        Args:
            z1: the first view's embeddings [B, D] (torusN: D even).
            z2: the second view's embeddings [B, D].

        Returns:
            A dict of scalar tensors: ``loss``, ``invariance_loss``, ``var_loss``, ``cov_loss``
            and, when ``uniformity_coeff`` != 0, ``uniformity_loss``.

        Raises:
            ValueError: ``z1`` or ``z2`` is not a 2-D tensor, or too many rows for
                ``uniformity_samples=None``.
        """
        for name, z in (("z1", z1), ("z2", z2)):
            if not isinstance(z, torch.Tensor) or z.dim() != 2:
                raise ValueError(
                    f"{name} must be a [batch, dim] tensor, got {getattr(z, 'shape', type(z))}"
                )
        u1, q1 = self.terms.project(z1)
        u2, q2 = self.terms.project(z2)
        invariance = _F.mse_loss(q1, q2)
        var = hinge_std(q1, self.terms.std_margin) + hinge_std(q2, self.terms.std_margin)
        cov = self.terms.cov_term(q1) + self.terms.cov_term(q2)
        unif = self.terms.uniformity_term(u1) + self.terms.uniformity_term(u2)
        loss = (
            invariance
            + self.std_coeff * var
            + self.cov_coeff * cov
            + self.terms.uniformity_coeff * unif
        )
        self.last_terms = {
            "invariance_loss": invariance.detach(),
            "var_loss": var.detach(),
            "cov_loss": cov.detach(),
            "uniformity_loss": unif.detach(),
        }
        out = {"loss": loss, "invariance_loss": invariance, "var_loss": var, "cov_loss": cov}
        if self.terms.uniformity_coeff:
            out["uniformity_loss"] = unif
        return out


class VCLoss(nn.Module):
    """Drop-in for ``eb_jepa.losses.VCLoss(std_coeff, cov_coeff, proj=None)`` with a torus
    projection after ``proj``. ``forward(x[B, C, T, H, W])`` reads every (b, t, h, w) position as a
    sample of C features.

    Args:
        std_coeff: weight of the variance (std hinge) term.
        cov_coeff: weight of the covariance term.
        proj: a module applied to the [B*T*H*W, C] samples before the torus projection (None:
            identity).
        geometry, cov, uniformity_coeff, grid_size, std_margin, penalty, uniformity_samples: as in
            :class:`TorusVCTerms`.

    Raises:
        TypeError, ValueError: a bad option, as in :class:`TorusVCTerms`.
    """

    @renamed_keywords(projection="geometry")
    def __init__(
        self,
        std_coeff,
        cov_coeff,
        proj=None,
        geometry="torusN",
        cov="isotropic",
        uniformity_coeff=1.0,
        grid_size=12,
        std_margin=None,
        penalty="distance",
        uniformity_samples=UNIFORMITY_SAMPLES,
    ):
        super().__init__()
        self.std_coeff = std_coeff
        self.cov_coeff = cov_coeff
        self.proj = nn.Identity() if proj is None else proj
        self.terms = TorusVCTerms(
            geometry, cov, uniformity_coeff, grid_size, std_margin, penalty, uniformity_samples
        )
        self.last_terms = {}

    def forward(self, x, actions=None):
        """loss = std_coeff * std + cov_coeff * cov + uniformity_coeff * uniformity of the samples.

        The detached terms are also kept in ``self.last_terms``.

        Args:
            x: features [B, C, ...] (e.g. [B, C, T, H, W]); each position is a sample of C.
            actions: ignored (upstream's signature).

        Returns:
            ``(loss, unweighted_loss, logs)``: the weighted and the unweighted sum (scalar
            tensors, both including the uniformity term), and a dict of floats ``std_loss``,
            ``cov_loss`` and, when ``uniformity_coeff`` != 0, ``uniformity_loss``.

        Raises:
            ValueError: ``x`` is not a tensor of at least 2 dimensions, or too many rows for
                ``uniformity_samples=None``.
        """
        if not isinstance(x, torch.Tensor) or x.dim() < 2:
            raise ValueError(f"x must be a [B, C, ...] tensor, got {getattr(x, 'shape', type(x))}")
        samples = x.transpose(0, 1).flatten(1).transpose(0, 1)  # [B*T*H*W, C]
        self.terms.check_rows(samples.shape[0])
        _, q = self.terms.project(self.proj(samples))  # the unit-norm copy is not kept
        std_loss = hinge_std(q, self.terms.std_margin)
        cov_loss = self.terms.cov_term(q)
        unif = self.terms.uniformity_term(q, self.terms.circle_scale(q.shape[1]))
        loss = (
            self.std_coeff * std_loss
            + self.cov_coeff * cov_loss
            + self.terms.uniformity_coeff * unif
        )
        unweighted = std_loss + cov_loss + unif
        self.last_terms = {
            "std_loss": std_loss.detach(),
            "cov_loss": cov_loss.detach(),
            "uniformity_loss": unif.detach(),
        }
        logs = {"std_loss": std_loss.item(), "cov_loss": cov_loss.item()}
        if self.terms.uniformity_coeff:
            logs["uniformity_loss"] = unif.item()
        return loss, unweighted, logs


@renamed_keywords(projection="geometry")
def patch(module, geometry="torusN", **options) -> Patch:
    """module.VICRegLoss, module.VCLoss -> the drop-ins, with ``geometry`` and ``options`` as
    defaults.

    Args:
        module: ``eb_jepa.losses`` (or a module with the same two classes).
        geometry: sphere, torusN, torusC (any alias), a Geometry object, or None (no projection);
            0.1.0's keyword ``projection=`` still works, with a DeprecationWarning.
        **options: cov, uniformity_coeff, grid_size, std_margin, penalty, uniformity_samples.

    Returns:
        A :class:`~torus_plugins.adapters.normalize.Patch`; undo with ``unpatch``.

    Raises:
        TypeError: an unknown option, a wrong kind of geometry, ``module`` not a module.
        ValueError: an unknown geometry, a module without the classes, a bad option value.
        RuntimeError: ``module`` is already patched.
    """
    if geometry is not None:
        geometry = embedding_geometry(geometry).name
    check_patchable(module)
    missing = [name for name in ("VICRegLoss", "VCLoss") if not hasattr(module, name)]
    if missing:
        raise ValueError(f"{module.__name__!r} has no {', '.join(missing)}; pass eb_jepa.losses")
    known = ("cov", "uniformity_coeff", "grid_size", "std_margin", "penalty", "uniformity_samples")
    unknown = set(options) - set(known)
    if unknown:
        raise TypeError(f"unknown option(s) {sorted(unknown)}; known: {', '.join(known)}")
    # validate the options now rather than when the pipeline first builds a loss
    TorusVCTerms(
        geometry,
        **{k: v for k, v in options.items() if k != "uniformity_coeff"},
        uniformity_coeff=0.0,
    )
    defaults = dict(options, geometry=geometry)
    replacements = {
        "VICRegLoss": with_defaults(VICRegLoss, **defaults),
        "VCLoss": with_defaults(VCLoss, **defaults),
    }
    return Patch()._apply(module, replacements, {"adapter": "eb_jepa", "geometry": geometry})
