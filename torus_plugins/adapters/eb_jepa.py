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

import torch
import torch.nn.functional as _F
from torch import nn

from torus_plugins._deprecation import renamed_keywords
from torus_plugins.geometry import embedding_geometry

from ._eb_jepa_terms import COVARIANCES as COVARIANCES
from ._eb_jepa_terms import MAX_EXACT_UNIFORMITY_ROWS as MAX_EXACT_UNIFORMITY_ROWS
from ._eb_jepa_terms import UNIFORMITY_SAMPLES, TorusVCTerms, hinge_std
from ._eb_jepa_terms import offdiag_cov as offdiag_cov
from .normalize import Patch, check_patchable, unpatch, with_defaults
from .normalize import torus_normalize as torus_normalize  # the projection the terms use

__all__ = ["VICRegLoss", "VCLoss", "TorusVCTerms", "patch", "unpatch"]


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
