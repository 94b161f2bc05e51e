"""Torus heads: drop-in replacements for ``F.normalize`` that put embeddings on a hypertorus."""

from .clifford import Clifford, TorusC
from .l2p import L2p, TorusN
from .mlp import TorusMLPHead
from .projection import PROJECTION_NAMES, ProjectionHead, canonical_projection, make_projection
from .sphere import Sphere

__all__ = [
    "Sphere",
    "L2p",
    "TorusN",
    "Clifford",
    "TorusC",
    "TorusMLPHead",
    "ProjectionHead",
    "make_projection",
    "canonical_projection",
    "PROJECTION_NAMES",
]
