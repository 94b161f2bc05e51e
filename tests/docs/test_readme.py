"""Every ```python block of README.md runs verbatim (fresh namespace, temporary working directory),
and the ten-line example does what its comments say."""

import math
import re
from pathlib import Path

import pytest
import torch
from markdown_blocks import count_openings, python_blocks, run_block

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_has_python_blocks():
    blocks = python_blocks(README)
    assert len(blocks) >= 2
    assert len(blocks) == count_openings(README)  # none missed by the pattern, none norun


@pytest.mark.parametrize(
    "line,code", python_blocks(README), ids=[f"line{n}" for n, _ in python_blocks(README)]
)
def test_readme_block_runs_verbatim(line, code, tmp_path):
    torch.manual_seed(0)
    scope = run_block(code, f"README.md:{line}", tmp_path)
    if "LightningModule" in code:  # the Lightning snippet really trains one step, writing nothing
        assert scope["trainer"].global_step == 1
        assert torch.isfinite(scope["trainer"].callback_metrics["train_loss"])
        assert not any(tmp_path.iterdir()), (
            "no logger, no checkpoints: the snippet must not write files"
        )


def test_ten_line_example_runs_and_its_comments_hold(tmp_path):
    text = README.read_text()
    section = text[text.index("## Ten lines") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope = run_block(code, "README.md:ten-lines", tmp_path)
    z, sim, turns, codes = scope["z"], scope["sim"], scope["turns"], scope["codes"]
    assert z.shape == (32, 64) and turns.shape == (32, 32) and codes.shape == (32, 32)
    assert codes.dtype == torch.uint8
    torch.testing.assert_close(torch.linalg.vector_norm(z, dim=-1), torch.ones(32))
    delta = 2 * math.pi * (turns[:, None, :] - turns[None, :, :])
    torch.testing.assert_close(sim, torch.cos(delta).mean(-1), atol=1e-5, rtol=0)


def _table_rows(text: str, header_start: str) -> dict:
    """{first cell: other cells} of the Markdown table whose header row starts with
    ``header_start``."""
    lines = text[text.index(header_start) :].splitlines()
    rows = {}
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


def test_headline_results_are_the_results_pages_numbers():
    """The README's headline table is a subset of the docs' make-demo table, cell for cell."""
    results = (README.parent / "docs" / "results.md").read_text()
    demo = _table_rows(results, "| setting | sphere (width 64)")
    headline = _table_rows(README.read_text(), "| stored as | sphere (width 64)")
    names = {"float32": "none (float32)", 'sign (the paper\'s "1-bit")': "sign"}
    assert len(headline) >= 3
    for name, cells in headline.items():
        assert cells == demo[names.get(name, name)][:3], name
