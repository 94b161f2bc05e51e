"""Optional dependencies: import one, or raise an ImportError that names the extra to install.

Core torus-plugins needs only torch, numpy, tqdm and numba; faiss, ripser, matplotlib, timm, lightly,
pytorch-metric-learning, pymilvus and executorch come with extras (``pip install 'torus-plugins[search]'`` etc.).

Usage::

    from torus_plugins._optional import require
    faiss = require("faiss", "search")                 # the module, or ImportError naming [search]
    BaseDistance = require("pytorch_metric_learning.distances", "pml").BaseDistance
"""

import importlib

__all__ = ["EXTRAS", "require", "install_hint"]

#: extra -> what it provides (the lists themselves are in pyproject.toml)
EXTRAS = {
    "search": "faiss-cpu: Johnson-code binary search, product quantisation, faiss kNN",
    "topology": "ripser, scipy: Betti numbers, kNN-graph spectral gap",
    "plot": "matplotlib: torus_plugins.plot",
    "timm": "timm: torus_plugins.adapters.timm",
    "lightly": "lightly: torus_plugins.adapters.lightly",
    "pml": "pytorch-metric-learning: adapters.pml, distances, regularizers, retrieval metrics",
    "milvus": "pymilvus + milvus-lite: torus_plugins.search.milvus (Milvus Lite or a cluster)",
    "edge": "executorch + torchao: torus_plugins.deploy export/load (int8 ExecuTorch program + integer head)",
    "examples": "scikit-learn, librosa, torchvision and the extras the examples use",
}


def install_hint(extra: str) -> str:
    """``pip install 'torus-plugins[<extra>]'``"""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; known: {', '.join(EXTRAS)}")
    return f"pip install 'torus-plugins[{extra}]'"


def require(module: str, extra: str):
    """Import and return ``module``; if it (or one of its own dependencies) is missing, raise an ImportError
    whose message names the extra: ``pip install 'torus-plugins[<extra>]'``."""
    hint = install_hint(extra)
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        # only a *missing* package is an install problem; other import failures pass through unchanged
        if not isinstance(exc, ModuleNotFoundError):
            raise
        raise ModuleNotFoundError(
            f"No module named {exc.name!r} (needed to import {module!r}); it comes with the [{extra}] extra "
            f"({EXTRAS[extra]}): {hint}", name=exc.name) from exc
