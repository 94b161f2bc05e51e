"""The paper's quantisation table: retrieval and spread of embeddings stored at several bit budgets.

Rows: none (float32), 8-bit grid, 1-bit, PQ(nbits, M) for (8,16) (8,4) (8,2) (8,1) (4,4) (4,2).
Torus (torusN / torusC, interleaved Clifford input): angles quantised in the flat torus, no fitted parameters:
8-bit = ``quantize(turns, 8)`` searched by circular L1; 1-bit = signs of (cos, sin) per circle, i.e. the quadrant
floor(4 * turn) = ``quantize(turn - 1/8, 2)`` (its Johnson code is the sign pair), searched by circular L1
(== Hamming on the signs). Sphere: 8-bit = per-dimension min/max grid
fitted on the reference (``SphereGridQuantizer``), searched by inner product on the decoded vectors; 1-bit = sign(x).
PQ: faiss ``IndexPQ(d, M, nbits)`` trained on the 8-bit values (torus codes or sphere grid codes), searched by
its asymmetric L2 distance. Spread columns are computed on the (reconstructed) reference set; entropy is the mean
per-column code entropy (bits) and unique the number of distinct code rows (PQ: of the M sub-codes).
A setting that cannot run gets a row with ``reason`` set and the metric columns None.

Usage::

    rows = quantisation_table(ref, None, ref_labels, None, geometry="torusN")
    print(format_table(rows))
"""

import numpy as np

from ._inputs import as_array, as_labels, check_geometry, clifford_of_turns, turns_of, unit_vectors
from .retrieval import GeometryKNN, retrieval_from_knn
from .spread import circular_variance, code_entropy, turns_circular_variance, unique_codes

PQ_SETTINGS = ((8, 16), (8, 4), (8, 2), (8, 1), (4, 4), (4, 2))
COLUMNS = ("setting", "bits_per_vector", "precision_at_1", "mean_average_precision_at_r",
           "circular_variance", "entropy", "unique_codes", "reason")


def _row(setting, bits=None, ret=None, cv=None, ent=None, uniq=None, reason=None) -> dict:
    ret = ret or {}
    return {"setting": setting, "bits_per_vector": bits, "precision_at_1": ret.get("precision_at_1"),
            "mean_average_precision_at_r": ret.get("mean_average_precision_at_r"), "circular_variance": cv,
            "entropy": ent, "unique_codes": uniq, "reason": reason}


def _pq_subcodes(index, x: np.ndarray, M: int, nbits: int) -> np.ndarray:
    """[n, M] sub-quantiser indices of faiss IndexPQ codes (bit-packed LSB first)."""
    packed = index.sa_encode(np.ascontiguousarray(x, dtype=np.float32))
    if nbits == 8:
        return packed[:, :M].astype(np.int64)
    bits = np.unpackbits(packed, axis=1, bitorder="little")[:, :M * nbits].reshape(len(x), M, nbits)
    return (bits.astype(np.int64) << np.arange(nbits)).sum(-1)


def quantisation_table(ref, query=None, ref_labels=None, query_labels=None, geometry: str = "torusN",
                       pq_settings=PQ_SETTINGS, seed: int = 0) -> list:
    """One dict per setting with the columns in ``COLUMNS``. ``query=None``: the reference queries itself,
    each point's own row excluded.  Usage: ``quantisation_table(z, None, y, None, "torusN")``
    """
    check_geometry(geometry)
    if geometry == "codes":
        raise ValueError("quantisation_table needs float embeddings (sphere, torusN or torusC), not codes")
    ref = as_array(ref, "reference").astype(np.float64)
    self_query = query is None
    if self_query:
        query, query_labels = ref, ref_labels
        labels = as_labels(ref_labels, len(ref), "labels")
        rl, ql = labels, labels
    else:
        query = as_array(query, "query").astype(np.float64)
        if query.shape[1] != ref.shape[1]:
            raise ValueError(f"query width {query.shape[1]} != reference width {ref.shape[1]}")
        ql_raw = np.asarray(query_labels).reshape(-1)
        if len(ql_raw) != len(query):
            raise ValueError(f"query labels have length {len(ql_raw)} but there are {len(query)} queries")
        rl_raw = np.asarray(ref_labels).reshape(-1)
        if len(rl_raw) != len(ref):
            raise ValueError(f"labels have length {len(rl_raw)} but there are {len(ref)} embeddings")
        both = as_labels(np.concatenate([rl_raw, ql_raw]), len(ref) + len(query))
        rl, ql = both[:len(ref)], both[len(ref):]

    def run(q, r, knn):
        if self_query:
            return retrieval_from_knn(r, rl, None, None, knn)
        return retrieval_from_knn(q, ql, r, rl, knn)

    torus = geometry != "sphere"
    d_in = ref.shape[1]
    rows = []
    ip = GeometryKNN("ip")
    # none
    rows.append(_row("none", 32 * d_in, run(unit_vectors(query, geometry), unit_vectors(ref, geometry), ip),
                     circular_variance(ref, geometry)))
    # 8-bit grid and 1-bit
    from ..codes import SphereGridQuantizer, quantize

    if torus:
        tr, tq = turns_of(ref, geometry), turns_of(query, geometry)
        k = tr.shape[1]
        r8, q8 = quantize(tr, 8), quantize(tq, 8)
        rows.append(_row("8-bit grid", 8 * k, run(q8.astype(np.float32), r8.astype(np.float32),
                                                  GeometryKNN("circular", 8)),
                         circular_variance(r8, "codes", 8), code_entropy(r8), unique_codes(r8)))
        # signs of (cos, sin) = quadrant = floor(4 * turn); quantize() rounds, so shift by half a cell (1/8 turn)
        r1, q1 = quantize(np.mod(tr - 0.125, 1.0), 2), quantize(np.mod(tq - 0.125, 1.0), 2)
        rows.append(_row("1-bit", 2 * k, run(q1.astype(np.float32), r1.astype(np.float32),
                                             GeometryKNN("circular", 2)),
                         circular_variance(r1, "codes", 2), code_entropy(r1), unique_codes(r1)))
        pq_train, pq_query = r8.astype(np.float32), q8.astype(np.float32)
    else:
        sq = SphereGridQuantizer(8).fit(ref)
        r8, q8 = sq.encode(ref), sq.encode(query)
        rdec = sq.decode(r8)
        rows.append(_row("8-bit grid", 8 * d_in, run(unit_vectors(sq.decode(q8), "sphere"),
                                                     unit_vectors(rdec, "sphere"), ip),
                         circular_variance(rdec, "sphere"), code_entropy(r8), unique_codes(r8)))
        rs, qs = np.where(ref >= 0, 1.0, -1.0), np.where(query >= 0, 1.0, -1.0)
        rows.append(_row("1-bit", d_in, run(unit_vectors(qs, "sphere"), unit_vectors(rs, "sphere"), ip),
                         circular_variance(rs, "sphere"), code_entropy((rs > 0).astype(np.uint8)),
                         unique_codes((rs > 0).astype(np.uint8))))
        pq_train, pq_query = r8.astype(np.float32), q8.astype(np.float32)
    # product quantisation
    d = pq_train.shape[1]
    for nbits, M in pq_settings:
        name = f"PQ({nbits},{M})"
        if d % M:
            rows.append(_row(name, M * nbits, reason=f"M={M} does not divide the {d} quantised dimensions"))
            continue
        if len(pq_train) < (1 << nbits):
            rows.append(_row(name, M * nbits, reason=f"training needs >= {1 << nbits} vectors, have {len(pq_train)}"))
            continue
        try:
            from ..codes import ProductQuantizer

            pq = ProductQuantizer(d, M, nbits)
            pq.index.pq.cp.seed = seed
            pq.index.pq.cp.min_points_per_centroid = 1  # small sets: no faiss warning spam
            pq.train(pq_train)
            pq.add(pq_train)
            knn = GeometryKNN(lambda qq, rr, kk: pq.search(qq, kk))
            ret = run(pq_query, pq_train, knn)
            rec = np.asarray(pq.index.sa_decode(pq.index.sa_encode(pq_train)), dtype=np.float64)
            if torus:
                cv = turns_circular_variance(rec / 256.0)
            else:
                cv = circular_variance(sq.lo + rec / 255.0 * (sq.hi - sq.lo), "sphere")
            sub = _pq_subcodes(pq.index, pq_train, M, nbits)
            rows.append(_row(name, pq.bits_per_vector, ret, cv, code_entropy(sub), unique_codes(sub)))
        except (ValueError, RuntimeError, ImportError) as exc:  # report, do not drop, a failing setting
            rows.append(_row(name, M * nbits, reason=f"{type(exc).__name__}: {exc}"))
    return rows




def format_table(rows) -> str:
    """Fixed-width text of ``quantisation_table`` rows."""
    head = f"{'setting':<11} {'bits':>6} {'P@1':>6} {'mAP@R':>6} {'circvar':>7} {'entropy':>7} {'unique':>7}"
    lines = [head, "-" * len(head)]
    f = lambda v, w, p: (f"{v:>{w}.{p}f}" if isinstance(v, float) else f"{'-' if v is None else v:>{w}}")  # noqa
    for r in rows:
        line = (f"{r['setting']:<11} {f(r['bits_per_vector'], 6, 0)} {f(r['precision_at_1'], 6, 3)} "
                f"{f(r['mean_average_precision_at_r'], 6, 3)} {f(r['circular_variance'], 7, 3)} "
                f"{f(r['entropy'], 7, 2)} {f(r['unique_codes'], 7, 0)}")
        if r["reason"]:
            line += f"  n/a: {r['reason']}"
        lines.append(line)
    return "\n".join(lines)
