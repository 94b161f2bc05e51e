"""Plots (matplotlib, Agg backend); each saves a PNG and returns its path. Per-seed values are drawn
as mean +- std error bars (sample std over seeds); markers only between unrelated settings, never a
joining line.

* ``plot_angles``: several circle pairs' angles in turns, each on the unit square [0,1) x [0,1) (the
  flat torus; opposite edges are identified), coloured by class with class names in the legend.
* ``plot_persistence``: persistence diagram (birth, death) per homology dimension.
* ``plot_p1_vs_bits``: P@1 (or any retrieval score) against bits per vector (log2 x axis): one
  colour per head, one marker per setting family (float, grid, sign, PQ, raw PQ), error bars over
  seeds.
* ``plot_few_shot``: few-shot accuracy against the number of shots (integer ticks), one panel per
  evaluation set so that validation and test sets stay apart, error bars = std.
* ``plot_loss_curves``: training/validation loss per epoch, mean over seeds with a +- std band.
* ``plot_spectrograms``: 2-D dB arrays (e.g. one clip per class) on a grid of panels with one
  colour bar.

Usage: ``plot_angles(z, y, "angles.png", geometry="torusN", class_names=["cat", "dog"])``
"""

import numpy as np

from ._optional import require as _require


def _plt():
    matplotlib = _require("matplotlib", "plot")

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def _class_style(plt, classes):
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    return {c: cmap(i % cmap.N) for i, c in enumerate(classes)}


def plot_angles(
    x,
    labels,
    path,
    geometry: str = "torusN",
    bits: int = 8,
    title: str | None = None,
    n_pairs: int = 3,
    class_names=None,
) -> str:
    """Scatter of circle pairs (turn_0, turn_1), (turn_2, turn_3), ... coloured by label.

    One panel per pair (up to ``n_pairs``), each the unit square (a torus: edges wrap around).

    Args:
        x: torus embeddings in the Clifford layout [n, 2k] or b-bit codes [n, k] (as
            ``geometry`` reads them), k >= 2.
        labels: one class label per row, numbers or strings.
        path: the PNG file to write.
        geometry: how ``x`` is read (``"torusN"``, ``"torusC"``, a code geometry, ...).
        bits: bits per code when ``x`` holds codes.
        title: the figure title (default: the geometry and number of pairs).
        n_pairs: the largest number of panels, >= 1.
        class_names: display names: a list indexed by label, or a dict label -> name; labels it
            lacks are shown as they are.

    Returns:
        ``str(path)``.

    Raises:
        ValueError: ``x`` has fewer than 2 circles, ``n_pairs`` < 1, or ``labels`` does not hold
            one finite label per row (or ``x`` is not a valid input for ``geometry``).
        ModuleNotFoundError: matplotlib is not installed (the message names the ``plot`` extra).
    """
    from .metrics._inputs import as_labels, turns_of

    t = turns_of(x, geometry, bits)
    if t.shape[1] < 2:
        raise ValueError(f"plot_angles: need at least two circles to plot, got {t.shape[1]}")
    if int(n_pairs) < 1:
        raise ValueError(f"plot_angles: n_pairs must be >= 1, got {n_pairs!r}")
    y = as_labels(labels, len(t))
    n = min(int(n_pairs), t.shape[1] // 2)
    plt = _plt()
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n + 1.8, 4.0), squeeze=False)
    classes = np.unique(y)
    colours = _class_style(plt, classes) if len(classes) <= 20 else None

    def name(c):
        if class_names is None:
            return str(c)
        try:
            return str(class_names[c if isinstance(class_names, dict) else int(c)])
        except (KeyError, IndexError, ValueError, TypeError):
            return str(c)

    for p, ax in enumerate(axes[0]):
        i, j = 2 * p, 2 * p + 1
        if colours is not None:
            for c in classes:
                m = y == c
                ax.scatter(t[m, i], t[m, j], color=colours[c], s=6, alpha=0.7, label=name(c))
        else:
            ax.scatter(t[:, i], t[:, j], c=y, cmap="viridis", s=6, alpha=0.7)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_xlabel(f"circle {i} (turns)")
        ax.set_ylabel(f"circle {j} (turns)")
        for s in ax.spines.values():
            s.set_linestyle("--")
    if colours is not None:
        axes[0, -1].legend(
            title="class",
            loc="upper left",
            bbox_to_anchor=(1.02, 1),
            fontsize="small",
            markerscale=2,
        )
    fig.suptitle(
        title or f"{geometry}: angles on the flat torus, {n} circle pair(s) (edges wrap around)"
    )
    return _save(plt, fig, path)


def plot_persistence(diagrams, path, title: str = "persistence diagram") -> str:
    """Birth/death scatter for H0, H1, H2 ... (infinite deaths drawn at the top edge).

    Args:
        diagrams: one array [m, 2] of (birth, death) per homology dimension, in order (ripser's
            ``dgms``); empty arrays are skipped.
        path: the PNG file to write.
        title: the axes title.

    Returns:
        ``str(path)``.

    Raises:
        ModuleNotFoundError: matplotlib is not installed (the message names the ``plot`` extra).
    """
    plt = _plt()
    fin = [d[np.isfinite(d[:, 1])] for d in diagrams if len(d)]
    top = max([float(f[:, 1].max()) for f in fin if len(f)] + [1.0]) * 1.1
    fig, ax = plt.subplots(figsize=(5, 5))
    for dim, d in enumerate(diagrams):
        if len(d) == 0:
            continue
        death = np.where(np.isfinite(d[:, 1]), d[:, 1], top)
        ax.scatter(d[:, 0], death, s=12, label=f"H{dim}")
    ax.plot([0, top], [0, top], "k--", lw=0.8)
    ax.axhline(top, color="gray", lw=0.5, ls=":")
    ax.set_xlim(-0.02 * top, top * 1.02)
    ax.set_ylim(-0.02 * top, top * 1.02)
    ax.set_xlabel("birth")
    ax.set_ylabel("death")
    ax.set_title(title)
    ax.legend(loc="lower right")
    return _save(plt, fig, path)


def _values(v):
    """A float, a list of per-seed floats, or a ``report.aggregate`` leaf -> 1-D finite floats.

    None gives an empty array; non-finite values are dropped."""
    if v is None:
        return np.zeros(0)
    if isinstance(v, dict):
        v = v.get("values", v.get("mean"))
    a = np.asarray(
        v if isinstance(v, (list, tuple, np.ndarray)) else [v], dtype=np.float64
    ).reshape(-1)
    return a[np.isfinite(a)]


def _mean_std(v):
    """(mean, std) of a value as accepted by ``_values``; an aggregate leaf's own mean/std win."""
    if isinstance(v, dict) and "mean" in v:
        return float(v["mean"]), float(v.get("std", 0.0))
    vals = _values(v)
    if vals.size == 0:
        return None, None
    return float(vals.mean()), float(vals.std(ddof=1)) if vals.size > 1 else 0.0


def _family(setting: str) -> str:
    s = str(setting).lower()
    if s in ("none", "float", "float32"):
        return "float"
    if s.startswith("pq"):
        return "PQ"
    if s.startswith("raw pq"):
        return "raw PQ"
    if s in ("sign", "1") or s.startswith("1-bit"):
        return "sign"
    return "grid"


_MARKERS = {"float": "*", "grid": "o", "sign": "s", "PQ": "^", "raw PQ": "v"}


def plot_p1_vs_bits(
    runs: dict,
    path,
    title: str = "P@1 against bits per vector",
    ylabel: str = "P@1",
    metric: str = "precision_at_1",
) -> str:
    """A score against bits per vector (log2 axis), mean +- std error bars per point.

    Colour = head, marker = setting family (float, grid, sign, PQ, raw PQ from the ``setting``
    name); points without a value are skipped.

    Args:
        runs: head name -> points; a point is a quantisation-table row (a dict with
            ``bits_per_vector``, ``metric`` as a float, per-seed list or ``report.aggregate`` leaf,
            optional ``setting``) or a ``(bits, value[s][, setting])`` tuple.
        path: the PNG file to write.
        title: the axes title.
        ylabel: the score's name on the y axis.
        metric: the key of the score in row dicts.

    Returns:
        ``str(path)``.

    Raises:
        ModuleNotFoundError: matplotlib is not installed (the message names the ``plot`` extra).
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    cmap = plt.get_cmap("tab10")
    families = set()
    for h, (name, rows) in enumerate(runs.items()):
        colour = cmap(h % 10)
        for r in rows:
            if isinstance(r, dict):
                b, v, fam = (
                    r.get("bits_per_vector"),
                    r.get(metric),
                    _family(r.get("setting", "grid")),
                )
            else:
                (b, v), fam = r[:2], (_family(r[2]) if len(r) > 2 else "grid")
            if isinstance(b, dict):
                b = b.get("mean")
            mean, std = _mean_std(v)
            if b is None or mean is None:
                continue
            families.add(fam)
            ax.errorbar(
                [b * (1 + 0.04 * (h - (len(runs) - 1) / 2))],
                [mean],
                yerr=[std],
                fmt=_MARKERS[fam],
                color=colour,
                ms=7,
                capsize=3,
                lw=1,
                linestyle="none",
            )
        ax.plot([], [], "o", color=colour, label=name)
    for fam in _MARKERS:
        if fam in families:
            ax.plot([], [], _MARKERS[fam], color="gray", label=fam)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("bits per vector (log2)")
    ax.set_ylabel(f"{ylabel} (mean +- std over seeds)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    return _save(plt, fig, path)


def plot_few_shot(
    results: dict, path, title: str = "few-shot accuracy", ylabel: str = "accuracy"
) -> str:
    """Few-shot accuracy against shots per class, one panel per evaluation set, error bars = std.

    Panels follow the given order (put validation sets first and label them, e.g.
    ``"validation: pow"``); shot ticks are integers.

    Args:
        results: evaluation-set name -> head -> {shots (int): values}, values as in
            :func:`plot_p1_vs_bits` (per-episode or per-seed list, or an aggregate leaf).
        path: the PNG file to write.
        title: the figure title.
        ylabel: the score's name on the y axis.

    Returns:
        ``str(path)``.

    Raises:
        ValueError: ``results`` is empty.
        ModuleNotFoundError: matplotlib is not installed (the message names the ``plot`` extra).
    """
    if not results:
        raise ValueError("plot_few_shot: results is empty")
    plt = _plt()
    n = len(results)
    fig, axes = plt.subplots(1, n, figsize=(3.4 * n + 1.5, 3.8), squeeze=False, sharey=True)
    cmap = plt.get_cmap("tab10")
    heads = list(dict.fromkeys(h for per_head in results.values() for h in per_head))
    for ax, (split, per_head) in zip(axes[0], results.items()):
        shots_all: set[int] = set()
        for h, head in enumerate(heads):
            if head not in per_head:
                continue
            pts = []
            for shots, v in sorted(per_head[head].items(), key=lambda kv: int(kv[0])):
                m, sd = _mean_std(v)
                if m is not None:
                    pts.append((int(shots), m, sd))
            if not pts:
                continue
            shots_all.update(p[0] for p in pts)
            off = 0.08 * (h - (len(heads) - 1) / 2)
            ax.errorbar(
                [p[0] + off for p in pts],
                [p[1] for p in pts],
                yerr=[p[2] for p in pts],
                fmt="o-",
                color=cmap(h % 10),
                capsize=3,
                ms=5,
                label=head,
            )
        ax.set_xticks(sorted(shots_all))
        ax.set_xlabel("shots per class")
        ax.set_title(str(split), fontsize="medium")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0, 0].set_ylabel(f"{ylabel} (mean +- std)")
    handles = [
        plt.Line2D([], [], color=cmap(h % 10), marker="o", label=head)
        for h, head in enumerate(heads)
    ]
    axes[0, -1].legend(handles=handles, loc="lower right", fontsize="small")
    fig.suptitle(title)
    return _save(plt, fig, path)


def plot_loss_curves(
    curves: dict, path, title: str = "training loss", xlabel: str = "epoch", ylabel: str = "loss"
) -> str:
    """Loss per epoch: the mean over the seeds still running at each step, with a +- std band.

    Args:
        curves: name -> per-seed histories (lists of floats, possibly of different lengths when
            early stopping ended some runs sooner), or a single history.
        path: the PNG file to write.
        title: the axes title.
        xlabel: the x axis label.
        ylabel: the y axis label.

    Returns:
        ``str(path)``.

    Raises:
        ModuleNotFoundError: matplotlib is not installed (the message names the ``plot`` extra).
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    cmap = plt.get_cmap("tab10")
    for h, (name, histories) in enumerate(curves.items()):
        if histories and not isinstance(histories[0], (list, tuple, np.ndarray)):
            histories = [histories]
        n = max((len(x) for x in histories), default=0)
        if n == 0:
            continue
        mean, std = np.zeros(n), np.zeros(n)
        for i in range(n):
            col = np.array([x[i] for x in histories if len(x) > i], dtype=np.float64)
            mean[i], std[i] = col.mean(), (col.std(ddof=1) if col.size > 1 else 0.0)
        xs = np.arange(1, n + 1)
        ax.plot(xs, mean, color=cmap(h % 10), label=f"{name} (n={len(histories)})")
        ax.fill_between(xs, mean - std, mean + std, color=cmap(h % 10), alpha=0.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return _save(plt, fig, path)


def plot_spectrograms(
    specs, titles, path, seconds: float, title: str = "", ylabel: str = "band", per_row: int = 4
) -> str:
    """Spectrograms as image panels, ``per_row`` to a row, with one shared colour bar.

    Args:
        specs: [bands, frames] arrays in dB, each of a clip ``seconds`` long.
        titles: one panel title per array.
        path: the PNG file to write.
        seconds: the clips' duration (the x axis).
        title: the figure title.
        ylabel: the y axis label.
        per_row: panels per row.

    Returns:
        ``str(path)``.

    Raises:
        ValueError: ``specs`` is empty, not 2-D, or its length differs from ``titles``'.
        ModuleNotFoundError: matplotlib is not installed (the message names the ``plot`` extra).

    Example:
        >>> import os, tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = os.path.join(folder, "spectrograms.png")
        ...     plot_spectrograms([np.zeros((8, 20))], ["silence"], path, seconds=1.0) == path
        True
    """
    specs = [np.asarray(s, dtype=np.float64) for s in specs]
    if not specs or len(titles) != len(specs) or any(s.ndim != 2 for s in specs):
        raise ValueError(
            f"plot_spectrograms: need one title per 2-D array, got {len(titles)} "
            f"title(s) for arrays of shapes {[s.shape for s in specs]}"
        )
    plt = _plt()
    rows = (len(specs) + per_row - 1) // per_row
    fig, axes = plt.subplots(
        rows, per_row, figsize=(13, 2.8 * rows), squeeze=False, layout="constrained"
    )
    for ax, s, name in zip(axes.flat, specs, titles):
        im = ax.imshow(
            s, origin="lower", aspect="auto", cmap="magma", extent=(0, seconds, 0, s.shape[0])
        )
        ax.set(title=name, xlabel="time (s)", ylabel=ylabel)
    fig.colorbar(im, ax=axes, label="dB")
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return str(path)
