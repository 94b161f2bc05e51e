"""Missing extras are reported all at once: one ModuleNotFoundError naming every missing package and
one ``pip install 'torus-plugins[a,b]'`` for all of them (not one extra per retry), and in the CLI
one ``error:`` line with exit code 2 and no traceback."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tomllib
from import_blocker import block

from torus_plugins._optional import DISTRIBUTIONS, EXTRAS, install_hint, require, require_all

REPO = Path(__file__).resolve().parents[1]


def torus_cloud(n=60):
    rng = np.random.default_rng(0)
    th = 2 * np.pi * rng.random((n, 2))
    cloud = np.c_[np.cos(th[:, 0]), np.sin(th[:, 0]), np.cos(th[:, 1]), np.sin(th[:, 1])]
    return cloud, np.arange(n) % 3


@pytest.mark.parametrize(
    "what,blocked,extras",
    [
        ("quantisation_table", ("faiss", "pytorch_metric_learning"), "search,pml"),
        ("retrieval", ("faiss", "pytorch_metric_learning"), "search,pml"),
        ("shape_metrics", ("faiss", "ripser"), "search,topology"),
        ("shape_metrics", ("faiss", "ripser", "scipy"), "search,topology"),
        ("betti_numbers", ("ripser", "scipy"), "topology"),
        ("spectral_gap", ("faiss", "scipy"), "search,topology"),
    ],
)
def test_one_error_names_every_missing_extra(monkeypatch, what, blocked, extras):
    from torus_plugins import metrics

    x, y = torus_cloud()
    block(monkeypatch, *blocked)
    call = {
        "quantisation_table": lambda: metrics.quantisation_table(x, None, y, None, "torusN"),
        "retrieval": lambda: metrics.retrieval(x, y, geometry="torusN"),
        "shape_metrics": lambda: metrics.shape_metrics(x),
        "betti_numbers": lambda: metrics.betti_numbers(x),
        "spectral_gap": lambda: metrics.spectral_gap(x),
    }[what]
    with pytest.raises(ModuleNotFoundError) as info:
        call()
    message = str(info.value)
    assert f"pip install 'torus-plugins[{extras}]'" in message and f"{what} needs" in message
    for name in blocked:
        assert repr(name) in message and DISTRIBUTIONS[name] in message
    assert info.value.name == blocked[0] and "\n" not in message


def test_shape_metrics_without_topology_needs_no_ripser(monkeypatch):
    from torus_plugins.metrics import shape_metrics

    x, _ = torus_cloud(200)
    block(monkeypatch, "ripser")
    out = shape_metrics(x, topology=False)
    assert out["betti"] is None and np.isfinite(out["spectral_gap_ratio"])


def test_require_all_returns_modules_and_lists_each_missing_package_once(monkeypatch):
    import json
    import math

    assert require_all([("json", "search"), ("math", "pml")]) == [json, math]
    block(monkeypatch, "faiss", "ripser")
    with pytest.raises(ModuleNotFoundError) as info:
        require_all(
            [
                ("faiss", "search"),
                ("json", "pml"),
                ("ripser", "topology"),
                ("faiss.contrib", "search"),
            ],
            "my feature",
        )
    assert str(info.value) == (
        "No module named 'faiss', 'ripser'; my feature needs faiss-cpu "
        "([search] extra), ripser ([topology] extra): "
        "pip install 'torus-plugins[search,topology]'"
    )
    single = (
        r"No module named 'faiss'; install faiss-cpu with the \[search\] extra .*: "
        r"pip install 'torus-plugins\[search\]'"
    )
    with pytest.raises(ModuleNotFoundError, match=single):
        require("faiss", "search")
    with pytest.raises(ValueError, match="unknown extra 'gpu'"):
        require_all([("json", "gpu")])


def test_install_hint_joins_extras_in_order_without_repeats():
    assert install_hint("search") == "pip install 'torus-plugins[search]'"
    assert install_hint("pml", "search", "pml") == "pip install 'torus-plugins[pml,search]'"
    with pytest.raises(ValueError):
        install_hint()


def test_named_distributions_are_what_the_extras_install():
    """Every package an error names is in pyproject.toml's list for that extra (names kept in
    sync)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    module_extra = {
        "faiss": "search",
        "ripser": "topology",
        "scipy": "topology",
        "matplotlib": "plot",
        "timm": "timm",
        "lightly": "lightly",
        "pytorch_metric_learning": "pml",
        "pymilvus": "milvus",
        "milvus_lite": "milvus",
    }
    assert set(module_extra) == set(DISTRIBUTIONS) and set(module_extra.values()) <= set(EXTRAS)
    for module, extra in module_extra.items():
        names = {d.split(">")[0].split("=")[0].split("<")[0].strip() for d in extras[extra]}
        assert DISTRIBUTIONS[module] in names, (module, extra, names)


CLI_WITHOUT = textwrap.dedent("""
    import importlib.abc, sys
    BLOCKED = set(sys.argv[1].split(","))
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    sys.meta_path.insert(0, Block())
    from torus_plugins.cli import main      # what the torus-plugins console script runs
    sys.exit(main(sys.argv[2:]))
""")


@pytest.mark.slow
def test_cli_eval_without_extras_is_one_error_line_exit_2(tmp_path):
    """A core-only install (faiss and pytorch-metric-learning absent) runs eval: one line naming
    both, before any data is read (the embeddings file does not even exist)."""
    argv = ["eval", str(tmp_path / "emb.npy"), "--labels", "y.npy", "--geometry", "torusN"]
    blocked = "faiss,pytorch_metric_learning"
    out = subprocess.run(
        [sys.executable, "-c", CLI_WITHOUT, blocked, *argv],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == (
        "torus-plugins eval: error: No module named 'faiss', "
        "'pytorch_metric_learning'; torus-plugins eval needs faiss-cpu ([search] "
        "extra), pytorch-metric-learning ([pml] extra): "
        "pip install 'torus-plugins[search,pml]'\n"
    )


def test_cli_search_of_a_johnson_index_without_faiss_is_one_line(tmp_path, monkeypatch, capsys):
    from torus_plugins.cli import main
    from torus_plugins.codes import save_codes
    from torus_plugins.search import index_factory, write_index

    x = np.random.default_rng(0).integers(0, 16, (30, 8), dtype=np.uint8)
    index = index_factory(8, "BFlat,T4")
    index.add(x)
    write_index(index, tmp_path / "j.tidx")
    save_codes(tmp_path / "q.torc", x[:2], 4)
    block(monkeypatch, "faiss")
    assert main(["search", str(tmp_path / "j.tidx"), str(tmp_path / "q.torc")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("torus-plugins search: error: No module named 'faiss'")
    assert err.count("\n") == 1 and "pip install 'torus-plugins[search]'" in err
