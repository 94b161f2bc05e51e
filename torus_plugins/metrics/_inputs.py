"""Labels as class indices, and angles of torus embeddings or codes (read by their geometry
object)."""

import numpy as np

from ..geometry import get_geometry


def as_labels(y, n: int, name: str = "labels") -> np.ndarray:
    """Labels of n points as int64 class indices 0..C-1; ValueError on wrong length, NaN or a
    non-1-D shape.

    Index c is the rank of the label among the sorted distinct labels.

    Args:
        y: n labels (numbers or strings; numpy array, torch tensor or list; [n, 1] accepted).
        n: number of embeddings they label.
        name: the argument's name, for messages.

    Returns:
        int64 [n] class indices.

    Raises:
        ValueError: None, more than one non-trivial dimension, a length other than n, an object
            dtype, or NaN / inf.
    """
    if y is None:
        raise ValueError(f"{name} are required (one label per embedding), got None")
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim > 1 and sum(s > 1 for s in y.shape) > 1:
        raise ValueError(f"{name} must be 1-D (one label per embedding), got shape {y.shape}")
    y = y.reshape(-1)
    if y.shape[0] != n:
        raise ValueError(f"{name} has length {y.shape[0]} but there are {n} embeddings")
    if y.dtype == object:
        raise ValueError(f"{name} must be numbers or strings, got dtype object")
    if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
        raise ValueError(f"{name} contains NaN or inf; expected finite class labels")
    _, inv = np.unique(y, return_inverse=True)
    return inv.reshape(-1).astype(np.int64)


def turns_of(x, geometry, bits: int = 8) -> np.ndarray:
    """Angles in turns [n, k] of torus embeddings (interleaved Clifford layout) or of b-bit
    codes.

    Args:
        x: [n, 2k] float Clifford rows, or [n, k] integer codes.
        geometry: torusN | torusC | codes, or a :class:`~torus_plugins.geometry.Geometry`.
        bits: code width for ``geometry="codes"``.

    Returns:
        float64 [n, k] angles in [0, 1).

    Raises:
        TypeError: ``geometry`` neither a name nor a Geometry, or a dtype it does not read.
        ValueError: an unknown or angle-less geometry (sphere), or rows it refuses.
    """
    return get_geometry(geometry, bits).turns(x)
