"""examples/deploy_int8.py --quick end to end: results.json with provenance and the fidelity table's
fields, the export folder and the Cortex-M4 hand-off files, which the emulated M4 reproduces bit for
bit when its toolchain is installed.

One training run of 2 epochs and one export (tens of seconds)."""

import json
import os
import sys

import numpy as np
import pytest

pytest.importorskip(
    "executorch", reason="needs the [edge] extra: pip install 'torus-plugins[edge]'"
)

from torus_plugins.codes import load_codes  # noqa: E402
from torus_plugins.deploy import load_integer_head  # noqa: E402
from torus_plugins.deploy.cortex_m4 import DEBIAN_PACKAGES, missing_packages  # noqa
from torus_plugins.deploy.cortex_m4 import main as m4_main

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
sys.path.insert(0, EXAMPLES)

import deploy_int8  # noqa: E402


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("deploy_int8")
    deploy_int8.main(["--quick", "--heads", "torusN", "--out", str(out)])
    return out


def test_quick_run_writes_results_and_handoff_files(quick_run, capsys):
    doc = json.loads((quick_run / "results.json").read_text())
    prov = doc["provenance"]
    assert prov["versions"]["executorch"] and prov["cpu_model"] and prov["wall_seconds"] > 0
    m = doc["metrics"]["torusN"]
    for path in (
        ("8bit", "agreement", "equal"),
        ("4bit", "p1_gap"),
        ("pte_bytes",),
        ("timing", "batch1", "executorch_program_us"),
        ("8bit", "int8_weights_only"),
    ):
        leaf = m
        for key in path:
            leaf = leaf[key]
        assert leaf is not None, path
    seed0 = m["per_seed"][0]
    assert 0 <= seed0["8bit"]["agreement"]["equal"] <= seed0["8bit"]["agreement"]["within_one"] <= 1
    assert abs(seed0["8bit"]["p1_gap"]) <= 1 and seed0["timing"]["max_batch"] >= 1
    folder = quick_run / "torusN_seed0"
    assert {
        "encoder.pte",
        "head.torh",
        "head.h",
        "manifest.json",
        "queries_int8.npy",
        "query_labels.npy",
        "stored_codes.torc",
    } <= set(os.listdir(folder))
    queries = np.load(folder / "queries_int8.npy")
    head = load_integer_head(folder / "head.torh")
    assert queries.dtype == np.int8 and queries.shape == (100, head.in_features)
    stored = load_codes(str(folder / "stored_codes.torc"))
    assert stored.bits == 8 and stored.codes.shape[1] == head.n_angles


@pytest.mark.slow
@pytest.mark.skipif(
    bool(missing_packages()),
    reason=f"the Cortex-M4 toolchain is missing: apt-get install {' '.join(DEBIAN_PACKAGES)}",
)
def test_the_emulated_m4_reproduces_the_handoff(quick_run, capsys):
    folder = quick_run / "torusN_seed0"
    assert (
        m4_main(
            [
                "--head",
                str(folder / "head.torh"),
                "--codes",
                str(folder / "stored_codes.torc"),
                "--activations",
                str(folder / "queries_int8.npy"),
                "--k",
                "5",
            ]
        )
        == 0
    )
    assert "'all_equal': True" in capsys.readouterr().out
