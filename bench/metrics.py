"""Time and peak memory of each shape metric at 2000 x 64 and 2000 x 512 (points on a torus, unit
norm).

Clouds: a random 2-torus (Clifford, R^4) rotated into R^d, and the Clifford embedding of a random
(d/2)-torus (what a torusN head of width d outputs). Time: best of ``--repeats`` runs, wall clock
and process CPU time (all threads; on a loaded machine CPU time is the comparable number). Memory:
peak of Python allocations (tracemalloc, numpy included; faiss / ripser C++ buffers are not seen)
and the process' peak RSS above its level after imports (ru_maxrss only grows: read it against the
row order; importing torch alone takes most of the baseline).

Usage: ``nice python bench/metrics.py [--repeats 3] [--n 2000]``
"""

import argparse
import os
import platform
import resource
import time
import tracemalloc

import numpy as np

from torus_plugins.metrics.shape import (
    betti_numbers,
    effective_rank,
    intrinsic_dimension,
    shape_metrics,
    spectral_gap,
    spectral_gap_ratio,
)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(
                line.split(":", 1)[1].strip() for line in f if line.startswith("model name")
            )
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def clouds(n: int, d: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)

    def clifford(turns):
        th = 2 * np.pi * turns
        return np.stack([np.cos(th), np.sin(th)], -1).reshape(len(turns), -1) / np.sqrt(
            turns.shape[1]
        )

    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return {
        f"T^2 in R^{d}": np.pad(clifford(rng.random((n, 2))), ((0, 0), (0, d - 4))) @ q,
        f"T^{d // 2} in R^{d}": clifford(rng.random((n, d // 2))),
    }


METRICS = {
    "effective_rank": effective_rank,
    "intrinsic_dimension": intrinsic_dimension,
    "spectral_gap": spectral_gap,
    "spectral_gap_ratio": spectral_gap_ratio,
    "betti_numbers": lambda x: betti_numbers(x)[0],
    "shape_metrics": lambda x: shape_metrics(x)["torus_score"],
}


def measure(fn, x, repeats: int):
    times, cpus = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        out = fn(x)
        times.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    tracemalloc.start()
    fn(x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return min(times), min(cpus), peak, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="points per cloud")
    ap.add_argument("--dims", type=int, nargs="+", default=[64, 512], help="embedding widths")
    ap.add_argument(
        "--repeats", type=int, default=3, help="timed runs per metric (best is reported)"
    )
    args = ap.parse_args()
    import faiss
    import ripser

    print(
        f"# CPU: {cpu_model()}, {os.cpu_count()} logical CPUs, load avg {os.getloadavg()[0]:.1f}; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, faiss threads "
        f"{faiss.omp_get_max_threads()}; numpy {np.__version__}, faiss {faiss.__version__}, ripser "
        f"{ripser.__version__}"
    )
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"# n = {args.n}, best of {args.repeats}; RSS after imports {base:.0f} MB, column = peak "
        "above that so far"
    )
    print(
        f"{'cloud':16s} {'metric':20s} {'wall s':>8s} {'CPU s':>7s} {'tracemalloc MB':>15s} "
        f"{'+RSS MB':>8s}  value"
    )
    for d in args.dims:
        for name, x in clouds(args.n, d).items():
            for metric, fn in METRICS.items():
                best, cpu, peak, out = measure(fn, x, args.repeats)
                rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base
                value = f"{out:.3f}" if isinstance(out, float) else str(out)
                print(
                    f"{name:16s} {metric:20s} {best:8.2f} {cpu:7.2f} {peak / 2**20:15.1f} "
                    f"{rss:8.0f}  {value}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
