"""Gather a per-rank batch across torch.distributed ranks with gradients, with the semantics of
lightly's ``lightly.utils.dist.gather`` (and of torch's
``torch.distributed.nn.functional.all_gather``).

Every rank receives the concatenation [rank 0 | rank 1 | ...] and computes the same full-batch
loss. In backward the gradient of each gathered slice is summed over ranks and sent to the rank that
owns it, so a rank's local gradient is ``world_size`` times the gradient of the single-process loss
on the whole batch; DDP then *averages* over ranks, and the model's gradients equal those of one
process training on the whole batch. All ranks must hold the same batch size. Without an
initialised process group (or world size 1) it is a no-op.

Why not torch's ``torch.distributed.nn.functional.all_gather``: it is deprecated in torch 2.14 (its
successor is in the private ``_functional_collectives``), and on gloo it scatters non-contiguous
gradients (e.g. of SupCon's view-major reshape) into buffers with the wrong strides, giving wrong
gradients (tests/losses/test_distributed.py shows it). lightly's ``gather`` is not a core
dependency. So: all_gather forward, all_reduce(sum) backward, own slice.

Usage: ``z_all = gather(z)``  (inside a loss built with ``gather_distributed=True``)
"""

import torch
import torch.distributed as dist

__all__ = ["world_size", "gather", "maybe_gather"]


def world_size() -> int:
    """Number of ranks of the default process group; 1 without one.

    Returns:
        ``torch.distributed.get_world_size()`` when a process group is initialised, else 1.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


class _AllGather(torch.autograd.Function):
    """all_gather whose backward sums each slice's gradient over ranks and keeps this rank's."""

    @staticmethod
    def forward(ctx, x):
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x)
        return tuple(parts)

    @staticmethod
    def backward(ctx, *grads):
        total = torch.stack([g.contiguous() for g in grads])
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total[dist.get_rank()]


def gather(x: torch.Tensor) -> torch.Tensor:
    """[x_rank0; x_rank1; ...]: ``x`` of every rank concatenated along dim 0, differentiably.

    See the module docstring for the gradient. A no-op (``x`` itself) without a process group.

    Args:
        x: a tensor of shape [B, ...], the same B on every rank.

    Returns:
        A tensor of shape [world_size * B, ...] and the dtype of ``x``.

    Raises:
        ValueError: the ranks hold different batch sizes.
    """
    n = world_size()
    if n == 1:
        return x
    sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(n)]
    dist.all_gather(sizes, torch.tensor([x.shape[0]], dtype=torch.long, device=x.device))
    if any(int(s) != x.shape[0] for s in sizes):
        raise ValueError(
            f"gather_distributed needs the same batch size on every rank, "
            f"got {[int(s) for s in sizes]}"
        )
    return torch.cat(_AllGather.apply(x.contiguous()), dim=0)


def maybe_gather(enabled: bool, *tensors):
    """:func:`gather` each tensor when ``enabled`` (None passes through).

    Args:
        enabled: whether to gather; False returns the tensors unchanged.
        *tensors: tensors of shape [B, ...] (the same B on every rank), or None.

    Returns:
        A tuple of the (gathered) tensors, in order.

    Raises:
        ValueError: the ranks hold different batch sizes.
    """
    if not enabled:
        return tensors
    return tuple(None if t is None else gather(t) for t in tensors)
