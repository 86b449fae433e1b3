"""Sphinx extension: the landing page's "paper vs this companion" table, built from results.

``_config.yml`` loads this module; a page writes

```{results-table}
```

and gets one row per claim of :data:`cryo_companion.papers.claims.CLAIMS`: the paper's value
(cited) beside ours, read at build time from ``results/NAME.json``. A value with no result shows
as missing, never as the paper's number. Nothing is typed into the page.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from docutils import nodes
from docutils.parsers.rst import Directive

if TYPE_CHECKING:
    from sphinx.application import Sphinx

__all__ = ["setup", "format_value", "claim_rows"]

MISSING = "— not yet reproduced"


def format_value(value: object, digits: int = 3) -> str:
    """Format a number or a ``{mean, std, n}`` summary: ``0.812`` / ``0.812 ± 0.014 (n=3)``.

    Parameters
    ----------
    value : object
        A float, a mapping with ``mean`` (and optionally ``std`` and ``n``), None (missing) or
        anything else (shown with ``str``).
    digits : int, optional
        Decimals of the mean and the standard deviation.

    Returns
    -------
    str
        The formatted value; :data:`MISSING` for None.
    """
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
    """Return the rows ``[paper, where, row, metric, paper value, ours, run]`` of every claim.

    Parameters
    ----------
    results : dict[str, dict[str, Any]] or None, optional
        Result records by name (``{"data": ..., "provenance": ...}``); None reads the
        paper-scale records of ``results/``.

    Returns
    -------
    list[list[str]]
        One row per cited claim of :data:`cryo_companion.papers.claims.CLAIMS`; a claim without
        a recorded value shows :data:`MISSING` and the run ``—``.
    """
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


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the directive; results are read at build time, so always rebuild the page.

    Parameters
    ----------
    app : sphinx.application.Sphinx
        The Sphinx application.

    Returns
    -------
    dict[str, Any]
        The extension's metadata (parallel-read safe).
    """
    app.add_directive("results-table", ResultsTable)
    app.connect("env-get-outdated", lambda app, env, added, changed, removed: ["intro"])
    return {"version": "1", "parallel_read_safe": True}
