"""Projection head: the usual "backbone -> MLP -> normalise", with the normalisation chosen by
geometry."""

import torch
from torch import nn

from .._checks import check_positive_int
from .._deprecation import deprecated_alias, renamed_keywords
from ..geometry import GEOMETRY_NAMES, embedding_geometry
from ._mlp_input import run_mlp
from .clifford import Clifford
from .l2p import L2p
from .sphere import Sphere

#: 0.1.0's table of head names (sphere/torusN/torusC and their aliases); the geometry names of
#: :data:`torus_plugins.geometry.GEOMETRY_NAMES` without "codes". Kept for 0.1.0 users.
PROJECTION_NAMES = {alias: name for alias, name in GEOMETRY_NAMES.items() if name != "codes"}
#: Geometry name -> the normalising layer that produces it.
PROJECTIONS = {"sphere": Sphere, "torusN": L2p, "torusC": Clifford}


def make_projection(geometry, dim: int) -> nn.Module:
    """Sphere(dim), L2p(dim) or Clifford(dim): the normalising layer of ``geometry``.

    Args:
        geometry: "sphere", "torusN" or "torusC" (aliases l2p, clifford; legacy hyprs, torul, torus;
            any case), or the geometry object.
        dim: the layer's input width.

    Returns:
        The layer (output width ``dim``; Clifford: ``2 * dim``).

    Raises:
        TypeError: ``geometry`` is neither a string nor a Geometry; ``dim`` not an int.
        ValueError: an unknown name, "codes", or ``dim`` < 1 (L2p: an odd ``dim``).
    """
    return PROJECTIONS[embedding_geometry(geometry).name](dim)


def _canonical_name(name) -> str:
    """The canonical name of an embedding geometry.

    Args:
        name: "sphere", "torusN" or "torusC" (aliases l2p, clifford; legacy hyprs, torul, torus;
            any case), or the geometry object.

    Returns:
        ``"sphere"``, ``"torusN"`` or ``"torusC"``.

    Raises:
        TypeError: ``name`` is neither a string nor a Geometry.
        ValueError: an unknown name, or "codes".
    """
    return embedding_geometry(name).name


#: 0.1.0's name normaliser: use ``torus_plugins.geometry.get_geometry(name).name``.
canonical_projection = deprecated_alias(_canonical_name, "canonical_projection")


class ProjectionHead(nn.Module):
    """x -> [Linear -> BatchNorm -> ReLU] * (n_layers - 1) -> Linear(., dim) -> normalise(geometry).

    ``dim`` is the width fed to the normalising layer, so the output width is ``dim`` (sphere,
    torusN) or ``2 * dim`` (torusC); read it from ``out_dim``. Input [..., in_features] (a 1-D input
    is one sample); training mode with n_layers >= 2 needs >= 2 samples (BatchNorm).

    Args:
        in_features: width of the backbone features.
        dim: width fed to the normalising layer.
        geometry: "sphere", "torusN" (l2p) or "torusC" (clifford), any case, or a Geometry
            object. The 0.1.0 keyword ``projection=`` still works, with a DeprecationWarning.
        hidden_dim: width of the hidden layers.
        n_layers: number of Linear layers (1: a single Linear, no hidden layer).

    Raises:
        TypeError: a width or ``n_layers`` is not an integer, or ``geometry`` is neither a string
            nor a Geometry.
        ValueError: a width or ``n_layers`` is < 1, ``geometry`` is an unknown name, or ``dim``
            is odd with ``geometry="torusN"``.

    Example:
        >>> head = ProjectionHead(512, 64, geometry="torusN")
        >>> head(torch.randn(8, 512)).shape
        torch.Size([8, 64])
    """

    @renamed_keywords(projection="geometry")
    def __init__(
        self,
        in_features: int,
        dim: int,
        geometry="torusN",
        hidden_dim: int = 512,
        n_layers: int = 2,
    ):
        super().__init__()
        in_features = check_positive_int(in_features, "ProjectionHead in_features")
        dim = check_positive_int(dim, "ProjectionHead dim")
        hidden_dim = check_positive_int(hidden_dim, "ProjectionHead hidden_dim")
        n_layers = check_positive_int(n_layers, "ProjectionHead n_layers")
        self.in_features = in_features
        self.geometry = embedding_geometry(geometry).name
        self.projection = make_projection(self.geometry, dim)
        layers, width = [], in_features
        for _ in range(n_layers - 1):
            layers += [
                nn.Linear(width, hidden_dim),
                nn.BatchNorm1d(hidden_dim),
                nn.ReLU(inplace=True),
            ]
            width = hidden_dim
        layers.append(nn.Linear(width, dim))
        self.mlp = nn.Sequential(*layers)
        self.dim = dim
        self.out_dim = self.projection.out_dim
        self.n_circles = self.projection.n_circles
        self.intrinsic_dim = self.projection.intrinsic_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The MLP, then the normalising layer of the head's geometry.

        Args:
            x: floating-point tensor of shape [..., in_features] (1-D: one sample).

        Returns:
            A tensor of shape [..., out_dim].

        Raises:
            TypeError: ``x`` is not a floating-point tensor.
            ValueError: its last dimension is not ``in_features``, or the head is in training
                mode and ``x`` holds fewer than 2 samples (BatchNorm statistics).
        """
        return self.projection(run_mlp(self.mlp, x, self.in_features, "ProjectionHead"))
