"""report: mean +- std against numpy/statistics, aggregation over seeds, provenance fields, JSON
writing."""

import json
import math
import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from torus_plugins.report import (
    aggregate,
    aggregate_rows,
    cpu_model,
    finish,
    format_mean_std,
    mean_std,
    provenance,
    write_results,
)

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=50, deadline=None)
@given(st.lists(finite, min_size=2, max_size=20))
def test_mean_std_matches_statistics(values):
    m, s = mean_std(values)
    assert m == pytest.approx(statistics.fmean(values), rel=1e-9, abs=1e-6)
    assert s == pytest.approx(statistics.stdev(values), rel=1e-6, abs=1e-6)


def test_mean_std_single_value_and_format():
    assert mean_std([0.5]) == (0.5, 0.0)
    assert format_mean_std([0.91, 0.92, 0.93]) == "0.920 +- 0.010"
    assert format_mean_std([1, 2], digits=1, with_n=True) == "1.5 +- 0.7 (n=2)"
    assert format_mean_std([0.5]) == "0.500"  # one value: no std
    assert format_mean_std([0.5], with_n=True) == "0.500 (n=1)"


@pytest.mark.parametrize("bad", [[], [float("nan"), 1.0], [1.0, float("inf")]])
def test_mean_std_refuses_empty_and_non_finite(bad):
    with pytest.raises(ValueError, match="values"):
        mean_std(bad)


def test_aggregate_nested_structure():
    per_seed = [
        {"p1": 0.8, "bits": {"8": 0.7}, "head": "torusN", "stopped": None},
        {"p1": 0.9, "bits": {"8": 0.5}, "head": "torusN", "stopped": None},
    ]
    agg = aggregate(per_seed)
    assert agg["p1"]["mean"] == pytest.approx(0.85) and agg["p1"]["std"] == pytest.approx(
        math.sqrt(0.005)
    )
    assert agg["p1"]["values"] == [0.8, 0.9] and agg["p1"]["n"] == 2
    assert agg["bits"]["8"]["mean"] == pytest.approx(0.6)
    assert agg["head"] == "torusN" and agg["stopped"] is None
    with pytest.raises(ValueError, match="keys"):
        aggregate([{"a": 1}, {"b": 1}])


def test_aggregate_rows_by_setting():
    seed0 = [
        {"setting": "none", "p": 0.9, "reason": None},
        {"setting": "PQ(8,1)", "p": 0.5, "reason": None},
    ]
    seed1 = [
        {"setting": "none", "p": 0.7, "reason": None},
        {"setting": "PQ(8,1)", "p": None, "reason": "x"},
    ]
    rows = aggregate_rows([seed0, seed1])
    assert [r["setting"] for r in rows] == ["none", "PQ(8,1)"]
    assert rows[0]["p"]["mean"] == pytest.approx(0.8) and rows[0]["p"]["n"] == 2
    assert rows[1]["p"]["values"] == [0.5] and rows[1]["p"]["missing"] == 1
    assert rows[1]["reason"] == {"values": [None, "x"]}


def test_provenance_and_results_file(tmp_path):
    prov = provenance({"epochs": 3, "arr": np.arange(2)}, seeds=[0, 1], threads=1)
    for key in (
        "package_version",
        "torch",
        "numpy",
        "faiss",
        "cpu_model",
        "threads",
        "seeds",
        "git_commit",
        "start_time_utc",
    ):
        assert key in prov
    assert prov["threads"] == 1 and prov["seeds"] == [0, 1] and prov["cpu_model"] == cpu_model()
    done = finish(prov)
    assert done["wall_seconds"] >= 0 and "_t0" not in done
    path = write_results(tmp_path / "r.json", done, {"epochs": 3}, {"p1": aggregate([0.5, 0.7])})
    doc = json.loads(open(path).read())
    assert doc["args"] == {"epochs": 3} and doc["metrics"]["p1"]["mean"] == pytest.approx(0.6)
    assert doc["provenance"]["args"]["arr"] == [0, 1]
    with pytest.raises(ValueError, match="non-finite"):
        write_results(tmp_path / "bad.json", done, {}, {"p1": float("nan")})


def test_format_leaf_and_grid():
    from torus_plugins.report import format_grid, format_leaf

    assert format_leaf(aggregate([0.5, 0.7])) == "0.600 +- 0.141"
    assert format_leaf(None) == "-" and format_leaf(0.25) == "0.250" and format_leaf(3) == "3"
    partial = aggregate_rows([[{"setting": "a", "p": 0.5}], [{"setting": "a", "p": None}]])[0]["p"]
    assert format_leaf(partial) == "0.500 (n=1)"  # one value: no std
    assert format_leaf(aggregate([0.25])) == "0.250"
    assert format_leaf(aggregate([0.5, 0.5])) == "0.500 +- 0.000"
    text = format_grid(
        "T", ["setting", "sphere"], [["none", aggregate([0.9, 0.8])], ["1-bit", None]]
    )
    lines = text.splitlines()
    assert lines[0] == "T" and lines[1].split() == ["setting", "sphere"]
    assert lines[3].split() == ["none", "0.850", "+-", "0.071"] and lines[4].split() == [
        "1-bit",
        "-",
    ]
    with pytest.raises(ValueError, match="2 cells"):
        format_grid("T", ["a", "b"], [["x"]])


def test_format_settings_table():
    from torus_plugins.report import format_settings_table

    torus = aggregate_rows(
        [
            [
                {"setting": "none", "bits_per_vector": 2048, "precision_at_1": p},
                {"setting": "PQ(8,1)", "bits_per_vector": 8, "precision_at_1": None},
            ]
            for p in (0.9, 0.8)
        ]
    )
    sphere = aggregate_rows([[{"setting": "none", "bits_per_vector": 2048, "precision_at_1": 0.7}]])
    text = format_settings_table(
        {"torusN": torus, "sphere": sphere},
        title="P@1",
        extra={"probe": {"torusN": aggregate([0.5, 0.5]), "sphere": None}},
        columns={"torusN": "torusN (64)"},
    )
    lines = text.splitlines()
    assert lines[1].split() == ["setting", "torusN", "(64)", "sphere"]
    assert lines[3].split() == [
        "none",
        "0.850",
        "+-",
        "0.071",
        "[2048",
        "b]",
        "0.700",
        "[2048",
        "b]",
    ]
    assert lines[4].split() == ["PQ(8,1)", "-", "[8", "b]", "n/a"]  # sphere has no such row
    assert lines[5].split() == ["probe", "0.500", "+-", "0.000", "-"]
    assert lines[6].startswith("n/a: the setting is not defined for that head")


def test_format_settings_table_footnotes_say_why_a_cell_is_empty():
    """The --quick demo's case: PQ with 256 centroids cannot train on 255 vectors; the reason is
    printed under the table, once per distinct reason, and marked in every cell it explains (also
    when only some seeds lacked the value)."""
    from torus_plugins.report import format_settings_table

    pq = "training needs >= 256 vectors, have 255"

    def seed(p1, pq_p1, pq_reason, m):
        return [
            {"setting": "none", "bits_per_vector": 2048, "precision_at_1": p1, "reason": None},
            {
                "setting": "PQ(8,16)",
                "bits_per_vector": 128,
                "precision_at_1": pq_p1,
                "reason": pq_reason,
            },
            {"setting": "PQ(4,2)", "bits_per_vector": 8, "precision_at_1": None, "reason": m},
        ]

    torus = aggregate_rows([seed(0.9, None, pq, "M=2 does not divide the 3 angles")])
    sphere = aggregate_rows(
        [
            seed(0.8, 0.7, None, "M=2 does not divide the 3 angles"),
            seed(0.6, None, pq, "M=2 does not divide the 3 angles"),
        ]
    )
    lines = format_settings_table({"torusN": torus, "sphere": sphere}, title="P@1").splitlines()
    assert lines[3].split() == [
        "none",
        "0.900",
        "[2048",
        "b]",
        "0.700",
        "+-",
        "0.141",
        "[2048",
        "b]",
    ]
    assert lines[4].split() == [
        "PQ(8,16)",
        "-",
        "[128",
        "b]",
        "[1]",
        "0.700",
        "(n=1)",
        "[128",
        "b]",
        "[1]",
    ]
    assert lines[5].split() == ["PQ(4,2)", "-", "[8", "b]", "[2]", "-", "[8", "b]", "[2]"]
    assert lines[6:] == [f"[1] {pq}", "[2] M=2 does not divide the 3 angles"]
