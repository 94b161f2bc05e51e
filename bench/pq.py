"""PQ that respects the circle: raw-value PQ (the paper) vs torus-aware PQ vs sphere PQ, at equal
bits per vector.

For every paper setting PQ(nbits, M) (bits per vector = M * nbits, the same for all three):
* raw PQ:    faiss IndexPQ(k, M, nbits) on the 8-bit angle codes read as numbers 0..255 (the
             paper's baseline).
* torus PQ:  ``TorusProductQuantizer``: faiss IndexPQ(2k, M, nbits) on the (cos, sin)
             coordinates, whole circles per sub-space (the package default for torus geometries).
* sphere PQ: faiss IndexPQ(D, M, nbits) on unit vectors of a sphere embedding of the same width
             D = 2k.
Metrics on held-out queries: P@1 (label of the first PQ neighbour) and recall@10 (Jegou et al.'s
1-recall@10: the fraction of queries whose exact nearest neighbour, by inner product on the float
unit vectors of the same embedding, is among the PQ top 10). Both are averaged over the order of
tied PQ distances (see ``scores``).

Data: (a) synthetic: 100 classes, centres uniform on T^k (k = 16, 32), each angle + N(0, noise)
turns, wrapped; the sphere counterpart has 100 centres uniform on S^(2k-1) and Gaussian noise scaled
to the same float P@1 range.
(b) trained: scikit-learn digits (1797 x 64, real images), MLP 64-128-32 + L2p(32) (16 angles) or
Sphere(32), SupCon with noise/dropout views, a few epochs; 1200 reference / 597 query.
mean +- std over seeds (data, training and PQ k-means seed). One thread (faiss, torch).

Usage: ``nice .venv/bin/python bench/pq.py [--seeds 5] [--quick]``
"""

import argparse
import os
import platform
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import faiss  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from torus_plugins.codes import PAPER_PQ_SETTINGS, ProductQuantizer, TorusProductQuantizer, quantize  # noqa: E402
from torus_plugins.geometry import to_clifford  # noqa: E402

METHODS = ("raw PQ", "torus PQ", "sphere PQ")


def torus_data(k, n_ref, n_query, seed, classes=100, noise=0.05):
    rng = np.random.default_rng(seed)
    centres = rng.random((classes, k))
    y = rng.integers(0, classes, n_ref + n_query)
    t = np.mod(centres[y] + noise * rng.normal(size=(len(y), k)), 1.0)
    return t[:n_ref], y[:n_ref], t[n_ref:], y[n_ref:]


def sphere_data(d, n_ref, n_query, seed, classes=100, noise=0.05):
    """Centres uniform on S^(d-1); per-coordinate noise = the torus' chord per coordinate (2 pi
    noise / sqrt(d))."""
    rng = np.random.default_rng(seed + 10_000)
    c = rng.normal(size=(classes, d))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    y = rng.integers(0, classes, n_ref + n_query)
    x = c[y] + 2 * np.pi * noise / np.sqrt(d) * rng.normal(size=(len(y), d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x[:n_ref], y[:n_ref], x[n_ref:], y[n_ref:]


def clifford(turns):
    return to_clifford(torch.from_numpy(np.asarray(turns, np.float64))).numpy().astype(np.float32)


def exact_top(q, r, k=1):
    index = faiss.IndexFlatIP(r.shape[1])
    index.add(np.ascontiguousarray(r, np.float32))
    return index.search(np.ascontiguousarray(q, np.float32), k)[1]


def scores(dist, ids, exact, y_ref, y_q, tol=1e-6):
    """(P@1, recall@10), both averaged over the order of tied PQ distances (many vectors share a
    code at 8-32 bits, and faiss' order among them is arbitrary): P@1 = share of same-class vectors
    among those at the smallest distance; recall@10 = P(exact nearest neighbour ranks in the top 10)
    = clip((10 - #closer) / #tied, 0, 1). ``dist``/``ids``: the full PQ ranking [n_query, n_ref]."""
    p1, rec = [], []
    for d, i, e, y in zip(dist, ids, exact[:, 0], y_q):
        first = np.abs(d - d[0]) <= tol
        p1.append(np.mean(y_ref[i[first]] == y))
        d_nn = d[np.flatnonzero(i == e)[0]]
        closer, tied = (d < d_nn - tol).sum(), (np.abs(d - d_nn) <= tol).sum()
        rec.append(np.clip((10 - closer) / tied, 0.0, 1.0))
    return float(np.mean(p1)), float(np.mean(rec))


def seeded(pq, seed):
    pq.index.pq.cp.seed = int(seed)
    pq.index.pq.cp.min_points_per_centroid = 1
    return pq


def run_pq(method, nbits, M, ref, q, seed):
    """(distances, ids) [n_query, n_ref]: the full ranking of one PQ method; ``ref``/``q`` are turns
    (raw, torus) or unit vectors (sphere)."""
    n = len(ref)
    if method == "raw PQ":
        r8, q8 = quantize(ref, 8).astype(np.float32), quantize(q, 8).astype(np.float32)
        pq = seeded(ProductQuantizer(r8.shape[1], M, nbits), seed).train(r8).add(r8)
        return pq.search(q8, n)
    if method == "torus PQ":
        tpq = TorusProductQuantizer(ref.shape[1], M, nbits, seed=seed).train(ref).add(ref)
        return tpq.search(q, n)
    pq = seeded(ProductQuantizer(ref.shape[1], M, nbits), seed).train(ref).add(ref)
    return pq.search(q, n)


def one_dataset(tor, sph, seed, settings):
    """{(method, setting): (P@1, recall@10)} plus float P@1 per geometry. tor = turns, sph = unit
    vectors."""
    tr, tyr, tq, tyq = tor
    sr, syr, sq, syq = sph
    cr, cq = clifford(tr), clifford(tq)
    ex_t, ex_s = exact_top(cq, cr), exact_top(sq, sr)
    out = {
        ("float", "torus"): (float(np.mean(tyr[ex_t[:, 0]] == tyq)), 1.0),
        ("float", "sphere"): (float(np.mean(syr[ex_s[:, 0]] == syq)), 1.0),
    }
    for nbits, M in settings:
        for m in METHODS:
            if m == "sphere PQ":
                d, ids = run_pq(m, nbits, M, sr.astype(np.float32), sq.astype(np.float32), seed)
                out[(m, (nbits, M))] = scores(d, ids, ex_s, syr, syq)
            else:
                d, ids = run_pq(m, nbits, M, tr, tq, seed)
                out[(m, (nbits, M))] = scores(d, ids, ex_t, tyr, tyq)
    return out


# --------------------------------------------------------- trained embeddings (scikit-learn digits)
def train_digits(head_name, seed, epochs=30, width=32):
    from sklearn.datasets import load_digits

    from torus_plugins import L2p, Sphere
    from torus_plugins.losses import SupConLoss

    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(x))
    x, y = x[perm], y[perm]
    torch.manual_seed(seed)
    head = L2p(width) if head_name == "torus" else Sphere(width)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, width), head
    )
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = SupConLoss(0.1)
    xtr, ytr = x[:1200], torch.tensor(y[:1200])

    def view(b):
        return (b + 0.1 * torch.randn_like(b)) * (torch.rand_like(b) > 0.1)

    for _ in range(epochs):
        for i in torch.randperm(1200).split(200):
            b = xtr[i]
            loss = loss_fn(torch.stack([model(view(b)), model(view(b))], 1), ytr[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        z = model.eval()(x).double().numpy()
    return z[:1200], y[:1200], z[1200:], y[1200:]


def digits_dataset(seed, epochs):
    from torus_plugins.geometry import to_turns

    zt = train_digits("torus", seed, epochs)
    zs = train_digits("sphere", seed, epochs)
    turns = lambda z: to_turns(torch.from_numpy(z)).numpy()  # noqa: E731
    return (turns(zt[0]), zt[1], turns(zt[2]), zt[3]), (zs[0], zs[1], zs[2], zs[3])


def summarise(name, results, settings):
    def ms(key, i):
        v = np.array([r[key][i] for r in results])
        return f"{v.mean():.3f} +- {v.std():.3f}"

    print(
        f"\n### {name} ({len(results)} seeds; float P@1: torus {ms(('float', 'torus'), 0)}, sphere "
        f"{ms(('float', 'sphere'), 0)})\n"
    )
    print(
        "| setting | bits/vector | raw PQ P@1 | torus PQ P@1 | sphere PQ P@1 | raw PQ R@10 | "
        "torus PQ R@10 | sphere PQ R@10 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    wins = []
    for s in settings:
        cells = [ms((m, s), 0) for m in METHODS] + [ms((m, s), 1) for m in METHODS]
        print(f"| PQ({s[0]},{s[1]}) | {s[0] * s[1]} | " + " | ".join(cells) + " |")
        raw = np.array([r[("raw PQ", s)] for r in results])
        tor = np.array([r[("torus PQ", s)] for r in results])
        wins.append(
            (bool(tor[:, 0].mean() > raw[:, 0].mean()), bool(tor[:, 1].mean() > raw[:, 1].mean()))
        )
    return wins


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument(
        "--quick", action="store_true", help="2 seeds, smaller sets, T^16 only, 5 epochs"
    )
    ap.add_argument("--n-ref", type=int, default=5000)
    ap.add_argument("--n-query", type=int, default=1000)
    ap.add_argument(
        "--noise", type=float, default=0.05, help="per-angle noise (turns) of the synthetic torus"
    )
    ap.add_argument("--epochs", type=int, default=30)
    args = ap.parse_args()
    faiss.omp_set_num_threads(1)
    torch.set_num_threads(1)
    seeds = range(2 if args.quick else args.seeds)
    n_ref, n_q = (1000, 300) if args.quick else (args.n_ref, args.n_query)
    settings = PAPER_PQ_SETTINGS
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, "
        f"{platform.python_version()}, faiss {faiss.__version__}, torch {torch.__version__}, 1 "
        "thread"
    )
    t0 = time.perf_counter()
    all_wins = []
    for k in (16,) if args.quick else (16, 32):
        res = [
            one_dataset(
                torus_data(k, n_ref, n_q, s, noise=args.noise),
                sphere_data(2 * k, n_ref, n_q, s, noise=args.noise),
                s,
                settings,
            )
            for s in seeds
        ]
        all_wins += summarise(
            f"synthetic: 100 classes on T^{k} (width {2 * k}), noise {args.noise} turns, {n_ref} "
            f"reference / {n_q} queries",
            res,
            settings,
        )
    synth_time = time.perf_counter() - t0
    epochs = 5 if args.quick else args.epochs
    res = [one_dataset(*digits_dataset(s, epochs), s, settings) for s in seeds]
    summarise(
        f"trained: digits, L2p(32) = 16 angles vs Sphere(32), SupCon {epochs} epochs, 1200 "
        "reference / 597 queries",
        res,
        settings,
    )
    print(
        "\ntorus PQ beats raw PQ on the synthetic torus at every setting: P@1 "
        f"{all(w[0] for w in all_wins)}, R@10 {all(w[1] for w in all_wins)}"
    )
    print(f"wall time: synthetic {synth_time:.0f} s, total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
