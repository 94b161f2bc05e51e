"""KoLeo (Kozachenko-Leonenko) spreading regulariser, Sablayrolles et al. 2019."""

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_bool, check_positive_float
from ._common import check_embeddings, compute_dtype, full_precision
from .distributed import maybe_gather


def koleo_terms(
    x: torch.Tensor, eps: float = 1e-8, p: float = 2.0, normalize: bool = True
) -> torch.Tensor:
    """-log(||x_i - x_nn(i) + eps||_p + eps) per sample, neighbour by cosine (lightly's form).

    The input is not checked (:class:`KoLeoLoss` checks it).

    Args:
        x: floating-point tensor of shape [B, D], B >= 2.
        eps: added to the difference and to the distance (``PairwiseDistance(p, eps)``, then log).
        p: the norm of the distance.
        normalize: L2-normalise the rows first.

    Returns:
        A tensor of shape [B] and the dtype of ``x``.
    """
    if normalize:
        x = F.normalize(x, p=2, dim=-1, eps=eps)
    with torch.no_grad():
        sim = x @ x.t()
        sim.fill_diagonal_(-float("inf"))
        nn_idx = sim.argmax(dim=1)
    d = F.pairwise_distance(x, x[nn_idx], p=p, eps=eps)
    return -torch.log(d + eps)


class KoLeoLoss(nn.Module):
    """L = -mean_i log(||x_i - x_nn(i)|| + eps), nearest neighbour by cosine, on unit vectors.

    Any head output of the package is unit norm (for torusC: the unit-norm Clifford vector), so pass
    it as is; ``normalize=True`` applies ``F.normalize`` first, which is a no-op on those and
    matches ``lightly.loss.KoLeoLoss`` exactly (same ``p`` and ``eps`` placement:
    ``PairwiseDistance(p, eps)`` then ``log(d + eps)``). Duplicate points give a finite loss
    (distance eps*D**(1/p)) but a huge gradient: use :func:`clip_gradients`. Accepts [B, D] or [B,
    n_views, D] (computed per view, then averaged). With ``gather_distributed`` the nearest
    neighbour is searched over the batch of all ranks.

    The positional arguments are lightly's ``KoLeoLoss(p=2, eps=1e-8)``, in its order, so
    ``KoLeoLoss(2)`` is lightly's ``KoLeoLoss(2)``; the package's own options are keyword-only.

    Args:
        p: norm of the nearest-neighbour distance (> 0).
        eps: added inside the distance and to it before the log (> 0).
        gather_distributed: search the nearest neighbour over the batch of all ranks.
        normalize: L2-normalise the inputs first (a no-op on the package's head outputs).

    Raises:
        TypeError: ``p`` or ``eps`` is not a real number, or ``normalize`` or
            ``gather_distributed`` is not a bool.
        ValueError: ``p`` or ``eps`` is not finite and > 0.

    Example:
        >>> from torus_plugins.heads import L2p
        >>> loss = KoLeoLoss()(L2p(128)(torch.randn(16, 128)))     # a 0-d tensor
    """

    def __init__(
        self,
        p: float = 2.0,
        eps: float = 1e-8,
        *,
        gather_distributed: bool = False,
        normalize: bool = True,
    ):
        super().__init__()
        # eps = 0 gives log(0) = -inf on duplicates
        self.eps = check_positive_float(eps, "KoLeoLoss eps")
        self.p = check_positive_float(p, "KoLeoLoss p")
        self.normalize = check_bool(normalize, "KoLeoLoss normalize")
        self.gather_distributed = check_bool(gather_distributed, "KoLeoLoss gather_distributed")

    @full_precision
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The KoLeo loss of a batch (of each view, averaged).

        Args:
            x: floating-point tensor of shape [B, D] or [B, n_views, D], B >= 2.

        Returns:
            A 0-d tensor: float32 for float16/bfloat16 input, else the dtype of ``x``.

        Raises:
            TypeError: ``x`` is not a floating-point tensor.
            ValueError: ``x`` is not 2-D or 3-D, has fewer than 2 samples, an empty dimension,
                NaN/inf (validation mode "host"; mode "device" raises
                RuntimeError instead, see :mod:`torus_plugins.validation`), or the loss overflowed
                on finite input.
        """
        check_embeddings(x, "KoLeoLoss input", dims=(2, 3))
        (x,) = maybe_gather(self.gather_distributed, x)
        (x,), out_dtype = compute_dtype(
            x, normalised="row" if self.normalize else None, name="KoLeoLoss input"
        )
        if x.dim() == 2:
            return koleo_terms(x, self.eps, self.p, self.normalize).mean().to(out_dtype)
        views = [
            koleo_terms(x[:, v], self.eps, self.p, self.normalize).mean() for v in range(x.shape[1])
        ]
        return torch.stack(views).mean().to(out_dtype)
