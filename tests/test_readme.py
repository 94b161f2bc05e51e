"""The README's ten-line example runs as written and does what its comments say."""

import math
import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def test_ten_line_example_runs_and_its_comments_hold():
    text = README.read_text()
    section = text[text.index("## Ten lines"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    z, sim, turns, codes = scope["z"], scope["sim"], scope["turns"], scope["codes"]
    assert z.shape == (32, 64) and turns.shape == (32, 32) and codes.shape == (32, 32)
    assert codes.dtype == torch.uint8
    torch.testing.assert_close(torch.linalg.vector_norm(z, dim=-1), torch.ones(32))
    delta = 2 * math.pi * (turns[:, None, :] - turns[None, :, :])
    torch.testing.assert_close(sim, torch.cos(delta).mean(-1), atol=1e-5, rtol=0)
