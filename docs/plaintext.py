"""Docstrings as the package writes them, read as reStructuredText.

The package's docstrings are Google style (``Args:``, ``Returns:``, ``Raises:``) in plain text
with formulas: ``|x|`` is an absolute value and ``||x||`` a norm, not a reStructuredText
substitution, and a table is a Markdown pipe table; a bullet list may follow its paragraph without
a blank line. Before napoleon reads a docstring, :func:`rst_lines` turns those tables into
``list-table`` directives, puts blank lines around such lists and escapes every other ``|``
outside backquotes and literal blocks (and a ``*`` that opens no emphasis), so a formula never
breaks the strict build and nobody has to write ``\\|x\\|`` in the source.
"""

from __future__ import annotations

import re

_TABLE_RULE = re.compile(r"^\s*\|(\s*:?-{3,}:?\s*\|)+\s*$")
_BACKQUOTED = re.compile(r"(``.*?``|`[^`]*`)")
_CELL_SPLIT = re.compile(r"\s\|\s")
_BULLET = re.compile(r"^\s*[*+-] \S")
#: a ``*`` opening a word that no later ``*`` on the line closes (``[N, *sample_shape]``): plain
#: text, not the start of emphasis
_LONE_STAR = re.compile(r"(?<![\w*\\])\*(?=\w)(?![^*]*\*)")


def escape_bars(text: str) -> str:
    """``|`` -> ``\\|``, and a ``*`` that opens no emphasis -> ``\\*``, outside backquoted spans
    (literals and roles keep theirs)."""
    parts = _BACKQUOTED.split(text)
    return "".join(
        p if i % 2 else _LONE_STAR.sub(r"\\*", p.replace("|", r"\|")) for i, p in enumerate(parts)
    )


def _cells(line: str) -> list[str]:
    inner = line.strip()[1:-1]
    return [escape_bars(c.strip()) for c in _CELL_SPLIT.split(f" {inner} ")]


def _list_table(rows: list[str], indent: str) -> list[str]:
    header, body = _cells(rows[0]), [_cells(r) for r in rows[2:]]
    out = [f"{indent}.. list-table::", f"{indent}   :header-rows: 1", ""]
    for row in [header, *body]:
        row = row + [""] * (len(header) - len(row))
        out.append(f"{indent}   * - {row[0]}")
        out += [f"{indent}     - {cell}" for cell in row[1:]]
    return out + [""]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def rst_lines(lines: list[str]) -> list[str]:
    """A plain-text docstring's lines as reStructuredText (see the module docstring)."""
    out: list[str] = []
    literal_at = None  # indentation of the line that opened a literal block, while inside one
    list_at = None  # indentation of the bullets of the list being read
    i = 0
    while i < len(lines):
        line = lines[i]
        if literal_at is not None:
            if not line.strip() or _indent(line) > literal_at:
                out.append(line)
                i += 1
                continue
            literal_at = None
        stripped = line.strip()
        if stripped.startswith("|") and i + 1 < len(lines) and _TABLE_RULE.match(lines[i + 1]):
            end = i + 2
            while end < len(lines) and lines[end].strip().startswith("|"):
                end += 1
            if out and out[-1].strip():
                out.append("")
            out += _list_table([row.strip() for row in lines[i:end]], line[: _indent(line)])
            i = end
            continue
        if stripped.startswith(">>>"):  # a doctest block runs to the next blank line
            while i < len(lines) and lines[i].strip():
                out.append(lines[i])
                i += 1
            continue
        if _BULLET.match(line) and (list_at is None or _indent(line) <= list_at):
            if list_at is None and out and out[-1].strip():
                out.append("")  # a list may follow its paragraph directly
            list_at = _indent(line)
        elif list_at is not None and stripped and _indent(line) <= list_at:
            out.append("")  # ... and a paragraph may follow the list
            list_at = None
        elif not stripped:
            list_at = None
        out.append(escape_bars(line))
        if stripped.endswith("::") or re.match(r"\.\. [\w:-]+::", stripped):
            literal_at = _indent(line)
        i += 1
    return out
