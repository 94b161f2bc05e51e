"""Projection head: the usual "backbone -> MLP -> normalise", the normalisation chosen by name."""

import torch
from torch import nn

from .._checks import check_positive_int
from ._mlp_input import run_mlp
from .clifford import Clifford
from .l2p import L2p
from .sphere import Sphere

#: Every accepted spelling (case-insensitive), incl. the paper's legacy names -> canonical name.
PROJECTION_NAMES = {
    "sphere": "sphere", "hyprs": "sphere",
    "torusn": "torusN", "torul": "torusN", "l2p": "torusN",
    "torusc": "torusC", "torus": "torusC", "clifford": "torusC",
}
PROJECTIONS = {"sphere": Sphere, "torusN": L2p, "torusC": Clifford}


def canonical_projection(name) -> str:
    """'sphere', 'torusN' or 'torusC' for any accepted name (l2p, clifford; legacy hyprs, torul...).

    Args:
        name: a key of :data:`PROJECTION_NAMES`, in any case.

    Returns:
        The canonical name: ``"sphere"``, ``"torusN"`` or ``"torusC"``.

    Raises:
        ValueError: ``name`` is not an accepted name (or not a string).
    """
    key = name.lower() if isinstance(name, str) else None
    if key not in PROJECTION_NAMES:
        raise ValueError(f"unknown projection mode {name!r}; use sphere, torusN or torusC "
                         f"(aliases l2p, clifford; legacy hyprs, torul, torus)")
    return PROJECTION_NAMES[key]


def make_projection(name: str, dim: int) -> nn.Module:
    """The normalising layer called ``name``: :class:`Sphere`, :class:`L2p` or :class:`Clifford`.

    Args:
        name: any spelling :func:`canonical_projection` accepts.
        dim: the layer's input width (the output width is ``2 * dim`` for Clifford).

    Returns:
        A new ``Sphere(dim)``, ``L2p(dim)`` or ``Clifford(dim)``.

    Raises:
        ValueError: ``name`` is not an accepted name, or ``dim`` is not valid for that layer.
    """
    return PROJECTIONS[canonical_projection(name)](dim)


class ProjectionHead(nn.Module):
    """x -> [Linear -> BatchNorm -> ReLU] * (n_layers - 1) -> Linear(., dim) -> projection.

    ``dim`` is the width fed to the projection, so the output width is ``dim`` (sphere, l2p) or
    ``2 * dim`` (clifford); read it from ``out_dim``. Input [..., in_features] (a 1-D input is one
    sample); training mode with n_layers >= 2 needs >= 2 samples (BatchNorm).

    Args:
        in_features: width of the backbone features.
        dim: width fed to the projection.
        projection: the normalisation, any name :func:`canonical_projection` accepts.
        hidden_dim: width of the hidden layers.
        n_layers: number of Linear layers (1: a single Linear, no hidden layer).

    Raises:
        ValueError: a width or ``n_layers`` is not a positive integer, ``projection`` is not an
            accepted name, or ``dim`` is odd with ``projection="l2p"``.

    Example:
        >>> head = ProjectionHead(512, 64, projection="l2p")
        >>> head(torch.randn(8, 512)).shape
        torch.Size([8, 64])
    """

    def __init__(self, in_features: int, dim: int, projection: str = "l2p", hidden_dim: int = 512,
                 n_layers: int = 2):
        super().__init__()
        in_features = check_positive_int(in_features, "ProjectionHead in_features")
        dim = check_positive_int(dim, "ProjectionHead dim")
        hidden_dim = check_positive_int(hidden_dim, "ProjectionHead hidden_dim")
        n_layers = check_positive_int(n_layers, "ProjectionHead n_layers")
        self.in_features = in_features
        self.projection = make_projection(projection, dim)
        layers, width = [], in_features
        for _ in range(n_layers - 1):
            layers += [nn.Linear(width, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True)]
            width = hidden_dim
        layers.append(nn.Linear(width, dim))
        self.mlp = nn.Sequential(*layers)
        self.dim = dim
        self.out_dim = self.projection.out_dim
        self.n_circles = self.projection.n_circles
        self.intrinsic_dim = self.projection.intrinsic_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The MLP, then the projection.

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
