"""Tables as aligned text and as Markdown (what the book renders as HTML tables)."""
from __future__ import annotations

import pytest

from cryo_companion.tables import format_table

ROWS = {"ours": {"F1": 0.81234, "TP": 12, "note": None},
        "paper": {"F1": 0.5, "TP": 7, "note": "a|b"}}


def test_text_table_is_aligned_with_missing_values_as_dash() -> None:
    text = format_table(ROWS, ["F1", "TP", "note"], first="method")
    lines = text.splitlines()
    assert lines[0].split() == ["method", "F1", "TP", "note"]
    assert lines[1].split() == ["ours", "0.812", "12", "-"]
    assert len({len(line) for line in lines}) == 1   # every line padded to the same width
    assert lines[1].startswith("ours ")               # names left, values right-aligned


def test_markdown_table_hand_worked() -> None:
    md = format_table(ROWS, ["F1", "TP", "note"], first="method", style="markdown",
                      formats={"F1": ".2f"})
    assert md.splitlines() == [
        "| method | F1 | TP | note |",
        "| --- | ---: | ---: | --- |",
        "| ours | 0.81 | 12 | - |",
        "| paper | 0.50 | 7 | a\\|b |",
    ]


def test_records_have_no_name_column_and_formats_apply() -> None:
    md = format_table([{"entry": "4v94", "mass (kDa)": 3010.4}, {"entry": "5mpa"}],
                      ["entry", "mass (kDa)"], style="markdown", formats={"mass (kDa)": ",.0f"})
    assert md.splitlines() == ["| entry | mass (kDa) |", "| --- | ---: |",
                               "| 4v94 | 3,010 |", "| 5mpa | - |"]
    text = format_table([{"a": 1}], ["a"])
    assert text.splitlines() == ["a", "1"]


def test_unknown_style_is_refused() -> None:
    with pytest.raises(ValueError, match="valid styles: text, markdown"):
        format_table(ROWS, ["F1"], style="html")
