"""Deprecated location of the geometry objects: they live in :mod:`torus_plugins.geometry`.

Importing this module warns; its names are those of :mod:`torus_plugins.geometry`.
"""

import warnings

from .._arrays import as_array, scale_rows, unit_rows  # noqa: F401
from ..geometry import (  # noqa: F401
    GEOMETRIES,
    SPHERE,
    TORUS_C,
    TORUS_N,
    CodesGeometry,
    Geometry,
    TorusGeometry,
    clifford_of_turns,
    get_geometry,
    turns_circular_variance,
)

warnings.warn(
    "torus_plugins.metrics.geometries is deprecated: import the geometry objects from "
    "torus_plugins.geometry (or torus_plugins)",
    DeprecationWarning,
    stacklevel=2,
)
