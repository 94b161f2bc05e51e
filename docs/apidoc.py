"""The API reference, generated from the package as it is at build time.

One page per top-level subpackage or module of ``torus_plugins`` (heads, losses, codes, search,
...). A page documents the namespace's public names (its ``__all__``, or else the classes and
functions it defines and its UPPER_CASE constants), then every public submodule: its docstring and
the public names it adds. Each object is documented once, under its canonical name: the shortest
public namespace that exports it and contains the module that defines it, so
``torus_plugins.heads.L2p`` rather than ``torus_plugins.heads.l2p.L2p`` or the top-level re-export
``torus_plugins.L2p``. Every other place that exports it links there.

Nothing here names a module of the package: moving or renaming one changes the pages, not this
script. ``conf.py`` calls :func:`write_pages` when a build starts, and :func:`canonical_target`
resolves a reference to an object under any of its public names (``torus_plugins.heads.l2p.L2p``
-> ``torus_plugins.heads.L2p``). ``check_docstrings.py`` checks the symbols of
:meth:`Inventory.documented`.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path

ROOT = "torus_plugins"
#: Packages shipped under ROOT from another folder of the checkout, which pkgutil cannot see by
#: walking ROOT's own folder (none today: every subpackage lives under ROOT).
EXTRA_PACKAGES: tuple[str, ...] = ()
#: Page order of the reference; pages not listed here follow in alphabetical order.
PAGE_ORDER = (
    "torus_plugins",
    "heads",
    "losses",
    "codes",
    "search",
    "metrics",
    "deploy",
    "adapters",
    "geometry",
    "registry",
    "plot",
    "report",
    "cli",
)


@dataclass
class Entry:
    """One public name of a module: documented there (``canonical`` is its own name) or linked."""

    name: str  # module.attribute, as exported
    obj: object
    kind: str  # "class", "function" or "data"
    canonical: str | None  # where it is documented; None: defined outside the package


@dataclass
class Section:
    """A module and its public names, in the order of its ``__all__``."""

    module: str
    entries: list[Entry] = field(default_factory=list)


def is_public(dotted: str) -> bool:
    """True when no component of a dotted name starts with an underscore."""
    return not any(part.startswith("_") for part in dotted.split("."))


def public_modules() -> list[str]:
    """Every public module and package of ROOT (importing each), sorted."""
    found = {ROOT}
    todo = [ROOT, *EXTRA_PACKAGES]
    while todo:
        name = todo.pop()
        module = importlib.import_module(name)
        found.add(name)
        for info in pkgutil.iter_modules(getattr(module, "__path__", []), name + "."):
            if is_public(info.name) and info.name not in found:
                found.add(info.name)
                todo.append(info.name)
    return sorted(found)


def kind_of(obj) -> str:
    """'class', 'function' (anything callable that is not a class) or 'data'."""
    if inspect.isclass(obj):
        return "class"
    if callable(obj) and hasattr(obj, "__name__"):
        return "function"
    return "data"


def public_names(module) -> list[str]:
    """``__all__``, else the classes and functions the module defines and its UPPER_CASE
    constants."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    names = []
    for name, obj in vars(module).items():
        if name.startswith("_") or inspect.ismodule(obj):
            continue
        if kind_of(obj) == "data":
            if name.isupper():
                names.append(name)
        elif getattr(obj, "__module__", None) == module.__name__:
            names.append(name)
    return names


def _key(obj, name: str):
    """Identity of an exported object: classes and functions by object, data by object and name
    (small ints and strings are shared by unrelated constants)."""
    return id(obj) if kind_of(obj) != "data" else (id(obj), name)


def _depth(module: str) -> int:
    return module.count(".")


def _choose(obj, candidates: list[str]) -> str | None:
    """The canonical name among every public ``module.name`` bound to ``obj``."""
    home = getattr(obj, "__module__", None)
    if kind_of(obj) != "data" and not (home or "").startswith(ROOT):
        return None  # torch's, faiss's ...: not ours to document

    def rank(candidate):
        module, name = candidate.rsplit(".", 1)
        own_name = name == getattr(obj, "__name__", name)
        contains_home = home is not None and (home == module or home.startswith(module + "."))
        return (
            not own_name,
            module == ROOT and home != ROOT,
            not contains_home,
            _depth(module),
            candidate,
        )

    return min(candidates, key=rank)


@dataclass
class Inventory:
    """Every public module with its entries, and the canonical name of every exported object."""

    sections: dict[str, Section]
    canonical: dict[object, str | None]
    missing: list[str]  # names an ``__all__`` lists that its module does not define

    def pages(self) -> dict[str, list[Section]]:
        """{page name: its sections}, the page's namespace first, in PAGE_ORDER."""
        pages: dict[str, list[Section]] = {}
        for module, section in self.sections.items():
            parts = module.split(".")
            page = parts[1] if len(parts) > 1 else ROOT
            pages.setdefault(page, []).append(section)
        order = {name: i for i, name in enumerate(PAGE_ORDER)}
        return {
            page: sorted(pages[page], key=lambda s: (_depth(s.module), s.module))
            for page in sorted(pages, key=lambda p: (order.get(p, len(order)), p))
        }

    def documented(self) -> list[Entry]:
        """The entries documented where they stand (each object once)."""
        return [e for s in self.sections.values() for e in s.entries if e.canonical == e.name]


def build_inventory() -> Inventory:
    """Import every public module and decide where each public object is documented."""
    modules = {name: importlib.import_module(name) for name in public_modules()}
    exported: dict[object, list[str]] = {}
    objects: dict[str, object] = {}
    missing: list[str] = []
    for name, module in modules.items():
        for attr in public_names(module):
            if not hasattr(module, attr):
                missing.append(f"{name}.{attr}")  # check_docstrings.py reports these
                continue
            obj = getattr(module, attr)
            if inspect.ismodule(obj):
                continue
            objects[f"{name}.{attr}"] = obj
            exported.setdefault(_key(obj, attr), []).append(f"{name}.{attr}")
    canonical = {key: _choose(objects[names[0]], names) for key, names in exported.items()}
    sections = {}
    for name, module in modules.items():
        section = sections[name] = Section(name)
        for attr in public_names(module):
            full = f"{name}.{attr}"
            if full in objects:
                obj = objects[full]
                section.entries.append(Entry(full, obj, kind_of(obj), canonical[_key(obj, attr)]))
    return Inventory(sections, canonical, missing)


def class_members(cls) -> list[str]:
    """Public methods and attributes a class gets from the package's own classes (its private bases
    too, not torch's or another library's), in definition order; ``__init__`` when it has its own
    docstring."""
    names: list[str] = []
    for klass in cls.__mro__:
        if not getattr(klass, "__module__", "").startswith(ROOT):
            continue
        for name, value in vars(klass).items():
            if name in names:
                continue
            if name == "__init__" and getattr(value, "__doc__", None):
                names.append(name)
            elif not name.startswith("_"):
                names.append(name)
    return names


# ------------------------------------------------------------------------------------------ pages


def _heading(text: str, char: str) -> str:
    return f"{text}\n{char * len(text)}\n"


def _directive(entry: Entry) -> str:
    if entry.kind == "class":
        members = class_members(entry.obj)
        lines = [f".. autoclass:: {entry.name}", "   :show-inheritance:"]
        lines.append(f"   :members: {', '.join(members)}" if members else "   :no-members:")
        return "\n".join(lines) + "\n"
    if entry.kind == "function":
        return f".. autofunction:: {entry.name}\n"
    return f".. autodata:: {entry.name}\n"


def _links(entries: list[Entry]) -> str:
    items = []
    for entry in entries:
        short = entry.name.rsplit(".", 1)[1]
        if entry.canonical is None:
            home = getattr(entry.obj, "__module__", "?")
            qualname = getattr(entry.obj, "__qualname__", short)
            items.append(f"* ``{short}``: ``{home}.{qualname}``")
        else:
            items.append(f"* ``{short}``: :py:obj:`{entry.canonical}`")
    return "\n".join(items) + "\n"


def _cli_help(module) -> str:
    """The ``--help`` of a module's ``build_parser()`` and of each of its sub-commands."""
    parser = module.build_parser()
    blocks = [("", parser)]
    for action in parser._actions:  # argparse keeps sub-parsers only here
        if isinstance(action, argparse._SubParsersAction):
            blocks += [(f" {name}", sub) for name, sub in action.choices.items()]
    out = []
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps at the terminal's width: fix it
    try:
        texts = [sub.format_help().replace("\t", "    ") for _, sub in blocks]
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    for (suffix, _), text in zip(blocks, texts):
        out.append(
            f".. code-block:: text\n   :caption: {parser.prog}{suffix} --help\n\n"
            + "".join(f"   {line}\n" if line else "\n" for line in text.splitlines())
        )
    return "\n".join(out)


def render_page(page: str, sections: list[Section], object_names: set[str]) -> str:
    """reStructuredText of one reference page."""
    out = [".. Generated by docs/apidoc.py when the docs are built; edit the docstrings.\n"]
    for i, section in enumerate(sections):
        out.append(_heading(f"``{section.module}``", "=" if i == 0 else "-"))
        automodule = f".. automodule:: {section.module}\n"
        if section.module in object_names:  # e.g. codes.quantize: a submodule and a function
            automodule += "   :no-index:\n"
        out.append(automodule)
        module = importlib.import_module(section.module)
        if callable(getattr(module, "build_parser", None)):
            out.append(_cli_help(module))
        own = [e for e in section.entries if e.canonical == e.name]
        linked = [e for e in section.entries if e.canonical != e.name]
        for entry in own:
            out.append(_directive(entry))
        if linked:
            out.append(
                f"Also exported by ``{section.module}``, documented under the name linked:\n"
            )
            out.append(_links(linked))
    return "\n".join(out)


def write_pages(outdir: Path, inventory: Inventory | None = None) -> list[str]:
    """Write ``<outdir>/<page>.rst`` for every page and ``index.rst`` with their toctree; remove
    stale pages. Returns the page names."""
    inventory = inventory or build_inventory()
    outdir.mkdir(parents=True, exist_ok=True)
    pages = inventory.pages()
    object_names = {e.name for e in inventory.documented()}
    written = set()
    for page, sections in pages.items():
        text = render_page(page, sections, object_names)
        path = outdir / f"{page}.rst"
        if not path.exists() or path.read_text() != text:  # unchanged pages keep Sphinx's cache
            path.write_text(text)
        written.add(path.name)
    toctree = "\n".join(f"   {page}" for page in pages)
    index = (
        ".. Generated by docs/apidoc.py when the docs are built.\n\n"
        + _heading("API reference", "=")
        + "\n"
        "Generated from the docstrings of the installed package: one page per subpackage or\n"
        "module. Each object is documented once, under the namespace you import it from; the\n"
        "pages of other namespaces that export it link there.\n\n"
        f".. toctree::\n   :maxdepth: 1\n\n{toctree}\n"
    )
    if not (outdir / "index.rst").exists() or (outdir / "index.rst").read_text() != index:
        (outdir / "index.rst").write_text(index)
    written.add("index.rst")
    for stale in outdir.glob("*.rst"):
        if stale.name not in written:
            stale.unlink()
    return list(pages)


def _locate(dotted: str):
    """The object a dotted name imports as, or raise ImportError/AttributeError."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            obj = getattr(obj, part)
        return obj
    raise ImportError(dotted)


def canonical_target(dotted: str, inventory: Inventory) -> str | None:
    """The documented name of the object ``dotted`` names (of an attribute: its class's documented
    name + the attribute), or None when neither is a documented object."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = _locate(".".join(parts[:i]))
        except (ImportError, AttributeError):
            continue
        name = inventory.canonical.get(_key(obj, parts[i - 1]))
        if name is not None:
            return ".".join([name, *parts[i:]])
    return None


def doc_comment(name: str, obj) -> list[str]:
    """The ``#:`` comment (or string after the assignment) that documents constant ``obj`` in the
    module of the package that assigns it, found under its short name; [] when there is none."""
    import sys

    from sphinx.pycode import ModuleAnalyzer, PycodeError

    short = name.rsplit(".", 1)[-1]
    for modname, module in sorted(sys.modules.items()):
        if not modname.startswith(ROOT) or getattr(module, short, None) is not obj:
            continue
        try:
            docs = ModuleAnalyzer.for_module(modname).find_attr_docs()
        except PycodeError:
            continue
        if ("", short) in docs:
            return list(docs[("", short)])
    return []
