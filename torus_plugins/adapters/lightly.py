"""lightly: torus projection heads in lightly's heads API, plus torus-aware VICReg and KoLeo losses.

Usage (a lightly SimCLR / VICReg script; change the head line, keep the rest)::

    from torus_plugins.adapters.lightly import TorusSimCLRProjectionHead, TorusVICRegProjectionHead
    self.projection_head = TorusSimCLRProjectionHead(512, 512, 128, projection="torusN")  # was SimCLRProjectionHead
    criterion = lightly.loss.NTXentLoss()            # unchanged: the head output is unit-norm, lightly re-normalises
                                                     # it to itself

    from torus_plugins.adapters.lightly import VICRegLoss, KoLeoLoss   # torus_plugins' own, re-exported

The heads subclass ``lightly.models.modules.heads.ProjectionHead`` (same ``blocks`` API, same ``layers``
attribute) and end in a torus projection (``projection`` = sphere, torusN or torusC; legacy hyprs/torul/torus).
For torusC the last block's output is read as turns and the head's output width is ``2 * output_dim``
(``head.out_dim``). :func:`torus_head` puts the projection after any existing lightly head.
"""

import torch
from torch import nn

from torus_plugins._optional import require
from torus_plugins.heads import make_projection

from .normalize import canonical_mode

_lightly_heads = require("lightly.models.modules.heads", "lightly")

__all__ = ["TorusProjectionHead", "TorusSimCLRProjectionHead", "TorusVICRegProjectionHead", "TorusHead",
           "torus_head", "VICRegLoss", "KoLeoLoss"]


def _last_width(blocks) -> int:
    if not blocks:
        raise ValueError("a projection head needs at least one block")
    return int(blocks[-1][1])


class TorusProjectionHead(_lightly_heads.ProjectionHead):
    """lightly's ``ProjectionHead(blocks)`` followed by a torus projection of the last block's output."""

    def __init__(self, blocks, projection: str = "torusN"):
        super().__init__(blocks)
        self._init_torus(projection, _last_width(blocks))

    def _init_torus(self, projection, width):
        self.projection_mode = canonical_mode(projection)
        self.projection = make_projection(self.projection_mode, width)
        self.out_dim = self.projection.out_dim
        self.n_circles = self.projection.n_circles

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.layers(x))


class TorusSimCLRProjectionHead(_lightly_heads.SimCLRProjectionHead):
    """``SimCLRProjectionHead(input_dim, hidden_dim, output_dim, num_layers, batch_norm)`` ending on the torus."""

    def __init__(self, input_dim: int = 2048, hidden_dim: int = 2048, output_dim: int = 128, num_layers: int = 2,
                 batch_norm: bool = True, projection: str = "torusN"):
        mode = canonical_mode(projection)
        super().__init__(input_dim, hidden_dim, output_dim, num_layers, batch_norm)
        TorusProjectionHead._init_torus(self, mode, output_dim)

    forward = TorusProjectionHead.forward


class TorusVICRegProjectionHead(_lightly_heads.VICRegProjectionHead):
    """``VICRegProjectionHead(input_dim, hidden_dim, output_dim, num_layers)`` ending on the torus."""

    def __init__(self, input_dim: int = 2048, hidden_dim: int = 8192, output_dim: int = 8192, num_layers: int = 3,
                 projection: str = "torusN"):
        mode = canonical_mode(projection)
        super().__init__(input_dim, hidden_dim, output_dim, num_layers)
        TorusProjectionHead._init_torus(self, mode, output_dim)

    forward = TorusProjectionHead.forward


class TorusHead(nn.Module):
    """Any module ``head`` (e.g. a lightly head) followed by a torus projection of its ``dim``-wide output."""

    def __init__(self, head: nn.Module, dim: int, projection: str = "torusN"):
        super().__init__()
        self.head = head
        self.projection_mode = canonical_mode(projection)
        self.projection = make_projection(self.projection_mode, dim)
        self.out_dim = self.projection.out_dim
        self.n_circles = self.projection.n_circles

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(self.head(x))


def torus_head(head: nn.Module, dim: int, projection: str = "torusN") -> TorusHead:
    """Wrap an existing head: ``torus_head(BYOLProjectionHead(512, 1024, 256), 256, "torusN")``."""
    return TorusHead(head, dim, projection)


def __getattr__(name):
    # Re-exported lazily so that importing the heads never depends on the losses module.
    if name in ("VICRegLoss", "KoLeoLoss"):
        from torus_plugins import losses
        return getattr(losses, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
