"""torus-plugins: torus embeddings for self-supervised and few-shot pipelines.

Usage::

    import torus_plugins
    head = torus_plugins.L2p(dim=64)          # drop-in for F.normalize, 32 circles
    turns = torus_plugins.to_turns(head(x))   # angles in [0, 1)
"""

from .geometry import (
    SPHERE,
    TORUS_C,
    TORUS_N,
    Geometry,
    get_geometry,
    to_clifford,
    to_turns,
    torus_spectral_gap,
)
from .heads import (
    Clifford,
    L2p,
    ProjectionHead,
    Sphere,
    TorusC,
    TorusMLPHead,
    TorusN,
    make_projection,
)
from .registry import (
    PluginError,
    available,
    available_heads,
    available_losses,
    broken_plugins,
    create_head,
    create_loss,
)
from .validation import get_validation, set_validation, validation_mode

try:  # one version source: pyproject.toml, read from the installed distribution's metadata
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _version

    __version__ = _version("torus-plugins")
except PackageNotFoundError:  # a source tree on sys.path without an install
    __version__ = "0+unknown"

__all__ = [
    "Sphere",
    "L2p",
    "TorusN",
    "Clifford",
    "TorusC",
    "TorusMLPHead",
    "ProjectionHead",
    "make_projection",
    "to_turns",
    "to_clifford",
    "torus_spectral_gap",
    "Geometry",
    "get_geometry",
    "SPHERE",
    "TORUS_N",
    "TORUS_C",
    "available",
    "available_heads",
    "available_losses",
    "create_head",
    "create_loss",
    "broken_plugins",
    "PluginError",
    "set_validation",
    "get_validation",
    "validation_mode",
    "__version__",
]
