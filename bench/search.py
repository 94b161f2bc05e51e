"""Benchmark: exact/approximate toroidal code search against faiss float and PQ baselines.

100k reference and 1k query vectors of 64 angles (uniform random turns, or real embeddings with
``--embeddings file.npy``: an [n, 2k] interleaved Clifford array or an [n, k] array of turns; the last 1k rows
are the queries). One timed run per contender, after a warm-up query. All contenders use the same thread
count (``--threads``, default 1) via faiss.omp_set_num_threads and numba.set_num_threads.

Usage: python bench/search.py [--n 100000] [--nq 1000] [--angles 64] [--threads 1] [--embeddings x.npy]
"""

import argparse
import time

import faiss
import numpy as np
import torch

from torus_plugins.codes import ProductQuantizer, quantize
from torus_plugins.codes.kernel import HAVE_NUMBA, topk_l1_numpy
from torus_plugins.geometry import to_clifford, to_turns
from torus_plugins.search import TorusIndex

K = 10


def load_data(args):
    rng = np.random.default_rng(0)
    if args.embeddings:
        arr = np.load(args.embeddings).astype(np.float32)
        if arr.min() >= 0 and arr.max() < 1:
            turns = arr
        else:
            turns = to_turns(torch.from_numpy(arr)).numpy()
        turns = turns[: args.n + args.nq]
        return turns[: -args.nq], turns[-args.nq:], f"embeddings {args.embeddings}"
    ref = rng.random((args.n, args.angles), dtype=np.float32)
    qry = rng.random((args.nq, args.angles), dtype=np.float32)
    return ref, qry, "uniform random turns"


def recall(I, gt):
    return float(np.mean([len(set(a[:K]) & set(b[:K])) / K for a, b in zip(I, gt)]))


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--nq", type=int, default=1000)
    ap.add_argument("--angles", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--embeddings", default=None)
    args = ap.parse_args()

    faiss.omp_set_num_threads(args.threads)
    if HAVE_NUMBA:
        import numba

        numba.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)

    ref_t, qry_t, source = load_data(args)
    n, k_ang, nq = ref_t.shape[0], ref_t.shape[1], qry_t.shape[0]
    print(f"data: {source}; {n} references, {nq} queries, {k_ang} angles; threads={args.threads} "
          f"(faiss.omp_set_num_threads and numba.set_num_threads); numba={HAVE_NUMBA}; k={K}")
    ref_f = to_clifford(torch.from_numpy(ref_t)).numpy()
    qry_f = to_clifford(torch.from_numpy(qry_t)).numpy()
    c8, q8 = quantize(ref_t, 8), quantize(qry_t, 8)
    c4, q4 = quantize(ref_t, 4), quantize(qry_t, 4)

    rows = []  # name, qps, bytes/vector, I

    flat = faiss.IndexFlatIP(ref_f.shape[1])
    flat.add(ref_f)
    flat.search(qry_f[:1], K)
    (_, I_ip), dt = timed(lambda: flat.search(qry_f, K))
    rows.append(("faiss IndexFlatIP float32 Clifford", nq / dt, ref_f.shape[1] * 4, I_ip))

    ex8 = TorusIndex(k_ang, 8).add(c8)
    ex8.search(q8[:1], K)  # warm-up (numba compile / cache load, layout)
    (D8, I8), dt = timed(lambda: ex8.search(q8, K))
    chk = topk_l1_numpy(q8[:20], c8, 8, K)
    assert np.array_equal(chk[0], D8[:20]) and np.array_equal(chk[1], I8[:20]), "exact 8-bit != brute force"
    rows.append(("TorusIndex exact 8-bit (numba kernel)", nq / dt, k_ang, I8))

    ex4 = TorusIndex(k_ang, 4).add(c4)
    ex4.search(q4[:1], K)
    (_, I4), dt = timed(lambda: ex4.search(q4, K))
    rows.append(("TorusIndex exact 4-bit (Johnson, IndexBinaryFlat)", nq / dt, k_ang * 4 // 8, I4))

    for bits, codes, qc in ((8, c8, q8), (4, c4, q4)):
        ap_ix = TorusIndex(k_ang, bits, mode="approx").add(codes)
        _, tb = timed(lambda: ap_ix.search(qc[:1], K))
        (_, Ia), dt = timed(lambda: ap_ix.search(qc, K))
        nlist = ap_ix._ivf.nlist
        rows.append((f"TorusIndex approx {bits}-bit (BinaryIVF nlist={nlist} nprobe={ap_ix.nprobe}, "
                     f"build {tb:.1f}s)", nq / dt, k_ang * bits // 8, Ia))

    pq = ProductQuantizer(k_ang, 16, 8)
    _, tb = timed(lambda: pq.train(c8[:50_000]).add(c8))
    (_, Ipq), dt = timed(lambda: pq.search(q8, K))
    rows.append((f"faiss IndexPQ M=16 nbits=8 on 8-bit values (train {tb:.1f}s)", nq / dt, pq.bits_per_vector // 8,
                 Ipq))

    base_qps, base_mem = rows[0][1], rows[0][2]
    w = max(len(r[0]) for r in rows)
    head = (f"{'method':<{w}}  {'QPS':>8}  {'x FlatIP':>8}  {'B/vec':>5}  {'x mem':>6}  "
            f"{'R@10 vs exact L1-8bit':>21}  {'R@10 vs FlatIP':>14}")
    print(head)
    print("-" * len(head))
    for name, qps, mem, I in rows:
        print(f"{name:<{w}}  {qps:8.0f}  {qps / base_qps:8.2f}  {mem:5d}  {mem / base_mem:6.3f}  "
              f"{recall(I, I8):21.3f}  {recall(I, I_ip):14.3f}")
    print("(one run on a shared 2-core machine; other jobs were using the CPU, so QPS is noisy)")


if __name__ == "__main__":
    main()
