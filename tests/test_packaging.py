"""Packaging: wheel and sdist contents, metadata (license, version, extras), optional dependencies
that name their extra when missing, and a core-only import of the heads and losses."""

import importlib
import importlib.abc
import os
import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tomllib
from import_blocker import block

import torus_plugins
from torus_plugins._optional import EXTRAS, install_hint, require

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())

#: optional top-level modules -> the extra that provides them (what a core-only install lacks)
OPTIONAL = {
    "faiss": "search",
    "ripser": "topology",
    "matplotlib": "plot",
    "timm": "timm",
    "lightly": "lightly",
    "pytorch_metric_learning": "pml",
    "pymilvus": "milvus",
    "milvus_lite": "milvus",
    "sklearn": "examples",
    "librosa": "examples",
    "torchvision": "timm",
    "scipy": "examples",
    "executorch": "edge",
    "torchao": "edge",
}


def git_files(under: str) -> list:
    out = subprocess.run(["git", "ls-files", under], cwd=REPO, capture_output=True, text=True)
    if out.returncode:
        pytest.skip("not a git checkout")
    return [line for line in out.stdout.splitlines() if "__pycache__" not in line]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(wheel, sdist) built from the checkout with the installed setuptools (no network)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(REPO),
        ],
        check=True,
        cwd=out,
    )
    code = (
        "import sys, setuptools.build_meta as b; sys.exit(0 if b.build_sdist(sys.argv[1]) else 1)"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(out)], check=True, cwd=REPO, capture_output=True
    )
    return next(out.glob("torus_plugins-*.whl")), next(out.glob("torus_plugins-*.tar.gz"))


def test_metadata_license_version_and_extras():
    project = PYPROJECT["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert "MIT License" in (REPO / "LICENSE").read_text()
    assert torus_plugins.__version__ == project["version"]
    core = {dep.split(">")[0].split("=")[0].split("<")[0] for dep in project["dependencies"]}
    assert core == {"torch", "numpy", "tqdm", "numba", "llvmlite"}
    extras = project["optional-dependencies"]
    assert set(EXTRAS) <= set(extras) and {"all", "dev"} <= set(extras)
    for extra in EXTRAS:
        assert install_hint(extra) == f"pip install 'torus-plugins[{extra}]'"
    assert any("pytest-xdist" in d for d in extras["dev"]) and any(
        "hypothesis" in d for d in extras["dev"]
    )
    with pytest.raises(ValueError, match="unknown extra 'gpu'"):
        install_hint("gpu")


@pytest.mark.slow
def test_wheel_contents(built):
    wheel, _ = built
    names = zipfile.ZipFile(wheel).namelist()
    assert "torus_plugins/adapters/__init__.py" in names and "torus_plugins/py.typed" in names
    assert not any(n.startswith("adapters/") for n in names), (
        "adapters/ must not ship as a top-level package"
    )
    assert not any(n.startswith("tests/") for n in names)
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    packages = {
        str(Path(p).parent) for p in git_files("torus_plugins") if p.endswith("__init__.py")
    }
    for package in packages:  # every package folder of the source tree ships
        assert f"{package}/__init__.py" in names, package
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "License-Expression: MIT" in meta and "Provides-Extra: search" in meta
    assert 'Requires-Dist: faiss-cpu>=1.7.4; extra == "search"' in meta


@pytest.mark.slow
def test_sdist_carries_the_tests_and_what_they_read(built):
    _, sdist = built
    root = sdist.name[: -len(".tar.gz")]
    names = set(tarfile.open(sdist).getnames())
    for path in (
        git_files("tests")
        + git_files("examples")
        + ["LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml"]
    ):
        assert f"{root}/{path}" in names, path
    assert any("/tests/fixtures/fx_supcon_framework/" in n for n in names)


@pytest.mark.slow
def test_wheel_installs_in_fresh_venv_and_imports_adapters(built, tmp_path):
    wheel, _ = built
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    fresh_python = venv / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(fresh_python),
            "install",
            "--no-deps",
            "-q",
            str(wheel),
        ],
        check=True,
        cwd=tmp_path,
    )
    # Dependencies (torch, ...) come from the dev venv, appended after the fresh site-packages, so
    # the installed wheel, not the editable checkout, provides torus_plugins.
    fresh_site = subprocess.run(
        [str(fresh_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(fresh_site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    code = (
        "import torus_plugins, torus_plugins.adapters as a, torus_plugins.registry as r; "
        "print(torus_plugins.__file__); print(a.__file__); print(sorted(r.available('heads'))); "
        "print(torus_plugins.__version__)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    out = subprocess.run(
        [str(fresh_python), "-c", code],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    ).stdout.splitlines()
    assert out[0].startswith(fresh_site) and out[1].startswith(fresh_site)
    assert out[1].endswith(os.path.join("torus_plugins", "adapters", "__init__.py"))
    assert "l2p" in out[2] and out[3] == PYPROJECT["project"]["version"]


CORE_ONLY = textwrap.dedent("""
    import importlib.abc, sys
    BLOCKED = set(sys.argv[1].split(","))
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    sys.meta_path.insert(0, Block())
    import torch
    import torus_plugins
    from torus_plugins import L2p, Clifford, Sphere, TorusMLPHead, ProjectionHead, to_turns
    from torus_plugins.losses import (SupConLoss, KoLeoLoss, ProtoCLRLoss, UniformityLoss,
                                      VICRegLoss, CircularSpreadLoss, ToroidalCovarianceLoss,
                                      clip_gradients)
    from torus_plugins.codes import quantize, save_codes, load_codes
    from torus_plugins.search import TorusIndex
    import torus_plugins.metrics, torus_plugins.plot
    import torus_plugins.adapters.normalize, torus_plugins.deploy
    z = L2p(8)(torch.randn(6, 8))
    loss = SupConLoss(0.1)(torch.stack([z, z], 1), torch.arange(6) % 3) + KoLeoLoss()(z)
    codes = quantize(to_turns(z), bits=8)
    index = TorusIndex(4, bits=8)
    index.add(codes)
    print(float(loss), index.search(codes[:2], 1)[1].ravel().tolist())
    try:
        from torus_plugins.codes import ProductQuantizer
        ProductQuantizer(8, 2, 8)
    except ModuleNotFoundError as e:
        print("MISSING", e)
    loaded = sorted(m.split(".")[0] for m in sys.modules if m.split(".")[0] in BLOCKED)
    print("LOADED", loaded)
""")


@pytest.mark.slow
def test_core_imports_heads_losses_codes_and_search_without_any_extra():
    """A core-only install simulated by blocking every optional package's import in a fresh
    interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", CORE_ONLY, ",".join(OPTIONAL)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert np.isfinite(float(lines[0].split()[0])) and lines[0].endswith("[0, 1]")
    assert (
        lines[1].startswith("MISSING No module named 'faiss'")
        and "pip install 'torus-plugins[search]'" in lines[1]
    )
    assert lines[2] == "LOADED []"


def _fresh_import(monkeypatch, module):
    monkeypatch.delitem(sys.modules, module, raising=False)
    return importlib.import_module(module)


@pytest.mark.parametrize(
    "case",
    [
        (
            "faiss",
            "search",
            lambda mp: __import__("torus_plugins.codes", fromlist=["x"]).ProductQuantizer(8, 2, 8),
        ),
        (
            "faiss",
            "search",
            lambda mp: __import__("torus_plugins.metrics.retrieval", fromlist=["x"]).ip_knn(
                np.zeros((2, 4), np.float32), np.zeros((3, 4), np.float32), 1
            ),
        ),
        (
            "ripser",
            "topology",
            lambda mp: __import__("torus_plugins.metrics", fromlist=["x"]).betti_numbers(
                np.random.default_rng(0).random((20, 3))
            ),
        ),
        ("matplotlib", "plot", lambda mp: __import__("torus_plugins.plot", fromlist=["x"])._plt()),
        (
            "pytorch_metric_learning",
            "pml",
            lambda mp: _fresh_import(mp, "torus_plugins.adapters.pml"),
        ),
        ("lightly", "lightly", lambda mp: _fresh_import(mp, "torus_plugins.adapters.lightly")),
        ("timm", "timm", lambda mp: _fresh_import(mp, "torus_plugins.adapters.timm")),
    ],
    ids=lambda c: f"{c[0]}-{c[1]}",
)
def test_missing_optional_package_names_its_extra(monkeypatch, case):
    package, extra, use = case
    block(monkeypatch, package)
    with pytest.raises(
        ModuleNotFoundError,
        match=rf"No module named '{package}'.*\[{extra}\] extra.*"
        rf"pip install 'torus-plugins\[{extra}\]'",
    ) as info:
        use(monkeypatch)
    assert info.value.name == package


def test_require_returns_the_module_and_passes_other_import_errors_through(monkeypatch, tmp_path):
    assert require("numpy", "search") is np
    (tmp_path / "broken_pkg_for_test.py").write_text("raise ImportError('broken inside')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ImportError, match="broken inside"):  # not an install problem: unchanged
        require("broken_pkg_for_test", "search")
    with pytest.raises(ValueError, match="unknown extra"):
        require("numpy", "numpy")


@pytest.mark.slow
def test_version_falls_back_when_the_distribution_is_not_installed():
    code = (
        "import importlib.metadata as m\n"
        "def missing(name):\n    raise m.PackageNotFoundError(name)\n"
        "m.version = missing\nimport torus_plugins\nprint(torus_plugins.__version__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert out.stdout.strip() == "0+unknown"
