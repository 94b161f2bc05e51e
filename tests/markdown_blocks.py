"""The ```python blocks of a Markdown file and a way to run one verbatim: shared by
test_readme.py (README.md) and test_docs.py (docs/**/*.md)."""

import os
import re
import textwrap
from pathlib import Path

#: a fenced block opening with ```python (also indented, in lists) up to its closing fence; group 2
#: is the rest of the info string ("norun": a block that is compiled, not run), group 3 the code
FENCE = re.compile(r"^([ \t]*)```python([ \t]+[^\n]*)?\n(.*?)^\1```[ \t]*$", re.S | re.M)
OPENING = re.compile(r"^[ \t]*```python\b", re.M)


def python_blocks(path: Path, runnable: bool = True) -> list:
    """[(line number, code)] of every ```python block (``runnable=False``: of the norun ones)."""
    text = path.read_text()
    blocks = []
    for m in FENCE.finditer(text):
        norun = "norun" in (m.group(2) or "").split()
        if norun != runnable:
            blocks.append((text[: m.start()].count("\n") + 1, textwrap.dedent(m.group(3))))
    return blocks


def count_openings(path: Path) -> int:
    """Lines that open a ```python block, whether FENCE parses the block or not."""
    return len(OPENING.findall(path.read_text()))


def run_block(code: str, label: str, cwd) -> dict:
    """exec ``code`` in a fresh namespace, ``cwd`` the working directory; returns the namespace."""
    scope = {"__name__": "__markdown__"}
    old = os.getcwd()
    os.chdir(cwd)
    try:
        exec(compile(code, label, "exec"), scope)
    finally:
        os.chdir(old)
    return scope
