"""ProtoCLR loss (Moummad et al.): cross-entropy against per-batch class prototypes."""

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_bool, check_positive_float
from ..validation import host_reads_allowed
from ._common import check_embeddings, check_labels, compute_dtype, full_precision, per_circle_unit
from .distributed import maybe_gather


class ProtoCLRLoss(nn.Module):
    """L = CE( z . P^T / tau, y ),  z = [F.normalize(z1); F.normalize(z2)],  P_c = mean of z over c.

    Matches upstream ProtoCLR ``losses.ProtoCLRLoss.forward(z1, z2, y)``: both views are normalised
    with ``F.normalize`` (a no-op on this package's unit-norm heads), prototypes are the plain
    (un-renormalised) means over both views of each class present in the batch, and the
    cross-entropy is averaged over the 2B rows. ``circular_prototypes=True`` renormalises each
    prototype per circle (the circular mean on every circle, scaled to the unit-norm Clifford
    layout): a proper point on the torus, for interleaved torus outputs. It is off by default to
    keep upstream numbers; with it on, class spread no longer shrinks the prototype's norm.
    The number of classes C is a value of ``y``: where host reads are free (eager CPU) the logits
    are [2B, C] as upstream; elsewhere (GPU, torch.compile, validation mode 'device') they are
    [2B, B], one column per class's first sample and the rest at -inf: the same loss, no host read,
    B/C times the matmul work.

    Args:
        tau: the temperature, a number > 0.
        circular_prototypes: renormalise each prototype per circle (above).
        gather_distributed: gather the batch of all ranks (see :mod:`.distributed`).

    Raises:
        TypeError: ``tau`` is not a real number, or a flag is not a bool.
        ValueError: ``tau`` is not finite and > 0.

    Example:
        >>> from torus_plugins.heads import L2p
        >>> head, y = L2p(128), torch.tensor([0, 0, 1, 1])
        >>> loss = ProtoCLRLoss(tau=0.1)(head(torch.randn(4, 128)), head(torch.randn(4, 128)), y)
    """

    def __init__(
        self, tau: float = 0.1, circular_prototypes: bool = False, gather_distributed: bool = False
    ):
        super().__init__()
        self.tau = check_positive_float(tau, "ProtoCLRLoss tau")
        self.circular_prototypes = check_bool(
            circular_prototypes, "ProtoCLRLoss circular_prototypes"
        )
        self.gather_distributed = check_bool(gather_distributed, "ProtoCLRLoss gather_distributed")

    @full_precision
    def forward(self, z1: torch.Tensor, z2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The ProtoCLR loss of two views of a batch.

        Args:
            z1: floating-point tensor of shape [B, D], B >= 2: the first view.
            z2: the second view, of the shape of ``z1``.
            y: class ids, a tensor of shape [B] (or [B, 1]), integer or integral floats.

        Returns:
            A 0-d tensor: float32 for float16/bfloat16 input, else the dtype of ``z1``.

        Raises:
            TypeError: ``z1`` or ``z2`` is not a floating-point tensor, or ``y`` is not a real
                tensor.
            ValueError: ``z1`` or ``z2`` is not 2-D, has fewer than 2 samples or an empty
                dimension, their shapes differ, ``y`` has the wrong shape, float ``y`` is not
                integral, an input holds
                NaN/inf (validation mode "host"; mode "device" raises
                RuntimeError instead, see :mod:`torus_plugins.validation`), or the loss overflowed
                on finite input.
        """
        check_embeddings(z1, "ProtoCLRLoss z1")
        check_embeddings(z2, "ProtoCLRLoss z2")
        if z1.shape != z2.shape:
            raise ValueError(
                f"ProtoCLRLoss z1 and z2 must have the same shape, got {tuple(z1.shape)} "
                f"and {tuple(z2.shape)}"
            )
        y = check_labels(y, z1.shape[0], "y")
        z1, z2, y = maybe_gather(self.gather_distributed, z1, z2, y)
        (z1, z2), out_dtype = compute_dtype(z1, z2, normalised="row", name="ProtoCLRLoss input")
        z1, z2 = F.normalize(z1), F.normalize(z2)
        z = torch.cat([z1, z2], dim=0)
        if host_reads_allowed(z):
            logits, target = _logits_present_classes(z, y, self.tau, self.circular_prototypes)
        else:
            logits, target = _logits_static_shape(z1, z2, y, self.tau, self.circular_prototypes)
        return F.cross_entropy(logits, target).to(out_dtype)


def _logits_present_classes(z, y, tau: float, circular: bool):
    """[2B, C] logits against the prototypes of the C classes present (C read on the host, as
    upstream)."""
    _, target = torch.unique(torch.cat([y, y]), return_inverse=True)
    n_classes = int(target.max()) + 1
    one_hot = F.one_hot(target, n_classes).to(z.dtype)
    protos = one_hot.t() @ z / one_hot.sum(0)[:, None]
    if circular:
        protos = per_circle_unit(protos)
    return z @ protos.t() / tau, target


def _logits_static_shape(z1, z2, y, tau: float, circular: bool):
    """The same cross-entropy without reading the number of classes: [2B, B] logits against the
    prototype of every sample's class, the columns of all but each class's first sample at -inf
    (they add exp(-inf) = 0). B/C times the matmul work of :func:`_logits_present_classes`; no host
    read, static shapes."""
    same = y[:, None] == y[None, :]
    first = same.int().argmax(dim=1)  # the first sample of each sample's class: the class's column
    is_first = first == torch.arange(y.shape[0], device=y.device)
    protos = same.to(z1.dtype) @ (z1 + z2) / (2 * same.sum(1, keepdim=True))
    if circular:
        protos = per_circle_unit(protos)
    z = torch.cat([z1, z2], dim=0)
    logits = (z @ protos.t() / tau).masked_fill(~is_first, -float("inf"))
    return logits, torch.cat([first, first])
