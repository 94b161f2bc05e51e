"""Training plumbing shared by the examples: flags, seeding, threads, optimiser steps, early stopping, runs in
parallel processes, writing results.json.

Evaluation (P@1, quantisation tables, few-shot accuracy), aggregation over seeds, provenance and plots live in the
package (``torus_plugins.metrics``, ``torus_plugins.report``, ``torus_plugins.plot``); nothing here evaluates.
"""

import argparse
import copy
import multiprocessing
import os
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch


class DataDirError(SystemExit):
    """A --data-dir that is missing, has the wrong layout or fails its checksum: exits with status 1 and the
    message on stderr."""

    def __init__(self, message: str):
        super().__init__(f"error: {message}")
        self.message = message


def positive(text: str) -> int:
    """argparse type: an integer >= 1 (argparse names the flag in the error)."""
    if int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return int(text)


def heads_type(choices):
    """argparse ``type`` of a ``--heads`` value (with ``nargs="+"``): one name or several,
    comma-separated, so ``--heads sphere torusN`` and ``--heads sphere,torusN`` mean the same; an
    unknown name is an error naming the flag and the choices. Flatten the parsed lists with
    :func:`flat_heads`."""
    def parse(text: str) -> list:
        names = [h.strip() for h in text.split(",") if h.strip()]
        bad = [h for h in names if h not in choices]
        if not names or bad:
            raise argparse.ArgumentTypeError(f"invalid choice: {(bad or [text])[0]!r} (choose from "
                                             f"{', '.join(choices)}; space- or comma-separated)")
        return names
    return parse


def flat_heads(values, default: list) -> list:
    """``--heads`` lists (from :func:`heads_type`) -> one list, first occurrence kept; ``default``
    if not given."""
    return list(dict.fromkeys(h for part in values for h in part)) if values else list(default)


def print_written(out: str, paths) -> None:
    """Print ``wrote N files to OUT:`` and one line per file (relative to ``out``), so a run says
    what it left."""
    rel = sorted(dict.fromkeys(os.path.relpath(p, out) + ("/" if os.path.isdir(p) else "")
                               for p in paths))
    print(f"\nwrote {len(rel)} files to {out}:")
    for name in rel:
        print(f"  {name}")


def seed_everything(seed: int, threads: int = 1) -> torch.Generator:
    """Seed python, numpy and torch, use ``threads`` intra-op threads; return a torch.Generator with the same seed
    (draw augmentations and batch orders from it). Same seed + same thread count -> same run."""
    torch.set_num_threads(int(threads))
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def is_torus(head: str) -> bool:
    return head.lower().startswith(("torusn", "torusc", "l2p", "clifford"))


def progress(iterable, **kwargs):
    """tqdm progress bar on stderr (silent when stderr is not a terminal)."""
    from tqdm.auto import tqdm
    kwargs.setdefault("leave", False)
    kwargs.setdefault("disable", not sys.stderr.isatty())
    return tqdm(iterable, file=sys.stderr, **kwargs)


def optimise(opt: torch.optim.Optimizer, loss: torch.Tensor, what: str) -> float:
    """One step: refuse a non-finite loss (naming ``what``), zero the gradients, backward, ``opt.step()``;
    returns ``loss.item()``."""
    if not torch.isfinite(loss):
        raise RuntimeError(f"{what}: loss became {loss.item()}")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.item()


class EarlyStopping:
    """Stop when a validation score (higher is better, e.g. P@1; pass -loss for a loss) has not improved by more
    than ``min_delta`` for ``patience`` epochs, never before ``min_epochs`` (early SSL epochs can score below the
    random initialisation); keep the best model's weights. ``reason`` says why training ended.

    Usage: ``stop = EarlyStopping(5, 0.005)``; per epoch ``if stop.step(val_p1, model): break``;
    after training ``stop.finish(model, max_epochs)`` restores the best weights and returns the reason.
    """

    def __init__(self, patience: int, min_delta: float = 0.0, what: str = "validation P@1", min_epochs: int = 0):
        self.patience, self.min_delta, self.what = int(patience), float(min_delta), what
        self.min_epochs = int(min_epochs)
        self.best, self.best_epoch, self.epoch, self.state, self.reason = -float("inf"), 0, 0, None, None

    def step(self, score: float, model: torch.nn.Module) -> bool:
        self.epoch += 1
        if score > self.best + self.min_delta or self.state is None:
            self.best, self.best_epoch, self.state = score, self.epoch, copy.deepcopy(model.state_dict())
        if self.epoch - self.best_epoch >= self.patience and self.epoch >= self.min_epochs:
            self.reason = (f"stopped early at epoch {self.epoch}: {self.what} plateau (no gain > {self.min_delta:g} "
                           f"for {self.patience} epochs; best epoch {self.best_epoch})")
            return True
        return False

    def finish(self, model: torch.nn.Module, max_epochs: int) -> str:
        if self.reason is None:
            self.reason = (f"ran the full budget of {max_epochs} epochs without a plateau (best epoch "
                           f"{self.best_epoch}): may not have converged")
        if self.state is not None:
            model.load_state_dict(self.state)
        return self.reason


def timed(fn, *args):
    """``fn(*args)``; a dict result gets ``seconds`` (wall) and ``cpu_seconds`` (this process) added."""
    t0, cpu0 = time.perf_counter(), time.process_time()
    out = fn(*args)
    if isinstance(out, dict):
        out.update(seconds=round(time.perf_counter() - t0, 1), cpu_seconds=round(time.process_time() - cpu0, 1))
    return out


def run_jobs(fn, tasks: list, jobs: int) -> list:
    """``[timed(fn, *t) for t in tasks]``, in ``jobs`` spawned processes when jobs > 1 (each run sets its own
    threads, so results do not depend on ``jobs``). Order is kept."""
    if jobs <= 1 or len(tasks) <= 1:
        return [timed(fn, *t) for t in tasks]
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(timed, [fn] * len(tasks), *zip(*tasks)))


def summarise_runs(runs: list, tables=("quantisation_table",), scalars=("epochs",), drop=()) -> dict:
    """Per-(head, seed) run dicts -> {head: {table: aggregate_rows over seeds, scalar: aggregate, "per_seed": runs
    without the ``drop`` keys}}, printing one line per run: its stop reason, best validation score and time."""
    from torus_plugins import report
    out = {}
    for head in dict.fromkeys(r["head"] for r in runs):
        rs = [r for r in runs if r["head"] == head]
        for r in rs:
            print(f"  {head} seed {r['seed']}: {r['stop_reason']}; best validation score {r['best_val']:.3f}; "
                  f"{r['seconds']:.0f} s ({r['cpu_seconds']:.0f} s CPU)")
        out[head] = {t: report.aggregate_rows([r[t] for r in rs]) for t in tables}
        out[head].update({s: report.aggregate([r[s] for r in rs]) for s in scalars})
        out[head]["per_seed"] = [{k: v for k, v in r.items() if k not in drop} for r in rs]
    return out


def write_results(out: str, prov: dict, args, metrics, jobs: int, written=()) -> dict:
    """``report.write_results`` to ``out``/results.json with the wall time; prints every file the
    run wrote (``written`` and results.json), how long it took and on what."""
    from torus_plugins import report
    prov = report.finish(prov)
    path = report.write_results(os.path.join(out, "results.json"), prov, args, metrics)
    print_written(out, [*written, path])
    print(f"wall time {prov['wall_seconds']:.0f} s on {prov['cpu_model']}, {prov['threads']} "
          f"thread(s) x {jobs} job(s)")
    return prov
