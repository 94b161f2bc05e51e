"""Benchmark of torus code search: exact scan, latency, threads, approximate search vs faiss ANN,
Milvus, memory.

Every ratio is measured in one process, at the same thread count (faiss.omp_set_num_threads,
numba.set_num_threads); contenders are timed in interleaved rounds (round r times every contender
once, best of ``--repeat`` rounds, at every size) after a warm-up call, always through the public
``search``. The CPU model, its vector flags and the kernel path are detected at run time and printed
first: ratios depend on the CPU. ``--lock FILE`` holds an flock on FILE while a section is timed
(released between sections and data sets), so benchmarks sharing a machine do not overlap.

Data (``bench/search_data.py``, seeded): *realistic* (10,000 Zipf-sized clusters of varied
anisotropic noise plus 30% of points near a curved 8-dimensional manifold; queries fresh from the
same mixture), *readme* (1000 centres, noise 0.02 turns: easy) and *uniform* angles; 64 angles; the
relative contrast of each set is printed.

Tables:
 1. exact k=10, 1 thread, uniform codes: like-for-like bits. 8-bit TorusIndexFlat vs faiss
    IndexFlatIP on the float32 Clifford vectors of the same 8-bit codes, 4-bit TorusIndexFlat (two
    codes per byte) vs faiss IndexBinaryFlat on the same 4-bit codes' Johnson codes; nq = 100 with
    faiss's default BLAS threshold (nq x d < faiss.cvar.distance_compute_blas_threshold: faiss's
    non-BLAS path) and with BLAS forced (threshold 0), and nq = 1000 (BLAS at the default
    threshold).
 2. latency: one query against 1k / 100k vectors (8-bit, 4-bit), fixed cost per call (one query, 4
    vectors).
 3. threads: QPS at 1 and 2 threads for nq = 1, 16, 1000.
 4. ANN, nq = 1000, searches 1 thread, builds every core: for each data set and size, recall@10
    against the 8-bit exact neighbours, tie-aware (a returned code counts if its distance is <= the
    10th exact distance), for TorusIndexIVF (nprobe sweep), faiss IndexBinaryIVF on 4-bit Johnson
    codes (4-bit: its ceiling is the 4-bit exact scan's recall, also shown), faiss IndexHNSWFlat on
    float Clifford vectors (efSearch sweep); the QPS at recall 0.90 and 0.95 and its ratio to the
    exact TorusIndexFlat scan of the same data in the same run.
 5. Milvus Lite (embedded): insert rate and QPS vs TorusIndexFlat (--milvus-n codes).
 6. peak memory of quantize, johnson_encode, TorusIndexFlat.add and search (tracemalloc) at
    --memory-n x 64 angles (default 10M), relative to what each step produces.

Usage: nice python bench/search.py [--n 100000] [--n-large 1000000] [--repeat 3]
       [--skip-milvus] [--skip-ann] [--lock /tmp/torus-bench.lock] [--plot docs/ann_recall_qps.png]
"""

import argparse
import contextlib
import fcntl
import gc
import os
import platform
import tempfile
import time
import tracemalloc

import faiss
import numba
import numpy as np
import search_data  # bench/search_data.py (the script's folder is on sys.path)

from torus_plugins.codes import johnson_encode, quantize
from torus_plugins.search import SearchParametersIVF, TorusIndexFlat, TorusIndexIVF
from torus_plugins.search import _kernel as kernel
from torus_plugins.search.ivf import clifford

K = 10
ANGLES = 64


def set_threads(t: int) -> None:
    faiss.omp_set_num_threads(t)
    numba.set_num_threads(t)


def filled(index, codes, train=None):
    """``index`` after ``index.train(train)`` (when given) and ``index.add(codes)``."""
    if train is not None:
        index.train(train)
    index.add(codes)
    return index


def best_time(fn, repeat: int) -> tuple:
    fn_out = fn()  # warm-up (compilation, caches)
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn_out = fn()
        best = min(best, time.perf_counter() - t)
    return fn_out, best


def machine() -> str:
    """The CPU as the OS reports it at run time (model name, family/model numbers, vector flags),
    the libraries' versions, the kernel paths this CPU runs and the load average when the run
    starts."""
    info, flags = {}, set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "cpu family", "model", "vendor_id") and key not in info:
                    info[key] = value.strip()
                if key == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    model = info.get("model name") or platform.processor() or "?"
    ident = (
        f" ({info.get('vendor_id', '?')} family {info.get('cpu family', '?')} model "
        f"{info.get('model', '?')})"
    )
    keep = [
        f for f in ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx512_vpopcntdq") if f in flags
    ]
    return (
        f"{model}{ident}, {os.cpu_count()} cores visible, flags: {' '.join(keep) or 'n/a'}; numba "
        f"{numba.__version__}, faiss {faiss.__version__}; kernel paths: "
        f"{', '.join(kernel.PATH_NAMES[p] for p in kernel.AVAILABLE_PATHS)} (best: "
        f"{kernel.PATH_NAMES[kernel.BEST_PATH]}); load average at start "
        f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}"
    )


def uniform(rng, n):
    return rng.random((n, ANGLES), dtype=np.float32)


DATA_SETS = {
    "realistic": search_data.realistic,
    "readme": search_data.readme_set,
    "uniform": search_data.uniform,
}


@contextlib.contextmanager
def held(path: str | None):
    """An exclusive flock on ``path`` while the block runs (nothing if path is empty)."""
    if not path:
        yield
        return
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def recall(I, gt) -> float:
    return float(
        np.mean([len(set(a[:K].tolist()) & set(b[:K].tolist())) / K for a, b in zip(I, gt)])
    )


def table(title: str, head: list, rows: list) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")


def bandwidth_probe(gb: float = 1.0, repeat: int = 5) -> float:
    """Read bandwidth of one thread, GB/s: numpy's float64 sum over a buffer far larger than the
    caches (1 GiB, best of ``repeat``: other jobs on the machine only ever lower it)."""
    a = np.ones(int(gb * 2**30) // 8, np.float64)
    _, dt = best_time(lambda: a.sum(), repeat)
    return a.nbytes / dt / 1e9


# ----------------------------------------------------------------------------------------- 1. exact
def interleaved(fns: dict, repeat: int) -> tuple:
    """({name: result}, {name: best seconds}): every fn called once to warm up, then ``repeat``
    rounds in each of which every fn is timed once (so a slow spell of the machine hits all
    contenders alike)."""
    out = {name: fn() for name, fn in fns.items()}
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t)
    return out, best


def forced_blas(fn):
    """``fn`` run with faiss's BLAS threshold at 0 (faiss uses BLAS for any nq), the default
    restored after."""

    def run():
        old = faiss.cvar.distance_compute_blas_threshold
        faiss.cvar.distance_compute_blas_threshold = 0
        try:
            return fn()
        finally:
            faiss.cvar.distance_compute_blas_threshold = old

    return run


def exact_table(sizes, repeat, bw):
    rows = []
    nq_all = 1000
    threshold = faiss.cvar.distance_compute_blas_threshold
    for n in sizes:
        x_t, q_t = search_data.uniform(n, nq_all, seed=1)
        c8, qa8, c4, qa4 = quantize(x_t, 8), quantize(q_t, 8), quantize(x_t, 4), quantize(q_t, 4)
        del x_t
        ip = faiss.IndexFlatIP(2 * ANGLES)
        ip.add(clifford(c8, 8))
        bf = faiss.IndexBinaryFlat(8 * 64)
        bf.add(johnson_encode(c4, 4))
        flat8, flat4 = filled(TorusIndexFlat(ANGLES, 8), c8), filled(TorusIndexFlat(ANGLES, 4), c4)
        del c8, c4
        for nq in (100, 1000):
            q8, q4 = qa8[:nq], qa4[:nq]
            qf, jq = clifford(q8, 8), johnson_encode(q4, 4)
            fns = {
                "ip": lambda ip=ip, qf=qf: ip.search(qf, K),
                "ip_blas": forced_blas(lambda ip=ip, qf=qf: ip.search(qf, K)),
                "t8": lambda flat8=flat8, q8=q8: flat8.search(q8, K),
                "bf": lambda bf=bf, jq=jq: bf.search(jq, K),
                "t4": lambda flat4=flat4, q4=q4: flat4.search(q4, K),
            }
            if nq * 2 * ANGLES >= threshold:
                del fns["ip_blas"]  # BLAS is faiss's own choice here
            _, t = interleaved(fns, repeat)
            ip_how = "BLAS" if nq * 2 * ANGLES >= threshold else "default: no BLAS"
            rows.append(
                (
                    n,
                    nq,
                    8,
                    f"faiss IndexFlatIP, float32 Clifford ({ip_how})",
                    512,
                    f"{nq / t['ip']:.0f}",
                    "",
                )
            )
            if "ip_blas" in t:
                rows.append(
                    (
                        n,
                        nq,
                        8,
                        "faiss IndexFlatIP, float32 Clifford (BLAS forced)",
                        512,
                        f"{nq / t['ip_blas']:.0f}",
                        "",
                    )
                )
            ratio = f"{t['ip'] / t['t8']:.2f}" + (
                f" / {t['ip_blas'] / t['t8']:.2f}" if "ip_blas" in t else ""
            )
            rows.append((n, nq, 8, "TorusIndexFlat 8-bit", 64, f"{nq / t['t8']:.0f}", ratio))
            rows.append(
                (
                    n,
                    nq,
                    4,
                    "faiss IndexBinaryFlat, 4-bit Johnson (512 bits)",
                    64,
                    f"{nq / t['bf']:.0f}",
                    "",
                )
            )
            rows.append(
                (
                    n,
                    nq,
                    4,
                    "TorusIndexFlat 4-bit (two codes per byte)",
                    32,
                    f"{nq / t['t4']:.0f}",
                    f"{t['bf'] / t['t4']:.2f}",
                )
            )
            print("  ..", n, nq, "done", flush=True)
        del ip, bf, flat8, flat4, fns  # fns: its lambdas hold the indexes too
        gc.collect()
    table(
        f"Exact search through search(), k={K}, {ANGLES} uniform angles, 1 thread, best of "
        f"{repeat} interleaved rounds (one-thread memory read bandwidth probe: {bw:.1f} GB/s). 'x "
        "faiss' = QPS over the faiss index of the same bits on the same codes (8-bit: over "
        "IndexFlatIP at the default threshold / with BLAS forced; faiss's BLAS threshold is nq x "
        f"d >= {threshold})",
        ["n", "nq", "bits", "method", "B/vector", "QPS", "x faiss"],
        rows,
    )


# -------------------------------------------------------------------------------------------- 2./3.
def latency_and_threads(rng, repeat):
    rows = []
    for n in (1000, 100_000):
        x_t = uniform(rng, n)
        codes = quantize(x_t, 8)
        index = filled(TorusIndexFlat(ANGLES, 8), codes)
        ip = faiss.IndexFlatIP(2 * ANGLES)
        ip.add(clifford(codes, 8))
        q = codes[:1].copy()
        qf = clifford(q, 8)
        calls = 2000 if n == 1000 else 50
        _, t = best_time(
            lambda index=index, q=q, calls=calls: [index.search(q, K) for _ in range(calls)], repeat
        )
        _, t_ip = best_time(
            lambda ip=ip, qf=qf, calls=calls: [ip.search(qf, K) for _ in range(calls)], repeat
        )
        rows.append(
            (
                f"1 query vs {n} vectors",
                f"{t / calls * 1e6:.1f}",
                f"{t_ip / calls * 1e6:.1f}",
                f"{t_ip / t:.2f}",
            )
        )
        index4 = filled(TorusIndexFlat(ANGLES, 4), codes >> 4)
        q4 = q >> 4
        _, t4 = best_time(
            lambda index4=index4, q4=q4, calls=calls: [index4.search(q4, K) for _ in range(calls)],
            repeat,
        )
        rows.append(
            (
                f"1 query vs {n} vectors, 4-bit packed",
                f"{t4 / calls * 1e6:.1f}",
                f"{t_ip / calls * 1e6:.1f}",
                f"{t_ip / t4:.2f}",
            )
        )
    tiny = quantize(uniform(rng, 4), 8)
    _, t = best_time(lambda: [kernel.topk_l1(tiny[:1], tiny, 8, 1) for _ in range(5000)], repeat)
    idx = filled(TorusIndexFlat(ANGLES, 8), tiny)
    _, t2 = best_time(lambda: [idx.search(tiny[:1], 1) for _ in range(5000)], repeat)
    rows.append(
        (
            "fixed cost per call (1 query vs 4 vectors): kernel / TorusIndexFlat.search",
            f"{t / 5000 * 1e6:.1f} / {t2 / 5000 * 1e6:.1f}",
            "",
            "",
        )
    )
    table(
        "Latency, 1 thread, k=10, 8-bit codes unless stated (microseconds per call)",
        ["case", "TorusIndexFlat us", "FlatIP us", "x FlatIP"],
        rows,
    )

    x_t = uniform(rng, 100_000)
    codes = quantize(x_t, 8)
    index = filled(TorusIndexFlat(ANGLES, 8), codes)
    ip = faiss.IndexFlatIP(2 * ANGLES)
    ip.add(clifford(codes, 8))
    q_all = quantize(uniform(rng, 1000), 8)
    rows = []
    for nq in (1, 16, 1000):
        q, qf = q_all[:nq], clifford(q_all[:nq], 8)
        calls = max(1, 200 // nq)
        res = []
        for t in (1, 2):
            set_threads(t)
            _, a = best_time(
                lambda q=q, calls=calls: [index.search(q, K) for _ in range(calls)], repeat
            )
            _, b = best_time(
                lambda qf=qf, calls=calls: [ip.search(qf, K) for _ in range(calls)], repeat
            )
            res.append((nq * calls / a, nq * calls / b))
        set_threads(1)
        rows.append(
            (
                nq,
                f"{res[0][0]:.0f}",
                f"{res[1][0]:.0f}",
                f"{res[1][0] / res[0][0]:.2f}",
                f"{res[0][1]:.0f}",
                f"{res[1][1]:.0f}",
                f"{res[1][1] / res[0][1]:.2f}",
            )
        )
    table(
        "Threads: QPS at 1 and 2 threads, 100k x 64 8-bit codes, k=10 (the 2 cores are shared "
        "with other jobs)",
        ["nq", "Torus 1t", "Torus 2t", "2t/1t", "FlatIP 1t", "FlatIP 2t", "2t/1t"],
        rows,
    )


# ------------------------------------------------------------------------------------------- 4. ANN
BUILD_THREADS = (
    os.cpu_count() or 1
)  # index builds (k-means, HNSW graphs) use every core; searches use 1
CURVES = []  # (data, n, method, [(setting, recall, QPS), ...], exact QPS) for --plot
TARGETS = (0.90, 0.95)


def tie_recall(I: np.ndarray, q8: np.ndarray, c8: np.ndarray, kth: np.ndarray) -> float:
    """Tie-aware recall@K against the 8-bit circular-L1 truth: the share of the K returned slots
    holding a distinct code whose 8-bit distance to the query is <= the K-th exact distance ``kth``
    [nq]."""
    I = np.asarray(I, np.int64)[:, :K]
    valid = I >= 0
    srt = np.sort(np.where(valid, I, -1), axis=1)
    first = np.ones_like(valid)
    first[:, 1:] = srt[:, 1:] != srt[:, :-1]  # count a repeated id once
    codes = c8[np.where(valid, I, 0)].astype(np.int16)
    diff = np.abs(codes - q8[:, None, :].astype(np.int16))
    dist = np.minimum(diff, 256 - diff).sum(-1)
    distinct = np.zeros_like(valid)
    np.put_along_axis(distinct, np.argsort(np.where(valid, I, -1), axis=1), first, axis=1)
    hit = valid & distinct & (dist <= kth[:, None])
    return float(hit.sum(1).mean() / K)


class Contender:
    """One method of the ANN table: a built index, the settings of its sweep and how to search at
    one."""

    def __init__(self, name, bits, build, search_at, settings, bytes_per_vector):
        self.name, self.bits, self.settings, self.bpv = name, bits, settings, bytes_per_vector
        set_threads(BUILD_THREADS)
        t0 = time.perf_counter()
        self.index = build()
        self.build_s = time.perf_counter() - t0
        set_threads(1)
        self.search_at = search_at
        self.points = []  # (setting, recall, best seconds)


def ann_group(data, n, x_t, q_t, repeat, hnsw_max, rows, nlists):
    """Build every contender on one data set at one size, sweep them in interleaved rounds, add
    table rows."""
    nq = q_t.shape[0]
    c8, q8, c4, q4 = quantize(x_t, 8), quantize(q_t, 8), quantize(x_t, 4), quantize(q_t, 4)
    del x_t, q_t
    rng = np.random.default_rng(5)
    set_threads(1)
    flat8 = filled(TorusIndexFlat(ANGLES, 8), c8)
    flat4 = filled(TorusIndexFlat(ANGLES, 4), c4)
    D8, _ = flat8.search(q8, K)
    kth = D8[:, K - 1]
    rc = search_data.relative_contrast(c8, q8)
    probes = (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)
    cons = [
        Contender(
            "TorusIndexFlat 8-bit (exact)",
            8,
            lambda flat8=flat8: flat8,
            lambda ix, s: ix.search(q8, K)[1],
            (None,),
            64,
        ),
        Contender(
            "TorusIndexFlat 4-bit (exact 4-bit scan)",
            4,
            lambda flat4=flat4: flat4,
            lambda ix, s: ix.search(q4, K)[1],
            (None,),
            32,
        ),
    ]
    for nlist in nlists:
        train_n = min(n, 64 * nlist)
        sample = rng.permutation(n)[:train_n]
        cons.append(
            Contender(
                f"TorusIndexIVF 8-bit nlist={nlist} (nprobe)",
                8,
                lambda nlist=nlist, sample=sample: filled(
                    TorusIndexIVF(ANGLES, 8, nlist=nlist), c8, c8[sample]
                ),
                lambda ix, s: ix.search(q8, K, params=SearchParametersIVF(nprobe=s))[1],
                [p for p in probes if p <= nlist],
                64 + 8,
            )
        )
    nlist = nlists[0]
    jc, jq = johnson_encode(c4, 4), johnson_encode(q4, 4)
    sample = rng.permutation(n)[: min(n, 64 * nlist)]

    def build_bivf():
        quant = faiss.IndexBinaryFlat(512)
        ix = faiss.IndexBinaryIVF(quant, 512, nlist)
        ix.own_fields = True
        quant.this.disown()
        ix.train(jc[sample])
        ix.add(jc)
        return ix

    def at_nprobe(ix, s):
        ix.nprobe = s
        return ix.search(jq, K)[1]

    cons.append(
        Contender(
            f"faiss IndexBinaryIVF 4-bit Johnson nlist={nlist} (nprobe)",
            4,
            build_bivf,
            at_nprobe,
            [p for p in probes if p <= min(nlist, 256)],
            64 + 8,
        )
    )
    xf, qf = clifford(c8, 8), clifford(q8, 8)
    ipx = faiss.IndexFlatIP(2 * ANGLES)
    ipx.add(xf)
    cons.insert(
        2,
        Contender(
            "faiss IndexFlatIP float Clifford of the 8-bit codes (exact in its metric)",
            8,
            lambda ipx=ipx: ipx,
            lambda ix, s: ix.search(qf, K)[1],
            (None,),
            512,
        ),
    )
    if n <= hnsw_max or data == "realistic":

        def build_hnsw():
            ix = faiss.IndexHNSWFlat(2 * ANGLES, 32, faiss.METRIC_INNER_PRODUCT)
            ix.add(xf)
            return ix

        def at_ef(ix, s):
            ix.hnsw.efSearch = s
            return ix.search(qf, K)[1]

        cons.append(
            Contender(
                "faiss IndexHNSWFlat M=32 float Clifford of the 8-bit codes (efSearch)",
                8,
                build_hnsw,
                at_ef,
                (16, 32, 64, 128, 256, 512, 1024),
                "512 + graph",
            )
        )
    print(
        f"  .. {data} n={n}: built " + ", ".join(f"{c.name} {c.build_s:.1f}s" for c in cons),
        flush=True,
    )
    # round 0: warm-up and recall; a sweep stops once it is (nearly) exact
    for c in cons:
        kept = []
        for s in c.settings:
            rec = tie_recall(c.search_at(c.index, s), q8, c8, kth)
            kept.append((s, rec))
            if rec >= 0.999:
                break
        c.points = [(s, rec, float("inf")) for s, rec in kept]
    for _ in range(repeat):
        for c in cons:
            for j, (s, rec, best) in enumerate(c.points):
                t = time.perf_counter()
                c.search_at(c.index, s)
                c.points[j] = (s, rec, min(best, time.perf_counter() - t))
    exact_qps = nq / cons[0].points[0][2]
    for c in cons:
        pts = [(s, rec, nq / t) for s, rec, t in c.points]
        cells = []
        for target in TARGETS:
            ok = [p for p in pts if p[1] >= target]
            if ok:
                s, rec, qps = max(ok, key=lambda p: p[2])
                cells += [
                    f"{qps:.0f} ({'' if s is None else s}: {rec:.3f})",
                    f"{qps / exact_qps:.2f}",
                ]
            else:
                cells += [f"- (max {max(p[1] for p in pts):.3f})", "-"]
        curve = " ".join(f"{'' if s is None else s}:{rec:.3f}/{qps:.0f}" for s, rec, qps in pts)
        rows.append(
            (data, n, f"{rc:.1f}", c.name, c.bits, f"{c.build_s:.1f}", c.bpv, *cells, curve)
        )
        CURVES.append((data, n, c.name, pts, exact_qps))
        print("  ..", " | ".join(map(str, rows[-1])), flush=True)
    del cons, flat8, flat4, ipx
    gc.collect()


def ann_table(sizes, repeat, hnsw_max, lock, sets, nlists):
    rows = []
    nq = 1000
    for data in sets:
        ns = sizes if data != "uniform" else sizes[:1]  # uniform: nothing pays at any size
        made = [
            DATA_SETS[data](n, nq, seed=0) for n in ns
        ]  # before the lock: generating is not timed
        with held(lock):
            for n, (x_t, q_t) in zip(ns, made):
                ann_group(data, n, x_t, q_t, repeat, hnsw_max, rows, nlists)
    table(
        f"Approximate search, k={K}, nq={nq}, {ANGLES} angles, searches 1 thread, builds "
        f"{BUILD_THREADS} threads; recall@10 tie-aware, against the 8-bit exact neighbours (every "
        f"row, 4-bit ones included); QPS best of {repeat} interleaved rounds; 'x exact' = over the "
        "exact TorusIndexFlat 8-bit scan of the same data in the same run; RC = relative "
        "contrast; a cell is the fastest setting reaching the recall: QPS (setting: recall)",
        [
            "data",
            "n",
            "RC",
            "method",
            "bits",
            "build s",
            "B/vector",
            "QPS at 0.90",
            "x exact",
            "QPS at 0.95",
            "x exact",
            "curve setting:recall/QPS",
        ],
        rows,
    )


def plot_curves(path) -> None:
    """Recall@10 against QPS (log), one panel per data set and size; a line joins the settings of
    ONE method (its nprobe / efSearch sweep), the exact scan is a dashed vertical line, recall 0.95
    a dotted one."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    panels = sorted(
        {(d, n) for d, n, *_ in CURVES}, key=lambda p: (list(DATA_SETS).index(p[0]), p[1])
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.4), squeeze=False)
    methods = sorted({m for _, _, m, _, _ in CURVES if "(exact" not in m})
    colours = {m: plt.get_cmap("tab10")(i) for i, m in enumerate(methods)}
    for ax, (data, n) in zip(axes[0], panels):
        lowest = 1.0
        for d, nn, method, points, _ in CURVES:
            if (d, nn) != (data, n) or "(exact" in method:
                continue
            _, rec, qps = zip(*points)
            lowest = min(lowest, *rec)
            ax.plot(qps, rec, "o-", ms=3, color=colours[method], label=method)
        exact = [e for d, nn, m, _, e in CURVES if (d, nn) == (data, n)]
        if exact:
            ax.axvline(exact[0], ls="--", color="grey", lw=1, label="exact TorusIndexFlat 8-bit")
        ax.axhline(0.95, ls=":", color="grey", lw=1)
        ax.set_xscale("log")
        ax.set(
            title=f"{data}, n = {n:,}",
            xlabel="QPS (1 thread, log)",
            ylabel="recall@10 (8-bit truth, ties)",
            ylim=(max(0.0, lowest - 0.05), 1.005),
        )
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.2, 1, 1))
    fig.savefig(path, dpi=80)
    plt.close(fig)
    print(f"\n(plot: {path})")


# ---------------------------------------------------------------------------------------- 5. Milvus
def milvus_table(rng, n, repeat):
    from torus_plugins.search.milvus import MilvusTorusIndex

    rows = []
    nq = 100
    x_t, q_t = uniform(rng, n), uniform(rng, nq)
    with tempfile.TemporaryDirectory() as tmp:
        for bits in (4, 8):
            c, q = quantize(x_t, bits), quantize(q_t, bits)
            m = MilvusTorusIndex(
                ANGLES, bits, uri=os.path.join(tmp, f"m{bits}.db"), collection=f"b{bits}", drop=True
            )
            t0 = time.perf_counter()
            m.add_with_ids(
                c, np.arange(n), progress=False
            )  # ids 0..n-1, as TorusIndexFlat numbers them
            t_ins = time.perf_counter() - t0
            (D, I), t = best_time(lambda m=m, q=q: m.search(q, K), repeat)
            flat = TorusIndexFlat(ANGLES, bits)
            t1 = time.perf_counter()
            flat.add(c)
            t_add = time.perf_counter() - t1
            (Dr, Ir), tf = best_time(lambda flat=flat, q=q: flat.search(q, K), repeat)
            how = (
                "exact (Johnson + HAMMING, BIN_FLAT)"
                if bits <= 4
                else f"top-4-bit shortlist x{m.rerank}, re-ranked"
            )
            rows.append(
                (
                    bits,
                    how,
                    f"{n / t_ins:.0f}",
                    f"{n / t_add:.0f}",
                    f"{nq / t:.0f}",
                    f"{nq / tf:.0f}",
                    f"{recall(I, Ir):.3f}",
                )
            )
            m.close()
    table(
        f"Milvus Lite 2.5.1 (embedded, same machine) vs TorusIndexFlat: {n} x {ANGLES} uniform "
        f"angles, nq={nq}, k={K}",
        [
            "bits",
            "Milvus search",
            "Milvus insert codes/s",
            "TorusIndexFlat add codes/s",
            "Milvus QPS",
            "TorusIndexFlat QPS",
            "recall@10 vs TorusIndexFlat",
        ],
        rows,
    )


# ---------------------------------------------------------------------------------------- 6. memory
def traced_peak(fn):
    """(result, peak bytes allocated while ``fn`` ran: tracemalloc, which numpy reports its buffers
    to)."""
    gc.collect()
    tracemalloc.start()
    out = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, peak


def memory_table(rng, n):
    """Peak memory of each streaming step at n x 64 angles, relative to the size of what the step
    produces."""
    turns = np.empty(
        (n, ANGLES), np.float32
    )  # made before tracing, in slices (the input is not the step's cost)
    for s in range(0, n, 1 << 20):
        turns[s : s + (1 << 20)] = uniform(rng, min(1 << 20, n - s))
    rows = []
    t0 = time.perf_counter()
    codes, peak = traced_peak(lambda turns=turns: quantize(turns, 8))
    rows.append(("quantize(float32 turns, 8)", codes.nbytes, peak, time.perf_counter() - t0))
    del turns
    four = codes >> 4
    t0 = time.perf_counter()
    john, peak = traced_peak(lambda four=four: johnson_encode(four, 4))
    rows.append(("johnson_encode(4-bit codes)", john.nbytes, peak, time.perf_counter() - t0))
    del john, four
    t0 = time.perf_counter()
    index, peak = traced_peak(lambda: filled(TorusIndexFlat(ANGLES, 8), codes))
    rows.append(("TorusIndexFlat.add(8-bit codes)", codes.nbytes, peak, time.perf_counter() - t0))
    four = codes >> 4
    t0 = time.perf_counter()
    index4, peak = traced_peak(lambda four=four: filled(TorusIndexFlat(ANGLES, 4), four))
    rows.append(
        (
            "TorusIndexFlat.add(4-bit codes, held 2 per byte)",
            index4.nbytes,
            peak,
            time.perf_counter() - t0,
        )
    )
    del index4, four
    index.search(codes[:10], K)  # first call loads the compiled kernels (module objects, not data)
    _, peak = traced_peak(lambda: index.search(codes[:10], K))
    rows.append(("TorusIndexFlat.search(10 queries)", codes.nbytes, peak, 0.0))
    table(
        f"Peak memory of the streaming steps, {n} x {ANGLES} angles (tracemalloc; output = what "
        "the step produces; search: relative to the codes held)",
        ["step", "output MiB", "peak MiB", "peak / output", "s"],
        [
            (name, f"{out / 2**20:.0f}", f"{peak / 2**20:.0f}", f"{peak / out:.2f}", f"{sec:.1f}")
            for name, out, peak, sec in rows
        ],
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument(
        "--n-large", type=int, default=1_000_000, help="second size for exact and ANN; 0 skips it"
    )
    ap.add_argument(
        "--repeat", type=int, default=3, help="interleaved timed rounds (best of them is kept)"
    )
    ap.add_argument(
        "--sets", default="realistic,readme,uniform", help="ANN data sets (uniform: --n only)"
    )
    ap.add_argument(
        "--nlist", default="1024", help="comma list of TorusIndexIVF list counts in the ANN table"
    )
    ap.add_argument(
        "--hnsw-max",
        type=int,
        default=100_000,
        help="largest n for the HNSW contender on the readme and uniform sets (realistic: every n)",
    )
    ap.add_argument("--milvus-n", type=int, default=100_000)
    ap.add_argument("--skip-milvus", action="store_true")
    ap.add_argument("--skip-ann", action="store_true")
    ap.add_argument(
        "--memory-n", type=int, default=10_000_000, help="rows for the streaming-memory table"
    )
    ap.add_argument(
        "--only", default="", help="comma list of sections to run: exact,latency,ann,milvus,memory"
    )
    ap.add_argument("--lock", default="", help="flock this file while each section is timed")
    ap.add_argument(
        "--plot", default="", help="write the ANN recall/QPS curves to this PNG (needs matplotlib)"
    )
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    run = lambda s: not only or s in only  # noqa: E731
    set_threads(1)
    rng = np.random.default_rng(0)
    sizes = [args.n] + ([args.n_large] if args.n_large else [])
    t0 = time.time()
    print(f"machine: {machine()}", flush=True)
    with held(args.lock):
        bw = bandwidth_probe()
        if run("exact"):
            exact_table(sizes, args.repeat, bw)
    if run("latency"):
        with held(args.lock):
            latency_and_threads(rng, args.repeat)
    if run("ann") and not args.skip_ann:
        ann_table(
            sizes,
            args.repeat,
            args.hnsw_max,
            args.lock,
            args.sets.split(","),
            [int(v) for v in args.nlist.split(",")],
        )
        if args.plot:
            plot_curves(args.plot)
    if run("milvus") and not args.skip_milvus:
        with held(args.lock):
            milvus_table(rng, args.milvus_n, args.repeat)
    if run("memory"):
        with held(args.lock):
            memory_table(rng, args.memory_n)
    print(
        f"\n(wall time {time.time() - t0:.0f} s; load average at the end: "
        f"{', '.join(f'{v:.1f}' for v in os.getloadavg())})"
    )


if __name__ == "__main__":
    main()
