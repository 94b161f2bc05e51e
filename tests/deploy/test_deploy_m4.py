"""The integer head and the top-k search cross-compiled for a Cortex-M4 and run in QEMU
(mps2-an386) give the same codes, ids and distances as Python; the SysTick instruction counts agree
with an instruction trace."""

import subprocess

import numpy as np
import pytest

from torus_plugins.codes import save_codes
from torus_plugins.deploy import IntegerHead, export_integer_head_c, save_integer_head
from torus_plugins.deploy.cortex_m4 import (
    CFLAGS,
    DEBIAN_PACKAGES,
    build_firmware,
    check_emulation,
    emulate,
    main,
    missing_packages,
    read_activations,
    run_firmware,
    trace_instruction_count,
)

MISSING = missing_packages()
pytestmark = [
    pytest.mark.slow,  # cross-compiles and runs firmware in QEMU
    pytest.mark.skipif(
        bool(MISSING),
        reason=(
            f"the Cortex-M4 toolchain is missing: apt-get install {' '.join(DEBIAN_PACKAGES)} "
            f"(not found: {' '.join(MISSING)})"
        ),
    ),
]


def make_case(geometry: str, bits: int, n_stored: int = 1000, n_queries: int = 100, seed: int = 0):
    """A head with random int8 weights, stored codes of random activations (few distinct codes at
    low bits: tied distances), int8 queries."""
    rng = np.random.default_rng(seed)
    out = 32 if geometry == "torusN" else 16
    head = IntegerHead(
        geometry,
        bits,
        rng.integers(-127, 128, (out, 48)).astype(np.int8),
        rng.integers(-3000, 3000, out).astype(np.int32),
        0.02,
        -128,
        0.004,
    )
    stored = head.codes(rng.integers(-128, 128, (n_stored, 48)).astype(np.int8))
    queries = rng.integers(-128, 128, (n_queries, 48)).astype(np.int8)
    return head, stored, queries


@pytest.mark.parametrize("geometry, bits", [("torusN", 8), ("torusC", 4)])
def test_emulated_cortex_m4_equals_python(tmp_path, geometry, bits):
    head, stored, queries = make_case(geometry, bits)
    run = emulate(head, stored, queries, k=10, workdir=tmp_path)
    np.testing.assert_array_equal(run.codes, head.codes(queries))
    check = check_emulation(head, stored, queries, 10, run)
    assert check["all_equal"], check
    assert run.flash_bytes > stored.size + head.weight.size  # table and weights are in flash
    assert run.data == 0 and run.bss < 16 * 1024  # RAM: the stack and a line buffer, no table
    per_code = run.search_instructions / len(stored)
    assert (per_code > 3 * head.n_angles).all() and (per_code < 40 * head.n_angles).all()


def test_a_wrong_device_answer_is_caught(tmp_path):
    head, stored, queries = make_case("torusN", 8, n_stored=200, n_queries=5)
    run = emulate(head, stored, queries, k=4, workdir=tmp_path)
    run.ids[2, 1], run.ids[2, 2] = run.ids[2, 2], run.ids[2, 1]
    run.codes[4, 0] ^= 1
    check = check_emulation(head, stored, queries, 4, run)
    assert check["ids_equal"] == 0.8 and check["codes_equal"] == 0.8 and not check["all_equal"]


def test_instruction_counts_agree_with_a_trace(tmp_path):
    """Per query, the full trace counts the head, the search and the formatting of one output line;
    SysTick the first two only: equal up to that line (a few thousand instructions)."""
    head, stored, queries = make_case("torusN", 8, n_stored=100, n_queries=3)
    runs, traced = {}, {}
    for n in (1, 3):
        (tmp_path / str(n)).mkdir()
        elf = build_firmware(head, stored, queries[:n], 5, tmp_path / str(n))
        runs[n] = run_firmware(elf, n, head.n_angles, 5)
        traced[n] = trace_instruction_count(elf)
    per_query = (traced[3] - traced[1]) / 2
    counted = float((runs[3].head_instructions + runs[3].search_instructions)[1:].mean())
    assert 0 < per_query - counted < 8000, (per_query, counted)


def test_every_head_compiles_for_the_cortex_m4(tmp_path):
    """Both geometries at every width, and torusC with the negative-product correction (shift > 56),
    compile cleanly with -Wall -Wextra -Werror -pedantic for the Cortex-M4."""
    includes = []
    for bits in range(1, 9):
        for geometry in ("torusN", "torusC"):
            head, stored, _ = make_case(geometry, bits, n_stored=3, n_queries=1, seed=bits)
            name = f"{geometry}_{bits}"
            export_integer_head_c(tmp_path / f"{name}.h", head, name=name, codes=stored)
            includes.append(f'#include "{name}.h"')
    wide = IntegerHead(
        "torusC", 8, np.ones((1, 1), np.int8), np.zeros(1, np.int32), 2.0**-40, 0, 1.0
    )
    assert wide.shift > 56
    export_integer_head_c(tmp_path / "wide.h", wide, name="wide")
    includes.append('#include "wide.h"')
    (tmp_path / "all.c").write_text("\n".join(includes) + "\nint all_heads;\n")
    flags = [f for f in CFLAGS if f not in ("--specs=nano.specs", "-nostartfiles")]
    subprocess.run(
        ["arm-none-eabi-gcc", *flags, "-c", str(tmp_path / "all.c"), "-o", str(tmp_path / "all.o")],
        check=True,
        capture_output=True,
        text=True,
    )


def test_command_line_with_activation_files(tmp_path, capsys):
    head, stored, queries = make_case("torusN", 6, n_stored=300, n_queries=20, seed=1)
    save_integer_head(tmp_path / "head.torh", head)
    save_codes(tmp_path / "db.torc", stored, bits=6)
    queries.tofile(tmp_path / "q.bin")
    assert (
        main(
            [
                "--head",
                str(tmp_path / "head.torh"),
                "--codes",
                str(tmp_path / "db.torc"),
                "--activations",
                str(tmp_path / "q.bin"),
                "--k",
                "7",
            ]
        )
        == 0
    )
    assert "'all_equal': True" in capsys.readouterr().out


def test_read_activations(tmp_path):
    q = np.arange(-60, 60, dtype=np.int8).reshape(10, 12)
    np.save(tmp_path / "q.npy", q)
    q.tofile(tmp_path / "q.bin")
    np.testing.assert_array_equal(read_activations(tmp_path / "q.npy", 12), q)
    np.testing.assert_array_equal(read_activations(tmp_path / "q.bin", 12), q)
    with pytest.raises(ValueError, match="multiple"):
        read_activations(tmp_path / "q.bin", 7)
    np.save(tmp_path / "f.npy", q.astype(np.float32))
    with pytest.raises(TypeError, match="int8"):
        read_activations(tmp_path / "f.npy", 12)


def test_make_m4_example_quick(tmp_path, capsys):
    """The example behind `make m4`, shortened: trains both heads, emulates, every row equal."""
    import os
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    examples = os.path.join(repo, "examples")
    sys.path.insert(0, examples)
    try:
        import deploy_m4
    finally:
        sys.path.remove(examples)
    assert (
        deploy_m4.main(
            [
                "--out",
                str(tmp_path),
                "--epochs",
                "1",
                "--queries",
                "10",
                "--sizes",
                "200",
                "--k",
                "3",
            ]
        )
        == 0
    )
    assert (tmp_path / "results.json").exists()
    assert capsys.readouterr().out.count(" True ") == 2
