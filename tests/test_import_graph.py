"""The package's module-level imports form no cycle; the search kernel's CPU module is a leaf."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "torus_plugins"


def module_names() -> dict:
    """Dotted module name -> file, for every module of the package."""
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def import_graph() -> dict:
    """Module -> the package's modules it imports at module level (not inside functions)."""
    mods = module_names()
    graph = {}
    for mod, path in mods.items():
        package = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
        deps = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                name = ".".join(base + ([node.module] if node.module else []))
                for alias in node.names:
                    sub = f"{name}.{alias.name}"
                    deps.add(sub if sub in mods else name)
            elif isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names)
        graph[mod] = {d for d in deps if d in mods and d != mod}
    return graph


def find_cycle(graph: dict) -> list | None:
    """One cycle of ``graph`` as a list of modules, or None."""
    state: dict = {}

    def visit(node, path):
        state[node] = "open"
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                return path[path.index(dep) :] + [dep]
            if dep not in state:
                found = visit(dep, path + [dep])
                if found:
                    return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_the_package_import_graph_has_no_cycle():
    graph = import_graph()
    assert "torus_plugins.search._kernel.scan" in graph  # the walk sees subpackages
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_kernel_cpu_module_is_a_leaf_and_the_kernel_imports_no_index():
    graph = import_graph()
    assert graph["torus_plugins.search._kernel.cpu"] == set()
    kernel = [m for m in graph if m.startswith("torus_plugins.search._kernel")]
    for mod in kernel:
        outside = {d for d in graph[mod] if not d.startswith("torus_plugins.search._kernel")}
        assert outside <= {
            "torus_plugins.codes",
            "torus_plugins.codes.pack",
            "torus_plugins.search._results",
        }, (mod, outside)
