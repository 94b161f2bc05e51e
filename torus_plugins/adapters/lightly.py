"""lightly: torus projection heads in lightly's heads API, plus torus-aware VICReg and KoLeo losses.

Usage (a lightly SimCLR / VICReg script; change the head line, keep the rest)::

    from torus_plugins.adapters.lightly import TorusSimCLRProjectionHead, TorusVICRegProjectionHead
    # was SimCLRProjectionHead(512, 512, 128)
    self.projection_head = TorusSimCLRProjectionHead(512, 512, 128, geometry="torusN")
    # unchanged: the head output is unit-norm, lightly re-normalises it to itself
    criterion = lightly.loss.NTXentLoss()

    # torus_plugins' own losses, re-exported
    from torus_plugins.adapters.lightly import VICRegLoss, KoLeoLoss

The heads subclass ``lightly.models.modules.heads.ProjectionHead`` (same ``blocks`` API, same
``layers`` attribute) and end in a torus projection (``geometry`` = sphere, torusN or torusC; legacy
hyprs/torul/torus). For torusC the last block's output is read as turns and the head's output width
is ``2 * output_dim`` (``head.out_dim``). :func:`torus_head` puts the projection after any existing
lightly head.
"""

from typing import Any

import torch
from torch import nn

from torus_plugins._deprecation import renamed_keywords
from torus_plugins._optional import require
from torus_plugins.geometry import embedding_geometry
from torus_plugins.heads import make_projection

# Any: lightly is an optional import, its head classes the bases below
_lightly_heads: Any = require("lightly.models.modules.heads", "lightly")

__all__ = [
    "TorusProjectionHead",
    "TorusSimCLRProjectionHead",
    "TorusVICRegProjectionHead",
    "TorusHead",
    "torus_head",
    "VICRegLoss",
    "KoLeoLoss",
]


def _last_width(blocks) -> int:
    if not blocks:
        raise ValueError("a projection head needs at least one block")
    return int(blocks[-1][1])


class TorusProjectionHead(_lightly_heads.ProjectionHead):
    """y = normalise_geometry(lightly ProjectionHead(blocks)(x)): lightly's head, ending on the
    torus.

    Args:
        blocks: lightly's ``blocks`` list; the last block's output width is the projection's input.
        geometry: sphere, torusN or torusC (any alias), or a Geometry object; 0.1.0's keyword
            ``projection=`` still works, with a DeprecationWarning.

    Raises:
        TypeError: a geometry that is neither a string nor a Geometry.
        ValueError: no block, an unknown geometry.
    """

    @renamed_keywords(projection="geometry")
    def __init__(self, blocks, geometry="torusN"):
        super().__init__(blocks)
        self._init_torus(geometry, _last_width(blocks))

    def _init_torus(self, geometry, width):
        self.geometry = embedding_geometry(geometry).name
        self.projection = make_projection(self.geometry, width)
        self.out_dim = self.projection.out_dim
        self.n_circles = self.projection.n_circles

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B, input width] -> [B, out_dim] unit vectors of the geometry.

        Args:
            x: features [B, input width] (the first block's input width).

        Returns:
            Unit-norm embeddings [B, out_dim] (torusC: out_dim is twice the last block's width).
        """
        return self.projection(self.layers(x))


class TorusSimCLRProjectionHead(_lightly_heads.SimCLRProjectionHead):
    """lightly's ``SimCLRProjectionHead(input_dim, hidden_dim, output_dim, num_layers, batch_norm)``
    (same positional arguments and defaults), ending in the ``geometry`` normalisation.

    Args:
        input_dim: width of the backbone features.
        hidden_dim: width of the hidden layers.
        output_dim: width before the projection (torusN: even; torusC: read as turns, the head's
            output is ``2 * output_dim`` wide).
        num_layers: number of linear layers.
        batch_norm: batch normalisation after the hidden linear layers, as lightly's.
        geometry: sphere, torusN or torusC (any alias), or a Geometry object; 0.1.0's keyword
            ``projection=`` still works, with a DeprecationWarning.

    Raises:
        TypeError: a geometry that is neither a string nor a Geometry.
        ValueError: an unknown geometry.
    """

    @renamed_keywords(projection="geometry")
    def __init__(
        self,
        input_dim: int = 2048,
        hidden_dim: int = 2048,
        output_dim: int = 128,
        num_layers: int = 2,
        batch_norm: bool = True,
        geometry="torusN",
    ):
        geometry = embedding_geometry(geometry)
        super().__init__(input_dim, hidden_dim, output_dim, num_layers, batch_norm)
        TorusProjectionHead._init_torus(self, geometry, output_dim)

    forward = TorusProjectionHead.forward


class TorusVICRegProjectionHead(_lightly_heads.VICRegProjectionHead):
    """lightly's ``VICRegProjectionHead(input_dim, hidden_dim, output_dim, num_layers)`` (same
    positional arguments and defaults), ending in the ``geometry`` normalisation.

    Args:
        input_dim: width of the backbone features.
        hidden_dim: width of the hidden layers.
        output_dim: width before the projection (torusN: even; torusC: read as turns, the head's
            output is ``2 * output_dim`` wide).
        num_layers: number of linear layers.
        geometry: sphere, torusN or torusC (any alias), or a Geometry object; 0.1.0's keyword
            ``projection=`` still works, with a DeprecationWarning.

    Raises:
        TypeError: a geometry that is neither a string nor a Geometry.
        ValueError: an unknown geometry.
    """

    @renamed_keywords(projection="geometry")
    def __init__(
        self,
        input_dim: int = 2048,
        hidden_dim: int = 8192,
        output_dim: int = 8192,
        num_layers: int = 3,
        geometry="torusN",
    ):
        geometry = embedding_geometry(geometry)
        super().__init__(input_dim, hidden_dim, output_dim, num_layers)
        TorusProjectionHead._init_torus(self, geometry, output_dim)

    forward = TorusProjectionHead.forward


class TorusHead(nn.Module):
    """y = normalise_geometry(head(x)): any module (e.g. a lightly head) of output width ``dim``,
    followed by the ``geometry`` normalisation.

    Args:
        head: the module.
        dim: its output width.
        geometry: sphere, torusN or torusC (any alias), or a Geometry object; 0.1.0's keyword
            ``projection=`` still works, with a DeprecationWarning.

    Raises:
        TypeError: a geometry that is neither a string nor a Geometry.
        ValueError: an unknown geometry, a bad ``dim``.
    """

    @renamed_keywords(projection="geometry")
    def __init__(self, head: nn.Module, dim: int, geometry="torusN"):
        super().__init__()
        self.head = head
        self.geometry = embedding_geometry(geometry).name
        self.projection = make_projection(self.geometry, dim)
        self.out_dim = self.projection.out_dim
        self.n_circles = self.projection.n_circles

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x -> normalise_geometry(head(x)).

        Args:
            x: the wrapped head's input, e.g. features [B, input width].

        Returns:
            Unit-norm embeddings [B, out_dim] (torusC: out_dim = 2 * dim).
        """
        return self.projection(self.head(x))


@renamed_keywords(projection="geometry")
def torus_head(head: nn.Module, dim: int, geometry="torusN") -> TorusHead:
    """TorusHead(head, dim, geometry):
    ``torus_head(BYOLProjectionHead(512, 1024, 256), 256, "torusN")``.

    Args:
        head: the module to wrap.
        dim: its output width.
        geometry: sphere, torusN or torusC (any alias), or a Geometry object.

    Returns:
        The :class:`TorusHead`.

    Raises:
        TypeError, ValueError: as :class:`TorusHead`.
    """
    return TorusHead(head, dim, geometry)


def __getattr__(name):
    # Re-exported lazily so that importing the heads never depends on the losses module.
    if name in ("VICRegLoss", "KoLeoLoss"):
        from torus_plugins import losses

        return getattr(losses, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
