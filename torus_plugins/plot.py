"""Plots (matplotlib, Agg backend); each saves a PNG and returns its path.

* ``plot_angles``: first two circles' angles in turns on the unit square [0,1) x [0,1) (the flat torus; opposite
  edges are identified), coloured by class.
* ``plot_persistence``: persistence diagram (birth, death) per homology dimension.
* ``plot_p1_vs_bits``: P@1 against bits per vector (log2 x axis) for several runs.

Usage: ``plot_angles(z, y, "angles.png", geometry="torusN")``
"""

import numpy as np

from ._optional import require as _require


def _plt():
    matplotlib = _require("matplotlib", "plot")

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_angles(x, labels, path, geometry: str = "torusN", bits: int = 8, title: str | None = None) -> str:
    """Scatter of (turn_0, turn_1) coloured by label on the unit square (torus with wrap-around)."""
    from .metrics._inputs import as_labels, turns_of

    t = turns_of(x, geometry, bits)
    if t.shape[1] < 2:
        raise ValueError(f"need at least two circles to plot, got {t.shape[1]}")
    y = as_labels(labels, len(t))
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.8, 5))
    classes = np.unique(y)
    if len(classes) <= 20:
        cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
        for i, c in enumerate(classes):
            m = y == c
            ax.scatter(t[m, 0], t[m, 1], color=cmap(i), s=8, alpha=0.8, label=str(c))
        ax.legend(title="class", loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small", markerscale=2)
    else:
        ax.scatter(t[:, 0], t[:, 1], c=y, cmap="viridis", s=8, alpha=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("circle 0 (turns)")
    ax.set_ylabel("circle 1 (turns)")
    ax.set_title(title or "angles on the flat torus (edges wrap around)")
    for s in ax.spines.values():
        s.set_linestyle("--")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def plot_persistence(diagrams, path, title: str = "persistence diagram") -> str:
    """Birth/death scatter for H0, H1, H2 ... (infinite deaths drawn at the top edge)."""
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
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def plot_p1_vs_bits(runs: dict, path, title: str = "P@1 against bits per vector") -> str:
    """``runs``: name -> list of quantisation-table rows (or (bits, p1) pairs); rows without P@1 are skipped."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, rows in runs.items():
        pts = []
        for r in rows:
            b, p = (r["bits_per_vector"], r["precision_at_1"]) if isinstance(r, dict) else r
            if b is not None and p is not None:
                pts.append((b, p))
        pts.sort()
        if pts:
            ax.plot([b for b, _ in pts], [p for _, p in pts], "o-", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("bits per vector")
    ax.set_ylabel("P@1")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)
