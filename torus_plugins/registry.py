"""Plugin registry: heads, losses and adapters declared as entry points, found with the ``entrypoints`` package.

Any installed distribution can add a head by declaring, in its own ``pyproject.toml``::

    [project.entry-points."torus_plugins.heads"]
    my_head = "my_package.heads:MyHead"

Usage::

    torus_plugins.available_heads()             # ['clifford', 'l2p', ..., 'my_head']
    head = torus_plugins.create_head("l2p", dim=64)
    torus_plugins.broken_plugins()              # {'torus_plugins.heads:bad': 'ModuleNotFoundError: ...'}
"""

import warnings

import entrypoints

GROUPS = {"heads": "torus_plugins.heads", "losses": "torus_plugins.losses", "adapters": "torus_plugins.adapters"}


class PluginError(LookupError):
    """A plugin name that is unknown, or whose entry point fails to load."""


def _group(kind: str) -> str:
    if kind not in GROUPS:
        raise ValueError(f"unknown plugin kind {kind!r}; known: {sorted(GROUPS)}")
    return GROUPS[kind]


def _entry_points(kind: str) -> dict:
    """name -> EntryPoint for one kind; names are case-insensitive, the first distribution on sys.path wins."""
    found = {}
    for ep in entrypoints.get_group_all(_group(kind)):
        found.setdefault(ep.name.lower(), ep)
    return found


def available(kind: str) -> list:
    """Sorted names of the declared plugins of one kind ("heads", "losses" or "adapters")."""
    return sorted(_entry_points(kind))


def describe(kind: str) -> list:
    """One dict per plugin of ``kind``: name, target (``module:attr``), distribution, and load error or None."""
    rows = []
    for name, ep in sorted(_entry_points(kind).items()):
        try:
            ep.load()
            error = None
        except Exception as exc:  # a third-party plugin may fail in any way; report it, keep the others
            error = f"{type(exc).__name__}: {exc}"
        target = ep.module_name + (f":{ep.object_name}" if ep.object_name else "")
        dist = ep.distro.name if ep.distro is not None else None
        rows.append({"name": name, "target": target, "distribution": dist, "error": error})
    return rows


def broken_plugins() -> dict:
    """``group:name`` -> load error, for every declared plugin that fails to import."""
    return {f"{GROUPS[kind]}:{row['name']}": row["error"]
            for kind in GROUPS for row in describe(kind) if row["error"]}


def load(kind: str, name: str):
    """The object an entry point names; unknown or broken names raise :class:`PluginError` with the reason."""
    eps = _entry_points(kind)
    key = str(name).lower()
    if key not in eps:
        raise PluginError(f"unknown {kind[:-1]} {name!r}; known {kind}: {', '.join(sorted(eps)) or '(none)'}")
    try:
        return eps[key].load()
    except Exception as exc:
        raise PluginError(f"{kind[:-1]} plugin {name!r} ({eps[key].module_name}) failed to load: "
                          f"{type(exc).__name__}: {exc}") from exc


def create(kind: str, name: str, **kwargs):
    """Instantiate the plugin ``name`` of ``kind`` with ``kwargs``."""
    return load(kind, name)(**kwargs)


def available_heads() -> list:
    """Names of the installed heads."""
    return available("heads")


def available_losses() -> list:
    """Names of the installed losses."""
    return available("losses")


def create_head(name: str, **kwargs):
    """``create_head("l2p", dim=64)``: a head by its entry-point name."""
    return create("heads", name, **kwargs)


def create_loss(name: str, **kwargs):
    """``create_loss("koleo")``: a loss by its entry-point name."""
    return create("losses", name, **kwargs)


def warn_broken() -> None:
    """Emit one warning per broken plugin (name and import error)."""
    for name, error in broken_plugins().items():
        warnings.warn(f"torus-plugins: plugin {name} failed to load: {error}", RuntimeWarning, stacklevel=2)
