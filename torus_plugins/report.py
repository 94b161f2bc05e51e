"""Provenance and mean +- std aggregation for experiment outputs (results.json, printed tables).

* ``provenance(args, seeds, threads)``: versions (package, torch, numpy, faiss), CPU model, thread
  count, seeds, git commit when available, start time (UTC, ISO 8601) and a monotonic start stamp;
  ``finish(prov)`` adds the wall time in seconds. ``describe(prov)``: a one-line summary to print.
* ``mean_std(values)`` -> (mean, std) with the sample std (ddof=1; 0.0 for one value);
  ``format_mean_std(values)`` -> ``"0.912 +- 0.004 (n=3)"`` (one value: ``"0.912"``, no std).
* ``aggregate(per_seed)``: a list of per-seed dicts/lists of numbers -> the same structure with
  ``{"mean", "std", "n", "values"}`` at each numeric leaf.
* ``aggregate_rows(per_seed_rows, key="setting")``: per-seed lists of table rows (e.g.
  ``quantisation_table``) -> one row per ``key`` value, numeric columns aggregated over seeds (as
  ``aggregate``).
* ``format_leaf(leaf)``: an ``aggregate`` leaf -> ``"0.912 +- 0.004"`` (``"0.912"`` over one seed: a
  std of one value is not 0, it is undefined; ``"-"`` for None); ``format_grid(title, header,
  rows)``: a fixed-width text table of strings / numbers.
* ``format_settings_table(tables)``: head -> ``aggregate_rows`` output -> one line per setting, one
  column per head, cells ``"mean +- std [bits b]"``; a cell that could not run shows ``-`` and a
  footnote number, and the footnotes below the table give each reason (``quantisation_table``'s
  ``reason`` column), e.g. why PQ did not train.
* ``write_results(path, provenance, args, metrics)``: JSON with NaN/inf refused.

Usage::

    prov = provenance(vars(args), seeds=[0, 1, 2], threads=1)
    ... train and evaluate ...
    write_results("runs/demo/results.json", finish(prov), vars(args), metrics)
"""

import datetime
import json
import math
import os
import platform
import subprocess
import time

import numpy as np

__all__ = [
    "provenance",
    "describe",
    "finish",
    "cpu_model",
    "git_commit",
    "mean_std",
    "format_mean_std",
    "aggregate",
    "aggregate_rows",
    "format_leaf",
    "format_grid",
    "format_settings_table",
    "to_jsonable",
    "write_results",
]


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else ``platform.processor()`` /
    ``platform.machine()``.

    Returns:
        The model name, or ``"unknown"``.
    """
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def git_commit(path: str | None = None) -> str | None:
    """The git commit of the checkout holding ``path`` (default: this package).

    Args:
        path: a folder inside a git work tree; default the package's own folder.

    Returns:
        The commit hash, with ``+dirty`` appended if tracked files have uncommitted changes; None
        when git or the repository is unavailable.
    """
    where = path or os.path.dirname(os.path.abspath(__file__))
    try:
        run = lambda *cmd: subprocess.run(
            ["git", "-C", where, *cmd],
            capture_output=True,
            text=True,  # noqa
            timeout=10,
        )
        head = run("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        dirty = run("status", "--porcelain", "--untracked-files=no").stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except ImportError:
        return None
    return str(getattr(mod, "__version__", "unknown"))


def provenance(args=None, seeds=(), threads: int | None = None) -> dict:
    """Where and how a run happened: versions, machine, threads, seeds, commit, start time.

    Args:
        args: the run's arguments, a dict or an ``argparse.Namespace`` (or None).
        seeds: the seeds the run uses (integers).
        threads: the torch intra-op thread count used (default: ``torch.get_num_threads()``).

    Returns:
        A dict of JSON values plus a private monotonic start stamp ``_t0`` that :func:`finish`
        turns into ``wall_seconds``.

    Raises:
        TypeError: ``args`` is neither a dict nor an object with ``__dict__``.
        ValueError: ``args`` holds a non-finite float.
    """
    import torch

    from . import __version__

    if threads is None:
        threads = torch.get_num_threads()
    if args is not None and not isinstance(args, dict):
        args = vars(args)
    return {
        "package": "torus-plugins",
        "package_version": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "faiss": _version("faiss"),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "threads": int(threads),
        "seeds": [int(s) for s in seeds],
        "git_commit": git_commit(),
        "start_time_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "load_average_at_start": _load_average(),
        "args": to_jsonable(args) if args is not None else None,
        "_t0": time.perf_counter(),
    }


def _load_average():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def describe(prov: dict) -> str:
    """One line for a run's output: CPU model, threads, load average, seeds.

    Args:
        prov: a dict from :func:`provenance` or :func:`finish`.

    Returns:
        The line, without a newline.
    """
    return (
        f"machine: {prov['cpu_model']} ({prov['cpu_count']} CPUs), {prov['threads']} torch "
        f"thread(s) per run, load average {prov['load_average_at_start']}; "
        f"seeds {prov['seeds']}"
    )


def finish(prov: dict) -> dict:
    """A copy of ``prov`` with ``wall_seconds`` (since ``provenance()``), end time, load average.

    Args:
        prov: a dict from :func:`provenance` (with its ``_t0`` stamp).

    Returns:
        A new dict without ``_t0``, with ``wall_seconds``, ``end_time_utc`` and
        ``load_average_at_end`` added.
    """
    out = {k: v for k, v in prov.items() if k != "_t0"}
    out["wall_seconds"] = round(time.perf_counter() - prov["_t0"], 1)
    out["end_time_utc"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    out["load_average_at_end"] = _load_average()
    return out


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


def format_leaf(leaf, digits: int = 3) -> str:
    """``{"mean": .912, "std": .004, ...}`` -> ``"0.912 +- 0.004"``; a plain float -> ``"0.912"``;
    None -> ``"-"``.

    A leaf over one value prints its mean alone (no std of a single seed); a leaf some seeds lacked
    (``missing``) gets ``" (n=2)"``; anything else prints as ``str()``.

    Args:
        leaf: an :func:`aggregate` leaf, a number, a string or None.
        digits: digits after the decimal point.

    Returns:
        The cell text.

    Example:
        >>> format_leaf({"mean": 0.912, "std": 0.004, "n": 3})
        '0.912 +- 0.004'
    """
    if leaf is None:
        return "-"
    if isinstance(leaf, dict) and "mean" in leaf:
        text = f"{leaf['mean']:.{digits}f}"
        if leaf.get("n", 2) > 1:  # the std of one value is undefined, not 0
            text += f" +- {leaf['std']:.{digits}f}"
        return text + (f" (n={leaf['n']})" if leaf.get("missing") else "")
    if isinstance(leaf, float):
        return f"{leaf:.{digits}f}"
    return str(leaf)


def format_grid(title: str, header: list, rows: list) -> str:
    """A text table: ``title``, the ``header`` row, a rule, then ``rows``, columns left-aligned.

    Args:
        title: the first line.
        header: the column titles.
        rows: lists of cells, one per column: strings as they are, anything else through
            :func:`format_leaf`.

    Returns:
        The table text, lines joined by newlines.

    Raises:
        ValueError: a row's length differs from the header's.

    Example:
        >>> print(format_grid("P@1", ["setting", "sphere"], [["none", 0.9]]))
        P@1
        setting  sphere
        -------  ------
        none     0.900
    """
    cells = [[str(h) for h in header]] + [
        [c if isinstance(c, str) else format_leaf(c) for c in r] for r in rows
    ]
    if any(len(r) != len(header) for r in cells):
        raise ValueError(
            f"format_grid: every row needs {len(header)} cells (the header's), got "
            f"{sorted({len(r) for r in cells})}"
        )
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join(
        [title, line(cells[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]]
    )


def format_settings_table(
    tables: dict,
    metric: str = "precision_at_1",
    title: str = "",
    extra: dict | None = None,
    columns: dict | None = None,
) -> str:
    """One line per setting (first-seen order), one column per head, cells ``"0.912 +- 0.004 [256
    b]"`` (bits per vector in brackets; one seed: no std). Empty cells say why: a setting that did
    not run for some seeds (its ``reason``, e.g. "training needs >= 256 vectors, have 255") gets
    ``[1]``, ``[2]``, ... and the reasons are listed under the table, one line per distinct reason;
    a setting a head does not have is ``n/a``.

    Args:
        tables: head -> rows from :func:`aggregate_rows` (e.g. of ``quantisation_table``).
        metric: the column shown.
        title: first line.
        extra: label -> {head: leaf} rows appended below.
        columns: head -> column title.

    Returns:
        The table text, footnotes included.

    Usage: ``print(format_settings_table({"torusN": aggregate_rows(per_seed_rows)}))``
    """
    by_head = {h: {r["setting"]: r for r in rows} for h, rows in tables.items()}
    settings = list(dict.fromkeys(s for rows in by_head.values() for s in rows))
    notes: dict = {}  # reason -> footnote number, in order of first use
    absent = False

    def cell(rows, s):
        nonlocal absent
        if s not in rows:
            absent = True
            return "n/a"
        bits = rows[s].get("bits_per_vector")
        bits = bits["mean"] if isinstance(bits, dict) else bits
        text = format_leaf(rows[s].get(metric)) + ("" if bits is None else f" [{bits:.0f} b]")
        marks = [notes.setdefault(r, len(notes) + 1) for r in _reasons(rows[s].get("reason"))]
        return text + "".join(f" [{m}]" for m in marks)

    header = ["setting"] + [(columns or {}).get(h, h) for h in tables]
    body = [[s] + [cell(by_head[h], s) for h in tables] for s in settings]
    body += [[label] + [vals.get(h) for h in tables] for label, vals in (extra or {}).items()]
    lines = [format_grid(title, header, body)]
    lines += [f"[{m}] {reason}" for reason, m in notes.items()]
    if absent:
        lines.append(
            "n/a: the setting is not defined for that head (e.g. raw PQ rows are torus-only)"
        )
    return "\n".join(lines)


def _reasons(leaf) -> list:
    """The distinct reasons (strings) of an ``aggregate_rows`` reason leaf: None, a string shared by
    every seed, or ``{"values": [...]}`` when the seeds differ."""
    if leaf is None:
        return []
    values = leaf.get("values", []) if isinstance(leaf, dict) else [leaf]
    return list(dict.fromkeys(str(v) for v in values if v is not None))


def to_jsonable(obj):
    """numpy / torch scalars and arrays, tuples and non-str keys -> plain JSON types.

    Dicts (keys as ``str``), lists and tuples are converted recursively; numpy and torch arrays
    become nested lists; any other object becomes its ``str()``.

    Args:
        obj: the value to convert.

    Returns:
        A structure of dicts, lists, str, int, float, bool and None.

    Raises:
        ValueError: ``obj`` holds a non-finite Python float. (NaN inside numpy or torch values is
            not checked here; :func:`write_results` refuses it when writing.)
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (np.generic,)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "detach") and hasattr(obj, "tolist"):  # torch.Tensor
        return obj.detach().cpu().tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"refusing to write a non-finite number ({obj}) to JSON")
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def write_results(path, provenance: dict, args, metrics) -> str:
    """Write ``{"provenance", "args", "metrics"}`` as indented JSON (NaN/inf refused).

    Args:
        path: the file to write (str or path-like); replaced if it exists.
        provenance: a dict from :func:`finish` (or :func:`provenance`; ``_t0`` is dropped).
        args: the run's arguments, a dict, an ``argparse.Namespace`` or None.
        metrics: the results, any structure :func:`to_jsonable` converts.

    Returns:
        ``str(path)``.

    Raises:
        ValueError: a value is NaN or inf (nothing is written then).
        TypeError: ``args`` is neither a dict nor an object with ``__dict__``.
        OSError: the file cannot be written.
    """
    if args is not None and not isinstance(args, dict):
        args = vars(args)
    prov = {k: v for k, v in provenance.items() if k != "_t0"}
    doc = {
        "provenance": to_jsonable(prov),
        "args": to_jsonable(args),
        "metrics": to_jsonable(metrics),
    }
    text = json.dumps(doc, indent=2, allow_nan=False)
    with open(path, "w") as f:
        f.write(text + "\n")
    return str(path)
