"""List the public symbols of torus_plugins whose docstrings lack a Google-style section.

The public symbols are those the API reference documents (``apidoc.py``): every public module,
every public object under its documented name, and the public methods and properties those classes
get from the package's own classes. What applies:

* a docstring of its own, for every symbol (one inherited from torch's or another library's class
  does not count, and the reference does not show it);
* ``Args:`` for a function or method with parameters besides ``self``/``cls`` (a class: its
  constructor's, in the class docstring or its own ``__init__``'s);
* ``Returns:`` (or ``Yields:``) when the body returns (yields) a value;
* ``Raises:`` when the body has a ``raise`` statement of its own (not in a nested function).

Usage::

    python docs/check_docstrings.py            # a line per symbol that lacks something, the counts
    python docs/check_docstrings.py --strict   # ... and exit 1 if any does
    python docs/check_docstrings.py --strict --scope torus_plugins.heads --scope torus_plugins.cli
                                               # only symbols defined in those modules (packages)
"""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import apidoc  # noqa: E402  (docs/apidoc.py)

PLURAL = {"module": "modules", "class": "classes", "function": "functions", "method": "methods"}
SECTIONS = {
    "Args": re.compile(r"^\s*(Args|Arguments):\s*$", re.M),
    "Returns": re.compile(r"^\s*(Returns|Yields):", re.M),
    "Raises": re.compile(r"^\s*Raises:\s*$", re.M),
}


@dataclass
class Finding:
    """A public symbol and the sections its docstring lacks."""

    name: str
    kind: str
    missing: list[str]
    module: str = ""  # the module that defines it (a method: its function's module)


def in_scope(
    module: str, scopes: list[str] | tuple[str, ...], exclude: list[str] | tuple[str, ...] = ()
) -> bool:
    """True when ``module`` is one of ``scopes`` or inside one, and neither of ``exclude``.

    Args:
        module: a dotted module name, e.g. ``torus_plugins.codes.pack``.
        scopes: dotted module or package names; ``torus_plugins`` covers the whole package.
        exclude: dotted module or package names left out even when inside a scope.

    Returns:
        Whether a symbol defined in ``module`` is checked.
    """

    def inside(names):
        return any(module == name or module.startswith(name + ".") for name in names)

    return inside(scopes) and not inside(exclude)


def _source_tree(func) -> ast.AST | None:
    """The parsed source of a function (numba dispatchers: of their Python function), or None."""
    func = getattr(func, "py_func", func)
    func = inspect.unwrap(func)
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError):
        return None
    try:
        return ast.parse(source)
    except SyntaxError:
        return None


def _own_nodes(tree: ast.AST):
    """The nodes of the first function in ``tree``; nested functions, lambdas, classes left out."""
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    top = next((n for n in ast.walk(tree) if isinstance(n, functions)), None)
    if top is None:
        return
    todo = list(top.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        yield node
        todo.extend(ast.iter_child_nodes(node))


def needed_sections(func, skip_first: bool) -> list[str]:
    """The sections a function's docstring needs, from its signature and its source."""
    needed = []
    try:
        params = list(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        params = []
    if skip_first and params and params[0] in ("self", "cls"):
        params = params[1:]
    if params:
        needed.append("Args")
    tree = _source_tree(func)
    if tree is not None:
        nodes = list(_own_nodes(tree))
        if any(
            isinstance(n, (ast.Yield, ast.YieldFrom))
            or (isinstance(n, ast.Return) and n.value is not None and not _is_none(n.value))
            for n in nodes
        ):
            needed.append("Returns")
        if any(isinstance(n, ast.Raise) for n in nodes):
            needed.append("Raises")
    return needed


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _missing(doc: str | None, needed: list[str]) -> list[str]:
    if not doc or not doc.strip():
        return ["docstring"]
    return [s for s in needed if not SECTIONS[s].search(doc)]


def _own_init(cls):
    init = vars(cls).get("__init__")
    if init is not None and getattr(init, "__module__", "").startswith(apidoc.ROOT):
        return init
    return None


def _module_of(func) -> str:
    """The module that defines a function (numba dispatchers: their Python function's)."""
    return getattr(getattr(func, "py_func", func), "__module__", "") or ""


def check(
    inventory: apidoc.Inventory,
    scopes: tuple[str, ...] = (apidoc.ROOT,),
    exclude: tuple[str, ...] = (),
) -> tuple[list[Finding], dict[str, int]]:
    """Check the documented symbols defined in ``scopes`` (see :func:`in_scope`).

    Args:
        inventory: the public symbols, from ``apidoc.build_inventory()``.
        scopes: dotted module or package names whose symbols are checked; the default, the
            whole package.
        exclude: dotted module or package names left out even when inside a scope.

    Returns:
        (every symbol checked that lacks something, number of symbols checked per kind).
    """
    findings: list[Finding] = []
    counts = {"module": 0, "class": 0, "function": 0, "method": 0}
    seen: set[int] = set()

    def add(name, kind, missing, module):
        if not in_scope(module, scopes, exclude):
            return
        counts[kind] += 1
        if missing:
            findings.append(Finding(name, kind, missing, module))

    for module in inventory.sections:
        add(module, "module", _missing(sys.modules[module].__doc__, []), module)
    for entry in inventory.documented():
        obj = entry.obj
        if entry.kind == "function":
            add(
                entry.name,
                "function",
                _missing(obj.__doc__, needed_sections(obj, False)),
                _module_of(obj),
            )
        elif entry.kind == "class":
            init = _own_init(obj)
            needed = needed_sections(init, True) if init is not None else []
            if init is None:
                try:
                    needed = ["Args"] if inspect.signature(obj).parameters else []
                except (TypeError, ValueError):
                    needed = []
            doc = (obj.__doc__ or "") + "\n" + ((init.__doc__ or "") if init is not None else "")
            add(entry.name, "class", _missing(obj.__doc__ and doc, needed), obj.__module__)
            for member in apidoc.class_members(obj):
                if member == "__init__":
                    continue
                raw = inspect.getattr_static(obj, member)
                if isinstance(raw, (staticmethod, classmethod)):
                    func, skip = raw.__func__, not isinstance(raw, staticmethod)
                elif isinstance(raw, property):
                    func, skip = raw.fget, True
                elif inspect.isfunction(raw):
                    func, skip = raw, True
                else:
                    continue  # class attributes: data, no sections
                if id(func) in seen:
                    continue
                seen.add(id(func))
                needed = [] if isinstance(raw, property) else needed_sections(func, skip)
                add(
                    f"{entry.name}.{member}",
                    "method",
                    _missing(func.__doc__, needed),
                    _module_of(func),
                )
    return findings, counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when any public symbol lacks a section"
    )
    parser.add_argument("--quiet", action="store_true", help="print the counts only")
    parser.add_argument(
        "--scope",
        action="append",
        metavar="MODULE",
        help="check only symbols defined in this module or package (repeatable; "
        "default: the whole package)",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="MODULE",
        help="leave out symbols defined in this module or package (repeatable)",
    )
    args = parser.parse_args(argv)
    inventory = apidoc.build_inventory()
    findings, counts = check(inventory, tuple(args.scope or (apidoc.ROOT,)), tuple(args.exclude))
    if not args.quiet:
        for f in findings:
            print(f"{f.name} ({f.kind}): lacks {', '.join(f.missing)}")
        for name in inventory.missing:
            print(f"{name}: listed in its module's __all__ but not defined there")
    total = sum(counts.values())
    undocumented = sum("docstring" in f.missing for f in findings)
    per_kind = {kind: sum(f.kind == kind for f in findings) for kind in counts}
    print(
        f"{len(findings)} of {total} public symbols lack a Google-style section that applies to "
        f"them ({undocumented} have no docstring at all):"
    )
    print("  " + ", ".join(f"{PLURAL[kind]} {per_kind[kind]}/{counts[kind]}" for kind in counts))
    section_counts = {s: sum(s in f.missing for f in findings) for s in SECTIONS}
    print("  missing " + ", ".join(f"{s}: {n}" for s, n in section_counts.items()))
    if inventory.missing:
        print(f"  {len(inventory.missing)} names in an __all__ that their module does not define")
    return 1 if args.strict and (findings or inventory.missing) else 0


if __name__ == "__main__":
    sys.exit(main())
