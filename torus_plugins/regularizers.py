"""Deprecated location of the pml regulariser: import it from :mod:`torus_plugins.adapters.pml`.

Importing this module warns; ``KoLeoRegularizer`` is the adapter's class.
"""

import warnings

from .adapters.pml import KoLeoRegularizer

__all__ = ["KoLeoRegularizer"]

warnings.warn(
    "torus_plugins.regularizers is deprecated: import KoLeoRegularizer from "
    "torus_plugins.adapters.pml",
    DeprecationWarning,
    stacklevel=2,
)
