"""Plain-text tables of an evaluation: the Table 3, 4 and 6 rows, as the paper prints them."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryo_companion.papers.shrec2020.metrics import ShrecEvaluation
from cryo_companion.tables import format_table

__all__ = ["companion_rows", "format_evaluation"]


def format_evaluation(ev: ShrecEvaluation, name: str = "this run") -> str:
    """Format the localisation row (Table 3), the per-class F1 row (Table 4) and Table 6.

    Parameters
    ----------
    ev : ShrecEvaluation
        The evaluation.
    name : str
        Row name.

    Returns
    -------
    str
        Three aligned text tables with their headings.
    """
    t3, t4, t6 = ev.localisation.table3_row(), ev.classification.table4_row(), \
        ev.classification.table6_row()
    return "\n".join([
        "Localisation (Table 3 columns)", format_table({name: t3}, list(t3)), "",
        "Classification F1 per class (Table 4 columns, by molecular weight)",
        format_table({name: t4}, list(t4)), "",
        "F1 per size group (Table 6 columns)", format_table({name: t6}, list(t6)),
    ])


def companion_rows(results: Mapping[str, Mapping[str, Any]],
                   table: str) -> dict[str, dict[str, object]]:
    """Collect the rows of this companion for a paper table from result files.

    A chapter that scores a method stores ``{"shrec_eval": {"method": NAME, "table3": {...},
    "table4": {...}, "table6": {...}}}`` in its result's ``data`` (as written by
    :meth:`ShrecEvaluation.to_dict` plus a method name). Rows are keyed ``"NAME (this
    companion)"``. With no such result, one row ``"this companion"`` with every cell missing
    (None) is returned: missing stays missing, never the paper's number.

    Parameters
    ----------
    results : mapping of str to mapping
        ``{name: result}`` as returned by :func:`cryo_companion.runs.results.load_all`.
    table : str
        ``"table3"``, ``"table4"`` or ``"table6"``.

    Returns
    -------
    dict of str to dict
        ``{row name: {column: value}}``.
    """
    rows: dict[str, dict[str, object]] = {}
    for name, res in sorted(results.items()):
        ev = (res.get("data") or {}).get("shrec_eval")
        if isinstance(ev, Mapping) and isinstance(ev.get(table), Mapping):
            rows[f"{ev.get('method', name)} (this companion)"] = dict(ev[table])
    return rows or {"this companion": {}}
