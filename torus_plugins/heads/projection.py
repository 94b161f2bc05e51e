"""Projection head: the usual "backbone -> MLP -> normalise", with the normalisation chosen by name."""

import torch
from torch import nn

from .._checks import check_positive_int
from ._mlp_input import run_mlp
from .clifford import Clifford
from .l2p import L2p
from .sphere import Sphere

#: Every accepted spelling (case-insensitive), incl. the paper's legacy names -> canonical projection name.
PROJECTION_NAMES = {
    "sphere": "sphere", "hyprs": "sphere",
    "torusn": "torusN", "torul": "torusN", "l2p": "torusN",
    "torusc": "torusC", "torus": "torusC", "clifford": "torusC",
}
PROJECTIONS = {"sphere": Sphere, "torusN": L2p, "torusC": Clifford}


def canonical_projection(name) -> str:
    """'sphere', 'torusN' or 'torusC' for any accepted name (l2p, clifford; legacy hyprs, torul, torus)."""
    key = name.lower() if isinstance(name, str) else None
    if key not in PROJECTION_NAMES:
        raise ValueError(f"unknown projection mode {name!r}; use sphere, torusN or torusC "
                         f"(aliases l2p, clifford; legacy hyprs, torul, torus)")
    return PROJECTION_NAMES[key]


def make_projection(name: str, dim: int) -> nn.Module:
    """The normalising layer called ``name`` (any spelling :func:`canonical_projection` accepts)."""
    return PROJECTIONS[canonical_projection(name)](dim)


class ProjectionHead(nn.Module):
    """x -> [Linear -> BatchNorm -> ReLU] * (n_layers - 1) -> Linear(., dim) -> projection.

    ``dim`` is the width fed to the projection, so the output width is ``dim`` (sphere, l2p) or ``2 * dim``
    (clifford); read it from ``out_dim``. Input [..., in_features] (a 1-D input is one sample); training mode
    with n_layers >= 2 needs >= 2 samples (BatchNorm).

    Usage: ``head = ProjectionHead(512, 64, projection="l2p")``; ``z = head(backbone(x))``
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
        return self.projection(run_mlp(self.mlp, x, self.in_features, "ProjectionHead"))
