"""The documentation site: every ```python block of docs/**/*.md runs verbatim, the site builds in
strict mode (a warning, a broken link between pages or an unresolved reference to the package fails
it), and the generated API reference documents every public object of the package once."""

import doctest
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import torch
from markdown_blocks import count_openings, python_blocks, run_block

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
PAGES = sorted(
    p for p in DOCS.rglob("*.md") if not {"_build", "api"} & set(p.relative_to(DOCS).parts)
)


def _blocks(runnable: bool) -> list:
    return [
        (page.relative_to(REPO).as_posix(), line, code)
        for page in PAGES
        for line, code in python_blocks(page, runnable)
    ]


RUN, NORUN = _blocks(True), _blocks(False)
#: what a ```python norun block may need that the test suite cannot have: an upstream checkout's
#: modules (SupCon-Framework's tools, ProtoCLR's losses, eb_jepa) or a Milvus server
UNAVAILABLE = ("import tools.", "import losses", "import eb_jepa", "http://")
#: files outside docs/ that pages include
INCLUDED = ("CHANGELOG.md", "SECURITY.md")

sys.path.insert(0, str(DOCS))
import apidoc  # noqa: E402  (docs/apidoc.py)
import check_docstrings  # noqa: E402  (docs/check_docstrings.py)
import plaintext  # noqa: E402  (docs/plaintext.py)

#: modules and packages whose public symbols must carry every Google-style section that applies
#: (Args when it takes parameters, Returns when it returns a value, Raises when its body raises):
#: the whole package
STRICT_DOCSTRINGS = ("torus_plugins",)
#: modules or packages inside a strict scope whose docstrings do not comply yet
NOT_YET_STRICT: tuple = ()


def ids(blocks):
    return [f"{page}:{line}" for page, line, _ in blocks]


def sphinx_build(src: Path, out: Path, *options: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html"]
    return subprocess.run(
        [*command, *options, str(src), str(out)], capture_output=True, text=True, cwd=src
    )


def copy_docs(dest: Path) -> Path:
    """docs/ and the files its pages include, copied: a build writes nothing into the checkout."""
    ignore = shutil.ignore_patterns("_build", "api", "__pycache__")
    shutil.copytree(DOCS, dest / "docs", ignore=ignore)
    for name in INCLUDED:
        shutil.copy(REPO / name, dest / name)
    return dest / "docs"


def test_pages_and_their_blocks_are_found():
    assert len(PAGES) >= 18
    for page in PAGES:  # every opening fence parsed: a block to run, or a norun block
        parsed = len(python_blocks(page)) + len(python_blocks(page, False))
        assert parsed == count_openings(page), page
    assert len(RUN) >= 20 and len(NORUN) <= 5


@pytest.mark.parametrize("page,line,code", RUN, ids=ids(RUN))
def test_docs_block_runs_verbatim(page, line, code, tmp_path):
    torch.manual_seed(0)
    scope = run_block(code, f"{page}:{line}", tmp_path)
    if "LightningModule" in code:  # the Lightning snippet trains one step, writing nothing
        assert scope["trainer"].global_step == 1
        assert torch.isfinite(scope["trainer"].callback_metrics["train_loss"])
        assert not any(tmp_path.iterdir()), "no logger, no checkpoints: nothing may be written"


@pytest.mark.parametrize("page,line,code", NORUN, ids=ids(NORUN))
def test_norun_block_compiles_and_needs_what_a_test_cannot_have(page, line, code):
    compile(code, f"{page}:{line}", "exec")
    assert any(need in code for need in UNAVAILABLE), f"{page}:{line} can run: drop 'norun'"


@pytest.mark.slow
def test_docs_build_strict_and_document_every_public_object(tmp_path):
    src = copy_docs(tmp_path)
    index = (src / "index.md").read_text()
    (src / "index.md").write_text(index + "\n```{toctree}\n:hidden:\n\nrefs\n```\n")
    # the defining module's name and a re-export resolve to where the object is documented
    (src / "refs.md").write_text(
        "# refs\n\n{py:class}`torus_plugins.heads.l2p.L2p` {py:class}`torus_plugins.TorusN` "
        "{py:meth}`torus_plugins.search.flat.TorusIndexFlat.search`\n"
    )
    out = tmp_path / "html"
    result = sphinx_build(src, out)
    assert result.returncode == 0, result.stderr[-5000:]
    refs = (out / "refs.html").read_text()
    assert refs.count('href="api/heads.html#torus_plugins.heads.L2p"') == 2
    assert 'href="api/search.html#torus_plugins.search.TorusIndexFlat.search"' in refs
    inventory = apidoc.build_inventory()
    for page, sections in inventory.pages().items():
        html = (out / "api" / f"{page}.html").read_text()
        for entry in (e for section in sections for e in section.entries):
            if entry.canonical == entry.name:  # documented here: its anchor exists
                assert f'id="{entry.name}"' in html, entry.name
    assert (out / "_images" / "ann_recall_qps.png").exists()
    assert "Unreleased" in (out / "changelog.html").read_text()  # CHANGELOG.md, included


@pytest.mark.slow
def test_strict_build_fails_on_an_unresolved_reference_and_a_broken_link(tmp_path):
    src = copy_docs(tmp_path)
    for page in src.rglob("*.md"):
        page.unlink()
    (src / "index.md").write_text(
        "# index\n\n{py:func}`torus_plugins.codes.no_such_function` [a page](no_such_page.md) "
        "{py:class}`torch.Tensor` {py:class}`uint8 array`\n"
    )
    # the reference is not needed here: leave its pages out of the build
    result = sphinx_build(src, tmp_path / "html", "-D", "exclude_patterns=api")
    assert result.returncode != 0
    warnings = "\n".join(line for line in result.stderr.splitlines() if "WARNING" in line)
    assert warnings.count("WARNING") == 2, result.stderr  # other libraries' types: not errors
    assert "torus_plugins.codes.no_such_function" in warnings and "no_such_page.md" in warnings


def test_inventory_covers_every_package_and_documents_each_object_once():
    inventory = apidoc.build_inventory()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = pyproject["tool"]["setuptools"]["packages"]
    public = {p for p in packages if apidoc.is_public(p)}  # not search._kernel
    assert public <= set(inventory.sections)  # adapters too
    assert "torus_plugins.codes.quantize" in inventory.sections
    assert "torus_plugins._checks" not in inventory.sections
    documented = [e.name for e in inventory.documented()]
    assert len(documented) == len(set(documented))
    canonical = {e.name: e.canonical for s in inventory.sections.values() for e in s.entries}
    assert canonical["torus_plugins.L2p"] == "torus_plugins.heads.L2p"
    assert canonical["torus_plugins.heads.TorusN"] == "torus_plugins.heads.L2p"
    flat, lightly = "torus_plugins.search.flat", "torus_plugins.adapters.lightly"
    assert canonical[f"{flat}.TorusIndexFlat"] == "torus_plugins.search.TorusIndexFlat"
    assert canonical[f"{lightly}.VICRegLoss"] == "torus_plugins.losses.VICRegLoss"
    eb_jepa = "torus_plugins.adapters.eb_jepa.VICRegLoss"  # a drop-in of its own
    assert canonical[eb_jepa] == eb_jepa
    for name, target in canonical.items():  # every link points at a documented object
        assert target is None or target in documented, name
    moved = apidoc.canonical_target("torus_plugins.heads.l2p.L2p.forward", inventory)
    assert moved == "torus_plugins.heads.L2p.forward"
    assert apidoc.canonical_target("torus_plugins.no_such_module.X", inventory) is None


@pytest.fixture(scope="module")
def inventory():
    return apidoc.build_inventory()


@pytest.mark.parametrize("scope", STRICT_DOCSTRINGS)
def test_public_symbols_have_the_docstring_sections_that_apply(scope, inventory):
    findings, counts = check_docstrings.check(inventory, (scope,), NOT_YET_STRICT)
    assert sum(counts.values()) > 0, f"{scope} defines no public symbol: a stale entry?"
    lacking = [f"{f.name}: lacks {', '.join(f.missing)}" for f in findings]
    assert not lacking, "\n".join(lacking)


def test_the_docstring_check_finds_each_missing_section():
    def documented(x, y):
        """Scale.

        Args:
            x: a number.
            y: a number.

        Returns:
            The product.

        Raises:
            ValueError: when x is negative.
        """
        if x < 0:
            raise ValueError("x")
        return x * y

    def bare(x):
        """Scale."""
        if x < 0:
            raise ValueError("x")
        return x

    def no_return(x):
        """Check.

        Args:
            x: a number.
        """

        def inner():  # a nested function's raise is not the outer one's
            raise ValueError("x")

        return None

    needed = check_docstrings.needed_sections
    assert needed(documented, False) == ["Args", "Returns", "Raises"]
    assert check_docstrings._missing(documented.__doc__, needed(documented, False)) == []
    assert check_docstrings._missing(bare.__doc__, needed(bare, False)) == [
        "Args",
        "Returns",
        "Raises",
    ]
    assert check_docstrings._missing(no_return.__doc__, needed(no_return, False)) == []
    assert check_docstrings._missing(None, []) == ["docstring"]


def test_scopes_select_by_defining_module():
    assert check_docstrings.in_scope("torus_plugins.codes.pack", ("torus_plugins.codes",))
    assert check_docstrings.in_scope("torus_plugins.codes", ("torus_plugins.codes",))
    assert not check_docstrings.in_scope("torus_plugins.codesx", ("torus_plugins.codes",))
    assert not check_docstrings.in_scope(
        "torus_plugins.codes.kernel", ("torus_plugins",), ("torus_plugins.codes.kernel",)
    )


@pytest.mark.parametrize("scope", STRICT_DOCSTRINGS)
def test_docstring_examples_run(scope, inventory):
    """Every ``Example:`` of the strict packages' public modules runs and prints what it shows."""
    modules = [
        name
        for name in inventory.sections
        if check_docstrings.in_scope(name, (scope,), NOT_YET_STRICT)
    ]
    assert modules, f"{scope} has no public module"
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    report = []
    for name in modules:
        for test in finder.find(sys.modules[name], name):
            torch.manual_seed(0)
            runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


def test_plain_text_docstrings_become_restructuredtext():
    lines = [
        "|x| = ``|y|`` and :math:`|z|`",
        "",
        "| a | b |",
        "|---|---|",
        "| ``c`` | x / ||x|| |",
        "",
        "Usage::",
        "",
        "    q = |w|",
        "para",
        "* item",
        "  more",
        "after",
    ]
    assert plaintext.rst_lines(lines) == [
        r"\|x\| = ``|y|`` and :math:`|z|`",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "",
        "   * - a",
        "     - b",
        "   * - ``c``",
        r"     - x / \|\|x\|\|",
        "",
        "",
        "Usage::",
        "",
        "    q = |w|",
        "para",
        "",
        "* item",
        "  more",
        "",
        "after",
    ]
    # a star that opens no emphasis is text; emphasis, bullets and literals keep theirs
    assert plaintext.rst_lines(["x [N, *shape] and ``*a``", "*em* **st**", "* item"]) == [
        r"x [N, \*shape] and ``*a``",
        "*em* **st**",
        "",
        "* item",
    ]
