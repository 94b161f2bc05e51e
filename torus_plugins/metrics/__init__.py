"""Embedding evaluation: retrieval, spread, shape/topology, and the paper's quantisation table.

Usage::

    from torus_plugins.metrics import (
        retrieval, circular_variance, shape_metrics, quantisation_table
    )
    retrieval(z, y, geometry="torusN")
    # {'precision_at_1': ..., 'mean_average_precision_at_r': ...}
    print(format_table(quantisation_table(z, None, y, None, geometry="torusN")))
    few_shot_accuracy(z, y, shots=(1, 5), geometry="torusN")[1]
    # {'mean': ..., 'std': ..., 'accuracies': [...]}
"""

# the geometry objects live in torus_plugins.geometry; re-exported here, where 0.1.0 had them
from ..geometry import (
    SPHERE,
    TORUS_C,
    TORUS_N,
    CodesGeometry,
    Geometry,
    TorusGeometry,
    get_geometry,
)
from .fewshot import few_shot_accuracy, nearest_prototype, small_classes
from .quantisation_table import COLUMNS, format_table, quantisation_table
from .retrieval import GeometryKNN, circular_l1_knn, retrieval
from .settings import (
    NONE,
    PQ_SETTINGS,
    SIGN,
    Setting,
    get_setting,
    grid,
    grid_bits_at_budget,
    pq,
    raw_pq,
    table_settings,
)
from .shape import (
    betti_numbers,
    effective_rank,
    intrinsic_dimension,
    shape_metrics,
    spectral_gap,
    spectral_gap_ratio,
    torus_score,
)
from .spread import circular_variance, code_entropy, unique_codes

__all__ = [
    "retrieval",
    "GeometryKNN",
    "circular_l1_knn",
    "circular_variance",
    "code_entropy",
    "unique_codes",
    "effective_rank",
    "intrinsic_dimension",
    "betti_numbers",
    "spectral_gap",
    "spectral_gap_ratio",
    "torus_score",
    "shape_metrics",
    "quantisation_table",
    "format_table",
    "COLUMNS",
    "PQ_SETTINGS",
    "Geometry",
    "TorusGeometry",
    "CodesGeometry",
    "get_geometry",
    "SPHERE",
    "TORUS_N",
    "TORUS_C",
    "Setting",
    "NONE",
    "SIGN",
    "grid",
    "pq",
    "raw_pq",
    "table_settings",
    "get_setting",
    "grid_bits_at_budget",
    "few_shot_accuracy",
    "nearest_prototype",
    "small_classes",
]
