"""Few-shot evaluation: n-way k-shot nearest-prototype episodes in the embedding's own geometry.

One episode draws ``n_way`` classes (default: every class) and ``shot`` random support items per
class; the rest of each class (or ``n_query`` of them) are the queries. A query gets the class of
its nearest prototype:

* sphere:  u = x / ||x||,  P_c = normalise(mean_{i in S_c} u_i),  predict argmax_c u . P_c
  (cosine).
* torusN / torusC (interleaved Clifford layout, any scale):  on every circle j the prototype angle
  is the circular mean  mu_cj = atan2(sum_{i in S_c} sin theta_ij, sum_{i in S_c} cos theta_ij);
  predict argmax_c (1/k) sum_j cos(theta_qj - mu_cj)  (the cosine of unit Clifford vectors).
* Any uniform scale of the embeddings gives the same result (norms are taken after dividing each
  row by a power of two near its largest value: no overflow, no underflow). A row with no direction
  (all zeros on the sphere, a zero (cos, sin) pair on a torus) is refused as in ``retrieval``.
* codes (uint8, ``bits``):  prototype codes = quantize(circular mean of the support angles, bits);
  predict argmin_c sum_j min(d_j, 2**b - d_j),  d_j = (q_j - P_cj) mod 2**b  (circular L1, integers
  only).
* sphere with ``centre=True``: upstream ProtoCLR's rule (L2-normalise, subtract the support mean,
  Euclidean nearest class mean). A translation on the torus leaves circular distances unchanged, so
  it is sphere-only.

Ties go to the smaller class label. Episode accuracy = fraction of queries classified correctly; the
result is the mean and std (ddof 0) over episodes. Episodes depend only on (labels, shot, episodes,
n_way, n_query, seed), so several embeddings of the same items evaluated with the same seed (float,
codes, encoder features) see identical episodes.

Usage::

    from torus_plugins.metrics import few_shot_accuracy
    res = few_shot_accuracy(z, labels, shots=(1, 5), episodes=10, seed=0, geometry="torusN")
    res[1]["mean"], res[1]["std"]                                # 1-shot accuracy over 10 episodes
"""

import numpy as np

from .._arrays import as_array
from .._checks import check_int
from ..codes.quantize import check_bits
from ..geometry import CodesGeometry, Geometry, TorusGeometry, get_geometry
from ._inputs import as_labels

__all__ = ["few_shot_accuracy", "nearest_prototype", "small_classes"]


# ------------------------------------------------------------------------------------------ checks


def _check_geometry(geometry, bits, centre) -> Geometry:
    g = get_geometry(geometry, check_bits(bits))
    if centre and isinstance(g, TorusGeometry):
        raise ValueError(
            f"centre=True applies to geometry='sphere' only (a translation on the torus leaves "
            f"circular distances unchanged), got geometry={g.name!r}"
        )
    return g


def _raw_labels(labels) -> np.ndarray:
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    return np.asarray(labels).reshape(-1)


def small_classes(labels, shot: int) -> dict:
    """{class label: count} of the classes with fewer than ``shot + 1`` items (no query left after
    the support).

    Usage: ``small_classes(y, 5)  # e.g. {'sp_17': 3}`` -- check this before training, not after.

    Args:
        labels: [n] class labels (numbers or strings; numpy array, torch tensor or list).
        shot: support items per class an episode draws.

    Returns:
        ``{label: count}`` of the classes with at most ``shot`` items (labels as Python scalars);
        empty when every class can give ``shot`` support items and a query.
    """
    values, counts = np.unique(_raw_labels(labels), return_counts=True)
    return {v.item(): int(c) for v, c in zip(values, counts) if c < shot + 1}


# ---------------------------------------------------------------------------------- prototype rule


def _prepare(x: np.ndarray, g: Geometry, name: str = "embeddings") -> np.ndarray:
    """Rows ready for prototypes, as the geometry prepares them (unit vectors; codes: the codes).

    Float rows go through the geometry's own checks, as in ``retrieval``: an all-zero row (sphere)
    or zero pair (torus) has no direction and raises ValueError naming ``name``; integer rows of a
    float geometry are read as floats.
    """
    if not isinstance(g, CodesGeometry) and not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    return g.prepare(x, name)


def _nearest(
    s: np.ndarray, sy: np.ndarray, q: np.ndarray, n_classes: int, g: Geometry, centre: bool
) -> np.ndarray:
    """Index in range(n_classes) of the nearest prototype for each prepared query row."""
    onehot = np.eye(n_classes)[sy]
    if centre:
        mu = s.mean(0)
        means = (onehot.T @ (s - mu)) / onehot.sum(0)[:, None]
        return (((q - mu)[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)
    # ties go to the first (smallest) class; a sphere prototype whose support cancels scores 0
    return g.scores(q, g.means(s, onehot)).argmax(1)


def nearest_prototype(
    support, support_labels, queries, geometry="sphere", bits: int = 8, centre: bool = False
) -> np.ndarray:
    """Label of the nearest class prototype (rules in the module docstring) for each query row.

    Usage: ``pred = nearest_prototype(z[support], y[support], z[query], geometry="torusN")``

    Args:
        support: [ns, d] float embeddings, or [ns, k] integer codes for ``geometry="codes"``.
        support_labels: [ns] class labels (numbers or strings).
        queries: [nq, d] rows of the same geometry and width.
        geometry: sphere | torusN | torusC | codes, or a
            :class:`~torus_plugins.geometry.Geometry`.
        bits: code width for ``geometry="codes"``, 1..8.
        centre: ProtoCLR's centred Euclidean rule (sphere only).

    Returns:
        [nq] array of the predicted labels (values of ``support_labels``); ties go to the smaller
        label.

    Raises:
        TypeError: ``geometry`` is neither a name nor a Geometry, or a dtype the geometry does not
            read (floats for codes).
        ValueError: an unknown geometry, ``bits`` not in 1..8, ``centre`` on a torus, bad rows
            (not 2-D, empty, NaN or inf, a zero row or pair, a code out of range), widths that
            differ, or labels of the wrong length or with NaN.
    """
    g = _check_geometry(geometry, bits, centre)
    s, q = as_array(support, "support"), as_array(queries, "queries")
    if s.shape[1] != q.shape[1]:
        raise ValueError(
            f"support and queries must have the same width, got {s.shape[1]} and {q.shape[1]}"
        )
    raw = _raw_labels(support_labels)
    sy = as_labels(raw, len(s), "support_labels")
    classes = np.unique(raw)
    s, q = _prepare(s, g, "support"), _prepare(q, g, "queries")
    idx = _nearest(s, sy, q, len(classes), g, centre)
    return classes[idx]


# ---------------------------------------------------------------------------------------- episodes


def _sample(by_class, shot, n_way, n_query, rng):
    """(support indices, query indices) of one episode."""
    chosen = (
        sorted(rng.choice(len(by_class), size=n_way, replace=False))
        if n_way
        else range(len(by_class))
    )
    support, query = [], []
    for c in chosen:
        idx = rng.permutation(by_class[c])
        support.append(idx[:shot])
        query.append(idx[shot:] if n_query is None else idx[shot : shot + n_query])
    return np.concatenate(support), np.concatenate(query)


def few_shot_accuracy(
    embeddings,
    labels,
    shots=(1, 5),
    episodes: int = 10,
    seed: int = 0,
    geometry="sphere",
    bits: int = 8,
    n_way=None,
    n_query=None,
    centre: bool = False,
    return_episodes: bool = False,
) -> dict:
    """Nearest-prototype few-shot accuracy: ``{shot: {"mean", "std", "accuracies"}}`` over
    ``episodes``.

    Usage: ``few_shot_accuracy(z, y, shots=(1, 5), geometry="torusN")[5]["mean"]``

    Args:
        embeddings: [n, d] float (sphere | torusN | torusC) or uint8 codes (geometry="codes",
            ``bits``).
        labels: [n] class labels (numbers or strings), at least 2 classes.
        shots: a support size, or a non-empty sequence of them (integers >= 1).
        episodes: episodes per shot, an integer >= 1.
        seed: seed of the episodes, an integer >= 0 (episode draws depend on labels and seed only).
        geometry: sphere | torusN | torusC | codes, or a
            :class:`~torus_plugins.geometry.Geometry`.
        bits: code width for ``geometry="codes"``, 1..8.
        n_way: classes per episode, an integer in [2, number of classes] (None: all).
        n_query: queries per class, an integer >= 1 (None: all items left after the support).
        centre: ProtoCLR's centred Euclidean rule (sphere only).
        return_episodes: also return ``"episodes"``, a list of (support indices, query indices)
            per episode.

    Returns:
        ``{shot: {"mean": float, "std": float, "accuracies": [float per episode]}}`` (plus
        ``"episodes"`` with ``return_episodes``); std has ddof 0.

    Raises:
        TypeError: ``geometry`` is neither a name nor a Geometry, a dtype the geometry does not
            read, or ``shots``, ``episodes``, ``seed``, ``n_way``, ``n_query`` not integers.
        ValueError: an unknown geometry, ``bits`` not in 1..8, ``centre`` on a torus, bad rows
            (not 2-D, empty, NaN or inf, a zero row or pair, a code out of range), labels of the
            wrong length or with NaN, no shots, a number out of range, fewer than 2 classes, or
            classes with fewer than max(shots) + (n_query or 1) items (named in the message).
    """
    g = _check_geometry(geometry, bits, centre)
    x = as_array(embeddings, "embeddings")
    raw = _raw_labels(labels)
    y = as_labels(raw, len(x), "labels")
    shots = (shots,) if isinstance(shots, (int, np.integer)) else tuple(shots)
    if not shots:
        raise ValueError("shots must name at least one shot count, got an empty sequence")
    shots = tuple(check_int(s, "each shot", 1) for s in shots)
    episodes, seed = check_int(episodes, "episodes", 1), check_int(seed, "seed", 0)
    n_query = None if n_query is None else check_int(n_query, "n_query", 1)
    n_classes = int(y.max()) + 1
    if n_classes < 2:
        raise ValueError(f"few-shot evaluation needs at least 2 classes, labels have {n_classes}")
    if n_way is not None and not 2 <= check_int(n_way, "n_way", 2) <= n_classes:
        raise ValueError(
            f"n_way must be between 2 and the number of classes ({n_classes}), got {n_way!r}"
        )
    need = max(shots) + (n_query or 1)
    small = small_classes(raw, need - 1)
    if small:
        raise ValueError(
            f"{len(small)} class(es) have fewer than {need} items (max shot {max(shots)} + "
            f"{n_query or 1} query), as {{label: count}}: {small}; drop them first (small_classes)"
        )
    x = _prepare(x, g)
    by_class = [np.flatnonzero(y == c) for c in range(n_classes)]
    out = {}
    for shot in shots:
        rng = np.random.default_rng([seed, shot])
        accs, drawn = [], []
        for _ in range(episodes):
            support, query = _sample(by_class, shot, n_way, n_query, rng)
            classes, sy = np.unique(y[support], return_inverse=True)
            pred = classes[_nearest(x[support], sy, x[query], len(classes), g, centre)]
            accs.append(float((pred == y[query]).mean()))
            drawn.append((support.tolist(), query.tolist()))
        out[shot] = {"mean": float(np.mean(accs)), "std": float(np.std(accs)), "accuracies": accs}
        if return_episodes:
            out[shot]["episodes"] = drawn
    return out
