"""gather_distributed=True on 2 gloo CPU ranks gives the single-process loss and gradients of the whole batch."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from torus_plugins.losses import (CircularSpreadLoss, KoLeoLoss, ProtoCLRLoss, SupConLoss, ToroidalCovarianceLoss,
                                  UniformityLoss, VICRegLoss)

WORLD = 2
B = 6  # per rank


def _cases(gather):
    """name -> (loss, input builder from the (x1, x2, y) batch)"""
    return {
        "koleo": (KoLeoLoss(gather_distributed=gather), lambda x1, x2, y: (torch.stack([x1, x2], 1),)),
        "supcon": (SupConLoss(0.2, gather_distributed=gather), lambda x1, x2, y: (torch.stack([x1, x2], 1), y)),
        "simclr": (SupConLoss(0.2, gather_distributed=gather), lambda x1, x2, y: (torch.stack([x1, x2], 1),)),
        "protoclr": (ProtoCLRLoss(0.1, gather_distributed=gather), lambda x1, x2, y: (x1, x2, y)),
        "uniformity": (UniformityLoss(gather_distributed=gather), lambda x1, x2, y: (x1,)),
        "spread": (CircularSpreadLoss(gather_distributed=gather), lambda x1, x2, y: (x1,)),
        "tcov": (ToroidalCovarianceLoss(3, 8, gather_distributed=gather), lambda x1, x2, y: (x1,)),
        "vicreg": (VICRegLoss(covariance="toroidal", grid_size=3, gather_distributed=gather),
                   lambda x1, x2, y: (x1, x2)),
    }


def _data():
    g = torch.Generator().manual_seed(0)
    x1 = torch.nn.functional.normalize(torch.randn(WORLD * B, 8, generator=g, dtype=torch.float64), dim=-1)
    x2 = torch.nn.functional.normalize(torch.randn(WORLD * B, 8, generator=g, dtype=torch.float64), dim=-1)
    return x1, x2, torch.arange(WORLD * B) % 4


def _run(cases, x1, x2, y):
    out = {}
    for name, (loss_fn, make) in cases.items():
        a, b = x1.clone().requires_grad_(True), x2.clone().requires_grad_(True)
        loss = loss_fn(*make(a, b, y))
        ga, gb = torch.autograd.grad(loss, (a, b), allow_unused=True)
        out[name] = (loss.detach(), ga, gb)
    return out


def _worker(rank, port, path):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        x1, x2, y = _data()
        sl = slice(rank * B, (rank + 1) * B)
        torch.save(_run(_cases(True), x1[sl], x2[sl], y[sl]), f"{path}.{rank}")
    finally:
        dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gather_distributed_matches_single_process(tmp_path):
    if not dist.is_available():
        pytest.skip("torch.distributed not available")
    path = str(tmp_path / "res")
    mp.spawn(_worker, args=(_free_port(), path), nprocs=WORLD, join=True)
    x1, x2, y = _data()
    ref = _run(_cases(False), x1, x2, y)
    for rank in range(WORLD):
        got = torch.load(f"{path}.{rank}")
        sl = slice(rank * B, (rank + 1) * B)
        for name, (loss, ga, gb) in ref.items():
            rl, rga, rgb = got[name]
            assert torch.allclose(rl, loss, rtol=1e-10), name
            for full, part in ((ga, rga), (gb, rgb)):
                if full is None:
                    assert part is None or torch.count_nonzero(part) == 0, name
                else:
                    assert torch.allclose(part, full[sl], rtol=1e-8, atol=1e-12), name


def test_gather_without_process_group_is_identity():
    from torus_plugins.losses.distributed import gather, world_size
    x = torch.randn(3, 2)
    assert world_size() == 1 and gather(x) is x
