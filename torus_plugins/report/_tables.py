"""Fixed-width text tables of aggregated results, with footnotes for cells that could not run."""


def format_leaf(leaf, digits: int = 3) -> str:
    """``{"mean": .912, "std": .004, ...}`` -> ``"0.912 +- 0.004"``; a plain float -> ``"0.912"``;
    None -> ``"-"``.

    A leaf over one value prints its mean alone (no std of a single seed); a leaf some seeds lacked
    (``missing``) gets ``" (n=2)"``; anything else prints as ``str()``.

    Args:
        leaf: an :func:`aggregate` leaf, a number, a string or None.
        digits: digits after the decimal point.

    Returns:
        The cell text.

    Example:
        >>> format_leaf({"mean": 0.912, "std": 0.004, "n": 3})
        '0.912 +- 0.004'
    """
    if leaf is None:
        return "-"
    if isinstance(leaf, dict) and "mean" in leaf:
        text = f"{leaf['mean']:.{digits}f}"
        if leaf.get("n", 2) > 1:  # the std of one value is undefined, not 0
            text += f" +- {leaf['std']:.{digits}f}"
        return text + (f" (n={leaf['n']})" if leaf.get("missing") else "")
    if isinstance(leaf, float):
        return f"{leaf:.{digits}f}"
    return str(leaf)


def format_grid(title: str, header: list, rows: list) -> str:
    """A text table: ``title``, the ``header`` row, a rule, then ``rows``, columns left-aligned.

    Args:
        title: the first line.
        header: the column titles.
        rows: lists of cells, one per column: strings as they are, anything else through
            :func:`format_leaf`.

    Returns:
        The table text, lines joined by newlines.

    Raises:
        ValueError: a row's length differs from the header's.

    Example:
        >>> print(format_grid("P@1", ["setting", "sphere"], [["none", 0.9]]))
        P@1
        setting  sphere
        -------  ------
        none     0.900
    """
    cells = [[str(h) for h in header]] + [
        [c if isinstance(c, str) else format_leaf(c) for c in r] for r in rows
    ]
    if any(len(r) != len(header) for r in cells):
        raise ValueError(
            f"format_grid: every row needs {len(header)} cells (the header's), got "
            f"{sorted({len(r) for r in cells})}"
        )
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join(
        [title, line(cells[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]]
    )


def format_settings_table(
    tables: dict,
    metric: str = "precision_at_1",
    title: str = "",
    extra: dict | None = None,
    columns: dict | None = None,
) -> str:
    """One line per setting (first-seen order), one column per head, cells ``"0.912 +- 0.004 [256
    b]"`` (bits per vector in brackets; one seed: no std). Empty cells say why: a setting that did
    not run for some seeds (its ``reason``, e.g. "training needs >= 256 vectors, have 255") gets
    ``[1]``, ``[2]``, ... and the reasons are listed under the table, one line per distinct reason;
    a setting a head does not have is ``n/a``.

    Args:
        tables: head -> rows from :func:`aggregate_rows` (e.g. of ``quantisation_table``).
        metric: the column shown.
        title: first line.
        extra: label -> {head: leaf} rows appended below.
        columns: head -> column title.

    Returns:
        The table text, footnotes included.

    Usage: ``print(format_settings_table({"torusN": aggregate_rows(per_seed_rows)}))``
    """
    by_head = {h: {r["setting"]: r for r in rows} for h, rows in tables.items()}
    settings = list(dict.fromkeys(s for rows in by_head.values() for s in rows))
    notes: dict = {}  # reason -> footnote number, in order of first use
    absent = False

    def cell(rows, s):
        nonlocal absent
        if s not in rows:
            absent = True
            return "n/a"
        bits = rows[s].get("bits_per_vector")
        bits = bits["mean"] if isinstance(bits, dict) else bits
        text = format_leaf(rows[s].get(metric)) + ("" if bits is None else f" [{bits:.0f} b]")
        marks = [notes.setdefault(r, len(notes) + 1) for r in _reasons(rows[s].get("reason"))]
        return text + "".join(f" [{m}]" for m in marks)

    header = ["setting"] + [(columns or {}).get(h, h) for h in tables]
    body = [[s] + [cell(by_head[h], s) for h in tables] for s in settings]
    body += [[label] + [vals.get(h) for h in tables] for label, vals in (extra or {}).items()]
    lines = [format_grid(title, header, body)]
    lines += [f"[{m}] {reason}" for reason, m in notes.items()]
    if absent:
        lines.append(
            "n/a: the setting is not defined for that head (e.g. raw PQ rows are torus-only)"
        )
    return "\n".join(lines)


def _reasons(leaf) -> list:
    """The distinct reasons (strings) of an ``aggregate_rows`` reason leaf: None, a string shared by
    every seed, or ``{"values": [...]}`` when the seeds differ."""
    if leaf is None:
        return []
    values = leaf.get("values", []) if isinstance(leaf, dict) else [leaf]
    return list(dict.fromkeys(str(v) for v in values if v is not None))
