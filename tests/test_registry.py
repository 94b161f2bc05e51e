"""Entry-point registry: built-ins, third-party discovery, broken plugins, clear errors."""

import sys
import textwrap

import pytest

import torus_plugins
from torus_plugins import registry


def test_builtin_heads_are_declared_and_create():
    names = torus_plugins.available_heads()
    for name in ["sphere", "l2p", "torusn", "clifford", "torusc", "s1xs1", "projection"]:
        assert name in names
    head = torus_plugins.create_head("L2p", dim=64)
    assert isinstance(head, torus_plugins.L2p) and head.out_dim == 64
    assert isinstance(torus_plugins.create_head("torusC", dim=4), torus_plugins.Clifford)


def test_every_declared_builtin_plugin_loads():
    assert registry.broken_plugins() == {}
    for kind in registry.GROUPS:
        assert all(row["distribution"] in ("torus-plugins", "torus_plugins")
                   for row in registry.describe(kind) if row["target"].startswith("torus_plugins"))


def test_unknown_name_lists_known_ones():
    with pytest.raises(torus_plugins.PluginError, match=r"unknown head 'hyperbolic'.*clifford.*l2p.*sphere"):
        torus_plugins.create_head("hyperbolic", dim=4)
    with pytest.raises(ValueError, match="unknown plugin kind"):
        registry.available("optimisers")


@pytest.fixture
def third_party(tmp_path, monkeypatch):
    """A distribution installed only as a dist-info with entry_points.txt on sys.path, plus its module."""
    (tmp_path / "my_torus_plugin.py").write_text(textwrap.dedent("""
        import torch
        class DoubleSphere(torch.nn.Module):
            def __init__(self, dim):
                super().__init__()
                self.dim = self.out_dim = dim
            def forward(self, x):
                return 2 * torch.nn.functional.normalize(x, dim=-1)
    """))
    info = tmp_path / "my_torus_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-torus-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""
        [torus_plugins.heads]
        double_sphere = my_torus_plugin:DoubleSphere
        broken_head = module_that_does_not_exist:Head
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("my_torus_plugin", None)


def test_third_party_plugin_is_discovered(third_party):
    import torch
    assert "double_sphere" in torus_plugins.available_heads()
    head = torus_plugins.create_head("double_sphere", dim=3)
    torch.testing.assert_close(head(torch.tensor([[3.0, 0.0, 4.0]])), torch.tensor([[1.2, 0.0, 1.6]]))
    row = next(r for r in registry.describe("heads") if r["name"] == "double_sphere")
    assert row["distribution"] == "my-torus-plugin" and row["error"] is None


def test_broken_plugin_is_reported_and_does_not_break_the_others(third_party):
    broken = torus_plugins.broken_plugins()
    assert list(broken) == ["torus_plugins.heads:broken_head"]
    assert "ModuleNotFoundError" in broken["torus_plugins.heads:broken_head"]
    assert isinstance(torus_plugins.create_head("l2p", dim=4), torus_plugins.L2p)
    with pytest.raises(torus_plugins.PluginError, match="broken_head.*failed to load.*module_that_does_not_exist"):
        torus_plugins.create_head("broken_head")
    with pytest.warns(RuntimeWarning, match="broken_head"):
        registry.warn_broken()
