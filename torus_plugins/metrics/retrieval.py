"""Retrieval metrics: precision@1 and mAP@R via pytorch-metric-learning's ``AccuracyCalculator``.

Distances by geometry: faiss inner product on unit vectors (sphere: L2-normalised; torusN/torusC:
unit Clifford layout of the angles); b-bit codes: circular L1, sum_i min(d_i, 2**b - d_i),
d_i = (a_i - b_i) mod 2**b. With ``ref_includes_query`` (or no separate reference) each query's own
row is removed from its neighbours (by index, so duplicates of the query still count as neighbours).

Usage: ``retrieval(emb, labels, geometry="torusN")``, a dict
``{'precision_at_1': ..., 'mean_average_precision_at_r': ...}``.
"""

import contextlib

import numpy as np
import torch

from ..geometry import CodesGeometry, get_geometry
from ._inputs import as_labels

METRICS = ("precision_at_1", "mean_average_precision_at_r")
#: what retrieval needs beyond the core: faiss (kNN), pytorch-metric-learning (AccuracyCalculator)
RETRIEVAL_NEEDS = (
    ("faiss", "search"),
    ("pytorch_metric_learning.utils.accuracy_calculator", "pml"),
)


def require_retrieval(what: str) -> None:
    """One ModuleNotFoundError naming every missing extra of ``RETRIEVAL_NEEDS`` (``what`` needs
    them).

    Args:
        what: the feature that needs them, named in the message.

    Raises:
        ModuleNotFoundError: faiss (``search`` extra) or pytorch-metric-learning (``pml`` extra) is
            not installed.
    """
    from .._optional import require_all

    require_all(RETRIEVAL_NEEDS, what)


@contextlib.contextmanager
def faiss_threads(n: int = 1):
    """Run faiss with ``n`` OpenMP threads inside the block, then restore the previous count.

    Why: after torch is imported, faiss' multi-threaded k-means / search on small sets can be ~50x
    slower than one thread (two OpenMP pools spinning on a shared core); evaluation sets are small,
    one thread is fastest.

    Args:
        n: OpenMP threads faiss uses inside the block.

    Returns:
        A context manager (yields None).

    Raises:
        ModuleNotFoundError: faiss is not installed (the ``search`` extra).
    """
    from .._optional import require

    faiss = require("faiss", "search")

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(int(n))
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _drop_self(dist: np.ndarray, idx: np.ndarray, k: int):
    """Remove each row's own index (row i is reference i); keep the first k of the rest."""
    n = idx.shape[0]
    own = idx == np.arange(n)[:, None]
    # rows where self was not returned: drop the last column instead
    missing = ~own.any(1)
    own[missing, -1] = True
    keep = ~own
    return dist[keep].reshape(n, -1)[:, :k], idx[keep].reshape(n, -1)[:, :k]


def ip_knn(query: np.ndarray, reference: np.ndarray, k: int):
    """(similarities, ids) of the k largest inner products (faiss IndexFlatIP), float32.

    Args:
        query: [nq, d] vectors (cast to float32).
        reference: [n, d] vectors (cast to float32).
        k: neighbours per query.

    Returns:
        ``(sims, ids)``: float32 [nq, k] inner products, descending, and int64 [nq, k] row indices
        of ``reference`` (-1 where fewer than k exist).

    Raises:
        ModuleNotFoundError: faiss is not installed (the ``search`` extra).
    """
    from .._optional import require

    faiss = require("faiss", "search")

    index = faiss.IndexFlatIP(reference.shape[1])
    index.add(np.ascontiguousarray(reference, dtype=np.float32))
    return index.search(np.ascontiguousarray(query, dtype=np.float32), int(k))


def circular_l1_knn(query: np.ndarray, reference: np.ndarray, k: int, bits: int):
    """(distances, ids) of the k nearest codes by circular L1: exact :class:`TorusIndex` (ties by
    smaller id).

    d(a, b) = sum_i min(d_i, 2**b - d_i), d_i = (a_i - b_i) mod 2**b.

    Args:
        query: [nq, k_codes] codes (cast to uint8).
        reference: [n, k_codes] codes (cast to uint8).
        k: neighbours per query, in [1, n].
        bits: bits per code, 1..8.

    Returns:
        ``(dist, ids)`` as :meth:`TorusIndex.search <torus_plugins.search.TorusIndex.search>`
        returns them: [nq, k] distances, ascending, and [nq, k] int64 row indices of ``reference``.

    Raises:
        ValueError: ``k`` outside [1, n], or what :class:`TorusIndex` refuses (``bits``).
    """
    from ..search import TorusIndex

    if not 1 <= int(k) <= len(reference):
        raise ValueError(
            f"k must be in [1, {len(reference)}] (the number of reference codes), got {k!r}"
        )
    index = TorusIndex(reference.shape[1], bits=bits)
    index.add(np.ascontiguousarray(reference, dtype=np.uint8))
    return index.search(np.ascontiguousarray(query, dtype=np.uint8), int(k))


class GeometryKNN:
    """kNN function for ``AccuracyCalculator(knn_func=...)``:
    ``(query, k, reference, ref_includes_query)``.

    Called with torch tensors, it returns ``(distances, ids)`` as float32 and int64 [nq, k] tensors,
    distances ascending; with ``ref_includes_query`` each query's own row is removed (by index).

    Args:
        kind: "ip" (vectors already unit; distance = minus the inner product) or "circular" (uint8
            codes passed as floats, ``bits``), or a callable
            ``search(query_np, reference_np, k) -> (dist, ids)`` whose distances sort ascending.
        bits: bits per code for "circular".
    """

    def __init__(self, kind="ip", bits: int = 8):
        self.kind, self.bits = kind, bits

    def __call__(self, query, k, reference, ref_includes_query):
        q = query.detach().cpu().numpy()
        r = reference.detach().cpu().numpy()
        kk = min(k + int(ref_includes_query), len(r))
        if self.kind == "ip":
            d, i = ip_knn(q, r, kk)
            d = -d
        elif self.kind == "circular":
            d, i = circular_l1_knn(
                np.rint(q).astype(np.uint8), np.rint(r).astype(np.uint8), kk, self.bits
            )
        else:
            d, i = self.kind(q, r, kk)
        d, i = np.asarray(d, np.float64), np.asarray(i, np.int64)
        if ref_includes_query:
            d, i = _drop_self(d, i, k)
        return torch.from_numpy(d.astype(np.float32)), torch.from_numpy(i)


def retrieval_from_knn(
    query,
    query_labels,
    reference=None,
    reference_labels=None,
    knn=None,
    ref_includes_query=False,
    threads: int = 1,
) -> dict:
    """P@1 and mAP@R for prepared arrays and a :class:`GeometryKNN`. Returns floats; ValueError if
    undefined.

    Queries whose class has no other member in the reference are skipped (pytorch-metric-learning's
    rule); if that leaves none, or there are fewer than 2 points / a single class, the metric is
    undefined: ValueError. faiss runs with ``threads`` threads (see :func:`faiss_threads`).

    Args:
        query: [nq, d] prepared rows (unit vectors, or codes as floats for "circular").
        query_labels: int64 [nq] class indices (as ``as_labels`` returns them).
        reference: [n, d] prepared rows, or None: the queries are their own reference.
        reference_labels: int64 [n] class indices (None with no reference).
        knn: the :class:`GeometryKNN` that ranks neighbours.
        ref_includes_query: the reference holds the queries (each query's own row is excluded).
        threads: OpenMP threads of faiss.

    Returns:
        ``{"precision_at_1": float, "mean_average_precision_at_r": float}``, each in [0, 1].

    Raises:
        ModuleNotFoundError: faiss or pytorch-metric-learning is not installed.
        ValueError: the metrics are undefined (fewer than 2 points, a single class, or no query
            with a same-class reference).
    """
    require_retrieval("retrieval_from_knn")
    _check_defined(query_labels, reference_labels, reference is None or ref_includes_query)
    with faiss_threads(threads):
        return _accuracy(query, query_labels, reference, reference_labels, knn, ref_includes_query)


def _accuracy(query, query_labels, reference, reference_labels, knn, ref_includes_query) -> dict:
    from .._optional import require

    AccuracyCalculator = require(
        "pytorch_metric_learning.utils.accuracy_calculator", "pml"
    ).AccuracyCalculator

    calc = AccuracyCalculator(include=METRICS, knn_func=knn, k="max_bin_count")
    q = torch.from_numpy(np.ascontiguousarray(query, dtype=np.float32))
    ql = torch.from_numpy(query_labels)
    if reference is None:
        res = calc.get_accuracy(q, ql)
    else:
        r = torch.from_numpy(np.ascontiguousarray(reference, dtype=np.float32))
        res = calc.get_accuracy(
            q, ql, r, torch.from_numpy(reference_labels), ref_includes_query=ref_includes_query
        )
    out = {m: float(res[m]) for m in METRICS}
    if not all(
        np.isfinite(v) for v in out.values()
    ):  # pragma: no cover - _check_defined catches these first
        raise ValueError(f"retrieval is undefined for these labels (got {out})")
    return out


def _check_defined(query_labels, reference_labels, self_excluded: bool):
    """ValueError unless some query has a same-class reference other than itself, and labels have
    >= 2 classes."""
    ql = np.asarray(query_labels)
    rl = ql if reference_labels is None else np.asarray(reference_labels)
    n_ref = len(rl)
    if n_ref < (2 if self_excluded else 1):
        raise ValueError(
            f"retrieval needs at least 2 embeddings when each query is excluded from its own "
            f"neighbours, got {n_ref}"
        )
    classes = np.unique(np.concatenate([ql, rl]))
    if len(classes) < 2:
        raise ValueError(
            f"labels hold a single class ({len(classes)} distinct value): every neighbour matches, "
            "so P@1 and mAP@R are 1 by construction; expected at least 2 classes"
        )
    counts = np.bincount(rl, minlength=int(classes.max()) + 1)
    have = counts[ql] - (1 if self_excluded else 0)
    if not (have > 0).any():
        raise ValueError(
            "no query has another embedding of its class in the reference set, so P@1 and mAP@R "
            "are undefined; expected at least one class with 2 or more members"
        )


def _split_labels(query_labels, nq, reference_labels, nr):
    if reference_labels is None:
        raise ValueError("reference_labels are required with a reference set, got None")
    if query_labels is None:
        raise ValueError("query_labels are required (one label per query), got None")
    ql = np.asarray(
        query_labels.detach().cpu() if hasattr(query_labels, "detach") else query_labels
    ).reshape(-1)
    rl = np.asarray(
        reference_labels.detach().cpu() if hasattr(reference_labels, "detach") else reference_labels
    ).reshape(-1)
    if len(ql) != nq:
        raise ValueError(f"query_labels has length {len(ql)} but there are {nq} queries")
    if len(rl) != nr:
        raise ValueError(
            f"reference_labels has length {len(rl)} but there are {nr} reference embeddings"
        )
    both = as_labels(np.concatenate([ql, rl]), nq + nr, "labels")
    return both[:nq], both[nq:]


def retrieval(
    query,
    query_labels,
    reference=None,
    reference_labels=None,
    geometry="sphere",
    bits: int = 8,
    ref_includes_query: bool = False,
) -> dict:
    """P@1 and mAP@R of ``query`` against ``reference`` (default: the query set itself, self
    excluded).

    Usage: ``retrieval(z, y, geometry="torusN")["precision_at_1"]``

    Args:
        query: [nq, d] float embeddings (numpy array, torch tensor or nested list), or [nq, k]
            integer codes for ``geometry="codes"``.
        query_labels: [nq] class labels (numbers or strings).
        reference: [n, d] rows of the same geometry and width, or None: the queries themselves,
            each excluded from its own neighbours.
        reference_labels: [n] class labels; required with ``reference``.
        geometry: sphere | torusN | torusC (float embeddings, inner product on unit vectors) |
            codes (integer b-bit codes, ``bits``, circular L1), or a
            :class:`~torus_plugins.geometry.Geometry`.
        bits: code width for ``geometry="codes"``.
        ref_includes_query: ``reference`` holds the queries too (each query's own row is excluded).

    Returns:
        ``{"precision_at_1": float, "mean_average_precision_at_r": float}``, each in [0, 1].

    Raises:
        ModuleNotFoundError: faiss (``search`` extra) or pytorch-metric-learning (``pml`` extra)
            is not installed.
        TypeError: ``geometry`` is neither a name nor a Geometry, or a dtype the geometry does not
            read (floats for codes, integers for embeddings).
        ValueError: an unknown geometry, bad rows (not 2-D, empty, NaN or inf, a zero row or
            pair, a code out of range), widths that differ, missing labels or labels of the wrong
            length, or undefined metrics (fewer than 2 points, one class, no query with a
            same-class reference).
    """
    require_retrieval("retrieval")
    g = get_geometry(geometry, bits)
    query = g.check(query, "query")
    if reference is None:
        labels, rl = as_labels(query_labels, len(query), "query_labels"), None
    else:
        reference = g.check(reference, "reference")
        if reference.shape[1] != query.shape[1]:
            raise ValueError(
                f"query has width {query.shape[1]} but reference has width {reference.shape[1]}; "
                f"expected equal widths"
            )
        labels, rl = _split_labels(query_labels, len(query), reference_labels, len(reference))
    if isinstance(g, CodesGeometry):
        knn = GeometryKNN("circular", g.bits)
        prep = lambda a, name: g.check(a, name).astype(np.float32)  # noqa: E731
    else:
        knn = GeometryKNN("ip")
        prep = g.unit_vectors
    return retrieval_from_knn(
        prep(query, "query"),
        labels,
        None if reference is None else prep(reference, "reference"),
        rl,
        knn,
        ref_includes_query,
    )
