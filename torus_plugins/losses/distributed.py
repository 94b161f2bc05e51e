"""Gather a per-rank batch across torch.distributed ranks, keeping gradients for the local part.

Every rank receives the concatenation [rank 0 | rank 1 | ...]; the slice for this rank is the local tensor itself
(not a copy), so autograd flows into the local inputs. Each rank then computes the same full-batch loss, and the
gradient w.r.t. its local inputs equals the gradient of the single-process loss on the concatenated batch.
All ranks must hold the same batch size.  Without an initialised process group (or world size 1) it is a no-op.
"""

import torch
import torch.distributed as dist


def world_size() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from all ranks along dim 0; gradients flow into the local ``x``."""
    n = world_size()
    if n == 1:
        return x
    sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(n)]
    dist.all_gather(sizes, torch.tensor([x.shape[0]], dtype=torch.long, device=x.device))
    if any(int(s) != x.shape[0] for s in sizes):
        raise ValueError(f"gather_distributed needs the same batch size on every rank, got {[int(s) for s in sizes]}")
    parts = [torch.empty_like(x) for _ in range(n)]
    dist.all_gather(parts, x.detach().contiguous())
    parts[dist.get_rank()] = x
    return torch.cat(parts, dim=0)


def maybe_gather(enabled: bool, *tensors):
    """``gather`` each tensor when ``enabled`` (None passes through); returns a tuple."""
    if not enabled:
        return tensors
    return tuple(None if t is None else gather(t) for t in tensors)
