"""Training-step time (forward + backward) of torus_plugins heads and losses against what each
replaces (``F.normalize``, lightly's KoLeoLoss and VICRegLoss, pytorch-metric-learning's
SupConLoss), eager and under ``torch.compile``, as ratios measured in one process on the same
tensors, best of several repeats.

Eager ours runs in each value-check mode (:mod:`torus_plugins.validation`): "auto" (the default; on
CPU the checks read the host, which is no synchronisation there), "device" (what a GPU gets by
default: device-side asserts, no host read) and "off" (no value checks, like lightly). Compiled ours
is the default mode under ``torch.compile`` (device-side asserts compiled into the graph) with
``fullgraph=True``; pml's SupConLoss does not compile whole, so it is compiled with graph breaks; a
reference that fails to compile is compared with its eager time (marked *).

Timing: every candidate of a comparison takes turns in each repeat (so load drifts hit all alike);
the time kept is the fastest block of ``blocked_autorange`` over all repeats. By default the clock
is the CPU time of the one thread doing the work (``--threads 1``, ``time.thread_time``): on a
shared machine wall time also counts the time other processes hold the core (it varied +-50% between
runs here), CPU time does not. ``--clock wall --threads 2`` measures wall time instead.

Run: ``flock /tmp/torus-bench.lock python bench/losses.py`` (CPU; ``--help`` for sizes, repeats).
"""

import argparse
import platform
import subprocess
import time

import torch
import torch.nn.functional as F
from torch.utils import benchmark

from torus_plugins.heads import Clifford, L2p, Sphere
from torus_plugins.losses import KoLeoLoss, SupConLoss, VICRegLoss
from torus_plugins.validation import validation_mode

EAGER_MODES = ("auto", "device", "off")


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        lines = out.splitlines()
        model = next(line for line in lines if line.startswith("Model name"))
        return model.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown CPU"


def train_step(fn, inputs):
    """A closure running one forward + backward of ``fn`` on leaves made from ``inputs``."""
    leaves = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]

    def run():
        for x in leaves:
            x.grad = None
        out = fn(*leaves)
        (out if out.dim() == 0 else out.sum()).backward()

    return run


def best_times(runs: dict, repeats: int, min_run_time: float, clock=time.perf_counter) -> dict:
    """{key: fastest block time (s)} for ``runs`` = {key: (closure, validation mode)}; NaN for a
    closure that fails in its warm-up (e.g. a reference torch.compile cannot handle)."""
    best = {}
    for key, (run, mode) in list(runs.items()):
        with validation_mode(mode):
            try:
                for _ in range(3):  # warm-up (and, for compiled functions, compilation)
                    run()
            except Exception as exc:  # reported and left out of the timing
                print(f"  {key} fails: {type(exc).__name__}: {str(exc).splitlines()[0][:100]}")
                best[key] = float("nan")
                del runs[key]
    for _ in range(repeats):
        for key, (run, mode) in runs.items():
            with validation_mode(mode):
                timer = benchmark.Timer(stmt="run()", globals={"run": run}, timer=clock)
                fastest = min(timer.blocked_autorange(min_run_time=min_run_time).times)
            best[key] = min(best.get(key, float("inf")), fastest)
    return best


def comparisons(b: int, d: int):
    """(name, ours, reference, ours' inputs, reference's inputs, reference compiles whole)."""
    from lightly.loss import KoLeoLoss as LightlyKoLeo
    from lightly.loss import VICRegLoss as LightlyVICReg
    from pytorch_metric_learning.losses import SupConLoss as PmlSupCon

    g = torch.Generator().manual_seed(b)
    x, x2 = torch.randn(b, d, generator=g), torch.randn(b, d, generator=g)
    views = torch.randn(b, 2, d, generator=g)
    labels = torch.randint(0, 32, (b,), generator=g)
    turns = torch.rand(b, d // 2, generator=g)
    ours_supcon, pml = SupConLoss(0.1, base_temperature=0.1), PmlSupCon(temperature=0.1)

    def normalize(t):
        return F.normalize(t, dim=-1)

    def supcon(v):
        return ours_supcon(v, labels)

    def pml_supcon(v):  # pml's layout: the views stacked along the batch, labels repeated
        return pml(torch.cat(torch.unbind(v, 1), 0), labels.repeat(2))

    return [
        ("Sphere head vs F.normalize", Sphere(d), normalize, (x,), (x,), True),
        ("L2p head vs F.normalize", L2p(d), normalize, (x,), (x,), True),
        (
            "Clifford head (D/2 turns) vs F.normalize",
            Clifford(d // 2),
            normalize,
            (turns,),
            (x,),
            True,
        ),
        ("KoLeoLoss vs lightly KoLeoLoss", KoLeoLoss(), LightlyKoLeo(), (x,), (x,), True),
        ("VICRegLoss vs lightly VICRegLoss", VICRegLoss(), LightlyVICReg(), (x, x2), (x, x2), True),
        ("SupConLoss vs pml SupConLoss", supcon, pml_supcon, (views,), (views,), False),
    ]


def measure(name, ours, ref, ours_in, ref_in, ref_whole, args) -> dict:
    """One comparison: the reference eager (and compiled), ours eager per mode (and compiled)."""
    runs = {"ref": (train_step(ref, ref_in), "auto")}
    runs.update({f"eager_{mode}": (train_step(ours, ours_in), mode) for mode in EAGER_MODES})
    if args.compile:
        torch._dynamo.reset()
        ref_c = torch.compile(ref, fullgraph=ref_whole, dynamic=False)
        runs["ref_c"] = (train_step(ref_c, ref_in), "auto")
        runs["compiled"] = (
            train_step(torch.compile(ours, fullgraph=True, dynamic=False), ours_in),
            "auto",
        )
    clock = time.thread_time if args.clock == "thread" else time.perf_counter
    t = best_times(runs, args.repeats, args.min_run_time, clock)
    row = {"name": name, "ref": t["ref"]}
    row.update({f"eager_{mode}": t[f"eager_{mode}"] / t["ref"] for mode in EAGER_MODES})
    if args.compile:
        compiles = t["ref_c"] == t["ref_c"]  # not NaN
        row.update(
            ref_c=t["ref_c"] if compiles else None,
            compiled=t["compiled"] / (t["ref_c"] if compiles else t["ref"]),
        )
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5, help="rounds of turns (best block kept)")
    parser.add_argument(
        "--min-run-time", type=float, default=0.05, help="seconds per blocked_autorange"
    )
    parser.add_argument(
        "--no-compile", dest="compile", action="store_false", help="eager columns only"
    )
    parser.add_argument("--only", default="", help="comparisons whose name contains this text")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument(
        "--clock",
        choices=("thread", "wall"),
        default="thread",
        help="CPU time of this thread (needs --threads 1) or wall time",
    )
    args = parser.parse_args()
    if args.clock == "thread" and args.threads != 1:
        parser.error("--clock thread measures one thread: use --threads 1 (or --clock wall)")
    torch.set_num_threads(args.threads)

    start = time.time()
    rows = []
    for b in args.batch:
        for case in comparisons(b, args.dim):
            if args.only in case[0]:
                rows.append({"b": b, **measure(*case, args)})
                print(f"  ({time.time() - start:.0f} s) {format_row(rows[-1])}", flush=True)

    print(
        f"\n{cpu_model()}, {torch.get_num_threads()} thread(s), torch {torch.__version__}; "
        f"forward+backward, D={args.dim}, {args.clock} clock, fastest block of {args.repeats} "
        f"rounds; ratio = ours / reference in the same mode (eager or compiled)"
    )
    print(
        "| comparison | B | ref eager ms | eager (auto) | eager (device) | eager (off) | "
        "ref compiled ms | compiled |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(format_row(r))
    if any(r.get("compiled") is not None and r.get("ref_c") is None for r in rows):
        print("* the reference fails to compile: ours compiled against the reference eager")
    print(f"wall time {time.time() - start:.0f} s")


def format_row(r: dict) -> str:
    if "compiled" not in r:
        compiled = "- | -"
    elif r["ref_c"] is None:
        compiled = f"fails | {r['compiled']:.2f}*"
    else:
        compiled = f"{r['ref_c'] * 1e3:.3f} | {r['compiled']:.2f}"
    return (
        f"| {r['name']} | {r['b']} | {r['ref'] * 1e3:.3f} | {r['eager_auto']:.2f} | "
        f"{r['eager_device']:.2f} | {r['eager_off']:.2f} | {compiled} |"
    )


if __name__ == "__main__":
    main()
