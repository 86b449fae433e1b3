"""Tables as text: aligned plain text for the command line, Markdown for the book."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Real

__all__ = ["format_table"]

STYLES = ("text", "markdown")


def _cell(v: object, spec: str | None = None) -> str:
    if v is None:
        return "-"
    if spec is not None and isinstance(v, Real) and not isinstance(v, bool):
        return format(v, spec)
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def _is_number(v: object) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool)


def format_table(rows: Mapping[str, Mapping[str, object]] | Sequence[Mapping[str, object]],
                 columns: Sequence[str], first: str = "Submission", *, style: str = "text",
                 formats: Mapping[str, str] | None = None) -> str:
    """Format rows as an aligned text table or a Markdown table.

    Parameters
    ----------
    rows : mapping of str to mapping, or sequence of mappings
        ``{row name: {column: value}}`` (the row names form a first column headed ``first``),
        or a list of ``{column: value}`` records (no name column).
    columns : sequence of str
        The columns to show, in order; a value missing from a row shows as ``-``.
    first : str
        Header of the row-name column (mapping ``rows`` only).
    style : str
        ``"text"``: columns aligned with spaces (the first left, the others right), for a
        terminal;
        ``"markdown"``: a pipe table (numeric columns right-aligned, ``|`` in cells escaped),
        for ``IPython.display.Markdown`` in the book.
    formats : mapping of str to str, optional
        ``{column: format spec}`` for numbers (``".1f"``, ``",.0f"``); other floats show with
        three decimals, ``None`` as ``-``.

    Returns
    -------
    str
        The table, one line per row after the header.

    Raises
    ------
    ValueError
        For an unknown ``style``.
    """
    if style not in STYLES:
        raise ValueError(f"unknown table style {style!r}; valid styles: {', '.join(STYLES)}")
    formats = formats or {}
    records: list[tuple[str | None, Mapping[str, object]]]
    if isinstance(rows, Mapping):
        header = [first, *columns]
        records = [(name, r) for name, r in rows.items()]
    else:
        header = list(columns)
        records = [(None, r) for r in rows]
    body = [([name] if name is not None else [])
            + [_cell(r.get(c), formats.get(c)) for c in columns] for name, r in records]
    numeric = ([False] if isinstance(rows, Mapping) else []) + [
        bool(records) and all(_is_number(r.get(c)) or r.get(c) is None for _, r in records)
        and any(_is_number(r.get(c)) for _, r in records) for c in columns]
    if style == "markdown":
        def esc(s: str) -> str:
            return s.replace("|", "\\|").replace("\n", " ")

        rule = ["---:" if n else "---" for n in numeric]
        lines = [header, rule, *body]
        return "\n".join("| " + " | ".join(esc(s) if i != 1 else s for s in line) + " |"
                         for i, line in enumerate(lines))
    table = [header, *body]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return "\n".join("  ".join(s.rjust(w) if i else s.ljust(w)
                               for i, (s, w) in enumerate(zip(line, widths))) for line in table)
