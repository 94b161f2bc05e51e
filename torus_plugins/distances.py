"""Deprecated location of the pml distances: import them from :mod:`torus_plugins.adapters.pml`.

Importing this module warns; ``CliffordCosine`` and ``ToroidalDistance`` are the adapter's classes.
"""

import warnings

from .adapters.pml import CliffordCosine, ToroidalDistance

__all__ = ["CliffordCosine", "ToroidalDistance"]

warnings.warn(
    "torus_plugins.distances is deprecated: import CliffordCosine and ToroidalDistance "
    "from torus_plugins.adapters.pml",
    DeprecationWarning,
    stacklevel=2,
)
