"""Entry-point registry: built-ins, third-party discovery, broken plugins, clear errors."""

import sys
import textwrap

import pytest

import torus_plugins
import torus_plugins.losses
from torus_plugins import registry


def test_builtin_heads_are_declared_and_create():
    names = torus_plugins.available_heads()
    for name in ["sphere", "l2p", "torusN", "clifford", "torusC", "s1xs1", "projection"]:
        assert name in names  # spelled as declared in pyproject.toml; look-ups ignore case
    head = torus_plugins.create_head("L2p", dim=64)
    assert isinstance(head, torus_plugins.L2p) and head.out_dim == 64
    assert isinstance(torus_plugins.create_head("torusC", dim=4), torus_plugins.Clifford)


def test_every_declared_builtin_plugin_loads():
    assert registry.broken_plugins() == {}
    for kind in registry.GROUPS:
        assert all(
            row["distribution"] in ("torus-plugins", "torus_plugins")
            for row in registry.describe(kind)
            if row["target"].startswith("torus_plugins")
        )


def test_unknown_name_lists_known_ones():
    with pytest.raises(
        torus_plugins.PluginError, match=r"unknown head 'hyperbolic'.*clifford.*l2p.*sphere"
    ):
        torus_plugins.create_head("hyperbolic", dim=4)
    with pytest.raises(ValueError, match="unknown plugin kind"):
        registry.available("optimisers")


@pytest.fixture
def third_party(tmp_path, monkeypatch):
    """A distribution installed only as a dist-info with entry_points.txt on sys.path, plus its
    module."""
    (tmp_path / "my_torus_plugin.py").write_text(
        textwrap.dedent("""
        import torch
        class DoubleSphere(torch.nn.Module):
            def __init__(self, dim):
                super().__init__()
                self.dim = self.out_dim = dim
            def forward(self, x):
                return 2 * torch.nn.functional.normalize(x, dim=-1)
    """)
    )
    info = tmp_path / "my_torus_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-torus-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent("""
        [torus_plugins.heads]
        double_sphere = my_torus_plugin:DoubleSphere
        broken_head = module_that_does_not_exist:Head
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("my_torus_plugin", None)


def test_third_party_plugin_is_discovered(third_party):
    import torch

    assert "double_sphere" in torus_plugins.available_heads()
    head = torus_plugins.create_head("double_sphere", dim=3)
    torch.testing.assert_close(
        head(torch.tensor([[3.0, 0.0, 4.0]])), torch.tensor([[1.2, 0.0, 1.6]])
    )
    row = next(r for r in registry.describe("heads") if r["name"] == "double_sphere")
    assert row["distribution"] == "my-torus-plugin" and row["error"] is None


def test_broken_plugin_is_reported_and_does_not_break_the_others(third_party):
    broken = torus_plugins.broken_plugins()
    assert list(broken) == ["torus_plugins.heads:broken_head"]
    assert "ModuleNotFoundError" in broken["torus_plugins.heads:broken_head"]
    assert isinstance(torus_plugins.create_head("l2p", dim=4), torus_plugins.L2p)
    with pytest.raises(
        torus_plugins.PluginError, match="broken_head.*failed to load.*module_that_does_not_exist"
    ):
        torus_plugins.create_head("broken_head")
    with pytest.warns(RuntimeWarning, match="broken_head"):
        registry.warn_broken()


# ---- robustness: fake distributions (a *.dist-info with METADATA and entry_points.txt) on sys.path


@pytest.fixture
def install(tmp_path, monkeypatch):
    """install(dist_name, entry_points_text, modules={name: source}) puts a fake distribution on
    sys.path."""
    monkeypatch.syspath_prepend(str(tmp_path))
    added = []

    def _install(dist, entry_points, modules=None, metadata=None):
        info = tmp_path / f"{dist.replace('-', '_')}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            metadata
            if metadata is not None
            else f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n"
        )
        if entry_points is not None:
            (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
        for mod, src in (modules or {}).items():
            (tmp_path / f"{mod}.py").write_text(textwrap.dedent(src))
            added.append(mod)

    yield _install
    for mod in added:
        sys.modules.pop(mod, None)


FAKE_HEAD = """
    import torch
    class Fake(torch.nn.Module):
        def __init__(self, dim=2):
            super().__init__()
            self.dim = self.out_dim = dim
        def forward(self, x):
            return 3 * x
"""


def list_output(capsys):
    from torus_plugins.cli import main

    capsys.readouterr()
    assert main(["list"]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    "kind,spelling,builtin",
    [
        ("heads", "L2P", torus_plugins.L2p),
        ("heads", "sphere", torus_plugins.Sphere),
        ("heads", "TorusC", torus_plugins.Clifford),
        ("losses", "KoLeo", torus_plugins.losses.KoLeoLoss),
    ],
)
def test_builtin_wins_over_a_colliding_third_party_name(install, capsys, kind, spelling, builtin):
    install(
        "evil-dist",
        f"[torus_plugins.{kind}]\n{spelling} = evil_mod:Fake\n",
        {"evil_mod": FAKE_HEAD},
    )
    obj = registry.load(kind, spelling.lower())
    assert obj is builtin
    assert registry.load(kind, spelling) is builtin
    broken = torus_plugins.broken_plugins()
    (key,) = [k for k in broken if "evil-dist" in k]
    assert "collides with the built-in" in broken[key] and "torus-plugins" in broken[key]
    assert "evil-dist" in broken[key] and spelling in key
    out = list_output(capsys)
    assert "BROKEN: ignored" in out and "evil_mod:Fake" in out


def test_two_third_party_plugins_with_one_name_are_an_explicit_error(install, capsys):
    install("plugin-a", "[torus_plugins.heads]\nfancy = mod_a:Fake\n", {"mod_a": FAKE_HEAD})
    install("plugin-b", "[torus_plugins.heads]\nFANCY = mod_b:Fake\n", {"mod_b": FAKE_HEAD})
    assert "fancy" in [n.lower() for n in torus_plugins.available_heads()]
    with pytest.raises(
        torus_plugins.PluginError, match=r"ambiguous.*plugin-[ab].*and.*plugin-[ab]"
    ):
        torus_plugins.create_head("fancy")
    broken = torus_plugins.broken_plugins()
    keys = sorted(k.lower() for k in broken if "fancy" in k.lower())
    assert keys == ["torus_plugins.heads:fancy@plugin-a", "torus_plugins.heads:fancy@plugin-b"]
    assert isinstance(torus_plugins.create_head("l2p", dim=4), torus_plugins.L2p)
    assert list_output(capsys).count("BROKEN: ambiguous") == 2


@pytest.mark.parametrize(
    "text",
    [
        "[torus_plugins.heads]\nthis line has no equals sign\n",
        "[torus_plugins.heads\nx = a:b\n",
        "x = a:b\n[torus_plugins.heads]\n",
    ],
)
def test_one_malformed_distribution_does_not_affect_the_others(install, capsys, text):
    install("good-plugin", "[torus_plugins.heads]\ngood = good_mod:Fake\n", {"good_mod": FAKE_HEAD})
    install("broken-dist", text)
    assert isinstance(torus_plugins.create_head("l2p", dim=4), torus_plugins.L2p)
    assert "good" in torus_plugins.available_heads() and "koleo" in torus_plugins.available_losses()
    assert torus_plugins.create_head("good", dim=2).out_dim == 2
    out = list_output(capsys)
    assert "good_mod:Fake" in out and "l2p" in out
    broken = torus_plugins.broken_plugins()
    if any(
        "broken-dist" in k for k in broken
    ):  # some texts are rejected by the parser, others are just empty
        assert "malformed entry_points.txt" in broken["torus_plugins.heads:broken-dist"]
        assert "BROKEN: malformed entry_points.txt" in out


def test_unreadable_metadata_and_bad_targets_are_reported(install, capsys):
    install("nameless", "[torus_plugins.heads]\nx = a:b\n", metadata="Metadata-Version: 2.1\n")
    install("bad-target", "[torus_plugins.heads]\nweird = ::not a target::\n")
    assert isinstance(torus_plugins.create_head("l2p", dim=4), torus_plugins.L2p)
    with pytest.raises(torus_plugins.PluginError, match="weird.*bad-target.*failed to load"):
        torus_plugins.create_head("weird")
    out = list_output(capsys)
    assert "unreadable METADATA" in out and "weird" in out


@pytest.mark.parametrize(
    "statement,exc",
    [
        ("raise SystemExit(3)", "SystemExit"),
        ("raise KeyboardInterrupt", "KeyboardInterrupt"),
        ("import sys; sys.exit('bye')", "SystemExit"),
        ("1 / 0", "ZeroDivisionError"),
    ],
)
def test_plugin_failing_at_import_is_reported_not_fatal(install, capsys, statement, exc):
    install(
        "exiter", "[torus_plugins.losses]\nexiting = exiting_mod:Fake\n", {"exiting_mod": statement}
    )
    out = list_output(capsys)
    assert f"BROKEN: {exc}" in out and "koleo" in out
    assert torus_plugins.broken_plugins()["torus_plugins.losses:exiting"].startswith(exc)
    with pytest.raises(torus_plugins.PluginError, match=f"exiting.*failed to load: {exc}"):
        torus_plugins.create_loss("exiting")


def test_names_must_be_strings():
    with pytest.raises(TypeError, match="head name must be a string, got 3"):
        torus_plugins.create_head(3)


def test_registry_does_not_use_the_entrypoints_package():
    import inspect

    src = inspect.getsource(registry)
    assert "import entrypoints" not in src and "importlib.metadata" in src
