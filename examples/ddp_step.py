"""One DDP training step with a torus head and losses that gather the batch across ranks (gloo, CPU).

Each of the ``--world`` processes holds its own slice of the batch. ``SupConLoss(gather_distributed=True)`` and
``KoLeoLoss(gather_distributed=True)`` see the whole batch (torch.distributed.nn.functional.all_gather, with
gradients), DDP averages the parameter gradients, so the step equals one process training on the whole batch.

Run:  python examples/ddp_step.py --world 2          # prints each rank's loss and gradient norm
"""

import argparse
import os
import socket
import tempfile

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torus_plugins import L2p
from torus_plugins.losses import KoLeoLoss, SupConLoss

PER_RANK = 8


def make_model() -> nn.Module:
    torch.manual_seed(0)  # same initial weights on every rank (DDP also broadcasts rank 0's)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8), L2p(8))   # 4 circles, unit norm


def make_batch(world: int):
    """The whole batch: two views [world * PER_RANK, 16] and labels; rank r takes rows r*PER_RANK..."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(world * PER_RANK, 16, generator=g)
    return x, x + 0.1 * torch.randn(x.shape, generator=g), torch.arange(world * PER_RANK) % 4


def step(model, x1, x2, y, gather: bool):
    """Loss of one step: SupCon on the two views + 0.1 KoLeo, on this process's rows."""
    z1, z2 = model(torch.cat([x1, x2])).chunk(2)                     # one forward per step (as DDP expects)
    z = torch.stack([z1, z2], dim=1)                                 # [B, 2, 8], unit norm
    supcon = SupConLoss(temperature=0.1, gather_distributed=gather)
    koleo = KoLeoLoss(gather_distributed=gather)
    loss = supcon(z, y) + 0.1 * koleo(z)
    loss.backward()
    return loss.detach()


def worker(rank: int, world: int, port: int, out: str):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        model = DistributedDataParallel(make_model())
        x1, x2, y = make_batch(world)
        rows = slice(rank * PER_RANK, (rank + 1) * PER_RANK)
        loss = step(model, x1[rows], x2[rows], y[rows], gather=True)
        grads = [p.grad.clone() for p in model.module.parameters()]
        torch.save({"loss": loss, "grads": grads}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(world: int = 2, out_dir: str | None = None) -> list:
    """Spawn ``world`` gloo ranks for one step; returns each rank's {'loss', 'grads'}."""
    out_dir = out_dir or tempfile.mkdtemp(prefix="ddp_step_")
    out = os.path.join(out_dir, "rank")
    mp.spawn(worker, args=(world, free_port(), out), nprocs=world, join=True)
    return [torch.load(f"{out}.{r}", weights_only=True) for r in range(world)]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--world", type=int, default=2, help="number of processes (gloo ranks)")
    args = p.parse_args()
    results = run(args.world)
    model = make_model()
    x1, x2, y = make_batch(args.world)
    single = step(model, x1, x2, y, gather=False)
    for r, res in enumerate(results):
        norm = torch.sqrt(sum(g.pow(2).sum() for g in res["grads"]))
        print(f"rank {r}: loss {res['loss']:.6f}  grad norm {norm:.6f}")
    norm = torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters()))
    print(f"one process, whole batch: loss {single:.6f}  grad norm {norm:.6f}")


if __name__ == "__main__":
    main()
