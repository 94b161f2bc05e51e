"""Run the Cortex-M4 firmware in ``qemu-system-arm -M mps2-an386`` and read what it computed.

The firmware prints each query's codes and top-k (id, distance) over Arm semihosting.

Instructions: QEMU runs with ``-icount shift=0`` (one virtual nanosecond per instruction) and the
firmware reads the SysTick counter (processor clock, 25 MHz on this board: one tick every 40
instructions) around the head and the search of every query; :func:`trace_instruction_count`
cross-checks with a log of every executed instruction. QEMU emulates neither the DWT cycle counter
nor the Cortex-M4 pipeline: these are instruction counts, not cycles.
"""

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..codes.quantize import check_codes
from .integer_head import IntegerHead
from .m4_firmware import _check_queries, _require_tools, build_firmware, section_sizes

__all__ = [
    "M4Run",
    "run_firmware",
    "emulate",
    "trace_instruction_count",
    "emulator_command",
    "NS_PER_TICK",
]

#: SysTick runs on the 25 MHz processor clock of QEMU's MPS2 boards; with -icount shift=0 one
#: instruction takes one virtual nanosecond, so one tick is 40 instructions.
NS_PER_TICK = 40
_LINE = re.compile(r"^Q (\d+) C([ \d]*) K((?: -?\d+:\d+)*) T (\d+) (\d+)$")


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
