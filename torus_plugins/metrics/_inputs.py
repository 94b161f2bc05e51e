"""Reading embeddings in one of the package geometries (sphere | torusN | torusC | codes) as numpy."""

import numpy as np
import torch

from ..geometry import to_clifford, to_turns

GEOMETRIES = ("sphere", "torusN", "torusC", "codes")


def check_geometry(geometry: str) -> str:
    if geometry not in GEOMETRIES:
        raise ValueError(f"geometry must be one of {GEOMETRIES}, got {geometry!r}")
    return geometry


def as_array(x, name: str = "embeddings") -> np.ndarray:
    """numpy 2-D array of a numpy array / torch tensor / list; ValueError on NaN/inf or wrong rank."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D [n, d], got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
        raise ValueError(f"{name} contains {int((~np.isfinite(x)).sum())} NaN or inf value(s)")
    return x


def as_labels(y, n: int, name: str = "labels") -> np.ndarray:
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    y = np.asarray(y).reshape(-1) if np.ndim(y) else np.asarray([y])
    if y.shape[0] != n:
        raise ValueError(f"{name} has length {y.shape[0]} but there are {n} embeddings")
    if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
        raise ValueError(f"{name} contains NaN or inf")
    _, inv = np.unique(y, return_inverse=True)
    return inv.astype(np.int64)


def turns_of(x, geometry: str, bits: int = 8) -> np.ndarray:
    """Angles in turns [n, k] of torus embeddings (interleaved Clifford layout) or of b-bit codes."""
    x = as_array(x)
    if geometry == "codes":
        if x.dtype != np.uint8:
            raise TypeError(f"codes must be uint8, got {x.dtype}")
        return x.astype(np.float64) / float(1 << bits)
    if geometry not in ("torusN", "torusC"):
        raise ValueError(f"turns need a torus geometry or codes, got {geometry!r}")
    if x.shape[1] % 2:
        raise ValueError(f"torus embeddings need an even width (cos, sin pairs), got {x.shape[1]}")
    return to_turns(torch.from_numpy(x.astype(np.float64))).numpy()


def clifford_of_turns(turns: np.ndarray) -> np.ndarray:
    """Unit-norm interleaved (cos, sin) layout, each circle scaled by 1/sqrt(k)."""
    return to_clifford(torch.from_numpy(np.asarray(turns, dtype=np.float64))).numpy()


def unit_vectors(x, geometry: str, bits: int = 8) -> np.ndarray:
    """Unit vectors for inner-product search: L2-normalised (sphere) or unit Clifford (tori, codes)."""
    check_geometry(geometry)
    if geometry == "sphere":
        x = as_array(x).astype(np.float64)
        n = np.linalg.norm(x, axis=1, keepdims=True)
        return x / np.maximum(n, 1e-12)
    return clifford_of_turns(turns_of(x, geometry, bits))
