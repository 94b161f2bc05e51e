"""Mean +- std over seeds: of numbers, of nested results, of table rows."""

import numpy as np


def _as_floats(values, name="values") -> np.ndarray:
    v = np.asarray(list(values), dtype=np.float64).reshape(-1)
    if v.size == 0:
        raise ValueError(f"{name}: need at least one value, got an empty sequence")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name}: every value must be finite, got {v.tolist()}")
    return v


def mean_std(values) -> tuple:
    """(mean, sample std with ddof=1) of the per-seed values; std is 0.0 for a single value.

    Args:
        values: an iterable of finite numbers (flattened).

    Returns:
        A tuple of two floats.

    Raises:
        ValueError: ``values`` is empty, not numeric, or holds NaN or inf.

    Example:
        >>> mean_std([1, 2, 3])
        (2.0, 1.0)
    """
    v = _as_floats(values)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def format_mean_std(values, digits: int = 3, with_n: bool = False) -> str:
    """``"0.912 +- 0.004"`` (``with_n``: ``" (n=3)"`` appended); a single value prints without a
    std.

    Args:
        values: an iterable of finite numbers.
        digits: digits after the decimal point.
        with_n: append the number of values.

    Returns:
        The formatted text.

    Raises:
        ValueError: ``values`` is empty, not numeric, or holds NaN or inf.

    Example:
        >>> format_mean_std([0.91, 0.92], with_n=True)
        '0.915 +- 0.007 (n=2)'
    """
    m, s = mean_std(values)
    n = len(_as_floats(values))
    text = f"{m:.{digits}f}" + (f" +- {s:.{digits}f}" if n > 1 else "")
    return text + (f" (n={n})" if with_n else "")


def aggregate(per_seed: list):
    """Per-seed results with the same structure -> one structure whose numeric leaves are
    ``{"mean", "std", "n", "values"}``.

    Dicts and lists are walked recursively. A None leaf (a setting that did not run) stays None if
    every seed has None; a string, bool or None leaf shared by every seed stays as is, and one that
    differs becomes ``{"values": [...]}``.

    Args:
        per_seed: one result per seed (dicts, lists or tuples of numbers, strings, None), all with
            the same keys and lengths.

    Returns:
        The aggregated structure (dicts and lists as in the input).

    Raises:
        ValueError: ``per_seed`` is empty, the seeds differ in keys or list lengths, or a numeric
            leaf holds NaN or inf (or mixes numbers with None).

    Example:
        >>> aggregate([{"p1": 0.9}, {"p1": 0.8}])["p1"]["n"]
        2
    """
    if not per_seed:
        raise ValueError("aggregate: need results from at least one seed, got none")
    first = per_seed[0]
    if isinstance(first, dict):
        keys = list(first)
        for r in per_seed:
            if not isinstance(r, dict) or list(r) != keys:
                raise ValueError(
                    f"aggregate: per-seed results differ in keys: {keys} vs "
                    f"{list(r) if isinstance(r, dict) else type(r).__name__}"
                )
        return {k: aggregate([r[k] for r in per_seed]) for k in keys}
    if isinstance(first, (list, tuple)):
        if any(not isinstance(r, (list, tuple)) or len(r) != len(first) for r in per_seed):
            raise ValueError("aggregate: per-seed lists differ in length")
        return [aggregate([r[i] for r in per_seed]) for i in range(len(first))]
    if all(r is None for r in per_seed):
        return None
    if isinstance(first, (bool, str)) or first is None:
        if any(r != first for r in per_seed):
            return {"values": list(per_seed)}
        return first
    v = _as_floats(per_seed, "aggregate")
    m, s = mean_std(v)
    return {"mean": m, "std": s, "n": int(v.size), "values": v.tolist()}


def aggregate_rows(per_seed_rows: list, key: str = "setting") -> list:
    """Rows from several seeds -> one dict per ``key`` value, in first-seen order.

    The other columns are aggregated over the seeds that have that row (:func:`aggregate` leaves;
    ``n`` says how many). A numeric column some seeds left None is aggregated over the others and
    its leaf gets ``missing``, the number of seeds without it.

    Args:
        per_seed_rows: one list of row dicts per seed (e.g. ``quantisation_table`` outputs).
        key: the column that names a row.

    Returns:
        A list of dicts: ``key`` and one :func:`aggregate` leaf per other column.

    Raises:
        ValueError: ``per_seed_rows`` is empty, a row lacks ``key``, or a numeric column holds NaN
            or inf.

    Example:
        >>> rows = aggregate_rows([[{"setting": "8b", "p1": 0.9}], [{"setting": "8b", "p1": 0.8}]])
        >>> rows[0]["setting"], round(rows[0]["p1"]["mean"], 2)
        ('8b', 0.85)
    """
    if not per_seed_rows:
        raise ValueError("aggregate_rows: need rows from at least one seed, got none")
    groups: dict = {}
    for s, rows in enumerate(per_seed_rows):
        for r in rows:
            if key not in r:
                raise ValueError(
                    f"aggregate_rows: row {r!r} of seed index {s} has no {key!r} column"
                )
            groups.setdefault(r[key], []).append(r)
    out = []
    for value, rows in groups.items():
        cols = list(dict.fromkeys(c for r in rows for c in r if c != key))
        agg = {key: value}
        for c in cols:
            vals = [r.get(c) for r in rows]
            numeric = [
                v
                for v in vals
                if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
            ]
            if numeric and len(numeric) == len(vals):
                agg[c] = aggregate(numeric)
            elif numeric:  # some seeds could not run this setting: aggregate those that did
                agg[c] = aggregate(numeric)
                agg[c]["missing"] = len(vals) - len(numeric)
            else:
                agg[c] = aggregate(vals)
        out.append(agg)
    return out
