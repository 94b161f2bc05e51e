"""Make ``import name`` fail in a test as if the package were not installed."""

import importlib.abc
import sys


class _Blocker(importlib.abc.MetaPathFinder):
    """Finds nothing for the blocked top-level names, as when they are not installed."""

    def __init__(self, names):
        self.names = set(names)

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def block(monkeypatch, *names):
    """``import name`` fails as if the package were not installed (its loaded modules hidden for the
    test)."""
    for name in list(sys.modules):
        if name.split(".")[0] in names:
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_Blocker(names)] + sys.meta_path)
