"""Shared helpers for the examples: seeding, errors, kNN / quantised evaluation, tables, JSON, plots.

Every call into the rest of the package (codes, search, metrics, plot) goes through a small function here, so the
two example scripts read as "data -> front end -> training -> evaluation".
"""

import json
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from torus_plugins import to_turns
from torus_plugins.codes import quantize, save_codes


# ----------------------------------------------------------------------------------------------------------- basics

class DataDirError(SystemExit):
    """A --data-dir that is missing or has the wrong layout: exits with status 1, the message on stderr."""

    def __init__(self, message: str):
        super().__init__(f"error: {message}")
        self.message = message


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a torch.Generator seeded the same way (for augmentations)."""
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def setup_torch(device: str) -> torch.device:
    """Use at most 2 threads (the reference machine has 2 cores) and check the device string."""
    torch.set_num_threads(min(2, torch.get_num_threads()))
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"error: --device {device} requested but CUDA is not available")
    return dev


def progress(iterable, **kwargs):
    """tqdm progress bar on stderr."""
    from tqdm.auto import tqdm
    kwargs.setdefault("leave", False)
    kwargs.setdefault("dynamic_ncols", True)
    kwargs.setdefault("mininterval", 1.0)
    return tqdm(iterable, file=sys.stderr, **kwargs)


def is_torus(head: str) -> bool:
    return head.lower() in ("torusn", "l2p", "torusc", "clifford")


class Timer:
    def __init__(self):
        self.t0 = time.time()

    def __call__(self) -> float:
        return round(time.time() - self.t0, 2)


# ------------------------------------------------------------------------------------------ package API (isolated)







def torus_search_p1(ref_codes, ref_y, query_codes, query_y, bits: int, exclude_self: bool = False) -> float:
    """P@1 of integer nearest-neighbour search (circular L1, wrap-around) with the package's TorusIndex."""
    from torus_plugins.search import TorusIndex
    index = TorusIndex(ref_codes.shape[1], bits)
    index.add(ref_codes)
    k = 2 if exclude_self else 1
    _, idx = index.search(query_codes, k)
    idx = torch.as_tensor(np.asarray(idx)).long()
    nn_idx = idx[:, 1] if exclude_self else idx[:, 0]
    return float((torch.as_tensor(ref_y)[nn_idx] == torch.as_tensor(query_y)).float().mean())



def shape(x: torch.Tensor, n_points: int, seed: int) -> dict:
    """The package's shape metrics: effective rank, intrinsic dimension, spectral-gap ratio (12 x 12 torus), and on
    a random subsample of ``n_points`` rows Betti numbers (ripser) and torus score. ``diagrams`` is for plotting."""
    import warnings
    from torus_plugins.metrics import shape_metrics
    with warnings.catch_warnings():   # ripser warns when a small subsample has fewer rows than columns
        warnings.filterwarnings("ignore", message="The input point cloud has more columns than rows")
        m = shape_metrics(x.numpy(), betti_subsample=n_points, seed=seed)
    return {"effective_rank": float(m["effective_rank"]), "intrinsic_dimension": float(m["intrinsic_dimension"]),
            "spectral_gap_ratio": float(m["spectral_gap_ratio"]), "betti": [int(b) for b in m["betti"]],
            "torus_score": float(m["torus_score"]), "betti_points": int(min(n_points, len(x))),
            "diagrams": m["diagrams"]}


def quantisation_table(ref_z, ref_y, query_z, query_y, head: str, pq: bool = True):
    """The package's paper-style table (float, 8-bit grid, 1-bit, PQ) -> (rows, printable text)."""
    from torus_plugins.metrics import PQ_SETTINGS, format_table, quantisation_table as qt
    rows = qt(ref_z.numpy(), query_z.numpy(), ref_y.numpy(), query_y.numpy(), geometry=head,
              pq_settings=PQ_SETTINGS if pq else ())
    return rows, format_table(rows)


# ---------------------------------------------------------------------------------------- evaluation (no package)

def knn_p1_float(ref: torch.Tensor, ref_y: torch.Tensor, query: torch.Tensor, query_y: torch.Tensor) -> float:
    """1-NN precision by cosine similarity (unit-norm embeddings: dot product)."""
    sims = F.normalize(query, dim=1) @ F.normalize(ref, dim=1).T
    return float((ref_y[sims.argmax(1)] == query_y).float().mean())


def knn_p1_l1(ref: torch.Tensor, ref_y, query: torch.Tensor, query_y) -> float:
    """1-NN precision by L1 distance (used for grid-quantised hypersphere codes)."""
    d = torch.cdist(query.float(), ref.float(), p=1)
    return float((ref_y[d.argmin(1)] == query_y).float().mean())


def sphere_quantizer(bits: int, reference: torch.Tensor):
    """Hypersphere baseline: the package's per-dimension min/max grid with 2**bits levels, fitted on reference."""
    from torus_plugins.codes import SphereGridQuantizer
    return SphereGridQuantizer(bits).fit(reference)


def sphere_codes(q, x: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(q.encode(x))


def sphere_decode(q, codes: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(np.asarray(q.decode(codes.numpy()))).float()


def quantised_p1(head: str, ref_z, ref_y, query_z, query_y, bits_list) -> dict:
    """kNN P@1 after b-bit export, for each b in ``bits_list``.

    torus heads: flat-torus codes of the angles (no fitted parameters), searched with wrap-around integer
    distance. sphere: per-dimension min/max grid fitted on the reference set, searched with L1 on the codes.
    """
    out = {}
    for bits in bits_list:
        if is_torus(head):
            rc = quantize(to_turns(ref_z), bits)
            qc = quantize(to_turns(query_z), bits)
            out[bits] = torus_search_p1(rc, ref_y, qc, query_y, bits)
        else:
            q = sphere_quantizer(bits, ref_z)
            out[bits] = knn_p1_l1(sphere_codes(q, ref_z), ref_y, sphere_codes(q, query_z), query_y)
    return out


def export_codes(path: str, head: str, z: torch.Tensor, bits: int = 8, reference=None, meta=None):
    """Write b-bit codes of ``z`` in the package's code-file format (geometry = head name); return the codes.

    torus heads: angle codes, no parameters. sphere: min/max grid fitted on ``reference`` (default ``z``); its
    lo/hi are stored in the file's metadata so the codes can be decoded.
    """
    meta = dict(meta or {})
    if is_torus(head):
        codes = quantize(to_turns(z), bits)
    else:
        q = sphere_quantizer(bits, z if reference is None else reference)
        codes = sphere_codes(q, z)
        meta.update(grid_lo=np.asarray(q.lo).tolist(), grid_hi=np.asarray(q.hi).tolist())
    save_codes(path, codes, bits, head, meta=meta or None)
    return codes


# --------------------------------------------------------------------------------------------------- output

def _clean(obj):
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, torch.Tensor):
        return _clean(obj.tolist())
    return obj


def write_json(path: str, obj) -> None:
    """JSON with NaN/inf refused (every metric must be a finite number)."""
    with open(path, "w") as f:
        json.dump(_clean(obj), f, indent=2, allow_nan=False)


def format_table(title: str, rows: list) -> str:
    """rows: list of (name, value) pairs -> a two-column text table."""
    width = max(len(r[0]) for r in rows)
    lines = [title, "-" * max(len(title), width + 12)]
    for name, value in rows:
        v = f"{value:.4f}" if isinstance(value, float) else str(value)
        lines.append(f"{name:<{width}}  {v}")
    return "\n".join(lines)


def format_grid(title: str, header: list, rows: list) -> str:
    """A table with a header row; floats printed with 4 decimals."""
    cells = [[str(h) for h in header]] + [[f"{v:.4f}" if isinstance(v, float) else str(v) for v in r]
                                           for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [title, fmt.format(*cells[0]), "  ".join("-" * w for w in widths)]
    lines += [fmt.format(*r) for r in cells[1:]]
    return "\n".join(lines)


def plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot
    return pyplot


def plot_curves(path: str, curves: dict, title: str, xlabel: str, ylabel: str) -> None:
    """curves: name -> (xs, ys)."""
    p = plt()
    fig, ax = p.subplots(figsize=(5, 3.5))
    for name, (xs, ys) in curves.items():
        ax.plot(xs, ys, marker="o", label=name)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    p.close(fig)


def plot_persistence(path: str, diagrams, title: str) -> None:
    from torus_plugins.plot import plot_persistence as pp
    pp(diagrams, path, title=title)


def plot_angles(path: str, z: torch.Tensor, labels: torch.Tensor, head: str, title: str) -> None:
    """First two angles (turns) on the flat torus, coloured by label (the package's plot)."""
    from torus_plugins.plot import plot_angles as pa
    pa(z.numpy(), labels.numpy(), path, geometry=head, title=title)


def plot_p1_vs_bits(path: str, runs: dict, title: str) -> None:
    """runs: name -> list of (bits per vector, P@1) pairs (the package's plot)."""
    from torus_plugins.plot import plot_p1_vs_bits as pb
    pb(runs, path, title=title)
