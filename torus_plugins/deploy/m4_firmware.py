"""The Cortex-M4 firmware: the Debian toolchain it needs, and the cross-compilation of the integer
head, the stored codes and the queries for QEMU's MPS2 AN386 board.

The exported C header (:func:`~torus_plugins.deploy.export_integer_head_c` with the stored codes in
const memory) and the queries (int8 activations, also const) are compiled with
``arm-none-eabi-gcc`` with a minimal startup of our own (``m4/startup.c``, ``m4/mps2_an386.ld``).
The harness that runs and checks it is :mod:`torus_plugins.deploy.cortex_m4`.
"""

import os
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import numpy as np

from .._checks import check_int
from .c_export import export_integer_head_c
from .integer_head import IntegerHead

__all__ = ["DEBIAN_PACKAGES", "missing_packages", "build_firmware", "section_sizes"]

DEBIAN_PACKAGES = ("gcc-arm-none-eabi", "libnewlib-arm-none-eabi", "qemu-system-arm")
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
