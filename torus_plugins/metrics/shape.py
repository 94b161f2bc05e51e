"""Shape of an embedding cloud: all shape metrics in one dict, and the torus score.

Every metric is invariant to rotation, translation and scale of the cloud, and checks its input
(``ValueError`` naming the argument, expected and actual value; never NaN or inf). kNN: faiss, see
``knn.py``.

Scale: each metric works on the cloud centred and divided by a power of two near its extent
(``knn.centred_unit``), so clouds of any finite scale (tested from 1e-200 to 1e200) give the same
numbers (bit for bit under a power-of-two scale); only what is stated in input units
(``threshold``, the persistence diagrams, ``betti_scale``) scales with the cloud.

* effective rank, intrinsic dimension: ``dimension.py``.
* Betti numbers (landmark persistent homology): ``persistence.py``.
* spectral gap and spectral gap ratio (kNN-graph Laplacian): ``spectral.py``.
* torus score = 0.5 * [betti == (1, 2, 1)] + 0.5 * max(0, 1 - |1 - spectral gap ratio|).

Each module states how it differs from jepa-torus' ``src/analysis.py``. The metrics of those
modules are re-exported here.

Needs: numpy, scipy (kNN-graph Laplacian, MST, distances), faiss (kNN: ``knn.py``), ripser (Betti
numbers only; imported on first use, so ``shape_metrics(z, topology=False)`` runs without it).

Usage: ``shape_metrics(z, seed=0)``  # dict of all of the above
"""

from typing import Any

import numpy as np

from .._optional import require_all
from .._progress import check_progress
from ..geometry import torus_spectral_gap
from .dimension import effective_rank, intrinsic_dimension
from .knn import as_cloud, check_k
from .knn import subsample as take_subsample
from .persistence import (
    CAP,
    MIN_LIFE,
    SPACING_QUANTILE,
    TOPOLOGY_NEEDS,
    bar_limits,
    betti_numbers,
    count_bars,
    greedy_landmarks,
    persistence,
)
from .spectral import (
    GRAPH_NEEDS,
    _gap_ratio,
    _graph_laplacian,
    _second_eigenvalue,
    reference_torus_gap,
    spectral_gap,
    spectral_gap_ratio,
)

__all__ = [
    "shape_metrics",
    "torus_score",
    "TORUS_BETTI",
    "effective_rank",
    "intrinsic_dimension",
    "betti_numbers",
    "persistence",
    "count_bars",
    "bar_limits",
    "greedy_landmarks",
    "MIN_LIFE",
    "CAP",
    "SPACING_QUANTILE",
    "TOPOLOGY_NEEDS",
    "spectral_gap",
    "spectral_gap_ratio",
    "reference_torus_gap",
    "GRAPH_NEEDS",
]

TORUS_BETTI = (1, 2, 1)


def torus_score(betti, gap_ratio: float) -> float:
    """0.5 * [betti == (1,2,1)] + 0.5 * max(0, 1 - |1 - gap_ratio|), in [0, 1].

    Usage: ``torus_score((1, 2, 1), 0.97)``  # 0.985

    Args:
        betti: Betti numbers (b0, b1, b2, ...), a tuple, list or array of at least 3.
        gap_ratio: the spectral gap ratio, a finite number >= 0.

    Returns:
        The score as a float in [0, 1].

    Raises:
        TypeError: ``gap_ratio`` is not a number (bools refused), ``betti`` not a sequence.
        ValueError: ``gap_ratio`` negative, NaN or inf; fewer than 3 Betti numbers.
    """
    if isinstance(gap_ratio, bool) or not isinstance(gap_ratio, (int, float, np.number)):
        raise TypeError(
            f"gap_ratio must be a finite number >= 0, got {type(gap_ratio).__name__} {gap_ratio!r}"
        )
    if not np.isfinite(gap_ratio) or gap_ratio < 0:
        raise ValueError(f"gap_ratio must be a finite number >= 0, got {gap_ratio!r}")
    if not isinstance(betti, (tuple, list, np.ndarray)):
        raise TypeError(
            f"betti must be a sequence of Betti numbers (b0, b1, b2), got {type(betti).__name__}"
        )
    if len(betti) < 3:
        raise ValueError(
            f"betti must be a sequence of at least 3 Betti numbers (b0, b1, b2), got {betti!r}"
        )
    match = float(tuple(int(b) for b in betti[:3]) == TORUS_BETTI)
    return 0.5 * match + 0.5 * max(0.0, 1.0 - abs(1.0 - gap_ratio))


def shape_metrics(
    x,
    grid_size: int = 12,
    k_id: int = 10,
    k_graph: int = 15,
    threshold: float | None = None,
    betti_subsample: int = 300,
    seed: int = 0,
    topology: bool = True,
    graph_subsample: int | None = 1000,
    id_subsample: int | None = 2000,
    progress=None,
) -> dict:
    """All shape metrics of one cloud; ``topology=False`` skips ripser (betti = None, torus score
    None). ``progress``: the elapsed time of ripser on stderr (None: when stderr is a terminal; True
    / False).

    Usage: ``shape_metrics(z, seed=0)["torus_score"]``

    Args:
        x: [n, d] point cloud (numpy array, torch tensor or nested list).
        grid_size: N of the N x N grid whose gap jepa-torus divides by (an integer >= 3).
        k_id: neighbours of :func:`intrinsic_dimension`.
        k_graph: neighbours of the kNN graph of the spectral gap.
        threshold: absolute lifetime (input units) for the Betti numbers instead of the relative
            rule (jepa-torus'), or None.
        betti_subsample: number of greedy landmarks for the Betti numbers.
        seed: seed of the subsamples and landmarks.
        topology: compute the Betti numbers and the torus score (needs ripser).
        graph_subsample: rows of the spectral-gap graph (None: all).
        id_subsample: rows of the intrinsic dimension (None: all).
        progress: the elapsed time of ripser on stderr (None: when stderr is a terminal; True /
            False).

    Returns:
        A dict with keys effective_rank, intrinsic_dimension, spectral_gap, spectral_gap_ratio (vs
        a reference torus sample), spectral_gap_grid_ratio (jepa-torus': lambda_2 /
        torus_spectral_gap(grid_size)), betti, diagrams, betti_scale (landmark spacing s) and
        torus_score (the last four None without ``topology``).

    Raises:
        ModuleNotFoundError: faiss, scipy or (with ``topology``) ripser is not installed.
        TypeError: ``progress`` not None or a bool, or a non-integer ``k_id``, ``k_graph``,
            ``grid_size``.
        ValueError: as the metrics above (a bad cloud, a count out of range, a bad threshold).
    """
    require_all(GRAPH_NEEDS + (TOPOLOGY_NEEDS if topology else []), "shape_metrics")
    check_progress(progress)
    x = as_cloud(x)
    out: dict[str, Any] = {
        "effective_rank": effective_rank(x),
        "intrinsic_dimension": intrinsic_dimension(x, k_id, id_subsample, seed),
    }
    xg = take_subsample(x, graph_subsample, seed)
    k_graph = check_k(k_graph, len(xg), "k_graph")
    gap = _second_eigenvalue(_graph_laplacian(xg, k_graph))
    ratio = _gap_ratio(gap, len(xg), k_graph, "k_graph")
    out.update(
        spectral_gap=gap,
        spectral_gap_ratio=ratio,
        spectral_gap_grid_ratio=gap / torus_spectral_gap(grid_size),
    )
    if topology:
        dgms, spacing = persistence(x, betti_subsample, seed, 2, threshold, progress=progress)
        betti = count_bars(dgms, spacing, threshold)
        out.update(
            betti=betti, diagrams=dgms, betti_scale=spacing, torus_score=torus_score(betti, ratio)
        )
    else:
        out.update(betti=None, diagrams=None, betti_scale=None, torus_score=None)
    return out
