"""S1 x ... x S1 head (jepa-torus V2): an MLP predicts k angles, placed on the torus in the Clifford
layout."""

import torch
from torch import nn

from .._checks import check_choice, check_positive_int
from ._mlp_input import run_mlp
from .clifford import Clifford

ANGLE_MAPS = ("sigmoid", "turns")


class TorusMLPHead(nn.Module):
    """x -> Linear -> BatchNorm -> ReLU -> Linear(hidden, k) -> angle map -> Clifford [..., 2k].

    angle_map:

    * ``"sigmoid"``: turn = sigmoid(v) (jepa-torus: theta = 2*pi*sigmoid(v)). Reaching the seam at
      turn 0 == 1 needs v -> +-inf, so the head squashes the circle's seam and points avoid it.
    * ``"turns"``: turn = v, read with period 1. Seam-free: every angle is reached at finite v with
      a non-vanishing gradient.

    jepa-torus V2 is ``TorusMLPHead(512, n_circles=2, hidden_dim=128, angle_map="sigmoid")``.
    Input [..., in_features] (a 1-D input is one sample); training mode needs >= 2 samples
    (BatchNorm).

    Args:
        in_features: width of the input features.
        n_circles: k, the number of predicted angles; the output has width 2k.
        hidden_dim: width of the hidden layer.
        angle_map: ``"turns"`` or ``"sigmoid"`` (above).

    Raises:
        ValueError: ``in_features``, ``n_circles`` or ``hidden_dim`` is not a positive integer, or
            ``angle_map`` is not one of :data:`ANGLE_MAPS`.

    Example:
        >>> head = TorusMLPHead(512, n_circles=2)
        >>> head(torch.randn(8, 512)).shape             # [8, 512] -> [8, 4] on S1 x S1
        torch.Size([8, 4])
    """

    def __init__(
        self, in_features: int, n_circles: int = 2, hidden_dim: int = 128, angle_map: str = "turns"
    ):
        super().__init__()
        in_features = check_positive_int(in_features, "TorusMLPHead in_features")
        n_circles = check_positive_int(n_circles, "TorusMLPHead n_circles")
        hidden_dim = check_positive_int(hidden_dim, "TorusMLPHead hidden_dim")
        check_choice(angle_map, "TorusMLPHead angle_map", ANGLE_MAPS)
        self.in_features = in_features
        self.angle_map = angle_map
        self.out_dim = 2 * n_circles
        self.n_circles = n_circles
        self.intrinsic_dim = n_circles
        self.mlp = nn.Sequential(
            nn.Linear(in_features, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, n_circles),
        )
        self.torus = Clifford(n_circles)

    def turns(self, x: torch.Tensor) -> torch.Tensor:
        """The k predicted angles in turns (not reduced mod 1 for ``"turns"``; the torus does that).

        Args:
            x: floating-point tensor of shape [..., in_features] (1-D: one sample).

        Returns:
            A tensor of shape [..., n_circles]: in (0, 1) for ``"sigmoid"``, any real for
            ``"turns"``.

        Raises:
            TypeError: ``x`` is not a floating-point tensor.
            ValueError: its last dimension is not ``in_features``, or the head is in training
                mode and ``x`` holds fewer than 2 samples (BatchNorm statistics).
        """
        v = run_mlp(self.mlp, x, self.in_features, "TorusMLPHead")
        return torch.sigmoid(v) if self.angle_map == "sigmoid" else v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The predicted angles placed on the torus: (cos, sin) pairs / sqrt(k).

        Args:
            x: floating-point tensor of shape [..., in_features] (1-D: one sample).

        Returns:
            A tensor of shape [..., 2 * n_circles] of unit norm.

        Raises:
            TypeError: ``x`` is not a floating-point tensor.
            ValueError: its last dimension is not ``in_features``, or the head is in training
                mode and ``x`` holds fewer than 2 samples (BatchNorm statistics).
        """
        return self.torus(self.turns(x))
