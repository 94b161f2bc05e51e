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
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .._checks import check_int
from ..codes.quantize import check_codes
from .c_export import export_integer_head_c
from .integer_head import IntegerHead

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

DEBIAN_PACKAGES = ("gcc-arm-none-eabi", "libnewlib-arm-none-eabi", "qemu-system-arm")
#: SysTick runs on the 25 MHz processor clock of QEMU's MPS2 boards; with -icount shift=0 one
#: instruction takes one virtual nanosecond, so one tick is 40 instructions.
NS_PER_TICK = 40
CFLAGS = (
    "-mcpu=cortex-m4",
    "-mthumb",
    "-O2",
    "-std=c99",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-pedantic",
    "-ffreestanding",
    "--specs=nano.specs",
    "-nostartfiles",
)
_LINE = re.compile(r"^Q (\d+) C([ \d]*) K((?: -?\d+:\d+)*) T (\d+) (\d+)$")


def _newlib_found() -> bool:
    """Whether arm-none-eabi-gcc finds newlib-nano's C library (what --specs=nano.specs links)."""
    try:
        found = subprocess.run(
            ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-print-file-name=libc_nano.a"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except OSError:
        return False
    return os.path.isabs(found.stdout.strip()) and os.path.exists(found.stdout.strip())


def missing_packages() -> list:
    """The Debian packages of ``DEBIAN_PACKAGES`` whose programs or libraries are not found.

    Returns:
        A list of package names, in the order of ``DEBIAN_PACKAGES``; empty when all are found.
    """
    missing = []
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("arm-none-eabi-size") is None:
        missing.append("gcc-arm-none-eabi")
    if "gcc-arm-none-eabi" in missing or not _newlib_found():
        missing.append("libnewlib-arm-none-eabi")
    if shutil.which("qemu-system-arm") is None:
        missing.append("qemu-system-arm")
    return missing


def _require_tools():
    missing = missing_packages()
    if missing:
        raise RuntimeError(
            f"the Cortex-M4 toolchain is incomplete: install the Debian packages "
            f"{' '.join(missing)} (apt-get install {' '.join(DEBIAN_PACKAGES)})"
        )


@dataclass
class M4Run:
    """What the emulated Cortex-M4 computed, and what the firmware costs.

    Made by :func:`run_firmware`; the fields are its arguments.

    Args:
        codes: uint8 [nq, n_angles], the head's codes on the device.
        ids: int64 [nq, k], the top-k ids.
        distances: int64 [nq, k], their circular L1 distances.
        head_instructions: int64 [nq], instructions of the head per query.
        search_instructions: int64 [nq], instructions of the search per query.
        text: size of the .text section in bytes.
        data: size of the .data section in bytes.
        bss: size of the .bss section in bytes.

    Attributes:
        codes: uint8 [nq, n_angles], the head's codes on the device.
        ids, distances: int64 [nq, k], the top-k (k > n pads with id -1, distance 2**32 - 1).
        head_instructions, search_instructions: int64 [nq], instructions of each step per query
            (40 per SysTick tick, see module docstring).
        text, data, bss: section sizes in bytes (``arm-none-eabi-size``): flash = text + data,
            RAM = data + bss (bss includes the 8 KB stack).
    """

    codes: np.ndarray
    ids: np.ndarray
    distances: np.ndarray
    head_instructions: np.ndarray
    search_instructions: np.ndarray
    text: int
    data: int
    bss: int

    @property
    def flash_bytes(self) -> int:
        """Flash the firmware occupies: text + data bytes."""
        return self.text + self.data

    @property
    def ram_bytes(self) -> int:
        """RAM the firmware occupies: data + bss bytes (the stack included)."""
        return self.data + self.bss


def _c_rows(array: np.ndarray) -> str:
    return ",\n".join("    {" + ", ".join(str(int(v)) for v in row) + "}" for row in array)


def _check_queries(head: IntegerHead, queries) -> np.ndarray:
    if not isinstance(queries, np.ndarray) or queries.dtype != np.int8:
        kind = queries.dtype if isinstance(queries, np.ndarray) else type(queries).__name__
        raise TypeError(f"queries must be a numpy int8 array [n, {head.in_features}], got {kind}")
    if queries.ndim != 2 or queries.shape[1] != head.in_features or len(queries) == 0:
        raise ValueError(
            f"queries must have shape [n >= 1, {head.in_features}], got {queries.shape}"
        )
    return queries


def build_firmware(head: IntegerHead, stored_codes, queries, k: int, workdir) -> Path:
    """Cross-compile the firmware (head + stored codes + queries in flash).

    Args:
        head: the integer head.
        stored_codes: uint8 codes [n, head.n_angles] at ``head.bits``, searched on the device.
        queries: int8 activations [nq, head.in_features], nq >= 1, a numpy array.
        k: neighbours per query, in [1, 65536].
        workdir: an existing folder for the generated headers and the ELF.

    Returns:
        The path of the ELF file, ``workdir / "firmware.elf"``.

    Raises:
        RuntimeError: the toolchain is missing.
        subprocess.CalledProcessError: the compiler failed (its output is in the exception).
        TypeError, ValueError: ``queries``, ``k`` or ``stored_codes`` is malformed (see
            :func:`emulate`).
    """
    _require_tools()
    workdir = Path(workdir)
    queries = _check_queries(head, queries)
    k = check_int(k, "k", 1, 1 << 16)
    export_integer_head_c(
        workdir / "head.h", head, name="head", codes=stored_codes, codes_name="head_db"
    )
    (workdir / "queries.h").write_text(f"""/* Generated: {len(queries)} int8 activation vectors. */
#define N_QUERIES {len(queries)}
#define TOPK {k}
static const int8_t queries[N_QUERIES][HEAD_IN] = {{
{_c_rows(queries)}
}};
""")
    elf = workdir / "firmware.elf"
    with resources.as_file(resources.files("torus_plugins.deploy") / "m4") as m4:
        m4 = Path(m4)
        cmd = [
            "arm-none-eabi-gcc",
            *CFLAGS,
            f"-I{workdir}",
            f"-I{m4}",
            "-T",
            str(m4 / "mps2_an386.ld"),
            str(m4 / "startup.c"),
            str(m4 / "main.c"),
            "-o",
            str(elf),
        ]
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    return elf


def section_sizes(elf) -> tuple:
    """(text, data, bss) in bytes from ``arm-none-eabi-size``.

    Args:
        elf: the ELF file (str or path-like).

    Returns:
        A tuple of three ints.

    Raises:
        subprocess.CalledProcessError: ``arm-none-eabi-size`` failed.
    """
    out = subprocess.run(
        ["arm-none-eabi-size", str(elf)], check=True, capture_output=True, text=True
    ).stdout
    text, data, bss = map(int, out.splitlines()[1].split()[:3])
    return text, data, bss


def emulator_command(elf, output) -> list:
    """``qemu-system-arm -M mps2-an386 -nographic``, counting instructions, semihosting output
    to a file.

    Args:
        elf: the firmware to run (str or path-like).
        output: the file the firmware's semihosting output goes to.

    Returns:
        The command as a list of strings for ``subprocess``.
    """
    return [
        "qemu-system-arm",
        "-M",
        "mps2-an386",
        "-nographic",
        "-monitor",
        "none",
        "-serial",
        "none",
        "-icount",
        "shift=0",
        "-chardev",
        f"file,id=semihosting,path={output}",
        "-semihosting-config",
        "enable=on,target=native,chardev=semihosting",
        "-kernel",
        str(elf),
    ]


def run_firmware(elf, n_queries: int, n_angles: int, k: int, timeout: float = 600.0) -> M4Run:
    """Run the firmware in ``qemu-system-arm -M mps2-an386`` and parse what it printed.

    The semihosting output goes to the ELF's path with suffix ``.out``.

    Args:
        elf: the firmware from :func:`build_firmware`.
        n_queries: the number of queries it was built with.
        n_angles: angles per code of its head.
        k: neighbours per query it was built with.
        timeout: seconds allowed to the emulator.

    Returns:
        An :class:`M4Run`.

    Raises:
        RuntimeError: the toolchain is missing, or the emulator failed, timed out, or printed
            something unexpected.
    """
    _require_tools()
    out = Path(elf).with_suffix(".out")
    out.unlink(missing_ok=True)
    try:
        done = subprocess.run(
            emulator_command(elf, out),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"the emulator did not finish within {timeout} s") from None
    printed = out.read_text() if out.exists() else ""
    lines = printed.splitlines()
    if done.returncode != 0 or not lines or lines[-1] != "END":
        tail = (printed[-300:] + done.stdout[-300:] + done.stderr[-300:]).strip()
        raise RuntimeError(
            f"the emulated firmware failed (exit status {done.returncode}): {tail!r}"
        )
    codes = np.zeros((n_queries, n_angles), np.uint8)
    ids = np.zeros((n_queries, k), np.int64)
    dist = np.zeros((n_queries, k), np.int64)
    ticks = np.zeros((n_queries, 2), np.int64)
    seen = set()
    for line in lines[:-1]:
        m = _LINE.match(line)
        if m is None or int(m.group(1)) >= n_queries:
            raise RuntimeError(f"unexpected firmware output line: {line[:200]!r}")
        i = int(m.group(1))
        seen.add(i)
        codes[i] = np.array(m.group(2).split(), np.int64)
        pairs = np.array([p.split(":") for p in m.group(3).split()], np.int64).reshape(k, 2)
        ids[i], dist[i] = pairs[:, 0], pairs[:, 1]
        ticks[i] = int(m.group(4)), int(m.group(5))
    if len(seen) != n_queries:
        raise RuntimeError(f"the firmware answered {len(seen)} of {n_queries} queries")
    text, data, bss = section_sizes(elf)
    return M4Run(
        codes, ids, dist, ticks[:, 0] * NS_PER_TICK, ticks[:, 1] * NS_PER_TICK, text, data, bss
    )


def trace_instruction_count(elf, timeout: float = 600.0) -> int:
    """Instructions executed by the whole firmware, counted without SysTick.

    QEMU translates one instruction per block (``-singlestep``) and logs every block it executes
    (``-d exec,nochain``): one log line per instruction. Slow; meant to cross-check the SysTick
    counts on a small run.

    Args:
        elf: the firmware to run (str or path-like).
        timeout: seconds allowed to the emulator after its output ends.

    Returns:
        The number of instructions executed.

    Raises:
        RuntimeError: the toolchain is missing, or the emulator exited with an error.
        subprocess.TimeoutExpired: the emulator did not exit within ``timeout``.
    """
    _require_tools()
    cmd = emulator_command(elf, Path(elf).with_suffix(".trace.out"))
    cmd[1:1] = ["-singlestep", "-d", "exec,nochain", "-D", "/dev/stdout"]
    count, tail = 0, b""
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    ) as proc:
        stdout = proc.stdout
        assert stdout is not None  # stdout=PIPE
        for chunk in iter(lambda: stdout.read(1 << 20), b""):
            data = tail + chunk  # a marker split between two chunks is whole here, once
            count += data.count(b"Trace ")
            tail = data[-5:]
        if proc.wait(timeout) != 0:
            raise RuntimeError(f"the emulator failed with exit status {proc.returncode}")
    return count


def emulate(
    head: IntegerHead, stored_codes, queries, k: int = 10, workdir=None, timeout: float = 600.0
) -> M4Run:
    """Build and run the firmware for these stored codes and int8 queries.

    Args:
        head: the IntegerHead.
        stored_codes: uint8 [n, head.n_angles] at head.bits, held in flash.
        queries: int8 activations [nq, head.in_features].
        k: neighbours per query.
        workdir: keep the generated sources and ELF here (default: a temporary folder, removed).
        timeout: seconds allowed to the emulator.

    Returns:
        M4Run.

    Raises:
        TypeError, ValueError: bad codes or queries.
        RuntimeError: missing toolchain, or the emulated run failed.
    """
    stored_codes = check_codes(stored_codes, head.bits, "stored_codes")
    queries = _check_queries(head, queries)
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="torus-m4-") as tmp:
            return emulate(head, stored_codes, queries, k, tmp, timeout)
    elf = build_firmware(head, stored_codes, queries, k, workdir)
    return run_firmware(elf, len(queries), head.n_angles, k, timeout)


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
