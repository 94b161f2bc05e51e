"""Benchmark of torus code search: exact scan, latency, threads, approximate (IVF) vs faiss ANN, Milvus, memory.

Every ratio is measured in one process, same thread count (faiss.omp_set_num_threads, numba.set_num_threads),
best of ``--repeat`` timed runs after a warm-up; nq is stated for every row (faiss's IndexFlatIP slows down badly
at some nq, e.g. 500 at 100k on this machine, so 1000 queries are used for throughput). Data: 64 angles; uniform
random turns, or clustered (1000 centres uniform on T^64, each point the centre plus Gaussian angular noise of
``--noise`` turns per angle; queries are fresh points of the same clusters).

Tables:
 1. exact k=10, nq=1000, 1 thread: faiss IndexFlatIP (float32 Clifford, 512 B/vector), TorusIndexFlat 8-bit and
    4-bit (held two per byte, 32 B/vector; also unpacked) on every kernel path (AVX-512 / AVX2 / portable), faiss
    IndexBinaryFlat on 4-bit Johnson codes; at --n and --n-large; with bytes compared per second (nq x n x B /
    time), bytes read from memory per second (n x B / time) and a one-thread memory-bandwidth probe.
 2. latency: one query against 1k / 100k vectors (8-bit, 4-bit), fixed cost per call (one query, 4 vectors).
 3. threads: QPS at 1 and 2 threads for nq = 1, 16, 1000.
 4. ANN at equal recall on clustered and uniform data: TorusIndexIVF (8-bit and 4-bit codes) vs faiss
    IndexBinaryIVF / IndexBinaryHNSW on 4-bit Johnson codes and IndexHNSWFlat on float Clifford vectors; recall@10
    against each contender's own exact search; QPS, build time, bytes per vector; the fastest setting with recall
    >= 0.95. Builds use every core (HNSW graphs up to --hnsw-max, default 1M), searches one thread.
 5. Milvus Lite (embedded): insert rate and QPS vs TorusIndexFlat (--milvus-n codes).
 6. peak memory of quantize, johnson_encode, TorusIndexFlat.add and search (tracemalloc) at --memory-n x 64
    angles (default 10M), relative to what each step produces.

Usage: nice python bench/search.py [--n 100000] [--n-large 1000000] [--repeat 3] [--skip-milvus] [--skip-ann]
       [--plot docs/ann_recall_qps.png]
"""

import argparse
import gc
import os
import platform
import tempfile
import time
import tracemalloc

import faiss
import numba
import numpy as np

from torus_plugins.codes import johnson_encode, quantize
from torus_plugins.codes import kernel
from torus_plugins.search import TorusIndexFlat, TorusIndexIVF
from torus_plugins.search.ivf import clifford

K = 10
ANGLES = 64


def set_threads(t: int) -> None:
    faiss.omp_set_num_threads(t)
    numba.set_num_threads(t)


def best_time(fn, repeat: int) -> tuple:
    fn_out = fn()  # warm-up (compilation, caches)
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn_out = fn()
        best = min(best, time.perf_counter() - t)
    return fn_out, best


def machine() -> str:
    model = platform.processor() or "?"
    flags = set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    keep = [f for f in ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx512_vpopcntdq") if f in flags]
    return (f"{model}, {os.cpu_count()} cores visible, flags: {' '.join(keep) or 'n/a'}; numba {numba.__version__}, "
            f"faiss {faiss.__version__}; kernel paths: "
            f"{', '.join(kernel.PATH_NAMES[p] for p in kernel.AVAILABLE_PATHS)} (best: "
            f"{kernel.PATH_NAMES[kernel.BEST_PATH]})")


def uniform(rng, n):
    return rng.random((n, ANGLES), dtype=np.float32)


def clustered(rng, centres, n, noise):
    c = centres[rng.integers(0, len(centres), n)]
    return np.mod(c + rng.normal(0, noise, c.shape).astype(np.float32), 1.0)


def recall(I, gt) -> float:
    return float(np.mean([len(set(a[:K].tolist()) & set(b[:K].tolist())) / K for a, b in zip(I, gt)]))


def table(title: str, head: list, rows: list) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")


def bandwidth_probe(gb: float = 1.0, repeat: int = 5) -> float:
    """Read bandwidth of one thread, GB/s: numpy's float64 sum over a buffer far larger than the caches (1 GiB,
    best of ``repeat``: other jobs on the machine only ever lower it)."""
    a = np.ones(int(gb * 2**30) // 8, np.float64)
    _, dt = best_time(lambda: a.sum(), repeat)
    return a.nbytes / dt / 1e9


# ------------------------------------------------------------------------------------------------ 1. exact
def exact_table(rng, sizes, repeat, bw):
    rows = []
    nq = 1000
    q_t = uniform(rng, nq)
    for n in sizes:
        x_t = uniform(rng, n)
        xf, qf = clifford(quantize(x_t, 8), 8), clifford(quantize(q_t, 8), 8)
        ip = faiss.IndexFlatIP(xf.shape[1])
        ip.add(xf)
        r = max(1, repeat if n <= 200_000 else 1)
        _, t_ip = best_time(lambda: ip.search(qf, K), r)
        del ip, xf
        rows.append((n, "faiss IndexFlatIP (float32 Clifford)", 512, f"{nq / t_ip:.0f}", "1.00", "",
                     f"{nq * n * 512 / t_ip / 1e9:.1f}", f"{n * 512 / t_ip / 1e9:.2f}"))
        c4, q4 = quantize(x_t, 4), quantize(q_t, 4)
        jc, jq = johnson_encode(c4, 4), johnson_encode(q4, 4)
        bf = faiss.IndexBinaryFlat(8 * jc.shape[1])
        bf.add(jc)
        _, t_bf = best_time(lambda: bf.search(jq, K), r)
        del bf, jc
        rows.append((n, "faiss IndexBinaryFlat (4-bit Johnson, 512 bits)", 64, f"{nq / t_bf:.0f}",
                     f"{t_ip / t_bf:.2f}", "1.00", f"{nq * n * 64 / t_bf / 1e9:.1f}", f"{n * 64 / t_bf / 1e9:.2f}"))
        for bits, codes, qc in ((8, quantize(x_t, 8), quantize(q_t, 8)), (4, c4, q4)):
            index = TorusIndexFlat(ANGLES, bits).add(codes)
            refs, packed = index._state.buf[:n], index.packed     # 4-bit: two codes per byte
            runs = [(p, refs, packed) for p in sorted(kernel.AVAILABLE_PATHS, reverse=True)
                    if p != kernel.PORTABLE or n <= 200_000]
            if packed:   # the same codes one per byte, to show what packing costs or saves
                runs.append((kernel.BEST_PATH, codes, False))
            for path, rr, pk in runs:
                _, t = best_time(lambda: kernel.topk_l1(qc, rr, bits, K, path=path, threads=1, packed=pk), r)
                b = rr.shape[1]
                layout = ", packed" if pk else (", unpacked" if bits <= 4 else "")
                rows.append((n, f"TorusIndexFlat {bits}-bit{layout}, {kernel.PATH_NAMES[path]}", b, f"{nq / t:.0f}",
                             f"{t_ip / t:.2f}", f"{t_bf / t:.2f}", f"{nq * n * b / t / 1e9:.1f}",
                             f"{n * b / t / 1e9:.2f}"))
            del index
        gc.collect()
    table(f"Exact search, k={K}, nq={nq}, {ANGLES} uniform angles, 1 thread (one-thread memory read bandwidth "
          f"probe: {bw:.1f} GB/s). 'compared GB/s' = nq x n x B / time (bytes compared); 'RAM GB/s' = n x B / time "
          f"(each stored byte is read from memory once per call: the scans are compute-bound)",
          ["n", "method", "B/vector", "QPS", "x FlatIP", "x BinaryFlat", "compared GB/s", "RAM GB/s"], rows)


# ------------------------------------------------------------------------------------------------ 2./3.
def latency_and_threads(rng, repeat):
    rows = []
    for n in (1000, 100_000):
        x_t = uniform(rng, n)
        codes = quantize(x_t, 8)
        index = TorusIndexFlat(ANGLES, 8).add(codes)
        ip = faiss.IndexFlatIP(2 * ANGLES)
        ip.add(clifford(codes, 8))
        q = codes[:1].copy()
        qf = clifford(q, 8)
        calls = 2000 if n == 1000 else 50
        _, t = best_time(lambda: [index.search(q, K) for _ in range(calls)], repeat)
        _, t_ip = best_time(lambda: [ip.search(qf, K) for _ in range(calls)], repeat)
        rows.append((f"1 query vs {n} vectors", f"{t / calls * 1e6:.1f}", f"{t_ip / calls * 1e6:.1f}",
                     f"{t_ip / t:.2f}"))
        index4 = TorusIndexFlat(ANGLES, 4).add(codes >> 4)
        q4 = q >> 4
        _, t4 = best_time(lambda: [index4.search(q4, K) for _ in range(calls)], repeat)
        rows.append((f"1 query vs {n} vectors, 4-bit packed", f"{t4 / calls * 1e6:.1f}", f"{t_ip / calls * 1e6:.1f}",
                     f"{t_ip / t4:.2f}"))
    tiny = quantize(uniform(rng, 4), 8)
    _, t = best_time(lambda: [kernel.topk_l1(tiny[:1], tiny, 8, 1) for _ in range(5000)], repeat)
    idx = TorusIndexFlat(ANGLES, 8).add(tiny)
    _, t2 = best_time(lambda: [idx.search(tiny[:1], 1) for _ in range(5000)], repeat)
    rows.append(("fixed cost per call (1 query vs 4 vectors): kernel / TorusIndexFlat.search",
                 f"{t / 5000 * 1e6:.1f} / {t2 / 5000 * 1e6:.1f}", "", ""))
    table("Latency, 1 thread, k=10, 8-bit codes unless stated (microseconds per call)",
          ["case", "TorusIndexFlat us", "FlatIP us", "x FlatIP"], rows)

    x_t = uniform(rng, 100_000)
    codes = quantize(x_t, 8)
    index = TorusIndexFlat(ANGLES, 8).add(codes)
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
            _, a = best_time(lambda: [index.search(q, K) for _ in range(calls)], repeat)
            _, b = best_time(lambda: [ip.search(qf, K) for _ in range(calls)], repeat)
            res.append((nq * calls / a, nq * calls / b))
        set_threads(1)
        rows.append((nq, f"{res[0][0]:.0f}", f"{res[1][0]:.0f}", f"{res[1][0] / res[0][0]:.2f}",
                     f"{res[0][1]:.0f}", f"{res[1][1]:.0f}", f"{res[1][1] / res[0][1]:.2f}"))
    table("Threads: QPS at 1 and 2 threads, 100k x 64 8-bit codes, k=10 (the 2 cores are shared with other jobs)",
          ["nq", "Torus 1t", "Torus 2t", "2t/1t", "FlatIP 1t", "FlatIP 2t", "2t/1t"], rows)


# ------------------------------------------------------------------------------------------------ 4. ANN
BUILD_THREADS = os.cpu_count() or 1   # index builds (k-means, HNSW graphs) use every core; searches use 1
CURVES = []                            # (data, n, method, [(setting, recall, QPS), ...]) for --plot


def sweep(name, build, search_at, settings, gt, nq, bytes_per_vector, rows, exact_qps, n, data):
    set_threads(BUILD_THREADS)
    t0 = time.perf_counter()
    index = build()
    t_build = time.perf_counter() - t0
    set_threads(1)
    curve, chosen, points = [], None, []
    for s in settings:
        I, t = best_time(lambda: search_at(index, s), 2)
        rec = recall(I, gt)
        qps = nq / t
        curve.append(f"{s}:{rec:.3f}/{qps:.0f}")
        points.append((s, rec, qps))
        if rec >= 0.95 and (chosen is None or qps > chosen[1]):
            chosen = (s, qps, rec)
        if rec >= 0.999:
            break
    rows.append((data, n, name, f"{t_build:.1f}", bytes_per_vector,
                 "-" if chosen is None else f"{chosen[0]}", "-" if chosen is None else f"{chosen[2]:.3f}",
                 "-" if chosen is None else f"{chosen[1]:.0f}",
                 "-" if chosen is None else f"{chosen[1] / exact_qps:.1f}", " ".join(curve)))
    CURVES.append((data, n, name, points, exact_qps))
    print("  ..", " | ".join(map(str, rows[-1])), flush=True)  # progress (the table follows at the end)
    del index
    gc.collect()


def hnsw_sweep(name, make, x, q, gt, bytes_per_vector, rows, exact_qps, n, data):
    """A faiss HNSW index (``make()``) built on ``x``, searched with q at efSearch 16 .. 512."""
    def build():
        ix = make()
        ix.add(x)
        return ix

    def at_ef(ix, s):
        ix.hnsw.efSearch = s
        return ix.search(q, K)[1]

    sweep(name, build, at_ef, (16, 32, 64, 128, 256, 512), gt, q.shape[0], bytes_per_vector, rows, exact_qps, n,
          data)


def ann_table(rng, sizes, noise, hnsw_max):
    rows = []
    nq = 1000
    centres = rng.random((1000, ANGLES), dtype=np.float32)
    for data in ("clustered", "uniform"):
        for n in sizes:
            if data == "clustered":
                x_t, q_t = clustered(rng, centres, n, noise), clustered(rng, centres, nq, noise)
            else:
                x_t, q_t = uniform(rng, n), uniform(rng, nq)
            c8, q8, c4, q4 = quantize(x_t, 8), quantize(q_t, 8), quantize(x_t, 4), quantize(q_t, 4)
            flat8, flat4 = TorusIndexFlat(ANGLES, 8).add(c8), TorusIndexFlat(ANGLES, 4).add(c4)
            (_, gt8), t8 = best_time(lambda: flat8.search(q8, K), 1)
            (_, gt4), t4 = best_time(lambda: flat4.search(q4, K), 1)
            del flat8, flat4
            nlist = 1024
            train_n = min(n, 64 * nlist)
            probes = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
            for bits, c, q, gt, t_ex in ((8, c8, q8, gt8, t8), (4, c4, q4, gt4, t4)):
                sweep(f"TorusIndexIVF {bits}-bit nlist={nlist} (nprobe)",
                      lambda: TorusIndexIVF(ANGLES, bits, nlist=nlist).train(c[rng.permutation(n)[:train_n]]).add(c),
                      lambda ix, s: ix.search(q, K, nprobe=s)[1], probes, gt, nq, (32 if bits <= 4 else 64) + 8,
                      rows, nq / t_ex, n, data)
            jc, jq = johnson_encode(c4, 4), johnson_encode(q4, 4)
            _, gt_h = faiss_knn_binary(jc, jq)

            def build_bivf():
                quant = faiss.IndexBinaryFlat(512)
                ix = faiss.IndexBinaryIVF(quant, 512, nlist)
                ix.own_fields = True
                quant.this.disown()
                ix.train(jc[rng.permutation(n)[:train_n]])
                ix.add(jc)
                return ix

            def at_nprobe(ix, s):
                ix.nprobe = s
                return ix.search(jq, K)[1]

            sweep(f"faiss IndexBinaryIVF 4-bit Johnson nlist={nlist} (nprobe)", build_bivf, at_nprobe, probes,
                  gt_h, nq, 64 + 8, rows, nq / t4, n, data)
            if n <= hnsw_max:
                hnsw_sweep("faiss IndexBinaryHNSW M=32 4-bit Johnson (efSearch)",
                           lambda: faiss.IndexBinaryHNSW(512, 32), jc, jq, gt_h, "64 + graph", rows, nq / t4, n, data)
                xf, qf = clifford(c8, 8), clifford(q8, 8)
                ipx = faiss.IndexFlatIP(2 * ANGLES)
                ipx.add(xf)
                _, gt_f = ipx.search(qf, K)
                del ipx
                hnsw_sweep("faiss IndexHNSWFlat M=32 float Clifford (efSearch)",
                           lambda: faiss.IndexHNSWFlat(2 * ANGLES, 32, faiss.METRIC_INNER_PRODUCT),
                           xf, qf, gt_f, "512 + graph", rows, nq / t8, n, data)
    table(f"Approximate search, k={K}, nq={nq}, {ANGLES} angles, searches 1 thread, builds {BUILD_THREADS} threads; "
          f"recall@10 against each contender's own exact search; clustered = 1000 centres, noise {noise} turns per "
          f"angle; 'x exact' = QPS over the exact TorusIndexFlat scan at the same bits",
          ["data", "n", "method", "build s", "B/vector", "setting at recall>=0.95", "recall", "QPS", "x exact",
           "curve setting:recall/QPS"], rows)


def faiss_knn_binary(jc, jq):
    bf = faiss.IndexBinaryFlat(8 * jc.shape[1])
    bf.add(jc)
    return bf.search(jq, K)


def plot_curves(path) -> None:
    """Recall@10 against QPS (log), one panel per data set and size; a line joins the settings of ONE method
    (its nprobe / efSearch sweep), the exact scan is a dashed vertical line, recall 0.95 a dotted one."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    panels = sorted({(d, n) for d, n, *_ in CURVES}, key=lambda p: (p[0] != "clustered", p[1]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.2), squeeze=False)
    methods = sorted({m for _, _, m, _, _ in CURVES})
    colours = {m: plt.get_cmap("tab10")(i) for i, m in enumerate(methods)}
    for ax, (data, n) in zip(axes[0], panels):
        lowest = 1.0
        for d, nn, method, points, exact_qps in CURVES:
            if (d, nn) != (data, n):
                continue
            _, rec, qps = zip(*points)
            lowest = min(lowest, *rec)
            ax.plot(qps, rec, "o-", ms=3, color=colours[method], label=method)
        exact = [e for d, nn, m, _, e in CURVES if (d, nn) == (data, n) and "8-bit" in m]
        if exact:
            ax.axvline(exact[0], ls="--", color="grey", lw=1, label="exact TorusIndexFlat 8-bit")
        ax.axhline(0.95, ls=":", color="grey", lw=1)
        ax.set_xscale("log")
        ax.set(title=f"{data}, n = {n:,}", xlabel="QPS (1 thread, log)", ylabel="recall@10",
               ylim=(max(0.0, lowest - 0.05), 1.005))
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.2, 1, 1))
    fig.savefig(path, dpi=90)
    plt.close(fig)
    print(f"\n(plot: {path})")


# ------------------------------------------------------------------------------------------------ 5. Milvus
def milvus_table(rng, n, repeat):
    from torus_plugins.search.milvus import MilvusTorusIndex

    rows = []
    nq = 100
    x_t, q_t = uniform(rng, n), uniform(rng, nq)
    with tempfile.TemporaryDirectory() as tmp:
        for bits in (4, 8):
            c, q = quantize(x_t, bits), quantize(q_t, bits)
            m = MilvusTorusIndex(ANGLES, bits, uri=os.path.join(tmp, f"m{bits}.db"), collection=f"b{bits}",
                                 drop=True)
            t0 = time.perf_counter()
            m.add(c, ids=np.arange(n), progress=False)  # ids 0..n-1, as TorusIndexFlat numbers them
            t_ins = time.perf_counter() - t0
            (D, I), t = best_time(lambda: m.search(q, K), repeat)
            flat = TorusIndexFlat(ANGLES, bits)
            t1 = time.perf_counter()
            flat.add(c)
            t_add = time.perf_counter() - t1
            (Dr, Ir), tf = best_time(lambda: flat.search(q, K), repeat)
            how = "exact (Johnson + HAMMING, BIN_FLAT)" if bits <= 4 else f"top-4-bit shortlist x{m.rerank}, re-ranked"
            rows.append((bits, how, f"{n / t_ins:.0f}", f"{n / t_add:.0f}", f"{nq / t:.0f}", f"{nq / tf:.0f}",
                         f"{recall(I, Ir):.3f}"))
            m.close()
    table(f"Milvus Lite 2.5.1 (embedded, same machine) vs TorusIndexFlat: {n} x {ANGLES} uniform angles, nq={nq}, "
          f"k={K}", ["bits", "Milvus search", "Milvus insert codes/s", "TorusIndexFlat add codes/s", "Milvus QPS",
                     "TorusIndexFlat QPS", "recall@10 vs TorusIndexFlat"], rows)


# ------------------------------------------------------------------------------------------------ 6. memory
def traced_peak(fn):
    """(result, peak bytes allocated while ``fn`` ran: tracemalloc, which numpy reports its buffers to)."""
    gc.collect()
    tracemalloc.start()
    out = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, peak


def memory_table(rng, n):
    """Peak memory of each streaming step at n x 64 angles, relative to the size of what the step produces."""
    turns = np.empty((n, ANGLES), np.float32)  # made before tracing, in slices (the input is not the step's cost)
    for s in range(0, n, 1 << 20):
        turns[s:s + (1 << 20)] = uniform(rng, min(1 << 20, n - s))
    rows = []
    t0 = time.perf_counter()
    codes, peak = traced_peak(lambda: quantize(turns, 8))
    rows.append(("quantize(float32 turns, 8)", codes.nbytes, peak, time.perf_counter() - t0))
    del turns
    four = codes >> 4
    t0 = time.perf_counter()
    john, peak = traced_peak(lambda: johnson_encode(four, 4))
    rows.append(("johnson_encode(4-bit codes)", john.nbytes, peak, time.perf_counter() - t0))
    del john, four
    t0 = time.perf_counter()
    index, peak = traced_peak(lambda: TorusIndexFlat(ANGLES, 8).add(codes))
    rows.append(("TorusIndexFlat.add(8-bit codes)", codes.nbytes, peak, time.perf_counter() - t0))
    four = codes >> 4
    t0 = time.perf_counter()
    index4, peak = traced_peak(lambda: TorusIndexFlat(ANGLES, 4).add(four))
    rows.append(("TorusIndexFlat.add(4-bit codes, held 2 per byte)", index4.nbytes, peak, time.perf_counter() - t0))
    del index4, four
    index.search(codes[:10], K)  # first call loads the compiled kernels (module objects, not data)
    _, peak = traced_peak(lambda: index.search(codes[:10], K))
    rows.append(("TorusIndexFlat.search(10 queries)", codes.nbytes, peak, 0.0))
    table(f"Peak memory of the streaming steps, {n} x {ANGLES} angles (tracemalloc; output = what the step "
          f"produces; search: relative to the codes held)",
          ["step", "output MiB", "peak MiB", "peak / output", "s"],
          [(name, f"{out / 2**20:.0f}", f"{peak / 2**20:.0f}", f"{peak / out:.2f}", f"{sec:.1f}")
           for name, out, peak, sec in rows])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--n-large", type=int, default=1_000_000, help="second size for exact and ANN; 0 skips it")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--noise", type=float, default=0.02, help="angular noise of clustered data, turns")
    ap.add_argument("--hnsw-max", type=int, default=1_000_000, help="largest n for the HNSW contenders")
    ap.add_argument("--milvus-n", type=int, default=100_000)
    ap.add_argument("--skip-milvus", action="store_true")
    ap.add_argument("--skip-ann", action="store_true")
    ap.add_argument("--memory-n", type=int, default=10_000_000, help="rows for the streaming-memory table")
    ap.add_argument("--only", default="", help="comma list of sections to run: exact,latency,ann,milvus,memory")
    ap.add_argument("--plot", default="", help="write the ANN recall/QPS curves to this PNG (needs matplotlib)")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    run = lambda s: not only or s in only  # noqa: E731
    set_threads(1)
    rng = np.random.default_rng(0)
    sizes = [args.n] + ([args.n_large] if args.n_large else [])
    t0 = time.time()
    print(f"machine: {machine()}")
    bw = bandwidth_probe()
    if run("exact"):
        exact_table(rng, sizes, args.repeat, bw)
    if run("latency"):
        latency_and_threads(rng, args.repeat)
    if run("ann") and not args.skip_ann:
        ann_table(rng, sizes, args.noise, args.hnsw_max)
        if args.plot:
            plot_curves(args.plot)
    if run("milvus") and not args.skip_milvus:
        milvus_table(rng, args.milvus_n, args.repeat)
    if run("memory"):
        memory_table(rng, args.memory_n)
    print(f"\n(wall time {time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
