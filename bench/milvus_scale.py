"""Benchmark of MilvusTorusIndex on a real Milvus server beside Milvus Lite and TorusIndexFlat.

One process measures, on the same data (--n codes x 64 uniform angles, at 4 and 8 bits):
 * insert rate (codes/s, batches of 500) with given ids and with default ids (drawn from Milvus's
   allocator), and the time of a flush after it;
 * search QPS for nq=100, k=10 and the latency of one query (mean of 20), best of --repeat, at
   consistency "Strong" (the default: waits for Milvus's next time tick) and "Session";
 * recall@10 against TorusIndexFlat (1.000 = the same ids);
 * the server's resident memory per code held (RSS after loading minus RSS before creating).
The server is Milvus 2.3.5 standalone (the ``milvus`` package) started here on 127.0.0.1 with
tests/milvus_server.py; client, server and TorusIndexFlat share this machine's cores. Ratios are
against TorusIndexFlat in the same process. Time it under the bench lock:

    flock /tmp/torus-bench.lock python bench/milvus_scale.py [--n 100000] [--repeat 3]

(Not bench/milvus.py: a script's folder comes first on sys.path, and that name would hide the
``milvus`` package that runs the server.)
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

from milvus_server import LocalMilvus  # noqa: E402

from torus_plugins.codes import quantize  # noqa: E402
from torus_plugins.search import TorusIndexFlat  # noqa: E402
from torus_plugins.search.milvus import MilvusTorusIndex  # noqa: E402

ANGLES, K, NQ, LATENCY_QUERIES = 64, 10, 100, 20


def best_time(fn, repeat: int):
    out = fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return out, best


def latency(search, q, repeat: int) -> float:
    """Mean seconds per single-query call over LATENCY_QUERIES queries, best of repeat."""
    _, t = best_time(lambda: [search(q[i : i + 1]) for i in range(LATENCY_QUERIES)], repeat)
    return t / LATENCY_QUERIES


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def recall(I, gt) -> float:
    return float(np.mean([len(set(a.tolist()) & set(b.tolist())) / K for a, b in zip(I, gt)]))


def timed_add(m, c, ids) -> float:
    t = time.perf_counter()
    m.add(c, ids=ids, progress=False)
    return c.shape[0] / (time.perf_counter() - t)


def measure(name, make, c, q, gt, repeat, server=None):
    """One backend at one bit width: a dict of rates. The first collection is measured for search
    and memory; further fresh collections give the best insert rates."""
    n = c.shape[0]
    rss0 = rss_bytes(server.pid) if server else 0
    m = make()
    inserts = [timed_add(m, c, np.arange(n))]
    t = time.perf_counter()
    m.flush()
    flush_s = time.perf_counter() - t
    (D, I), ts = best_time(lambda: m.search(q, K), repeat)
    lat = latency(lambda x: m.search(x, K), q, repeat)
    m.consistency = "Session"
    (D2, I2), ts2 = best_time(lambda: m.search(q, K), repeat)
    lat2 = latency(lambda x: m.search(x, K), q, repeat)
    assert np.array_equal(I2, I)
    rss = (rss_bytes(server.pid) - rss0) / n if server else float("nan")
    m.close()
    inserts += [timed_add(make(), c, np.arange(n)) for _ in range(repeat - 1)]
    ins_default = max(timed_add(make(), c, None) for _ in range(max(1, repeat - 1)))
    return {
        "name": name,
        "insert": max(inserts),
        "insert_default": ins_default,
        "flush": flush_s,
        "qps": NQ / ts,
        "latency": lat,
        "qps_session": NQ / ts2,
        "latency_session": lat2,
        "recall": recall(I, gt),
        "rss": rss,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x_t = rng.random((args.n, ANGLES), dtype=np.float32)
    q_t = rng.random((NQ, ANGLES), dtype=np.float32)
    t_start = time.perf_counter()
    print(
        f"# bench/milvus_scale.py: n={args.n} x {ANGLES} uniform angles, nq={NQ}, k={K}, "
        f"repeat={args.repeat}; {os.cpu_count()} cores visible, load average "
        f"{os.getloadavg()[0]:.1f} at start"
    )
    with tempfile.TemporaryDirectory() as tmp:
        server = LocalMilvus(os.path.join(tmp, "server")).start()
        print(
            f"Milvus server started in {server.started_in:.1f} s at {server.uri}, "
            f"RSS {rss_bytes(server.pid) / 2**20:.0f} MiB"
        )
        try:
            rows = []
            for bits in (4, 8):
                c, q = quantize(x_t, bits), quantize(q_t, bits)
                flat = TorusIndexFlat(ANGLES, bits)
                t = time.perf_counter()
                flat.add(c)
                flat_add = args.n / (time.perf_counter() - t)
                (Dr, Ir), tf = best_time(lambda flat=flat, q=q: flat.search(q, K), args.repeat)
                flat_lat = latency(lambda x, flat=flat: flat.search(x, K), q, args.repeat)
                rows.append(
                    {
                        "name": "TorusIndexFlat",
                        "bits": bits,
                        "insert": flat_add,
                        "insert_default": flat_add,
                        "flush": 0.0,
                        "qps": NQ / tf,
                        "latency": flat_lat,
                        "qps_session": NQ / tf,
                        "latency_session": flat_lat,
                        "recall": 1.0,
                        "rss": float("nan"),
                    }
                )
                lite_path = os.path.join(tmp, f"lite{bits}.db")
                for name, kw, srv in (
                    ("Milvus 2.3.5 server", {"uri": server.uri}, server),
                    ("Milvus Lite 2.5.1", {"uri": lite_path}, None),
                ):

                    def make(kw=kw, bits=bits):
                        return MilvusTorusIndex(
                            ANGLES, bits, collection=f"bench{bits}", drop=True, **kw
                        )

                    r = measure(name, make, c, q, Ir, args.repeat, srv)
                    r["bits"] = bits
                    rows.append(r)
                    print(f"  {name}, {bits} bits: done", flush=True)
        finally:
            server.stop()
    flat_of = {r["bits"]: r for r in rows if r["name"] == "TorusIndexFlat"}
    print(
        "\nSearch QPS (nq=100 per call) and latency (nq=1) at consistency Strong / Session "
        "(TorusIndexFlat: one number); ratios against TorusIndexFlat.\n"
    )
    print(
        "| bits | index | insert codes/s (given ids) | insert codes/s (default ids) | "
        "flush s | QPS Strong / Session | QPS / flat (Session) | latency ms Strong / Session | "
        "recall@10 | server RSS B/code |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        f = flat_of[r["bits"]]
        print(
            f"| {r['bits']} | {r['name']} | {r['insert']:.0f} | {r['insert_default']:.0f} | "
            f"{r['flush']:.2f} | {r['qps']:.0f} / {r['qps_session']:.0f} | "
            f"{r['qps_session'] / f['qps']:.4f} | {1000 * r['latency']:.2f} / "
            f"{1000 * r['latency_session']:.2f} | {r['recall']:.3f} | {r['rss']:.0f} |"
        )
    for r in rows:
        if r["name"].startswith("Milvus 2.3.5"):
            print(
                f"server, {r['bits']} bits: BIN_FLAT scans {r['qps_session'] * args.n:.3g} "
                f"codes/s (Session QPS x n) on this machine"
            )
    print(
        f"\nwall {time.perf_counter() - t_start:.0f} s; load average {os.getloadavg()[0]:.1f} "
        f"at end"
    )


if __name__ == "__main__":
    main()
