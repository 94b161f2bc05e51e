"""Optional dependencies: import one, or raise an ImportError that names the extra to install.

Core torus-plugins needs only torch, numpy, tqdm and numba; faiss, ripser, matplotlib, timm,
lightly, pytorch-metric-learning, pymilvus and executorch come with extras
(``pip install 'torus-plugins[search]'`` etc.).

Usage::

    from torus_plugins._optional import require, require_all
    faiss = require("faiss", "search")                 # the module, or ImportError naming [search]
    faiss, pml = require_all([("faiss", "search"), ("pytorch_metric_learning", "pml")], "retrieval")
                                                       # one error naming every missing extra
    BaseDistance = require("pytorch_metric_learning.distances", "pml").BaseDistance
"""

import importlib
from types import ModuleType

__all__ = ["EXTRAS", "DISTRIBUTIONS", "require", "require_all", "install_hint"]

#: extra -> what it provides (the lists themselves are in pyproject.toml)
EXTRAS = {
    "search": "faiss-cpu: Johnson-code binary search, product quantisation, faiss kNN",
    "topology": "ripser, scipy: Betti numbers, kNN-graph spectral gap",
    "plot": "matplotlib: torus_plugins.plot",
    "timm": "timm: torus_plugins.adapters.timm",
    "lightly": "lightly: torus_plugins.adapters.lightly",
    "pml": "pytorch-metric-learning: adapters.pml, distances, regularizers, retrieval metrics",
    "milvus": "pymilvus + milvus-lite: torus_plugins.search.milvus (Milvus Lite or a cluster)",
    "edge": (
        "executorch + torchao: torus_plugins.deploy export/load "
        "(int8 ExecuTorch program + integer head)"
    ),
    "examples": "scikit-learn, librosa, torchvision and the extras the examples use",
}


#: top-level module -> the distribution that provides it (what missing-extra errors name)
DISTRIBUTIONS = {
    "faiss": "faiss-cpu",
    "ripser": "ripser",
    "scipy": "scipy",
    "matplotlib": "matplotlib",
    "timm": "timm",
    "lightly": "lightly",
    "pytorch_metric_learning": "pytorch-metric-learning",
    "pymilvus": "pymilvus",
    "milvus_lite": "milvus-lite",
}


def install_hint(*extras: str) -> str:
    """``pip install 'torus-plugins[<extra>,...]'`` for one or more extras (in the order given, no
    repeats).

    Args:
        *extras: names of :data:`EXTRAS`.

    Returns:
        The install command.

    Raises:
        ValueError: no extra is given, or one is unknown.

    Example:
        >>> install_hint("search", "plot", "search")
        "pip install 'torus-plugins[search,plot]'"
    """
    if not extras:
        raise ValueError("install_hint needs at least one extra")
    for extra in extras:
        if extra not in EXTRAS:
            raise ValueError(f"unknown extra {extra!r}; known: {', '.join(EXTRAS)}")
    return f"pip install 'torus-plugins[{','.join(dict.fromkeys(extras))}]'"


def require(module: str, extra: str, what: str | None = None):
    """Import and return ``module``; if it (or one of its own dependencies) is missing, raise a
    ModuleNotFoundError whose message names the extra: ``pip install 'torus-plugins[<extra>]'``.

    Args:
        module: dotted module name, e.g. ``"faiss"``.
        extra: the extra that installs it, e.g. ``"search"``.
        what: the feature that needs it, named in the message (e.g. ``"quantisation_table"``).

    Returns:
        The imported module.

    Raises:
        ModuleNotFoundError: the module is not installed (other import failures pass through
            unchanged).
    """
    return require_all([(module, extra)], what)[0]


def require_all(needs, what: str | None = None) -> list:
    """Import every ``(module, extra)`` of ``needs``; if any is missing, raise ONE
    ModuleNotFoundError naming every missing distribution and a single install command for all their
    extras, e.g. ``quantisation_table needs faiss-cpu ([search] extra), pytorch-metric-learning
    ([pml] extra): pip install 'torus-plugins[search,pml]'`` -- so a user installs once instead of
    meeting one extra per try.

    Args:
        needs: iterable of (dotted module name, extra) pairs.
        what: the feature that needs them, named in the message.

    Returns:
        The imported modules, in the order of ``needs``.

    Raises:
        ModuleNotFoundError: some are not installed; ``.name`` is the first missing module. Import
            failures that are not a missing package pass through unchanged.
        ValueError: an unknown extra.
    """
    needs = list(needs)
    for _, extra in needs:
        install_hint(extra)  # ValueError for an unknown extra
    modules: list[ModuleType | None] = []
    missing: list[tuple[str, str]] = []  # missing: (top-level name, extra)
    for module, extra in needs:
        try:
            modules.append(importlib.import_module(module))
        except ModuleNotFoundError as exc:
            name = (exc.name or module).split(".")[0]
            if (name, extra) not in missing:
                missing.append((name, extra))
            modules.append(None)
    if not missing:
        return modules
    names = ", ".join(repr(n) for n, _ in missing)
    hint = install_hint(*(e for _, e in missing))
    if what is None and len(missing) == 1:
        name, extra = missing[0]
        message = (
            f"No module named {name!r}; install {DISTRIBUTIONS.get(name, name)} with the "
            f"[{extra}] extra ({EXTRAS[extra]}): {hint}"
        )
    else:
        parts = ", ".join(f"{DISTRIBUTIONS.get(n, n)} ([{e}] extra)" for n, e in missing)
        message = f"No module named {names}; {what or 'this'} needs {parts}: {hint}"
    raise ModuleNotFoundError(message, name=missing[0][0])
