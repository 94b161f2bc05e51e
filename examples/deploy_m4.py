"""A trained torus encoder's integer head and top-k search on an emulated Cortex-M4 (QEMU).

A small MLP + torus head (torusN and torusC) is trained on the bundled digits; the activations
feeding its last linear layer are quantised to int8 (affine, per tensor) and the last layer + head
become an IntegerHead. Its C header, 1,000 or 10,000 stored codes (the training digits, then copies
moved by one pixel) and 100 test queries are cross-compiled for the Cortex-M4 and run in QEMU.
Prints whether the device's codes and top-k ids and distances equal Python's (IntegerHead.codes +
TorusIndexFlat), flash and RAM, instructions per query (SysTick under -icount, cross-checked with
an instruction trace) and P@1 of the device's top-1; writes results.json.

Needs the Debian packages gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm. For int8
activations from elsewhere (e.g. an ExecuTorch program), use
``python -m torus_plugins.deploy.cortex_m4 --head H --codes C --activations A``.

Usage::

    python examples/deploy_m4.py --out runs/m4
"""

import argparse
import os
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torus_plugins import Clifford, L2p, report  # noqa: E402
from torus_plugins.deploy import integer_head_from_linear  # noqa: E402
from torus_plugins.deploy.cortex_m4 import (  # noqa: E402
    DEBIAN_PACKAGES,
    build_firmware,
    check_emulation,
    missing_packages,
    run_firmware,
    trace_instruction_count,
)
from torus_plugins.losses import SupConLoss  # noqa: E402

from common import seed_everything  # noqa: E402

HIDDEN, ANGLES = 128, 32
#: The stored copies of the training digits, moved by one pixel (dx, dy).
SHIFTS = [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1), (1, -1)]


def digits(seed: int):
    """Bundled 8x8 digits in [0, 1], a stratified 80/20 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    return train_test_split(x.astype(np.float32) / 16.0, y, test_size=0.2, stratify=y,
                            random_state=seed)


def shifted(images: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """8x8 images moved by (dx, dy) pixels, zero filled."""
    src, out = images.reshape(-1, 8, 8), np.zeros((len(images), 8, 8), images.dtype)
    out[:, max(dy, 0):8 + min(dy, 0), max(dx, 0):8 + min(dx, 0)] = \
        src[:, max(-dy, 0):8 + min(-dy, 0), max(-dx, 0):8 + min(-dx, 0)]
    return out.reshape(-1, 64)


def train(geometry: str, x: np.ndarray, y: np.ndarray, seed: int, epochs: int):
    """body (Linear + ReLU) and last Linear under a torus head, trained with SupCon on two noisy
    views of each digit."""
    gen = seed_everything(seed)
    body = nn.Sequential(nn.Linear(64, HIDDEN), nn.ReLU())
    last = nn.Linear(HIDDEN, 2 * ANGLES if geometry == "torusN" else ANGLES)
    head = L2p(2 * ANGLES) if geometry == "torusN" else Clifford(ANGLES)
    opt = torch.optim.Adam([*body.parameters(), *last.parameters()], lr=2e-3)
    loss_fn = SupConLoss(0.1)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=gen).split(128):
            views = [xt[idx] + 0.1 * torch.randn(len(idx), 64, generator=gen) for _ in range(2)]
            loss = loss_fn(torch.stack([head(last(body(v))) for v in views], 1), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return body.eval(), last.eval()


def activations(body, x: np.ndarray) -> np.ndarray:
    """The float activations feeding the last linear layer."""
    with torch.no_grad():
        return body(torch.from_numpy(x)).numpy()


def quantise(a: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return np.clip(np.rint(a / scale) + zero_point, -128, 127).astype(np.int8)


def run_setting(head, stored, queries, k, workdir, stored_labels, query_labels, verify) -> dict:
    """Build, emulate, compare; with ``verify``, also count every instruction of the same firmware
    with 1 and 3 queries."""
    os.makedirs(workdir, exist_ok=True)
    t0 = time.perf_counter()
    elf = build_firmware(head, stored, queries, k, workdir)
    t1 = time.perf_counter()
    run = run_firmware(elf, len(queries), head.n_angles, k)
    t2 = time.perf_counter()
    row = {**check_emulation(head, stored, queries, k, run), "n_stored": len(stored),
           "n_queries": len(queries), "k": k, "flash_bytes": run.flash_bytes,
           "ram_bytes": run.ram_bytes, "text": run.text, "data": run.data, "bss": run.bss,
           "codes_table_bytes": int(stored.size),
           "head_instructions": float(run.head_instructions.mean()),
           "search_instructions": float(run.search_instructions.mean()),
           "search_instructions_per_code": float(run.search_instructions.mean() / len(stored)),
           "p_at_1_device": float((stored_labels[run.ids[:, 0]] == query_labels).mean()),
           "build_seconds": round(t1 - t0, 2), "emulation_seconds": round(t2 - t1, 2)}
    if verify:
        counts = []
        for n in (1, 3):
            sub = os.path.join(workdir, f"trace{n}")
            os.makedirs(sub, exist_ok=True)
            elf = build_firmware(head, stored, queries[:n], k, sub)
            counts.append(trace_instruction_count(elf))
        row["trace_instructions_per_query"] = (counts[1] - counts[0]) / 2
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/m4")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--no-verify", action="store_true",
                        help="skip the instruction-trace cross-check")
    args = parser.parse_args(argv)
    if missing_packages():
        print(f"missing the Debian packages {' '.join(missing_packages())}: "
              f"apt-get install {' '.join(DEBIAN_PACKAGES)}")
        return 2
    prov = report.provenance(args, seeds=[args.seed], threads=1)
    os.makedirs(args.out, exist_ok=True)
    x_tr, x_te, y_tr, y_te = digits(args.seed)
    stored_x = np.concatenate([x_tr] + [shifted(x_tr, dx, dy) for dx, dy in SHIFTS])
    stored_y = np.tile(y_tr, 1 + len(SHIFTS))
    rows = []
    print(f"{'head':6} {'stored':>6} {'equal':>5} {'flash B':>8} {'RAM B':>6} {'head ins':>8} "
          f"{'search ins':>10} {'/code':>5} {'trace':>7} {'P@1':>5}")
    for geometry in ("torusN", "torusC"):
        body, last = train(geometry, x_tr, y_tr, args.seed, args.epochs)
        scale, zero_point = float(activations(body, x_tr).max()) / 255.0, -128  # ReLU: [0, max]
        head = integer_head_from_linear(last, input_scale=scale, input_zero_point=zero_point,
                                        geometry=geometry, bits=8)
        queries = quantise(activations(body, x_te[:args.queries]), scale, zero_point)
        stored = head.codes(quantise(activations(body, stored_x), scale, zero_point))
        for size in args.sizes:
            verify = not args.no_verify and size == min(args.sizes) and geometry == "torusN"
            row = run_setting(head, stored[:size], queries, args.k,
                              os.path.join(args.out, f"{geometry}_{size}"), stored_y[:size],
                              y_te[:args.queries], verify)
            rows.append({"geometry": geometry, **row})
            trace = f"{row['trace_instructions_per_query']:7.0f}" if verify else f"{'-':>7}"
            print(f"{geometry:6} {size:>6} {str(row['all_equal']):>5} {row['flash_bytes']:>8} "
                  f"{row['ram_bytes']:>6} {row['head_instructions']:>8.0f} "
                  f"{row['search_instructions']:>10.0f} "
                  f"{row['search_instructions_per_code']:>5.0f} "
                  f"{trace} {row['p_at_1_device']:>5.3f}")
    prov = report.finish(prov)
    report.write_results(os.path.join(args.out, "results.json"), prov, args, {"settings": rows})
    print(f"wrote {args.out}/results.json; wall time {prov['wall_seconds']:.0f} s on "
          f"{prov['cpu_model']}")
    return 0 if all(r["all_equal"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
