"""Sphinx configuration of the torus-plugins documentation.

Build: ``make docs`` (strict: ``-W --keep-going -n``: any warning, broken link between pages or
unresolved reference to the package fails the build). Pages are Markdown (MyST); the API reference
is generated from the docstrings (Google style, napoleon) by ``apidoc.py`` into ``api/`` at the
start of every build.
"""

import re
import sys
from pathlib import Path

from sphinx.util.docstrings import prepare_docstring

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import apidoc  # noqa: E402  (docs/apidoc.py and docs/plaintext.py)
import plaintext  # noqa: E402

import torus_plugins  # noqa: E402

project = "torus-plugins"
author = "torus-plugins contributors"
copyright = "torus-plugins contributors, MIT licence"
release = torus_plugins.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]

# MyST: ```{directive} fences, anchors for headings down to ### (links like page.md#anchor).
# Formulas are plain text, as in the docstrings: the site needs no JavaScript from the network.
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# autodoc + napoleon: Google-style sections, signatures with type hints.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autoclass_content = "class"
autodoc_inherit_docstrings = False  # a forward() without a docstring shows none, not torch's
python_use_unqualified_type_names = True

# Strict references: every reference to torus_plugins.* must resolve (nitpicky). Other libraries'
# types (torch.Tensor, numpy.ndarray, ...) and the free-text types of docstring sections ("uint8
# array [n, k]") have no inventory offline: they are rendered as text instead of failing.
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r"(?!torus_plugins(\.|$)).*")]

html_theme = "furo"
html_title = f"torus-plugins {release}"
html_static_path = []
pygments_style = "sphinx"


def generate_api_pages(app):
    """Write api/*.rst from the package as it is now (apidoc.py). The inventory stays on the app for
    resolve_moved (the environment is pickled between builds; modules are not picklable)."""
    app.torus_inventory = inventory = apidoc.build_inventory()
    apidoc.write_pages(HERE / "api", inventory)


_PRIVATE = re.compile(r"(^|\.)_[^_]")


def resolve_moved(app, env, node, contnode):
    """Resolve a reference to a package object under any public name (the module that defines it, a
    re-export) to the name it is documented under. A reference into a private module (a base
    class's home) is printed as text."""
    if node.get("refdomain") != "py":
        return None
    target = node["reftarget"].lstrip(".~")
    candidates = [target]
    for context in (node.get("py:class"), node.get("py:module")):
        if context:
            candidates.insert(0, f"{context}.{target}")
    if node.get("py:module") and node.get("py:class"):
        candidates.insert(0, f"{node['py:module']}.{node['py:class']}.{target}")
    domain = env.domains["py"]
    for candidate in candidates:
        if not candidate.startswith(apidoc.ROOT):
            continue
        documented = apidoc.canonical_target(candidate, app.torus_inventory)
        if documented is not None:
            resolved = domain.resolve_xref(
                env,
                node.get("refdoc", ""),
                app.builder,
                node["reftype"],
                documented,
                node,
                contnode,
            )
            if resolved is not None:
                return resolved
    if target.startswith(apidoc.ROOT) and _PRIVATE.search(target):
        return contnode
    return None


def plain_text_docstrings(app, what, name, obj, options, lines):
    """Formulas and Markdown tables of the package's docstrings as reStructuredText (plaintext.py).
    A constant re-exported from another module gets the comment that documents it there, not its
    type's docstring."""
    if what in ("data", "attribute") and lines == prepare_docstring(type(obj).__doc__ or ""):
        lines[:] = apidoc.doc_comment(name, obj)
    lines[:] = plaintext.rst_lines(lines)


def setup(app):
    # priority 400: before napoleon (500) reads the sections
    app.connect("autodoc-process-docstring", plain_text_docstrings, priority=400)
    app.connect("builder-inited", generate_api_pages)
    app.connect("missing-reference", resolve_moved)
