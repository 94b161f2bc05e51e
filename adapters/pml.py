"""pytorch-metric-learning: torus distances and the KoLeo regulariser for any pml loss, plus a torus SupCon builder.

Usage (a pml training loop; the model ends in a torus head, e.g. ``torus_plugins.L2p``)::

    from torus_plugins.adapters.pml import torus_supcon_loss
    loss_fn = torus_supcon_loss(temperature=0.1, koleo_weight=0.1)   # was losses.SupConLoss(temperature=0.1)
    loss = loss_fn(embeddings, labels)

or pass the pieces to any pml loss::

    from torus_plugins.adapters.pml import CliffordCosine, KoLeoRegularizer
    losses.NTXentLoss(distance=CliffordCosine(), embedding_regularizer=KoLeoRegularizer(), embedding_reg_weight=0.1)

``CliffordCosine`` and ``ToroidalDistance`` (``torus_plugins.distances``) and ``KoLeoRegularizer``
(``torus_plugins.regularizers``) are re-exported from here.
"""

from torus_plugins._optional import require

_pml_losses = require("pytorch_metric_learning.losses", "pml")

__all__ = ["CliffordCosine", "ToroidalDistance", "KoLeoRegularizer", "torus_supcon_loss"]


def torus_supcon_loss(temperature: float = 0.1, koleo_weight: float = 0.0, distance=None, **kwargs):
    """pml ``SupConLoss(temperature)`` with a torus distance (``CliffordCosine()`` unless ``distance`` is given) and,
    if ``koleo_weight`` > 0, ``KoLeoRegularizer`` as its embedding regulariser with that weight.

    Extra ``kwargs`` go to pml's SupConLoss (reducer, ...).
    """
    if koleo_weight < 0:
        raise ValueError(f"koleo_weight must be >= 0, got {koleo_weight}")
    if "embedding_regularizer" in kwargs:
        raise ValueError("use koleo_weight to add the KoLeo regulariser (embedding_regularizer is set here)")
    from torus_plugins.distances import CliffordCosine

    if distance is None:
        distance = CliffordCosine()
    if koleo_weight > 0:
        from torus_plugins.regularizers import KoLeoRegularizer

        kwargs["embedding_regularizer"] = KoLeoRegularizer()
        kwargs["embedding_reg_weight"] = koleo_weight
    return _pml_losses.SupConLoss(temperature=temperature, distance=distance, **kwargs)


def __getattr__(name):
    # Re-exported lazily: importing this module only needs pml itself.
    if name in ("CliffordCosine", "ToroidalDistance"):
        from torus_plugins import distances
        return getattr(distances, name)
    if name == "KoLeoRegularizer":
        from torus_plugins import regularizers
        return regularizers.KoLeoRegularizer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
