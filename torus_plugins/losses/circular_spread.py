"""Circular spread: penalise Fisher-Lee circular correlation between the circles of a torus
output."""

import torch
from torch import nn

from .._checks import check_bool, check_even, check_non_negative_float
from ._common import check_embeddings, compute_dtype, full_precision, per_circle_unit
from .distributed import maybe_gather


def fisher_lee_matrix(z: torch.Tensor, eps: float = 1e-12, min_spread: float = 0.0) -> torch.Tensor:
    """[k, k] Fisher-Lee circular correlations between the k circles of an interleaved [B, 2k] z.

    rho(a, b) = sum_{i<j} sin(a_i - a_j) sin(b_i - b_j) / sqrt(sum_{i<j} sin^2(a_i - a_j) sum_{i<j}
    sin^2(b_i - b_j)), evaluated in O(B k^2) with sum_{i,j} sin(a_i-a_j) sin(b_i-b_j) = 2 [Sa.Sb *
    Ca.Cb - Sa.Cb * Ca.Sb] (S, C: sin and cos of the angles; "." a sum over the batch). rho is
    invariant to rotating a circle, so each circle is first rotated to put its circular mean at
    angle 0: a (nearly) collapsed circle then has small S and the formula does not cancel
    catastrophically. ``min_spread`` > 0 floors each circle's spread term sum_{i<j} sin^2 at
    ``min_spread * B**2`` (a circle concentrated within about sqrt(2 * min_spread) radians counts as
    collapsed: its correlations shrink towards 0 and the gradient stays bounded). The result is
    clamped to [-1, 1] against rounding. The input is not checked (:class:`CircularSpreadLoss`
    checks it).

    Args:
        z: floating-point tensor of shape [B, 2k], (cos, sin) pairs of any scale.
        eps: lower bound on each pair's norm and on each spread term.
        min_spread: floor of each circle's spread term, per B**2 (above).

    Returns:
        A symmetric tensor of shape [k, k] and the dtype of ``z``, values in [-1, 1].
    """
    pairs = per_circle_unit(z, eps).unflatten(
        -1, (-1, 2)
    )  # rho is invariant to each circle's scale
    c, s = (
        pairs[..., 0],
        pairs[..., 1],
    )  # [B, k]: cos and sin of each circle's angle (times 1/sqrt(k))
    with torch.no_grad():  # rotation by the circular mean: rho does not depend on it
        mc, ms = c.mean(0), s.mean(0)
        r = torch.sqrt(mc * mc + ms * ms)
        ok = r > 0
        cos_mu = torch.where(ok, mc / torch.where(ok, r, 1.0), 1.0)
        sin_mu = torch.where(ok, ms / torch.where(ok, r, 1.0), 0.0)
    c, s = c * cos_mu + s * sin_mu, s * cos_mu - c * sin_mu
    ss, cc, sc = s.t() @ s, c.t() @ c, s.t() @ c
    num = ss * cc - sc * sc.t()
    k = pairs.shape[-2]
    floor = max(
        eps, min_spread * (z.shape[0] / k) ** 2
    )  # c, s carry 1/sqrt(k): num scales as (B/k)^2
    d = num.diagonal().clamp_min(floor)
    return (num / torch.sqrt(d[:, None] * d[None, :])).clamp(-1.0, 1.0)


class CircularSpreadLoss(nn.Module):
    """L = mean_{a<b} rho_FL(theta_a, theta_b)^2 over circle pairs (Fisher & Lee 1983) in [0, 1].

    Angles are those of ``to_turns`` on the interleaved output (each (cos, sin) pair, any scale).
    Driving the circular correlation between circles to zero stops the embedding from collapsing
    onto a 1-D curve wound round the torus. A circle whose points lie within about sqrt(2 *
    min_spread) radians of each other (collapsed) is treated as uncorrelated, so the loss stays in
    [0, 1] with bounded gradients (see :func:`fisher_lee_matrix`). Needs >= 2 circles and a batch of
    >= 3.

    Args:
        gather_distributed: gather the batch of all ranks (see :mod:`.distributed`).
        min_spread: a number >= 0, the floor of each circle's spread (above).

    Raises:
        TypeError: ``gather_distributed`` is not a bool, or ``min_spread`` is not a real number.
        ValueError: ``min_spread`` is not finite and >= 0.

    Example:
        >>> from torus_plugins.heads import L2p
        >>> loss = CircularSpreadLoss()(L2p(64)(torch.randn(16, 64)))     # in [0, 1]
    """

    def __init__(self, gather_distributed: bool = False, min_spread: float = 1e-4):
        super().__init__()
        self.gather_distributed = check_bool(
            gather_distributed, "CircularSpreadLoss gather_distributed"
        )
        self.min_spread = check_non_negative_float(min_spread, "CircularSpreadLoss min_spread")

    @full_precision
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """mean_{a<b} rho_FL(theta_a, theta_b)^2 over the circles of a batch.

        Args:
            z: floating-point tensor of shape [B, 2k], B >= 3, k >= 2: (cos, sin) pairs.

        Returns:
            A 0-d tensor in [0, 1]: float32 for float16/bfloat16 input, else the dtype of ``z``.

        Raises:
            TypeError: ``z`` is not a floating-point tensor.
            ValueError: ``z`` is not 2-D, has fewer than 3 samples, an odd last dimension or
                fewer than 2 circles, NaN/inf (validation mode "host"; mode "device" raises
                RuntimeError instead, see :mod:`torus_plugins.validation`), or the loss overflowed
                on finite input.
        """
        check_embeddings(z, "CircularSpreadLoss input", min_batch=3)
        check_even(int(z.shape[-1]), "the last dimension of the CircularSpreadLoss input")
        if z.shape[-1] < 4:
            raise ValueError(
                f"CircularSpreadLoss needs at least 2 circles (last dimension >= 4), "
                f"got {z.shape[-1]}"
            )
        (z,) = maybe_gather(self.gather_distributed, z)
        (z,), out_dtype = compute_dtype(z, normalised="pair", name="CircularSpreadLoss input")
        rho = fisher_lee_matrix(z, min_spread=self.min_spread)
        iu = torch.triu_indices(rho.shape[0], rho.shape[0], offset=1, device=z.device)
        return rho[iu[0], iu[1]].pow(2).mean().to(out_dtype)
