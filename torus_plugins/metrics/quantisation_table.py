"""The paper's quantisation table: retrieval and spread of embeddings stored at several bit budgets.

Rows are :mod:`.settings` objects (one definition of "n-bit": bits per angle on a torus, per
coordinate on the sphere; bits per vector always reported): none, 8-bit grid, sign (the paper's
"1-bit"), PQ(nbits, M) for (8,16) (8,4) (8,2) (8,1) (4,4) (4,2) and, for tori, the paper's raw-value
PQ as labelled baseline rows ``raw PQ(...)``.

* torus grid: ``quantize(turns, b)`` searched by circular L1 (no fitted parameters).
* sphere grid: per-dimension min/max grid fitted on the reference (``SphereGridQuantizer``), inner
  product on the decoded, re-normalised vectors.
* sign: sphere sign(x_i); torus signs of (cos, sin) = the quadrant floor(4 * turn) =
  ``quantize(turn - 1/8, 2)``, searched by circular L1 (== Hamming on the sign bits).
* PQ: faiss ``IndexPQ``; tori: :class:`~torus_plugins.codes.TorusProductQuantizer` (Clifford
  coordinates, whole circles per sub-space); sphere: on the unit vectors. raw PQ:
  ``ProductQuantizer`` on the 8-bit angle values.

Spread columns are computed on the (reconstructed) reference set; entropy is the mean per-column
entropy (bits) of the stored code columns and unique the number of distinct stored code rows. A
setting that cannot run gets a row with ``reason`` set and the metric columns None. Undefined input
(1 point, one class, no query with a same-class reference, NaN, mismatched widths) raises
ValueError.

Usage::

    rows = quantisation_table(ref, None, ref_labels, None, geometry="torusN")
    print(format_table(rows))
"""

import numpy as np

from .._arrays import unit_rows
from ..geometry import get_geometry, turns_circular_variance
from ._inputs import as_labels
from .retrieval import (
    GeometryKNN,
    _check_defined,
    _split_labels,
    faiss_threads,
    require_retrieval,
    retrieval_from_knn,
)
from .settings import PQ_SETTINGS, Setting, table_settings
from .spread import code_entropy, unique_codes

COLUMNS = (
    "setting",
    "bits_per_vector",
    "bits_per_value",
    "distance",
    "precision_at_1",
    "mean_average_precision_at_r",
    "circular_variance",
    "entropy",
    "unique_codes",
    "reason",
)


def _unit(x: np.ndarray) -> np.ndarray:
    """Row-normalised copy at any scale; an all-zero reconstructed row stays zero (no match)."""
    return unit_rows(x)


def _sphere_cv(x: np.ndarray) -> float:
    return float(1.0 - np.linalg.norm(_unit(np.asarray(x, np.float64)).mean(0)))


class _Table:
    """Prepared inputs of one table: geometry, arrays, labels, and the search runner."""

    def __init__(self, g, ref, query, rl, ql, self_query, seed):
        self.g, self.ref, self.query, self.rl, self.ql = g, ref, query, rl, ql
        self.self_query, self.seed = self_query, seed
        self.torus = g.stores == "angle"
        if self.torus:
            self.tr, self.tq = g.turns(ref, "reference"), g.turns(query, "query")

    def run(self, q, r, knn) -> dict:
        if self.self_query:
            return retrieval_from_knn(r, self.rl, None, None, knn)
        return retrieval_from_knn(q, self.ql, r, self.rl, knn)

    # one method per setting kind: returns (retrieval dict, circular variance, stored codes or None)
    def eval_float(self, s):
        g = self.g
        return (
            self.run(g.unit_vectors(self.query), g.unit_vectors(self.ref), GeometryKNN("ip")),
            g.circular_variance(self.ref),
            None,
        )

    def eval_grid(self, s):
        from ..codes import SphereGridQuantizer, quantize

        if self.torus:
            r, q = quantize(self.tr, s.bits), quantize(self.tq, s.bits)
            ret = self.run(
                q.astype(np.float32), r.astype(np.float32), GeometryKNN("circular", s.bits)
            )
            return ret, turns_circular_variance(r / float(1 << s.bits)), r
        # the min/max grid commutes with a uniform scale: fit it on the reference divided by a
        # power of two near its largest |value| (exact), so the float32 decoded values neither
        # overflow nor underflow. Queries are clipped to the grid's range first (encode clips
        # them anyway), so they cannot overflow when divided.
        _, e = np.frexp(np.abs(self.ref).max())
        query = np.clip(self.query, self.ref.min(0), self.ref.max(0))
        sq = SphereGridQuantizer(s.bits).fit(np.ldexp(self.ref, -e))
        r, q = sq.encode(np.ldexp(self.ref, -e)), sq.encode(np.ldexp(query, -e))
        rdec = sq.decode(r)
        return self.run(_unit(sq.decode(q)), _unit(rdec), GeometryKNN("ip")), _sphere_cv(rdec), r

    def eval_sign(self, s):
        from ..codes import quantize

        if (
            self.torus
        ):  # quadrant = floor(4 * turn); quantize() rounds, so shift by half a cell (1/8 turn)
            r, q = (
                quantize(np.mod(self.tr - 0.125, 1.0), 2),
                quantize(np.mod(self.tq - 0.125, 1.0), 2),
            )
            ret = self.run(q.astype(np.float32), r.astype(np.float32), GeometryKNN("circular", 2))
            signs = (self.g.unit_vectors(self.ref) > 0).astype(np.uint8)
            return ret, turns_circular_variance((r + 0.5) / 4.0), signs
        rs, qs = np.where(self.ref >= 0, 1.0, -1.0), np.where(self.query >= 0, 1.0, -1.0)
        ret = self.run(_unit(qs), _unit(rs), GeometryKNN("ip"))
        return ret, _sphere_cv(rs), (rs > 0).astype(np.uint8)

    def _need(self, s, dims, what):
        if dims % s.M:
            return f"M={s.M} does not divide the {dims} {what}"
        if len(self.ref) < (1 << s.bits):
            return f"training needs >= {1 << s.bits} vectors, have {len(self.ref)}"
        return None

    def eval_pq(self, s):
        from ..codes import ProductQuantizer, TorusProductQuantizer
        from ..codes.torus_pq import unpack_pq_codes

        if self.torus:
            k = self.tr.shape[1]
            reason = self._need(s, k, "angles (whole circles per sub-space)")
            if reason:
                return reason
            tpq = TorusProductQuantizer(k, s.M, s.bits, seed=self.seed).train(self.tr).add(self.tr)
            knn = GeometryKNN(lambda qq, rr, kk: tpq.search(qq, kk))
            codes = tpq.encode(self.tr)
            return (
                self.run(self.tq, self.tr, knn),
                turns_circular_variance(tpq.decode(codes)),
                unpack_pq_codes(codes, s.M, s.bits),
            )
        u_r, u_q = self.g.unit_vectors(self.ref), self.g.unit_vectors(self.query)
        reason = self._need(s, u_r.shape[1], "dimensions")
        if reason:
            return reason
        pq = _seeded(ProductQuantizer(u_r.shape[1], s.M, s.bits), self.seed).train(u_r).add(u_r)
        codes = pq.index.sa_encode(np.ascontiguousarray(u_r, dtype=np.float32))
        rec = pq.index.sa_decode(codes)
        knn = GeometryKNN(lambda qq, rr, kk: pq.search(qq, kk))
        return self.run(u_q, u_r, knn), _sphere_cv(rec), unpack_pq_codes(codes, s.M, s.bits)

    def eval_raw_pq(self, s):
        from ..codes import ProductQuantizer, quantize
        from ..codes.torus_pq import unpack_pq_codes

        r8, q8 = quantize(self.tr, 8).astype(np.float32), quantize(self.tq, 8).astype(np.float32)
        reason = self._need(s, r8.shape[1], "quantised angles")
        if reason:
            return reason
        pq = _seeded(ProductQuantizer(r8.shape[1], s.M, s.bits), self.seed).train(r8).add(r8)
        codes = pq.index.sa_encode(r8)
        knn = GeometryKNN(lambda qq, rr, kk: pq.search(qq, kk))
        return (
            self.run(q8, r8, knn),
            turns_circular_variance(pq.index.sa_decode(codes) / 256.0),
            unpack_pq_codes(codes, s.M, s.bits),
        )


def _seeded(pq, seed):
    pq.index.pq.cp.seed = int(seed)
    pq.index.pq.cp.min_points_per_centroid = 1  # small sets: no faiss warning spam
    return pq


def quantisation_table(
    ref,
    query=None,
    ref_labels=None,
    query_labels=None,
    geometry="torusN",
    pq_settings=PQ_SETTINGS,
    seed: int = 0,
    settings=None,
    raw_baseline: bool = True,
) -> list:
    """One dict per setting with the columns in ``COLUMNS``. ``query=None``: the reference queries
    itself, each point's own row excluded. ``settings``: a list of :class:`Setting` (default
    ``table_settings``).

    Usage: ``quantisation_table(z, None, y, None, "torusN")``

    Args:
        ref: [n, d] float reference embeddings (numpy array, torch tensor or nested list).
        query: [nq, d] float query embeddings of the same width, or None (the reference queries
            itself).
        ref_labels: [n] class labels (numbers or strings).
        query_labels: [nq] class labels; required with ``query``.
        geometry: sphere | torusN | torusC, or a float :class:`~torus_plugins.geometry.Geometry`.
        pq_settings: (nbits, M) pairs of the PQ rows (default: the paper's).
        seed: seed of the PQ k-means.
        settings: the rows to compute, a list of :class:`Setting` (None: :func:`table_settings`).
        raw_baseline: add the raw-PQ baseline rows on the tori.

    Returns:
        A list with one dict per setting, keys :data:`COLUMNS`; a setting that cannot run (M does
        not divide the width, too few vectors to train, a faiss RuntimeError) has ``reason`` set
        and its metric columns None.

    Raises:
        ModuleNotFoundError: faiss (``search`` extra) or pytorch-metric-learning (``pml`` extra)
            is not installed.
        TypeError: ``geometry`` neither a name nor a Geometry, integer embeddings, or a
            ``settings`` item that is not a :class:`Setting`.
        ValueError: geometry "codes" or an unknown name, bad rows (not 2-D, empty, NaN or inf, a
            zero row or pair, an odd torus width), widths that differ, missing labels or labels of
            the wrong length, undefined retrieval (fewer than 2 points, one class, no query with a
            same-class reference), or a setting that does not apply to the geometry.
    """
    require_retrieval("quantisation_table")  # kNN, PQ: a missing extra is an error, not failed rows
    g = get_geometry(geometry)
    if g.name == "codes":
        raise ValueError(
            "quantisation_table needs float embeddings (geometry sphere, torusN or torusC), "
            "got geometry 'codes'"
        )
    ref = g.check(ref, "reference")
    self_query = query is None
    if self_query:
        rl = ql = as_labels(ref_labels, len(ref), "ref_labels")
        query = ref
    else:
        query = g.check(query, "query")
        if query.shape[1] != ref.shape[1]:
            raise ValueError(
                f"query has width {query.shape[1]} but reference has width {ref.shape[1]}; "
                f"expected equal widths"
            )
        ql, rl = _split_labels(query_labels, len(query), ref_labels, len(ref))
    _check_defined(ql, None if self_query else rl, self_query)
    if g.stores == "coordinate":  # every sphere setting compares directions: a zero row has none
        g.unit_vectors(ref, "reference")
        g.unit_vectors(query, "query")
    table = _Table(g, ref, query, rl, ql, self_query, seed)
    width = ref.shape[1]
    rows = []
    for s in table_settings(g, pq_settings, raw_baseline) if settings is None else settings:
        if not isinstance(s, Setting):
            raise TypeError(f"settings must hold Setting objects, got {type(s).__name__}")
        row = {
            "setting": s.name,
            "bits_per_vector": s.bits_per_vector(g, width),
            "bits_per_value": s.bits_per_value(g),
            "distance": s.distance(g),
            "precision_at_1": None,
            "mean_average_precision_at_r": None,
            "circular_variance": None,
            "entropy": None,
            "unique_codes": None,
            "reason": None,
        }
        try:
            with faiss_threads(1):  # small training sets: one thread is fastest (see faiss_threads)
                out = getattr(table, "eval_" + s.kind)(s)
        except RuntimeError as exc:  # report, do not drop, a failing setting
            out = f"{type(exc).__name__}: {exc}"
        if isinstance(out, str):
            row["reason"] = out
        else:
            ret, cv, codes = out
            row.update(
                precision_at_1=ret["precision_at_1"],
                mean_average_precision_at_r=ret["mean_average_precision_at_r"],
                circular_variance=cv,
            )
            if codes is not None:
                row.update(entropy=code_entropy(codes), unique_codes=unique_codes(codes))
        rows.append(row)
    return rows


def format_table(rows, width: int | None = None, geometry=None) -> str:
    """Fixed-width text of ``quantisation_table`` rows (bits per vector always shown).

    With ``width`` and ``geometry`` a header line states the embedding width the rows share.

    Args:
        rows: the dicts :func:`quantisation_table` returns (any iterable of them).
        width: the embedding width of the rows, for the header line (with ``geometry``).
        geometry: their geometry (name or object), for the header line (with ``width``).

    Returns:
        The table as one string, a line per row (a row with ``reason`` ends in "n/a: reason").

    Raises:
        TypeError: a row that is not a dict with a "setting" key, or ``geometry`` neither a name
            nor a Geometry.
        ValueError: an unknown geometry name.
    """
    rows = list(rows)
    for r in rows:
        if not isinstance(r, dict) or "setting" not in r:
            raise TypeError(f"rows must be quantisation_table() dicts, got {type(r).__name__}")
    name_w = max([11] + [len(str(r["setting"])) for r in rows])
    head = (
        f"{'setting':<{name_w}} {'bits/vec':>8} {'bits per value':<28} {'P@1':>6} {'mAP@R':>6} "
        f"{'circvar':>7} {'entropy':>7} {'unique':>7}"
    )
    lines = []
    if width is not None and geometry is not None:
        lines.append(
            f"{get_geometry(geometry).name}, width {width}: rows at this width; compare heads at "
            "equal bits/vec"
        )
    lines += [head, "-" * len(head)]

    def f(v, w, p):
        return f"{v:>{w}.{p}f}" if isinstance(v, float) else f"{'-' if v is None else v:>{w}}"

    for r in rows:
        line = (
            f"{r['setting']:<{name_w}} {f(r['bits_per_vector'], 8, 0)} "
            f"{str(r.get('bits_per_value') or '-'):<28} "
            f"{f(r['precision_at_1'], 6, 3)} {f(r['mean_average_precision_at_r'], 6, 3)} "
            f"{f(r['circular_variance'], 7, 3)} {f(r['entropy'], 7, 2)} "
            f"{f(r['unique_codes'], 7, 0)}"
        )
        if r.get("reason"):
            line += f"  n/a: {r['reason']}"
        lines.append(line)
    return "\n".join(lines)
