"""Sphinx extension: the landing page's "paper vs this companion" table, built from results.

``_config.yml`` loads this module; a page writes

```{results-table}
```

and gets one row per claim of :data:`cryo_companion.papers.claims.CLAIMS`: the paper's value
(cited) beside ours, read at build time from ``results/NAME.json``. A value with no result shows
as missing, never as the paper's number. Nothing is typed into the page.
"""
from __future__ import annotations

from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive

__all__ = ["setup", "format_value", "claim_rows"]

MISSING = "— not yet reproduced"


def format_value(value: Any, digits: int = 3) -> str:
    """``0.812`` / ``0.812 ± 0.014 (n=3)`` for a number or a ``{mean, std, n}`` summary."""
    if value is None:
        return MISSING
    if isinstance(value, dict) and "mean" in value:
        s = f"{value['mean']:.{digits}f}"
        if value.get("std") is not None:
            s += f" ± {value['std']:.{digits}f}"
        if value.get("n") is not None:
            s += f" (n={value['n']})"
        return s
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def claim_rows(results: dict[str, dict[str, Any]] | None = None) -> list[list[str]]:
    """Rows ``[paper, where, row, metric, paper value, ours, run]`` for every cited claim."""
    from cryo_companion.papers.claims import CLAIMS, lookup
    from cryo_companion.runs.results import load_all

    results = load_all("paper") if results is None else results
    rows = []
    for c in CLAIMS:
        res = results.get(c.result)
        ours = lookup(res["data"], c.key) if res else None
        if res and ours is not None and c.key.endswith(".mean"):
            # show the spread over seeds where the result has one
            ours = lookup(res["data"], c.key[: -len(".mean")]) or ours
        run = "—"
        if res and ours is not None:
            prov = res.get("provenance", {})
            commit = (prov.get("commit") or "?")[:8]
            device = str(prov.get("device", "?")).replace("NVIDIA ", "")
            run = f"{device}; {prov.get('scale', '?')} scale; commit {commit[:7]}"
            iters = lookup(res["data"], "training.iters")
            if iters:  # training runs: say how long they trained
                run += f"; {iters:,} iterations per run"
        # the table stays compact: citations and metrics without their parentheticals (the
        # chapters give the full definitions)
        rows.append([c.paper.split(" (")[0], c.where, c.row, c.metric.split(" (")[0],
                     format_value(c.value), format_value(ours), run])
    return rows


HEADER = ["Paper", "Where", "Condition", "Metric", "Paper's value", "This companion",
          "Run"]


def _table(rows: list[list[str]]) -> nodes.table:
    table = nodes.table(classes=["results-table"])
    tgroup = nodes.tgroup(cols=len(HEADER))
    table += tgroup
    for _ in HEADER:
        tgroup += nodes.colspec(colwidth=1)
    thead = nodes.thead()
    tgroup += thead
    tbody = nodes.tbody()
    tgroup += tbody
    for target, cells in ((thead, [HEADER]), (tbody, rows)):
        for cells_row in cells:
            row = nodes.row()
            for text in cells_row:
                entry = nodes.entry()
                entry += nodes.paragraph(text=text)
                row += entry
            target += row
    return table


class ResultsTable(Directive):
    """``results-table``: the paper-vs-companion table, read from ``results/*.json``."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        return [_table(claim_rows())]


def setup(app: Any) -> dict[str, Any]:
    """Register the directive; results are read at build time, so always rebuild the page."""
    app.add_directive("results-table", ResultsTable)
    app.connect("env-get-outdated", lambda app, env, added, changed, removed: ["intro"])
    return {"version": "1", "parallel_read_safe": True}
