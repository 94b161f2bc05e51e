"""Retrieval metrics: precision@1 and mAP@R via pytorch-metric-learning's ``AccuracyCalculator``.

Distances by geometry: faiss inner product on unit vectors (sphere: L2-normalised; torusN/torusC: unit Clifford
layout of the angles); b-bit codes: circular L1, sum_i min(d_i, 2**b - d_i), d_i = (a_i - b_i) mod 2**b.
With ``ref_includes_query`` (or no separate reference) each query's own row is removed from its neighbours
(by index, so duplicates of the query still count as neighbours).

Usage: ``retrieval(emb, labels, geometry="torusN")  # {'precision_at_1': ..., 'mean_average_precision_at_r': ...}``
"""

import numpy as np
import torch

from ._inputs import as_array, as_labels, check_geometry, unit_vectors

METRICS = ("precision_at_1", "mean_average_precision_at_r")


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
    """(similarities, ids) of the k largest inner products (faiss IndexFlatIP), float32."""
    from .._optional import require
    faiss = require("faiss", "search")

    index = faiss.IndexFlatIP(reference.shape[1])
    index.add(np.ascontiguousarray(reference, dtype=np.float32))
    return index.search(np.ascontiguousarray(query, dtype=np.float32), int(k))


def circular_l1_knn(query: np.ndarray, reference: np.ndarray, k: int, bits: int):
    """(distances, ids) of the k nearest codes by circular L1: exact :class:`TorusIndex` (ties by smaller id)."""
    from ..search import TorusIndex

    index = TorusIndex(reference.shape[1], bits=bits)
    index.add(np.ascontiguousarray(reference, dtype=np.uint8))
    return index.search(np.ascontiguousarray(query, dtype=np.uint8), int(k))


class GeometryKNN:
    """kNN function for ``AccuracyCalculator(knn_func=...)``: ``(query, k, reference, ref_includes_query)``.

    ``kind``: "ip" (vectors already unit) or "circular" (uint8 codes passed as floats, ``bits``), or a callable
    ``search(query_np, reference_np, k) -> (dist, ids)`` whose distances sort ascending.
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
            d, i = circular_l1_knn(np.rint(q).astype(np.uint8), np.rint(r).astype(np.uint8), kk, self.bits)
        else:
            d, i = self.kind(q, r, kk)
        d, i = np.asarray(d, np.float64), np.asarray(i, np.int64)
        if ref_includes_query:
            d, i = _drop_self(d, i, k)
        return torch.from_numpy(d.astype(np.float32)), torch.from_numpy(i)


def retrieval_from_knn(query, query_labels, reference=None, reference_labels=None, knn=None,
                       ref_includes_query=False) -> dict:
    """P@1 and mAP@R for prepared arrays and a :class:`GeometryKNN`. Returns floats."""
    from .._optional import require
    AccuracyCalculator = require("pytorch_metric_learning.utils.accuracy_calculator", "pml").AccuracyCalculator

    calc = AccuracyCalculator(include=METRICS, knn_func=knn, k="max_bin_count")
    q = torch.from_numpy(np.ascontiguousarray(query, dtype=np.float32))
    ql = torch.from_numpy(query_labels)
    if reference is None:
        res = calc.get_accuracy(q, ql)
    else:
        r = torch.from_numpy(np.ascontiguousarray(reference, dtype=np.float32))
        res = calc.get_accuracy(q, ql, r, torch.from_numpy(reference_labels), ref_includes_query=ref_includes_query)
    return {m: float(res[m]) for m in METRICS}


def retrieval(query, query_labels, reference=None, reference_labels=None, geometry: str = "sphere",
              bits: int = 8, ref_includes_query: bool = False) -> dict:
    """P@1 and mAP@R of ``query`` against ``reference`` (default: the query set itself, self excluded).

    geometry: sphere | torusN | torusC (float embeddings, inner product on unit vectors) | codes (uint8, ``bits``,
    circular L1).  Usage: ``retrieval(z, y, geometry="torusN")["precision_at_1"]``
    """
    check_geometry(geometry)
    query = as_array(query, "query")
    ql = query_labels
    if reference is None:
        labels = as_labels(ql, len(query), "query labels")
        rl = None
    else:
        reference = as_array(reference, "reference")
        both = np.concatenate([np.asarray(ql).reshape(-1), np.asarray(reference_labels).reshape(-1)])
        if len(np.asarray(ql).reshape(-1)) != len(query):
            raise ValueError(f"query labels have length {len(np.asarray(ql).reshape(-1))}, query has {len(query)}")
        all_l = as_labels(both, len(query) + len(reference), "labels")
        labels, rl = all_l[:len(query)], all_l[len(query):]
    if geometry == "codes":
        knn = GeometryKNN("circular", bits)
        prep = lambda a: a.astype(np.float32)  # noqa: E731
    else:
        knn = GeometryKNN("ip")
        prep = lambda a: unit_vectors(a, geometry)  # noqa: E731
    return retrieval_from_knn(prep(query), labels, None if reference is None else prep(reference), rl, knn,
                              ref_includes_query)
