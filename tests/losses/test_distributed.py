"""gather_distributed=True on 2 gloo CPU ranks gives the single-process loss of the whole batch, and
after DDP's averaging the single-process gradients; clip_gradients validates its arguments and
clamps during backward."""

import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from torus_plugins.losses import (
    CircularSpreadLoss,
    KoLeoLoss,
    ProtoCLRLoss,
    SupConLoss,
    ToroidalCovarianceLoss,
    UniformityLoss,
    VICRegLoss,
    clip_gradients,
)

WORLD = 2
B = 6  # per rank


def _cases(gather):
    """name -> (loss, input builder from the (x1, x2, y) batch)"""
    return {
        "koleo": (
            KoLeoLoss(gather_distributed=gather),
            lambda x1, x2, y: (torch.stack([x1, x2], 1),),
        ),
        "supcon": (
            SupConLoss(0.2, gather_distributed=gather),
            lambda x1, x2, y: (torch.stack([x1, x2], 1), y),
        ),
        "simclr": (
            SupConLoss(0.2, gather_distributed=gather),
            lambda x1, x2, y: (torch.stack([x1, x2], 1),),
        ),
        "protoclr": (ProtoCLRLoss(0.1, gather_distributed=gather), lambda x1, x2, y: (x1, x2, y)),
        "uniformity": (UniformityLoss(gather_distributed=gather), lambda x1, x2, y: (x1,)),
        "spread": (CircularSpreadLoss(gather_distributed=gather), lambda x1, x2, y: (x1,)),
        "tcov": (ToroidalCovarianceLoss(3, 8, gather_distributed=gather), lambda x1, x2, y: (x1,)),
        "vicreg": (
            VICRegLoss(covariance="toroidal", grid_size=3, gather_distributed=gather),
            lambda x1, x2, y: (x1, x2),
        ),
    }


def _data():
    g = torch.Generator().manual_seed(0)
    x1 = torch.nn.functional.normalize(
        torch.randn(WORLD * B, 8, generator=g, dtype=torch.float64), dim=-1
    )
    x2 = torch.nn.functional.normalize(
        torch.randn(WORLD * B, 8, generator=g, dtype=torch.float64), dim=-1
    )
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
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD
    )
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


@pytest.mark.slow
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
                    # every rank computes the same loss, so each slice's gradient is summed over
                    # WORLD ranks (lightly's semantics); DDP's average over ranks then gives the
                    # single-process gradient
                    assert torch.allclose(part, WORLD * full[sl], rtol=1e-8, atol=1e-12), name


def test_gather_without_process_group_is_identity():
    from torus_plugins.losses.distributed import gather, world_size

    x = torch.randn(3, 2)
    assert world_size() == 1 and gather(x) is x


@pytest.mark.slow
def test_ddp_example_step_equals_one_process_on_the_whole_batch(tmp_path, monkeypatch):
    """examples/ddp_step.py: DDP + L2p head + SupCon/KoLeo with gather_distributed=True on 2 gloo
    ranks."""
    monkeypatch.syspath_prepend(
        str(Path(__file__).resolve().parents[2] / "examples")
    )  # spawned ranks import it
    import ddp_step

    results = ddp_step.run(world=WORLD, out_dir=str(tmp_path))
    model = ddp_step.make_model()
    x1, x2, y = ddp_step.make_batch(WORLD)
    loss = ddp_step.step(model, x1, x2, y, gather=False)
    for res in results:
        torch.testing.assert_close(res["loss"], loss, rtol=1e-6, atol=1e-6)
        for got, p in zip(res["grads"], model.parameters()):
            torch.testing.assert_close(got, p.grad, rtol=1e-4, atol=1e-5)
    # and without gathering, each rank's step would differ from the whole-batch step
    local = ddp_step.make_model()
    half = ddp_step.step(
        local,
        x1[: ddp_step.PER_RANK],
        x2[: ddp_step.PER_RANK],
        y[: ddp_step.PER_RANK],
        gather=False,
    )
    assert abs(float(half) - float(loss)) > 1e-3


# ---------------------------------------------------------------- clip_gradients


def test_clip_gradients_clamps_each_element_during_backward_like_clip_grad_value():
    torch.manual_seed(0)
    w = torch.randn(5, 3, requires_grad=True)
    x = torch.randn(4, 5) * 50
    unclipped = torch.autograd.grad((x @ w).pow(2).sum(), w)[0]
    assert unclipped.abs().max() > 10
    after = torch.nn.Parameter(torch.zeros(5, 3))
    after.grad = unclipped.clone()
    torch.nn.utils.clip_grad_value_(
        [after], 10.0
    )  # torch's element-wise clipping, applied after backward
    reference = after.grad
    handle = clip_gradients(w, 10.0)
    (x @ w).pow(2).sum().backward()
    torch.testing.assert_close(w.grad, reference)
    # during backward: each backward pass is clamped before it accumulates into .grad (not the sum
    # after)
    (x @ w).pow(2).sum().backward()
    torch.testing.assert_close(w.grad, 2 * reference)
    handle.remove()
    w.grad = None
    (x @ w).pow(2).sum().backward()
    torch.testing.assert_close(w.grad, unclipped)


@pytest.mark.parametrize(
    "value", [None, 0, -1.0, float("nan"), float("inf"), True, "100", torch.tensor(1.0)]
)
def test_clip_gradients_rejects_bad_values(value):
    with pytest.raises(ValueError, match=r"clip value must be a finite number > 0, got value="):
        clip_gradients(torch.nn.Linear(2, 2), value)


@pytest.mark.parametrize("model", [None, 3.0, [torch.zeros(2), "w"]])
def test_clip_gradients_rejects_bad_models(model):
    with pytest.raises(
        TypeError, match="model must be an nn.Module, a tensor or an iterable of tensors"
    ):
        clip_gradients(model, 1.0)


def test_clip_gradients_skips_frozen_parameters():
    m = torch.nn.Linear(3, 2)
    m.bias.requires_grad_(False)
    assert len(clip_gradients(m, 1.0)) == 1
