"""Argument checks shared by the search modules, and the one way they warn about deprecated
calls."""

import warnings

import numpy as np

#: Geometries whose codes an index may hold (the name is recorded, e.g. in index files).
GEOMETRIES = ("torusN", "torusC", "sphere")


def check_int(value, name: str, lo: int = 1, hi: int | None = None, none_ok: bool = False):
    """``value`` as int; ValueError naming ``name``, the expected range and the actual value."""
    if value is None and none_ok:
        return None
    ok = not isinstance(value, bool) and isinstance(value, (int, np.integer))
    if not ok or value < lo or (hi is not None and value > hi):
        rng = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise ValueError(
            f"{name} must be an integer {rng}{' or None' if none_ok else ''}, got {value!r}"
        )
    return int(value)


def check_geometry(geometry) -> str:
    """``geometry`` if it names a known geometry; ValueError naming the known ones otherwise."""
    if not isinstance(geometry, str) or geometry not in GEOMETRIES:
        raise ValueError(
            f"geometry must be one of {', '.join(map(repr, GEOMETRIES))}, got {geometry!r}"
        )
    return geometry


def deprecated(message: str, stacklevel: int = 3) -> None:
    """A DeprecationWarning pointing at the caller's caller (the user's line)."""
    warnings.warn(message, DeprecationWarning, stacklevel=stacklevel)
