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

from ._aggregate import aggregate, aggregate_rows, format_mean_std, mean_std
from ._provenance import cpu_model, describe, finish, git_commit, provenance
from ._results import to_jsonable, write_results
from ._tables import format_grid, format_leaf, format_settings_table

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
