"""The documentation site: every ```python block of docs/**/*.md runs verbatim, the site builds in strict mode
(a warning, a broken link between pages or an unresolved reference to the package fails it), and the generated API
reference documents every public object of the package once."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from markdown_blocks import count_openings, python_blocks, run_block

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = sorted(p for p in DOCS.rglob("*.md") if not {"_build", "api"} & set(p.relative_to(DOCS).parts))
RUN = [(p.relative_to(REPO).as_posix(), line, code) for p in PAGES for line, code in python_blocks(p)]
NORUN = [(p.relative_to(REPO).as_posix(), line, code) for p in PAGES for line, code in python_blocks(p, False)]
#: what a ```python norun block may need that the test suite cannot have: an upstream checkout's modules
#: (SupCon-Framework's tools, ProtoCLR's losses, eb_jepa) or a Milvus server
UNAVAILABLE = ("import tools.", "import losses", "import eb_jepa", "http://")
#: files outside docs/ that pages include
INCLUDED = ("CHANGELOG.md", "SECURITY.md")

sys.path.insert(0, str(DOCS))
import apidoc  # noqa: E402  (docs/apidoc.py)
import plaintext  # noqa: E402  (docs/plaintext.py)


def ids(blocks):
    return [f"{page}:{line}" for page, line, _ in blocks]


def sphinx_build(src: Path, out: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html",
                           *options, str(src), str(out)], capture_output=True, text=True, cwd=src)


def copy_docs(dest: Path) -> Path:
    """The docs folder and the files it includes, copied, so a build writes nothing into the checkout."""
    shutil.copytree(DOCS, dest / "docs", ignore=shutil.ignore_patterns("_build", "api", "__pycache__"))
    for name in INCLUDED:
        shutil.copy(REPO / name, dest / name)
    return dest / "docs"


def test_pages_and_their_blocks_are_found():
    assert len(PAGES) >= 18
    for page in PAGES:                          # every opening fence parsed, as a block to run or a norun block
        assert len(python_blocks(page)) + len(python_blocks(page, False)) == count_openings(page), page
    assert len(RUN) >= 20 and len(NORUN) <= 5


@pytest.mark.parametrize("page,line,code", RUN, ids=ids(RUN))
def test_docs_block_runs_verbatim(page, line, code, tmp_path):
    torch.manual_seed(0)
    scope = run_block(code, f"{page}:{line}", tmp_path)
    if "LightningModule" in code:               # the Lightning snippet really trains one step, writing nothing
        assert scope["trainer"].global_step == 1
        assert torch.isfinite(scope["trainer"].callback_metrics["train_loss"])
        assert not any(tmp_path.iterdir()), "no logger, no checkpoints: the snippet must not write files"


@pytest.mark.parametrize("page,line,code", NORUN, ids=ids(NORUN))
def test_norun_block_compiles_and_needs_what_a_test_cannot_have(page, line, code):
    compile(code, f"{page}:{line}", "exec")
    assert any(need in code for need in UNAVAILABLE), f"{page}:{line} can run: drop 'norun'"


def test_docs_build_strict_and_document_every_public_object(tmp_path):
    src = copy_docs(tmp_path)
    (src / "index.md").write_text((src / "index.md").read_text() + "\n```{toctree}\n:hidden:\n\nrefs\n```\n")
    (src / "refs.md").write_text(     # a name of the defining module and a re-export resolve to the documentation
        "# refs\n\n{py:class}`torus_plugins.heads.l2p.L2p` {py:class}`torus_plugins.TorusN` "
        "{py:meth}`torus_plugins.search.flat.TorusIndexFlat.search`\n")
    out = tmp_path / "html"
    result = sphinx_build(src, out)
    assert result.returncode == 0, result.stderr[-5000:]
    refs = (out / "refs.html").read_text()
    assert refs.count('href="api/heads.html#torus_plugins.heads.L2p"') == 2
    assert 'href="api/search.html#torus_plugins.search.TorusIndexFlat.search"' in refs
    inventory = apidoc.build_inventory()
    for page, sections in inventory.pages().items():
        html = (out / "api" / f"{page}.html").read_text()
        for section in sections:
            for entry in section.entries:
                if entry.canonical == entry.name:           # documented here: its anchor exists
                    assert f'id="{entry.name}"' in html, entry.name
    assert (out / "_images" / "ann_recall_qps.png").exists()
    assert "Unreleased" in (out / "changelog.html").read_text()           # CHANGELOG.md included, not copied


def test_strict_build_fails_on_an_unresolved_reference_and_a_broken_link(tmp_path):
    src = copy_docs(tmp_path)
    for page in src.rglob("*.md"):
        page.unlink()
    (src / "index.md").write_text(
        "# index\n\n{py:func}`torus_plugins.codes.no_such_function` [a page](no_such_page.md) "
        "{py:class}`torch.Tensor` {py:class}`uint8 array`\n")
    result = sphinx_build(src, tmp_path / "html", "-D", "exclude_patterns=api")   # the reference is not needed
    assert result.returncode != 0
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 2, result.stderr            # other libraries' types and free text are not errors
    assert "torus_plugins.codes.no_such_function" in warnings[0] + warnings[1]
    assert "no_such_page.md" in warnings[0] + warnings[1]


def test_inventory_covers_every_package_and_documents_each_object_once():
    import tomllib

    inventory = apidoc.build_inventory()
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert set(packages) <= set(inventory.sections)          # adapters/ too, shipped from another folder
    assert "torus_plugins.codes.quantize" in inventory.sections and "torus_plugins._checks" not in inventory.sections
    documented = [e.name for e in inventory.documented()]
    assert len(documented) == len(set(documented))
    canonical = {e.name: e.canonical for s in inventory.sections.values() for e in s.entries}
    assert canonical["torus_plugins.L2p"] == canonical["torus_plugins.heads.TorusN"] == "torus_plugins.heads.L2p"
    assert canonical["torus_plugins.search.flat.TorusIndexFlat"] == "torus_plugins.search.TorusIndexFlat"
    assert canonical["torus_plugins.adapters.lightly.VICRegLoss"] == "torus_plugins.losses.VICRegLoss"
    assert canonical["torus_plugins.adapters.eb_jepa.VICRegLoss"] == "torus_plugins.adapters.eb_jepa.VICRegLoss"
    for name, target in canonical.items():                   # every link points at a documented object
        assert target is None or target in documented, name
    assert apidoc.canonical_target("torus_plugins.heads.l2p.L2p.forward", inventory) == "torus_plugins.heads.L2p.forward"
    assert apidoc.canonical_target("torus_plugins.no_such_module.X", inventory) is None


def test_plain_text_docstrings_become_restructuredtext():
    lines = ["|x| = ``|y|`` and :math:`|z|`", "", "| a | b |", "|---|---|", "| ``c`` | x / ||x|| |", "",
             "Usage::", "", "    q = |w|", "para", "* item", "  more", "after"]
    assert plaintext.rst_lines(lines) == [
        r"\|x\| = ``|y|`` and :math:`|z|`", "",
        ".. list-table::", "   :header-rows: 1", "", "   * - a", "     - b", "   * - ``c``", r"     - x / \|\|x\|\|",
        "", "", "Usage::", "", "    q = |w|", "para", "", "* item", "  more", "", "after"]
