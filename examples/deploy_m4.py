"""A trained torus encoder's integer head and top-k search on an emulated Arm Cortex-M4 (QEMU mps2-an386).

A small MLP + torus head (torusN and torusC) is trained on the bundled digits; the activations feeding its last
linear layer are quantised to int8 (affine, per tensor) and the last layer + head become an IntegerHead. Its C
header, 1,000 or 10,000 stored codes (training digits, shifted by one pixel for 10k) and 100 test queries are
cross-compiled for the Cortex-M4 and run in QEMU. Prints whether the device's codes and top-k ids and distances
equal Python's (IntegerHead.codes + TorusIndexFlat), flash and RAM, instructions per query (SysTick under
-icount, checked against an instruction trace), P@1 of the device's top-1; writes results.json.

Needs the Debian packages gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm.

Usage::

    python examples/deploy_m4.py --out runs/m4
    python examples/deploy_m4.py --activations q.npy --head head.torh    # int8 queries from elsewhere
"""

import argparse
import os
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import seed_everything  # noqa: E402

from torus_plugins import Clifford, L2p, report  # noqa: E402
from torus_plugins.deploy import integer_head_from_linear, load_integer_head  # noqa: E402
from torus_plugins.deploy.cortex_m4 import (DEBIAN_PACKAGES, build_firmware, check_emulation,  # noqa: E402
                                            missing_packages, read_activations, run_firmware,
                                            trace_instruction_count)
from torus_plugins.losses import SupConLoss  # noqa: E402

HIDDEN, ANGLES = 128, 32
SHIFTS = [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1), (1, -1)]  # stored copies moved by one pixel


def digits(seed: int):
    """Bundled 8x8 digits in [0, 1], a stratified 80/20 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    return train_test_split(x.astype(np.float32) / 16.0, y, test_size=0.2, stratify=y, random_state=seed)


def shifted(images: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """8x8 images moved by (dx, dy) pixels, zero filled."""
    src, out = images.reshape(-1, 8, 8), np.zeros((len(images), 8, 8), images.dtype)
    out[:, max(dy, 0):8 + min(dy, 0), max(dx, 0):8 + min(dx, 0)] = \
        src[:, max(-dy, 0):8 + min(-dy, 0), max(-dx, 0):8 + min(-dx, 0)]
    return out.reshape(-1, 64)


def train(geometry: str, x: np.ndarray, y: np.ndarray, seed: int, epochs: int):
    """body (Linear + ReLU), last Linear, torus head, trained with SupCon on two noisy views."""
    gen = seed_everything(seed)
    body = nn.Sequential(nn.Linear(64, HIDDEN), nn.ReLU())
    last = nn.Linear(HIDDEN, 2 * ANGLES if geometry == "torusN" else ANGLES)
    head = L2p(2 * ANGLES) if geometry == "torusN" else Clifford(ANGLES)
    params = [*body.parameters(), *last.parameters()]
    opt = torch.optim.Adam(params, lr=2e-3)
    loss_fn = SupConLoss(0.1)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=gen).split(128):
            views = [xt[idx] + 0.1 * torch.randn(len(idx), 64, generator=gen) for _ in range(2)]
            z = torch.stack([head(last(body(v))) for v in views], 1)
            loss = loss_fn(z, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return body.eval(), last.eval()


def activations(body):
    """x (numpy) -> the float activations feeding the last linear layer (numpy)."""
    def run(x):
        with torch.no_grad():
            return body(torch.from_numpy(x)).numpy()
    return run


def quantise_activations(a: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return np.clip(np.rint(a / scale) + zero_point, -128, 127).astype(np.int8)


def run_setting(head, stored, queries, k, workdir, labels=None, query_labels=None, verify=False) -> dict:
    os.makedirs(workdir, exist_ok=True)
    t0 = time.perf_counter()
    elf = build_firmware(head, stored, queries, k, workdir)
    t1 = time.perf_counter()
    run = run_firmware(elf, len(queries), head.n_angles, k)
    t2 = time.perf_counter()
    check = check_emulation(head, stored, queries, k, run)
    row = {**check, "n_stored": len(stored), "n_queries": len(queries), "k": k, "flash_bytes": run.flash_bytes,
           "ram_bytes": run.ram_bytes, "text": run.text, "data": run.data, "bss": run.bss,
           "codes_table_bytes": int(stored.size), "head_instructions": float(run.head_instructions.mean()),
           "search_instructions": float(run.search_instructions.mean()),
           "search_instructions_per_code": float(run.search_instructions.mean() / len(stored)),
           "build_seconds": round(t1 - t0, 2), "emulation_seconds": round(t2 - t1, 2)}
    if labels is not None:
        row["p_at_1_device"] = float((labels[run.ids[:, 0]] == query_labels).mean())
    if verify:  # the same firmware with 1 and 3 queries, every executed instruction logged
        counts = []
        for n in (1, 3):
            sub = os.path.join(workdir, f"trace{n}")
            os.makedirs(sub, exist_ok=True)
            counts.append(trace_instruction_count(build_firmware(head, stored, queries[:n], k, sub)))
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
    parser.add_argument("--activations", help="int8 queries (.npy [n, in] or raw .bin) instead of the digits'")
    parser.add_argument("--head", help="an integer head file to use with --activations")
    parser.add_argument("--no-verify", action="store_true", help="skip the instruction-trace cross-check")
    args = parser.parse_args(argv)
    if missing_packages():
        print(f"missing the Debian packages {' '.join(missing_packages())}: "
              f"apt-get install {' '.join(DEBIAN_PACKAGES)}")
        return 2
    prov = report.provenance(args, seeds=[args.seed], threads=1)
    os.makedirs(args.out, exist_ok=True)
    x_tr, x_te, y_tr, y_te = digits(args.seed)
    rows = []
    for geometry in ("torusN", "torusC"):
        body, last = train(geometry, x_tr, y_tr, args.seed, args.epochs)
        act = activations(body)
        a_tr = act(x_tr)
        moved = np.concatenate([x_tr] + [shifted(x_tr, dx, dy) for dx, dy in SHIFTS])
        a_db, y_db = act(moved), np.tile(y_tr, 1 + len(SHIFTS))
        scale, zero_point = float(a_tr.max()) / 255.0, -128  # ReLU outputs: [0, max] onto [-128, 127]
        head = integer_head_from_linear(last, input_scale=scale, input_zero_point=zero_point,
                                        geometry=geometry, bits=8)
        queries = quantise_activations(act(x_te[:args.queries]), scale, zero_point)
        query_labels = y_te[:args.queries]
        if args.activations and geometry == "torusN":
            head = load_integer_head(args.head) if args.head else head
            queries, query_labels = read_activations(args.activations, head.in_features), None
        db_codes = head.codes(quantise_activations(a_db, scale, zero_point))
        for size in args.sizes:
            row = run_setting(head, db_codes[:size], queries, args.k, os.path.join(args.out, f"{geometry}_{size}"),
                              y_db[:size] if query_labels is not None else None, query_labels,
                              verify=not args.no_verify and size == min(args.sizes) and geometry == "torusN")
            row["geometry"] = geometry
            rows.append(row)
            print(f"{geometry} {size:>6} stored: device == python: codes {row['codes_equal']:.0%}, ids "
                  f"{row['ids_equal']:.0%}, distances {row['distances_equal']:.0%} | flash {row['flash_bytes']} B, "
                  f"RAM {row['ram_bytes']} B | instructions/query: head {row['head_instructions']:.0f}, "
                  f"search {row['search_instructions']:.0f} ({row['search_instructions_per_code']:.1f} per code)"
                  + (f" | trace {row['trace_instructions_per_query']:.0f}" if "trace_instructions_per_query" in row
                     else "") + (f" | P@1 {row['p_at_1_device']:.3f}" if "p_at_1_device" in row else ""))
    prov = report.finish(prov)
    report.write_results(os.path.join(args.out, "results.json"), prov, args, {"settings": rows})
    print(f"wrote {args.out}/results.json; wall time {prov['wall_seconds']:.0f} s on {prov['cpu_model']}")
    return 0 if all(r["all_equal"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
