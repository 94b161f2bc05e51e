"""One geometry vocabulary: the Geometry objects, the one ``geometry=`` keyword across heads,
losses, codes, metrics and adapters, unknown names refused everywhere, 0.1.0 keywords deprecated."""

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from torus_plugins import geometry as G
from torus_plugins.heads import ProjectionHead, make_projection
from torus_plugins.losses import SupConLoss
from torus_plugins.metrics import circular_variance, few_shot_accuracy, retrieval


@pytest.mark.parametrize(
    "name,expected",
    [
        ("sphere", G.SPHERE),
        ("HYPRS", G.SPHERE),
        ("torusN", G.TORUS_N),
        ("l2p", G.TORUS_N),
        ("torul", G.TORUS_N),
        ("TorusC", G.TORUS_C),
        ("clifford", G.TORUS_C),
        ("torus", G.TORUS_C),
    ],
)
def test_names_map_to_one_object(name, expected):
    assert G.get_geometry(name) is expected and G.get_geometry(expected) is expected


def test_codes_geometry_and_bits_per_vector():
    assert G.get_geometry("codes", bits=4).bits_per_vector(16) == 64
    assert G.TORUS_N.bits_per_vector(64, bits=8) == 32 * 8
    assert G.SPHERE.bits_per_vector(64, bits=8) == 64 * 8
    with pytest.raises(ValueError, match="even width"):
        G.TORUS_C.values_per_vector(7)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(1, 5), st.integers(0, 2**16))
def test_torus_unit_vectors_are_clifford_of_turns(k, n, seed):
    turns = np.random.default_rng(seed).random((n, k))
    theta = 2 * math.pi * turns
    scale = np.random.default_rng(seed + 1).uniform(0.1, 10, (n, k))
    x = np.empty((n, 2 * k))
    x[:, 0::2], x[:, 1::2] = np.cos(theta) * scale, np.sin(theta) * scale
    u = G.TORUS_N.unit_vectors(x)
    np.testing.assert_allclose(np.linalg.norm(u, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(u, G.clifford_of_turns(turns), atol=1e-12)
    # inner product of unit vectors = (1/k) sum_i cos(dtheta_i)
    expected = np.cos(theta[:, None, :] - theta[None, :, :]).mean(-1)
    np.testing.assert_allclose(G.TORUS_N.scores(u, u), expected, atol=1e-12)


def test_clifford_of_turns_is_to_clifford():
    t = torch.rand(5, 3, dtype=torch.float64)
    np.testing.assert_allclose(G.clifford_of_turns(t.numpy()), G.to_clifford(t).numpy(), atol=0)


UNKNOWN = [
    lambda g: G.get_geometry(g),
    lambda g: make_projection(g, 8),
    lambda g: ProjectionHead(8, 8, geometry=g),
    lambda g: SupConLoss(geometry=g),
    lambda g: circular_variance(np.ones((3, 4)), geometry=g),
    lambda g: retrieval(np.random.rand(6, 4), [0, 0, 1, 1, 2, 2], geometry=g),
    lambda g: few_shot_accuracy(np.random.rand(6, 4), [0, 0, 1, 1, 2, 2], shots=(1,), geometry=g),
]


@pytest.mark.parametrize("use", UNKNOWN)
def test_unknown_geometry_name_is_a_value_error_everywhere(use):
    with pytest.raises(ValueError, match=r"geometry.*'poincare'|'poincare'.*geometry"):
        use("poincare")


@pytest.mark.parametrize("use", UNKNOWN[:4])
def test_wrong_kind_of_geometry_is_a_type_error(use):
    with pytest.raises(TypeError, match="geometry"):
        use(3.5)


def test_save_codes_refuses_an_unknown_geometry(tmp_path):
    from torus_plugins.codes import save_codes

    with pytest.raises(ValueError, match="geometry"):
        save_codes(tmp_path / "c.torc", np.zeros((2, 3), np.uint8), bits=8, geometry="nonsense")


def _deprecated_calls():
    calls = [
        ("ProjectionHead", lambda: ProjectionHead(8, 4, projection="clifford"), "projection"),
        ("SupConLoss", lambda: SupConLoss(projmode="torusN"), "projmode"),
    ]
    from torus_plugins.adapters import eb_jepa, normalize, protoclr

    calls += [
        (
            "torus_normalize",
            lambda: normalize.torus_normalize(torch.randn(2, 4), mode="torusN"),
            "mode",
        ),
        ("protoclr.SupConLoss", lambda: protoclr.SupConLoss(0.1, mode="torusC"), "mode"),
        ("eb_jepa.VICRegLoss", lambda: eb_jepa.VICRegLoss(projection="torusC"), "projection"),
    ]
    return calls


@pytest.mark.parametrize("case", _deprecated_calls(), ids=lambda c: c[0])
def test_old_keyword_still_works_with_a_deprecation_warning(case):
    _, call, old = case
    with pytest.warns(DeprecationWarning, match=f"{old}= is deprecated, use geometry="):
        obj = call()
    assert obj is not None


def test_old_and_new_keyword_together_is_a_type_error():
    with pytest.raises(TypeError, match="both projection="):
        ProjectionHead(8, 4, projection="l2p", geometry="l2p")


def test_deprecated_keyword_gives_the_same_object_as_the_new_one():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = SupConLoss(projmode="torul")
    assert old.geometry == SupConLoss(geometry="torusN").geometry == "torusN"
    assert ProjectionHead(8, 4, geometry="clifford").out_dim == 8


def test_deprecated_modules_and_names_warn():
    import importlib
    import importlib.util
    import sys

    modules = ["torus_plugins.metrics.geometries"]
    if importlib.util.find_spec("pytorch_metric_learning") is not None:
        modules += ["torus_plugins.distances", "torus_plugins.regularizers"]
    for module in modules:
        sys.modules.pop(module, None)
        with pytest.warns(DeprecationWarning, match="deprecated"):
            importlib.import_module(module)
    from torus_plugins.heads import canonical_projection

    with pytest.warns(DeprecationWarning, match="canonical_projection is deprecated"):
        assert canonical_projection("l2p") == "torusN"


@pytest.mark.parametrize(
    "module,names",
    [
        (
            "torus_plugins.metrics.geometries",
            [
                "GEOMETRIES",
                "SPHERE",
                "TORUS_N",
                "TORUS_C",
                "Geometry",
                "TorusGeometry",
                "CodesGeometry",
                "get_geometry",
                "clifford_of_turns",
                "turns_circular_variance",
            ],
        ),
        (
            "torus_plugins.cli",
            ["main", "build_parser", "cmd_eval", "cmd_export", "cmd_list", "cmd_search"],
        ),
    ],
)
def test_moved_names_stay_importable_from_their_0_1_0_module(module, names):
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        mod = importlib.import_module(module)
    missing = [name for name in names if not hasattr(mod, name)]
    assert not missing, f"{module} lost {missing}"
