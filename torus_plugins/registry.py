"""Plugin registry: heads, losses and adapters declared as entry points, read with
``importlib.metadata``.

Any installed distribution can add a head by declaring, in its own ``pyproject.toml``::

    [project.entry-points."torus_plugins.heads"]
    my_head = "my_package.heads:MyHead"

Rules (names are case-insensitive):

* the built-ins (entry points of the ``torus-plugins`` distribution itself) always win: a
  third-party entry point with a built-in's name is ignored and reported as broken, naming both
  distributions;
* one name declared by two third-party distributions is ambiguous: loading it raises
  :class:`PluginError` naming both, and both are reported as broken;
* a distribution whose metadata or ``entry_points.txt`` cannot be read is reported and skipped; the
  others work;
* a plugin that fails at import in any way (including ``SystemExit`` / ``KeyboardInterrupt`` raised
  by its module) is reported as broken and never stops the listing.

Usage::

    torus_plugins.available_heads()             # ['clifford', 'l2p', ..., 'my_head']
    head = torus_plugins.create_head("l2p", dim=64)
    torus_plugins.broken_plugins()   # {'torus_plugins.heads:bad': 'ModuleNotFoundError: ...'}
"""

import importlib.metadata
import re
import warnings
from dataclasses import dataclass, field

GROUPS = {
    "heads": "torus_plugins.heads",
    "losses": "torus_plugins.losses",
    "adapters": "torus_plugins.adapters",
}
BUILTIN_DISTRIBUTION = "torus-plugins"
#: What a plugin may raise at import and still only count as broken (a plugin calling sys.exit()
#: must not end ``torus-plugins list``).
_LOAD_ERRORS = (Exception, SystemExit, KeyboardInterrupt)


class PluginError(LookupError):
    """A plugin name that is unknown, ambiguous, or whose entry point fails to load."""


@dataclass
class _Entry:
    name: str  # as declared
    target: str  # module:attr
    distribution: str
    entry_point: importlib.metadata.EntryPoint
    problem: str | None = None


@dataclass
class _Scan:
    entries: dict = field(default_factory=dict)  # lower-case name -> _Entry (the one that is used)
    rejected: list = field(
        default_factory=list
    )  # _Entry objects that are ignored, with .problem set
    unreadable: list = field(default_factory=list)  # (distribution, message)


def _group(kind: str) -> str:
    if kind not in GROUPS:
        raise ValueError(f"unknown plugin kind {kind!r}; known: {sorted(GROUPS)}")
    return GROUPS[kind]


def _normalise(dist_name: str) -> str:
    return re.sub(r"[-_.]+", "-", dist_name).lower()


def _distributions():
    """(name, distribution) for every installed distribution, the first on sys.path winning a
    duplicate name; a distribution with unreadable metadata is yielded with name None."""
    seen = set()
    for dist in importlib.metadata.distributions():
        try:
            name = dist.metadata["Name"]
        except _LOAD_ERRORS:
            name = None
        if not name:
            yield None, dist
            continue
        key = _normalise(name)
        if key not in seen:
            seen.add(key)
            yield name, dist


def _scan(kind: str) -> _Scan:
    group, scan = _group(kind), _Scan()
    builtin: dict[str, list[_Entry]] = {}
    third_party: dict[str, list[_Entry]] = {}
    for dist_name, dist in _distributions():
        if dist_name is None:
            where = getattr(dist, "_path", "?")
            scan.unreadable.append((f"(distribution at {where})", "unreadable METADATA (no Name)"))
            continue
        try:
            eps = [ep for ep in dist.entry_points if ep.group == group]
        except _LOAD_ERRORS as exc:
            scan.unreadable.append(
                (
                    dist_name,
                    f"malformed entry_points.txt ({type(exc).__name__}: {exc}); "
                    f"none of its plugins are loaded",
                )
            )
            continue
        is_builtin = _normalise(dist_name) == BUILTIN_DISTRIBUTION
        for ep in eps:
            entry = _Entry(ep.name, ep.value, dist_name, ep)
            (builtin if is_builtin else third_party).setdefault(ep.name.lower(), []).append(entry)
    for key, entries in builtin.items():
        scan.entries[key] = entries[0]
    for key, entries in third_party.items():
        if key in scan.entries:
            owner = scan.entries[key]
            for e in entries:
                e.problem = (
                    f"ignored: {e.name!r} from distribution {e.distribution!r} collides with the "
                    f"built-in {owner.name!r} of {owner.distribution!r}; rename the entry point"
                )
                scan.rejected.append(e)
        elif len({e.distribution for e in entries}) > 1:
            who = " and ".join(f"{e.distribution!r} ({e.target})" for e in entries)
            for e in entries:
                e.problem = (
                    f"ambiguous: {key!r} is declared by {who}; uninstall or rename one of them"
                )
            scan.entries[key] = entries[0]
            scan.rejected.extend(entries[1:])
        else:
            scan.entries[key] = entries[0]
    return scan


def available(kind: str) -> list:
    """Sorted names of the declared plugins of one kind, spelled as declared (look-ups ignore case).

    Args:
        kind: ``"heads"``, ``"losses"`` or ``"adapters"``.

    Returns:
        A list of names, sorted case-insensitively (plugins that fail to import included).

    Raises:
        ValueError: ``kind`` is not one of the three.

    Example:
        >>> "l2p" in available("heads")
        True
    """
    return sorted((e.name for e in _scan(kind).entries.values()), key=str.lower)


def _try_load(entry: _Entry):
    """(object, None) or (None, "ErrorType: message")."""
    try:
        return entry.entry_point.load(), None
    except _LOAD_ERRORS as exc:
        return None, f"{type(exc).__name__}: {exc}"


def describe(kind: str) -> list:
    """One dict per plugin of ``kind``: name, target (``module:attr``), distribution, and error.

    Every plugin is imported to fill ``error`` (None if it loads). Ignored entry points
    (collisions, ambiguities) and unreadable distributions get their own rows with the reason.

    Args:
        kind: ``"heads"``, ``"losses"`` or ``"adapters"``.

    Returns:
        A list of dicts with keys ``name``, ``target``, ``distribution`` and ``error``.

    Raises:
        ValueError: ``kind`` is not one of the three.
    """
    scan = _scan(kind)
    rows = []
    for _key, entry in sorted(scan.entries.items()):
        error = entry.problem or _try_load(entry)[1]
        rows.append(
            {
                "name": entry.name,
                "target": entry.target,
                "distribution": entry.distribution,
                "error": error,
            }
        )
    for entry in scan.rejected:
        rows.append(
            {
                "name": entry.name,
                "target": entry.target,
                "distribution": entry.distribution,
                "error": entry.problem,
            }
        )
    for dist_name, message in scan.unreadable:
        rows.append(
            {
                "name": dist_name,
                "target": "entry_points.txt",
                "distribution": dist_name,
                "error": message,
            }
        )
    return rows


def broken_plugins() -> dict:
    """``group:name`` -> reason, for every plugin that fails to import, is ignored, or whose
    distribution is unreadable (keys of ignored entries add ``@distribution``).

    Returns:
        A dict, empty when every plugin of every kind loads.
    """
    out = {}
    for kind, group in GROUPS.items():
        for row in describe(kind):
            if row["error"]:
                key = f"{group}:{row['name']}"
                if key in out or row["error"].startswith(("ignored", "ambiguous")):
                    key = f"{key}@{row['distribution']}"
                out[key] = row["error"]
    return out


def load(kind: str, name: str):
    """The object an entry point names (a class, usually), imported.

    Args:
        kind: ``"heads"``, ``"losses"`` or ``"adapters"``.
        name: the entry point's name, in any case.

    Returns:
        The object the entry point's ``module:attr`` names.

    Raises:
        TypeError: ``name`` is not a string.
        ValueError: ``kind`` is not one of the three.
        PluginError: (a LookupError) ``name`` is unknown, ambiguous, collides with a built-in, or
            fails to import.
    """
    if not isinstance(name, str):
        raise TypeError(f"{kind[:-1]} name must be a string, got {name!r} ({type(name).__name__})")
    scan = _scan(kind)
    key = name.lower()
    if key not in scan.entries:
        known = ", ".join(sorted(scan.entries)) or "(none)"
        raise PluginError(f"unknown {kind[:-1]} {name!r}; known {kind}: {known}")
    entry = scan.entries[key]
    if entry.problem:
        raise PluginError(f"{kind[:-1]} plugin {name!r}: {entry.problem}")
    obj, error = _try_load(entry)
    if error:
        raise PluginError(
            f"{kind[:-1]} plugin {name!r} ({entry.target}, distribution {entry.distribution!r}) "
            f"failed to load: {error}"
        )
    return obj


def create(kind: str, name: str, **kwargs):
    """``load(kind, name)(**kwargs)``: instantiate a plugin.

    Args:
        kind: ``"heads"``, ``"losses"`` or ``"adapters"``.
        name: the entry point's name, in any case.
        **kwargs: the constructor's arguments.

    Returns:
        The new instance.

    Raises:
        TypeError: ``name`` is not a string (or the constructor rejects ``kwargs``).
        ValueError: ``kind`` is not one of the three (or the constructor rejects a value).
        PluginError: as for :func:`load`.
    """
    return load(kind, name)(**kwargs)


def available_heads() -> list:
    """Names of the installed heads: ``available("heads")``.

    Returns:
        A sorted list of names.
    """
    return available("heads")


def available_losses() -> list:
    """Names of the installed losses: ``available("losses")``.

    Returns:
        A sorted list of names.
    """
    return available("losses")


def create_head(name: str, **kwargs):
    """A head by its entry-point name: ``create("heads", name, **kwargs)``.

    Args:
        name: the head's name (``"l2p"``, ``"clifford"``, ``"sphere"``, ...), in any case.
        **kwargs: the head's constructor arguments.

    Returns:
        The new head (an ``nn.Module``).

    Raises:
        TypeError: ``name`` is not a string (or the constructor rejects ``kwargs``).
        ValueError: the constructor rejects a value.
        PluginError: ``name`` is unknown, ambiguous or fails to import.

    Example:
        >>> create_head("l2p", dim=64)
        L2p(dim=64, n_circles=32)
    """
    return create("heads", name, **kwargs)


def create_loss(name: str, **kwargs):
    """A loss by its entry-point name: ``create("losses", name, **kwargs)``.

    Args:
        name: the loss's name (``"koleo"``, ``"supcon"``, ...), in any case.
        **kwargs: the loss's constructor arguments.

    Returns:
        The new loss (an ``nn.Module``).

    Raises:
        TypeError: ``name`` is not a string (or the constructor rejects ``kwargs``).
        ValueError: the constructor rejects a value.
        PluginError: ``name`` is unknown, ambiguous or fails to import.
    """
    return create("losses", name, **kwargs)


def warn_broken() -> None:
    """Emit one warning per broken plugin (name and reason)."""
    for name, error in broken_plugins().items():
        warnings.warn(
            f"torus-plugins: plugin {name} failed to load: {error}", RuntimeWarning, stacklevel=2
        )
