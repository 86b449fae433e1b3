"""Tables 2-4 assembled from per-seed results beside the paper's, and the paper's claims checked.

Layout of our numbers (``results/dsmnet.json``, under ``"data"``), built by :func:`summarize`
from the per-seed test scores of :func:`cryo_companion.papers.dsmnet.evaluate.score`::

    table2: {ROW: {METRIC: {"mean", "std", "n", "values"}, "converged": [bool per seed]}}
    table3: {"B" | "C": {ROW: ...}}
    table4: {ROW: ...}      (its 1:10 rows are Table 2's runs: :data:`SAME_RUNS`)

with ROW the keys of :mod:`cryo_companion.papers.dsmnet.paper_tables` (``"dsmnet"``,
``"cls+seg_1:100"``, ...) and METRIC ``object_accuracy``, ``pixel_accuracy``, ``miou`` (and
the others ``score`` returns) as fractions. A row or a metric that was not produced is absent,
and shows as missing.

The claims (:data:`CLAIMS`) are checked on the means; a claim that one value is above another
"holds" when our mean difference has the claimed sign, and "holds beyond the seeds' spread"
when Welch's 95 % interval of the difference excludes 0 (at least 2 seeds each). "Similar" and
"insensitive" mean an absolute difference of at most :data:`SIMILAR` (2 percentage points; the
paper calls 0.88 points on data set C and up to 1.56 points in Table 4 so).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from cryo_companion.metrics import difference_ci, mean_std
from cryo_companion.papers.dsmnet.paper_tables import (
    FAILED,
    TABLE2,
    TABLE3,
    TABLE4,
    PaperRow,
)

__all__ = ["CLAIMS", "METRICS", "SAME_RUNS", "SIMILAR", "ClaimCheck", "assemble", "check_claims",
           "summarize", "table_rows"]

#: The tables' metric columns, in order.
METRICS = ("pixel_accuracy", "miou", "object_accuracy")
#: "Similar" / "insensitive": largest absolute difference, as a fraction (2 points).
SIMILAR = 0.02
#: Table 4's rows that are runs of Table 2 (the paper prints the same numbers for them).
SAME_RUNS: dict[str, tuple[str, str]] = {"cls+rec_1:10": ("table2", "cls+rec"),
                                         "cls+seg_1:10": ("table2", "cls+seg")}


def summarize(per_seed: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean, standard deviation and per-seed values of every metric over a row's seeds.

    Parameters
    ----------
    per_seed : sequence of Mapping
        One score dict per seed (:func:`~cryo_companion.papers.dsmnet.evaluate.score`), each
        optionally with a boolean ``"converged"``.

    Returns
    -------
    dict
        ``{METRIC: {"mean", "std", "n", "values"}}`` for every numeric metric present in every
        seed, and ``"converged": [...]`` when the seeds say.
    """
    if not per_seed:
        raise ValueError("no seeds to summarize")
    out: dict[str, Any] = {}
    keys = set.intersection(*(set(s) for s in per_seed)) - {"converged"}
    for k in sorted(keys):
        vals = [float(s[k]) for s in per_seed]
        out[k] = {**mean_std(vals), "values": vals}
    if all("converged" in s for s in per_seed):
        out["converged"] = [bool(s["converged"]) for s in per_seed]
    return out


def assemble(records: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Build our Tables 2-4 from run records: every row's seeds summarised.

    Parameters
    ----------
    records : Mapping
        ``name -> {"data": ..., "provenance": ...}`` run records
        (:func:`cryo_companion.papers.dsmnet.experiments.collect_records`); each record's data
        has ``run`` (the row's fields and the seed), ``test`` (scores) and ``converged``
        (None without a classification head). The unseen-structure run is left out.

    Returns
    -------
    dict
        ``{"table2": {ROW: ...}, "table3": {"B": {ROW: ...}, "C": {...}}, "table4": {ROW:
        ...}}`` (only what the records hold), each row :func:`summarize` of its seeds' test
        scores in seed order, with ``seeds`` and ``epochs_trained`` (lists, per seed).
    """
    rows: dict[tuple[str, str | None, str], list[Mapping[str, Any]]] = {}
    for rec in records.values():
        d = rec.get("data") or {}
        r = d.get("run") or {}
        if r.get("table") not in ("table2", "table3", "table4"):
            continue
        ds = r["dataset"] if r["table"] == "table3" else None
        rows.setdefault((r["table"], ds, r["row"]), []).append(d)
    out: dict[str, Any] = {}
    for (table, ds, row), runs in rows.items():
        runs = sorted(runs, key=lambda d: int(d["run"]["seed"]))
        per_seed = [{**d["test"], **({"converged": bool(d["converged"])}
                                     if d.get("converged") is not None else {})} for d in runs]
        summary = {**summarize(per_seed), "seeds": [int(d["run"]["seed"]) for d in runs],
                   "epochs_trained": [d.get("epochs_trained") for d in runs]}
        sec = out.setdefault(table, {})
        (sec.setdefault(ds, {}) if ds is not None else sec)[row] = summary
    return out


def _paper_rows(table: str, dataset: str | None) -> tuple[PaperRow, ...]:
    if table == "table2":
        return TABLE2
    if table == "table4":
        return TABLE4
    if table == "table3" and dataset in TABLE3:
        return TABLE3[dataset]
    raise ValueError(f"unknown table {table!r} (data set {dataset!r}); valid: table2, "
                     f"table3 with B or C, table4")


def _section(data: Mapping[str, Any] | None, table: str, dataset: str | None
             ) -> Mapping[str, Any]:
    sec = (data or {}).get(table) or {}
    if table == "table3":
        sec = sec.get(dataset) or {}
    return sec


def _row(data: Mapping[str, Any] | None, table: str, dataset: str | None, key: str
         ) -> Mapping[str, Any]:
    """Our numbers of one row (Table 4's 1:10 rows are Table 2's runs, :data:`SAME_RUNS`)."""
    if table == "table4" and key in SAME_RUNS:
        table, key = SAME_RUNS[key]
    return _section(data, table, dataset).get(key) or {}


def table_rows(data: Mapping[str, Any] | None, table: str, dataset: str | None = None
               ) -> list[dict[str, Any]]:
    """List the rows of one of the paper's tables with ours beside them.

    Parameters
    ----------
    data : Mapping or None
        The ``"data"`` of ``results/dsmnet.json`` (None: nothing produced yet).
    table : str
        ``"table2"``, ``"table3"`` or ``"table4"``.
    dataset : str or None
        ``"B"`` or ``"C"`` for Table 3.

    Returns
    -------
    list of dict
        Per row: ``method``, ``key``, ``backbone`` and, per metric of :data:`METRICS`,
        ``{"paper": fraction, "failed" or None, or None for "-", "ours": summary or None}``;
        ``converged`` (our per-seed list or None).
    """
    rows = []
    for r in _paper_rows(table, dataset):
        ours = _row(data, table, dataset, r.key)
        cells = {}
        for m in METRICS:
            p = r.value(m)
            cells[m] = {"paper": p / 100 if isinstance(p, float) else p,
                        "ours": ours.get(m)}
        rows.append({"method": r.method, "key": r.key, "backbone": r.backbone, **cells,
                     "converged": ours.get("converged")})
    return rows


@dataclass(frozen=True)
class ClaimCheck:
    """One claim of the paper, checked on the paper's table and on ours.

    Attributes
    ----------
    id : str
        Short identifier.
    statement : str
        The claim, in the paper's words where it has them.
    paper : str
        ``"holds"`` or ``"does not hold"`` on the paper's own table.
    ours : str
        ``"holds"``, ``"holds beyond the seeds' spread"``, ``"does not hold"`` or
        ``"not produced yet"``.
    detail : str
        The numbers compared (ours, as mean differences).
    """

    id: str
    statement: str
    paper: str
    ours: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        """Return the JSON-able form."""
        return asdict(self)


# (table, data set, row, metric) of one cell; claims compare cells
Cell = tuple[str, "str | None", str, str]


def _paper_value(cell: Cell) -> float | str | None:
    table, ds, row, metric = cell
    for r in _paper_rows(table, ds):
        if r.key == row:
            v = r.value(metric)
            return v / 100 if isinstance(v, float) else v
    return None


def _ours(data: Mapping[str, Any] | None, cell: Cell) -> dict[str, Any] | None:
    table, ds, row, metric = cell
    s = _row(data, table, ds, row).get(metric)
    return s if isinstance(s, dict) and "mean" in s else None


def _name(cell: Cell) -> str:
    table, ds, row, metric = cell
    return f"{table}{'/' + ds if ds else ''} {row} {metric}"


def _above(data: Mapping[str, Any] | None, hi: Cell, lo: Cell) -> tuple[str, str, str]:
    """Check "hi > lo" on the paper's table and on ours."""
    p_hi, p_lo = _paper_value(hi), _paper_value(lo)
    paper = ("holds" if isinstance(p_hi, float) and isinstance(p_lo, float) and p_hi > p_lo
             else "holds" if isinstance(p_hi, float) and p_lo == FAILED else "does not hold")
    a, b = _ours(data, hi), _ours(data, lo)
    if a is None or b is None:
        return paper, "not produced yet", f"{_name(hi)} > {_name(lo)}: ours missing"
    d = a["mean"] - b["mean"]
    ours = "holds" if d > 0 else "does not hold"
    if d > 0 and a["n"] >= 2 and b["n"] >= 2:
        ci = difference_ci(a["values"], b["values"])
        if ci["low"] > 0:
            ours = "holds beyond the seeds' spread"
    return paper, ours, f"{_name(hi)} - {_name(lo)} = {d:+.4f}"


def _similar(data: Mapping[str, Any] | None, x: Cell, y: Cell) -> tuple[str, str, str]:
    """Check "|x - y| <= SIMILAR" on the paper's table and on ours."""
    px, py = _paper_value(x), _paper_value(y)
    paper = ("holds" if isinstance(px, float) and isinstance(py, float)
             and abs(px - py) <= SIMILAR else "does not hold")
    a, b = _ours(data, x), _ours(data, y)
    if a is None or b is None:
        return paper, "not produced yet", f"|{_name(x)} - {_name(y)}|: ours missing"
    d = a["mean"] - b["mean"]
    return paper, "holds" if abs(d) <= SIMILAR else "does not hold", \
        f"{_name(x)} - {_name(y)} = {d:+.4f}"


def _convergence(data: Mapping[str, Any] | None, table: str, ds: str | None, row: str,
                 want: bool) -> tuple[str, str, str]:
    """Check that every run of ``row`` converged (``want``) or that none did."""
    p = _paper_value((table, ds, row, "object_accuracy"))
    paper = "holds" if (p == FAILED) != want else "does not hold"
    runs = _row(data, table, ds, row).get("converged")
    if not runs:
        return paper, "not produced yet", f"{table} {row}: no runs recorded"
    ok = all(runs) if want else not any(runs)
    return paper, "holds" if ok else "does not hold", \
        f"{table}{'/' + ds if ds else ''} {row}: converged {runs}"


def _combine(parts: list[tuple[str, str, str]]) -> tuple[str, str, str]:
    order = ["does not hold", "not produced yet", "holds", "holds beyond the seeds' spread"]
    paper = "holds" if all(p == "holds" for p, _, _ in parts) else "does not hold"
    ours = min((o for _, o, _ in parts), key=order.index)
    return paper, ours, "; ".join(d for _, _, d in parts)


def _t2(row: str, m: str) -> Cell:
    return ("table2", None, row, m)


def _t3(ds: str, row: str, m: str) -> Cell:
    return ("table3", ds, row, m)


_OA, _MIOU = "object_accuracy", "miou"
#: The paper's claims (3.3): id, statement, and the comparisons that make it.
CLAIMS: tuple[tuple[str, str, Any], ...] = (
    ("resnet_converges", ("Res-backbone for classification subnet enables the optimization on "
     "subtomograms that even contains neighboring structures while VGG-backbone failed to "
     "converge (Table 2)"),
     lambda d: _combine([_convergence(d, "table2", None, "cls", True),
                         _convergence(d, "table2", None, "dsrf3d_v2", False)])),
    ("seg_above_ssn3d", ("mIoU from segmentation subnet has hugely increased by 2.39% compared "
     "to SSN3D-ED (Table 2)"), lambda d: _above(d, _t2("seg", _MIOU), _t2("ssn3d_ed", _MIOU))),
    ("multitask_above_single", ("all multi-task models outperformed single-task ones (Table 2: "
     "object accuracy above the Cls Subnet's, mIoU above the Seg Subnet's)"),
     lambda d: _combine([_above(d, _t2(r, _OA), _t2("cls", _OA))
                         for r in ("cls+rec", "cls+seg", "dsmnet")]
                        + [_above(d, _t2(r, _MIOU), _t2("seg", _MIOU))
                           for r in ("cls+seg", "dsmnet")])),
    ("dsmnet_best", "DSM-Net maintained the best mIoU and object accuracy (Table 2)",
     lambda d: _combine([_above(d, _t2("dsmnet", _MIOU), _t2(r, _MIOU))
                         for r in ("ssn3d_ed", "seg", "cls+seg")]
                        + [_above(d, _t2("dsmnet", _OA), _t2(r, _OA))
                           for r in ("cls", "cls+rec", "cls+seg")])),
    ("dataset_b", ("DSM-Net have shown promising results on simulated Dataset B with mIoU, and "
     "accuracy increased (Table 3: above the Seg and Cls Subnets)"),
     lambda d: _combine([_above(d, _t3("B", "dsmnet", _MIOU), _t3("B", "seg", _MIOU)),
                         _above(d, _t3("B", "dsmnet", _OA), _t3("B", "cls", _OA))])),
    ("dataset_c_segmentation", ("DSM-Net returns similar results on experimental dataset with "
     "respect to single-segmentation model (Table 3, data set C: mIoU within 2 points)"),
     lambda d: _similar(d, _t3("C", "dsmnet", _MIOU), _t3("C", "seg", _MIOU))),
    ("dataset_c_classification", ("multi-task scheme solved the convergence problem on "
     "experimental subtomograms (Table 3, data set C: the Cls Subnet fails, DSM-Net converges)"),
     lambda d: _combine([_convergence(d, "table3", "C", "cls", False),
                         _convergence(d, "table3", "C", "dsmnet", True)])),
    ("loss_ratio_insensitive", ("results are insensitive to those values (Table 4: each pair of "
     "ratios within 2 points)"),
     lambda d: _combine(
         [_similar(d, ("table4", None, "cls+rec_1:1", _OA), ("table4", None, "cls+rec_1:10", _OA))]
         + [_similar(d, ("table4", None, "cls+seg_1:10", m), ("table4", None, "cls+seg_1:100", m))
            for m in ("pixel_accuracy", _MIOU, _OA)])),
)


def check_claims(data: Mapping[str, Any] | None) -> list[ClaimCheck]:
    """Check every claim of :data:`CLAIMS` on the paper's tables and on ours.

    Parameters
    ----------
    data : Mapping or None
        The ``"data"`` of ``results/dsmnet.json`` (None: nothing produced yet).

    Returns
    -------
    list of ClaimCheck
        One per claim, in the paper's order.
    """
    out = []
    for cid, statement, check in CLAIMS:
        paper, ours, detail = check(data)
        out.append(ClaimCheck(cid, statement, paper, ours, detail))
    return out
