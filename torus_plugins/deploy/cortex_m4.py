"""The integer head and a top-k search on an emulated Arm Cortex-M4, checked against Python.

The exported C header (:func:`export_integer_head_c` with the stored codes in const memory) and the
queries (int8 activations, also const) are cross-compiled with ``arm-none-eabi-gcc`` for the MPS2
AN386 board with a minimal startup of our own (``m4/startup.c``, ``m4/mps2_an386.ld``) and run in
``qemu-system-arm -M mps2-an386``; the firmware prints each query's codes and top-k (id, distance)
over Arm semihosting. :func:`check_emulation` compares them with ``IntegerHead.codes`` and
:class:`~torus_plugins.search.TorusIndexFlat`.

Instructions: QEMU runs with ``-icount shift=0`` (one virtual nanosecond per instruction) and the
firmware reads the SysTick counter (processor clock, 25 MHz on this board: one tick every 40
instructions) around the head and the search of every query; :func:`trace_instruction_count`
cross-checks with a log of every executed instruction. QEMU emulates neither the DWT cycle counter
nor the Cortex-M4 pipeline: these are instruction counts, not cycles.

Needs the Debian packages ``gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm``.

Usage::

    python -m torus_plugins.deploy.cortex_m4 --head head.torh --codes db.torc \\
        --activations q.npy --k 10
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from .integer_head import IntegerHead
from .m4_emulator import (
    NS_PER_TICK,
    M4Run,
    emulate,
    emulator_command,
    run_firmware,
    trace_instruction_count,
)
from .m4_firmware import CFLAGS as CFLAGS
from .m4_firmware import DEBIAN_PACKAGES, build_firmware, missing_packages, section_sizes

__all__ = [
    "DEBIAN_PACKAGES",
    "missing_packages",
    "M4Run",
    "build_firmware",
    "run_firmware",
    "emulate",
    "check_emulation",
    "read_activations",
    "trace_instruction_count",
    "emulator_command",
    "section_sizes",
    "NS_PER_TICK",
]


def check_emulation(head: IntegerHead, stored_codes, queries, k: int, run: M4Run) -> dict:
    """Compare an emulated run with Python: ``head.codes`` and ``TorusIndexFlat.search``.

    Args:
        head: the integer head the firmware ran.
        stored_codes: the stored codes it searched.
        queries: the int8 activations it ran on.
        k: neighbours per query.
        run: the :class:`M4Run` of :func:`run_firmware` or :func:`emulate`.

    Returns:
        dict: ``codes_equal``, ``ids_equal``, ``distances_equal`` (fractions of queries whose
        whole row is equal) and ``all_equal``.
    """
    from ..search import TorusIndexFlat

    codes = head.codes(queries)
    index = TorusIndexFlat(head.n_angles, bits=head.bits)
    index.add(stored_codes)
    dist, ids = index.search(codes, k)
    dist = np.where(ids < 0, (1 << 32) - 1, dist)
    out = {
        "codes_equal": float((run.codes == codes).all(1).mean()),
        "ids_equal": float((run.ids == ids).all(1).mean()),
        "distances_equal": float((run.distances == dist).all(1).mean()),
    }
    out["all_equal"] = out["codes_equal"] == out["ids_equal"] == out["distances_equal"] == 1.0
    return out


def read_activations(path, in_features: int) -> np.ndarray:
    """int8 activations [n, in_features] from a ``.npy`` (int8) or a raw ``.bin`` of int8 bytes.

    A ``.npy`` file is read without pickle; any other suffix is read as raw int8 bytes.

    Args:
        path: the file (str or path-like).
        in_features: values per activation vector.

    Returns:
        A numpy int8 array [n, in_features] (a 2-D ``.npy`` array is returned as stored).

    Raises:
        TypeError: a ``.npy`` file does not hold int8.
        ValueError: a raw file's size is not a multiple of ``in_features``, or a ``.npy`` file
            is malformed or holds objects.
        OSError: the file cannot be read.
    """
    path = Path(path)
    if path.suffix == ".npy":
        array = np.load(path, allow_pickle=False)
        if array.dtype != np.int8:
            raise TypeError(f"{path}: activations must be int8, got {array.dtype}")
    else:
        array = np.fromfile(path, np.int8)
        if array.size % in_features:
            raise ValueError(
                f"{path}: {array.size} bytes is not a multiple of in_features={in_features}"
            )
    return array.reshape(-1, in_features) if array.ndim == 1 else array


def main(argv=None) -> int:
    """Command line: emulate a saved head on stored codes and activations; 1 on any mismatch."""
    from ..codes.file_format import load_codes
    from .head_file import load_integer_head

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--head", required=True, help="integer head file (save_integer_head)")
    parser.add_argument("--codes", required=True, help="stored codes: .torc code file or .npy")
    parser.add_argument("--activations", required=True, help="int8 queries: .npy [n, in] or .bin")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--workdir", default=None, help="keep the generated sources and ELF here")
    args = parser.parse_args(argv)
    head = load_integer_head(args.head)
    stored = (
        load_codes(args.codes).codes
        if args.codes.endswith(".torc")
        else np.load(args.codes, allow_pickle=False)
    )
    queries = read_activations(args.activations, head.in_features)
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
    run = emulate(head, stored, queries, args.k, args.workdir)
    check = check_emulation(head, stored, queries, args.k, run)
    print(f"{len(queries)} queries, {len(stored)} stored codes, k={args.k}: {check}")
    print(
        f"flash {run.flash_bytes} B (text {run.text}, data {run.data}), "
        f"RAM {run.ram_bytes} B (bss {run.bss})"
    )
    print(
        f"instructions per query: head {run.head_instructions.mean():.0f}, "
        f"search {run.search_instructions.mean():.0f}"
    )
    return 0 if check["all_equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
