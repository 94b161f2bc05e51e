"""Benchmark: exact/approximate toroidal code search against faiss float and PQ baselines.

100k reference and 1k query vectors of 64 angles (uniform random turns, or real embeddings with
``--embeddings file.npy``: an [n, 2k] interleaved Clifford array or an [n, k] array of turns; the last 1k rows
are the queries; or ``--codes`` a code file such as the demo's). Each contender: a warm-up query, then the best
of ``--repeat`` timed searches. All contenders use the same thread count (``--threads``, default 1) via
faiss.omp_set_num_threads and numba.set_num_threads.

Usage: python bench/search.py [--n 100000] [--nq 1000] [--angles 64] [--threads 1] [--repeat 3]
       [--embeddings x.npy | --codes runs/demo/codes_torusN_uint8.torc]
"""

import argparse
import time

import faiss
import numpy as np
import torch

from torus_plugins.codes import ProductQuantizer, dequantize, load_codes, quantize
from torus_plugins.codes.kernel import HAVE_NUMBA, USES_PSADBW, topk_l1_numpy
from torus_plugins.geometry import to_clifford, to_turns
from torus_plugins.search import TorusIndex

K = 10


def load_data(args):
    rng = np.random.default_rng(0)
    if args.codes:
        f = load_codes(args.codes)
        turns = dequantize(f.codes, f.bits)
        if len(turns) <= args.nq:
            raise SystemExit(f"{args.codes} holds {len(turns)} codes; need more than --nq {args.nq}")
        turns = turns[: args.n + args.nq]
        return turns[: -args.nq], turns[-args.nq:], f"codes {args.codes} ({f.geometry}, {f.bits}-bit)"
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


def timed(fn, repeat=1):
    """(result, best wall time of ``repeat`` runs)."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return out, best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--nq", type=int, default=1000)
    ap.add_argument("--angles", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--embeddings", default=None)
    ap.add_argument("--codes", default=None, help="a code file (e.g. runs/demo/codes_torusN_uint8.torc): real angles")
    ap.add_argument("--repeat", type=int, default=3, help="timed searches per contender; the best is reported")
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

    rows = []  # name, qps, bytes held per vector, bytes per vector on disk (packed code file), I

    flat = faiss.IndexFlatIP(ref_f.shape[1])
    flat.add(ref_f)
    flat.search(qry_f[:1], K)
    (_, I_ip), dt = timed(lambda: flat.search(qry_f, K), args.repeat)
    rows.append(("faiss IndexFlatIP float32 Clifford", nq / dt, ref_f.shape[1] * 4, ref_f.shape[1] * 4, I_ip))

    exact = {}
    for bits, backend, codes, qc in ((8, "kernel", c8, q8), (4, "kernel", c4, q4), (4, "johnson", c4, q4)):
        ix = TorusIndex(k_ang, bits, backend=backend).add(codes)
        ix.search(qc[:1], K)  # warm-up (numba compile / cache load, layout, faiss index)
        (D, I), dt = timed(lambda: ix.search(qc, K), args.repeat)
        chk = topk_l1_numpy(qc[:20], codes, bits, K)
        assert np.array_equal(chk[0], D[:20]) and np.array_equal(chk[1], I[:20]), f"exact {bits}-bit != brute force"
        exact[bits, backend] = I
        how = "SAD kernel, psadbw" if USES_PSADBW else "SAD kernel, portable"
        how = how if backend == "kernel" else "Johnson codes, faiss IndexBinaryFlat"
        rows.append((f"TorusIndex exact {bits}-bit ({how})", nq / dt, ix.nbytes / n, -(-k_ang * bits // 8), I))
    I8 = exact[8, "kernel"]

    for bits, codes, qc in ((8, c8, q8), (4, c4, q4)):
        ap_ix = TorusIndex(k_ang, bits, mode="approx").add(codes)
        _, tb = timed(lambda: ap_ix.search(qc[:1], K))
        (_, Ia), dt = timed(lambda: ap_ix.search(qc, K), args.repeat)
        nlist = ap_ix._ivf.nlist
        rows.append((f"TorusIndex approx {bits}-bit (BinaryIVF nlist={nlist} nprobe={ap_ix.nprobe}, "
                     f"build {tb:.1f}s)", nq / dt, ap_ix.nbytes / n, -(-k_ang * bits // 8), Ia))

    pq_bits = 8 if n >= 39 * 256 else 4  # faiss wants ~39 training points per centroid
    pq = ProductQuantizer(k_ang, 16, pq_bits)
    _, tb = timed(lambda: pq.train(c8[:50_000]).add(c8))
    (_, Ipq), dt = timed(lambda: pq.search(q8, K), args.repeat)
    rows.append((f"faiss IndexPQ M=16 nbits={pq_bits} on 8-bit values (train {tb:.1f}s)", nq / dt,
                 pq.bits_per_vector // 8, pq.bits_per_vector // 8, Ipq))

    # the same budget (16 bytes) on the float Clifford vectors, where PQ sees the wrap-around
    fpq = faiss.IndexPQ(ref_f.shape[1], 16, pq_bits)
    _, tb = timed(lambda: (fpq.train(ref_f[:50_000]), fpq.add(ref_f)))
    (_, Ifpq), dt = timed(lambda: fpq.search(qry_f, K), args.repeat)
    rows.append((f"faiss IndexPQ M=16 nbits={pq_bits} on float Clifford (train {tb:.1f}s)", nq / dt,
                 fpq.code_size, fpq.code_size, Ifpq))

    base_qps, base_mem = rows[0][1], rows[0][2]
    w = max(len(r[0]) for r in rows)
    head = (f"{'method':<{w}}  {'QPS':>8}  {'x FlatIP':>8}  {'B/vec held':>10}  {'x mem':>6}  {'B/vec file':>10}  "
            f"{'R@10 vs exact L1-8bit':>21}  {'R@10 vs FlatIP':>14}")
    print(head)
    print("-" * len(head))
    for name, qps, mem, disk, I in rows:
        print(f"{name:<{w}}  {qps:8.0f}  {qps / base_qps:8.2f}  {mem:10.1f}  {mem / base_mem:6.3f}  {disk:10d}  "
              f"{recall(I, I8):21.3f}  {recall(I, I_ip):14.3f}")
    print(f"(best of {args.repeat} timed searches per contender, same process and thread count)")


if __name__ == "__main__":
    main()
