"""Every ```python block of README.md runs verbatim (fresh namespace, temporary working directory), and the
ten-line example does what its comments say."""

import math
import os
import re
import textwrap
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^([ \t]*)```python[ \t]*\n(.*?)^\1```[ \t]*$", re.S | re.M)  # also indented (in lists)


def python_blocks():
    """[(line number, code)] of every ```python block."""
    text = README.read_text()
    return [(text[:m.start()].count("\n") + 1, textwrap.dedent(m.group(2))) for m in FENCE.finditer(text)]


def run_block(code, line, cwd):
    scope = {"__name__": "__readme__"}
    old = os.getcwd()
    os.chdir(cwd)
    try:
        exec(compile(code, f"README.md:{line}", "exec"), scope)
    finally:
        os.chdir(old)
    return scope


def test_readme_has_python_blocks():
    blocks = python_blocks()
    assert len(blocks) >= 7
    assert len(blocks) == README.read_text().count("```python")     # none missed by the pattern


@pytest.mark.parametrize("line,code", python_blocks(), ids=[f"line{n}" for n, _ in python_blocks()])
def test_readme_block_runs_verbatim(line, code, tmp_path):
    torch.manual_seed(0)
    scope = run_block(code, line, tmp_path)
    if "LightningModule" in code:               # the Lightning snippet really trains one step, writing nothing
        assert scope["trainer"].global_step == 1
        assert torch.isfinite(scope["trainer"].callback_metrics["train_loss"])
        assert not any(tmp_path.iterdir()), "no logger, no checkpoints: the snippet must not write files"


def test_ten_line_example_runs_and_its_comments_hold(tmp_path):
    text = README.read_text()
    section = text[text.index("## Ten lines"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope = run_block(code, "ten-lines", tmp_path)
    z, sim, turns, codes = scope["z"], scope["sim"], scope["turns"], scope["codes"]
    assert z.shape == (32, 64) and turns.shape == (32, 32) and codes.shape == (32, 32)
    assert codes.dtype == torch.uint8
    torch.testing.assert_close(torch.linalg.vector_norm(z, dim=-1), torch.ones(32))
    delta = 2 * math.pi * (turns[:, None, :] - turns[None, :, :])
    torch.testing.assert_close(sim, torch.cos(delta).mean(-1), atol=1e-5, rtol=0)
