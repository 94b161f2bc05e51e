"""pytorch-metric-learning regulariser wrapping KoLeo.

Usage::

    from pytorch_metric_learning import losses
    from torus_plugins.distances import CliffordCosine
    from torus_plugins.regularizers import KoLeoRegularizer
    loss_fn = losses.SupConLoss(distance=CliffordCosine(), embedding_regularizer=KoLeoRegularizer())
    loss = loss_fn(embeddings, labels)   # SupCon + KoLeo (regulariser weight 1 by default)
"""

from ._optional import require

BaseRegularizer = require("pytorch_metric_learning.regularizers", "pml").BaseRegularizer
c_f = require("pytorch_metric_learning.utils.common_functions", "pml")

from ._checks import check_bool, check_positive_float
from .losses._common import check_embeddings
from .losses.koleo import koleo_terms


class KoLeoRegularizer(BaseRegularizer):
    """Per-embedding KoLeo terms -log(||x_i - x_nn(i)|| + eps) on unit vectors; pml's default mean reducer turns them
    into ``KoLeoLoss``. Weight it with the loss's ``embedding_reg_weight``.
    """

    def __init__(self, eps: float = 1e-8, p: float = 2.0, normalize: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.eps = check_positive_float(eps, "KoLeoRegularizer eps")
        self.p = check_positive_float(p, "KoLeoRegularizer p")
        self.normalize = check_bool(normalize, "KoLeoRegularizer normalize")

    def compute_loss(self, embeddings):
        check_embeddings(embeddings, "KoLeoRegularizer embeddings")
        return {
            "loss": {
                "losses": koleo_terms(embeddings, self.eps, self.p, self.normalize),
                "indices": c_f.torch_arange_from_size(embeddings),
                "reduction_type": "element",
            }
        }
