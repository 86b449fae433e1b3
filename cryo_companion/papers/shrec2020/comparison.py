"""Our methods beside the paper's: Tables 3, 4, 6 and 7, Fig. 11's data, and Section 5's findings.

Our rows carry the paper's method names (``DeepFinder``, ``YOPO``, ``UMC``, ``TM-T``, ``TM-F``);
a cell is a number, a ``{"mean", "std", "n"}`` summary over seeds (:func:`summarise`), or None
(missing: never the paper's value). :func:`beside_paper` interleaves them with the cited rows
of :mod:`.paper_tables`, each labelled.

The result file ``results/shrec_methods.json`` (written by the methods' chapter) holds under
``data["methods"][KEY]`` (``KEY`` in :data:`METHOD_KEYS`): ``row``, ``seeds``, ``evaluations``
(one :meth:`~.metrics.ShrecEvaluation.to_dict` per seed), ``summary``
(:func:`method_summary` of them), ``timing`` (``training_s``, ``inference_s``: one per seed)
and, for the networks, ``curve`` (F1 against training time); the landing page's claims read
``methods.KEY.summary.headline.*``.

Section 5's findings (:func:`findings`), each a package function of the numbers, not a
sentence typed by hand:

* **learned beat TM**: the best learned method beats the best template matching in
  localisation F1 and in mean classification F1 ("learning-based methods can achieve higher
  performance than the traditional baseline template matching");
* **size**: per-class F1 rises with molecular weight for every method (Spearman's rank
  correlation > 0; "a correlation between macromolecular complex size and classification
  performance for all methods");
* **TM falls behind for small complexes**: the gap between the best learned method and the best
  template matching is larger for the small group than for the large one ("comparable results
  for ... large and medium particles, but rapidly falls behind as the size decreases");
* **U-Net best**: the best method in both localisation F1 and mean classification F1 is a
  U-Net (DeepFinder, Dn3DUnet, UMC; "in particular ... those based on U-Net architecture").
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from cryo_companion.papers.shrec2020.classes import SHREC2020_CLASSES
from cryo_companion.papers.shrec2020.metrics import CLASS_ORDER
from cryo_companion.papers.shrec2020.paper_tables import (
    TABLE3,
    TABLE3_COLUMNS,
    TABLE4,
    TABLE6,
    TABLE6_COLUMNS,
    TABLE7,
    TABLE7_COLUMNS,
)

__all__ = [
    "LEARNED",
    "METHOD_KEYS",
    "TEMPLATE_MATCHING",
    "UNET_BASED",
    "Finding",
    "beside_paper",
    "f1_vs_weight",
    "findings",
    "mean_f1",
    "method_summary",
    "paper_findings",
    "spearman",
    "summarise",
    "summarise_rows",
]

#: Our methods: result key -> the paper's row name.
METHOD_KEYS: dict[str, str] = {"deepfinder": "DeepFinder", "yopo": "YOPO", "umc": "UMC",
                               "tm_t": "TM-T", "tm_f": "TM-F"}
#: Section 4's learning-based methods, template matching, and the U-Net-based ones (Sec. 5).
LEARNED: tuple[str, ...] = ("3D MS-D", "DeepFinder", "3D ResNet", "YOPO", "Dn3DUnet", "UMC")
TEMPLATE_MATCHING: tuple[str, ...] = ("TM-T", "TM-F")
UNET_BASED: tuple[str, ...] = ("DeepFinder", "Dn3DUnet", "UMC")

_PAPER: dict[str, tuple[Mapping[str, Mapping[str, Any]], Sequence[str]]] = {
    "table3": (TABLE3, TABLE3_COLUMNS), "table4": (TABLE4, CLASS_ORDER),
          "table6": (TABLE6, TABLE6_COLUMNS), "table7": (TABLE7, TABLE7_COLUMNS)}


def _num(v: Any) -> float | None:
    if isinstance(v, Mapping):
        v = v.get("mean")
    if v is None or isinstance(v, str):
        return None
    f = float(v)
    return None if math.isnan(f) else f


def summarise(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """Mean, sample sd and count of the defined values (seeds of one method).

    Parameters
    ----------
    values : sequence of float or None
        One value per seed (None or NaN: not defined, left out).

    Returns
    -------
    dict
        ``{"mean", "std", "n"}``; ``std`` None for fewer than two values, ``mean`` None for none.
    """
    v = [float(x) for x in values if x is not None and not math.isnan(float(x))]
    if not v:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(np.mean(v)), "std": float(np.std(v, ddof=1)) if len(v) > 1 else None,
            "n": len(v)}


def summarise_rows(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Summarise each column of several rows (seeds) of one table.

    Parameters
    ----------
    rows : sequence of mapping
        One table row per seed (column -> number or None).

    Returns
    -------
    dict
        Column -> :func:`summarise` of that column, in the first row's column order.
    """
    cols = list(dict.fromkeys(c for r in rows for c in r))
    return {c: summarise([_num(r.get(c)) for r in rows]) for c in cols}


def mean_f1(table4_row: Mapping[str, Any]) -> float | None:
    """Unweighted mean of the defined per-class F1 of a Table 4 row (Sec. 5's average)."""
    v = [x for x in (_num(table4_row.get(c)) for c in CLASS_ORDER) if x is not None]
    return float(np.mean(v)) if v else None


def method_summary(evaluations: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Summaries over seeds of one method's evaluations.

    Parameters
    ----------
    evaluations : sequence of mapping
        :meth:`~.metrics.ShrecEvaluation.to_dict` of each seed.

    Returns
    -------
    dict
        ``table3``, ``table4``, ``table6``: column summaries; ``headline``: summaries of
        ``localisation_f1``, ``classification_mean_f1``, ``small_f1``, ``medium_f1``,
        ``large_f1``.
    """
    t3 = [e["table3"] for e in evaluations]
    t4 = [e["table4"] for e in evaluations]
    t6 = [e["table6"] for e in evaluations]
    head = {"localisation_f1": summarise([_num(r.get("F1 Score")) for r in t3]),
            "classification_mean_f1": summarise([mean_f1(r) for r in t4])}
    for g in TABLE6_COLUMNS:
        head[f"{g.lower()}_f1"] = summarise([_num(r.get(g)) for r in t6])
    return {"table3": summarise_rows(t3), "table4": summarise_rows(t4),
            "table6": summarise_rows(t6), "headline": head}


def beside_paper(table: str, ours: Mapping[str, Mapping[str, Any]]
                 ) -> dict[str, dict[str, Any]]:
    """Rows of a paper table with ours after the paper's row of the same method.

    Parameters
    ----------
    table : str
        ``"table3"``, ``"table4"``, ``"table6"`` or ``"table7"`` (seconds).
    ours : mapping
        Method row name (the paper's) -> our row (column -> number, summary or None); a
        method we ran without a result is an empty mapping (cells missing).

    Returns
    -------
    dict
        Label -> row over the table's columns: ``"NAME (paper)"`` for every cited row, in the
        paper's order, ``"NAME (this companion)"`` after it where we have the method, and our
        rows of methods the paper lacks at the end.
    """
    if table not in _PAPER:
        raise ValueError(f"unknown table {table!r}; valid: {', '.join(_PAPER)}")
    paper, cols = _PAPER[table]
    out: dict[str, dict[str, Any]] = {}
    for name, row in paper.items():
        out[f"{name} (paper)"] = {c: row.get(c) for c in cols}
        if name in ours:
            out[f"{name} (this companion)"] = {c: ours[name].get(c) for c in cols}
    for name, row in ours.items():
        if name not in paper:
            out[f"{name} (this companion)"] = {c: row.get(c) for c in cols}
    return out


def f1_vs_weight(table4_row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Fig. 11's points of one method: per-class F1 against molecular weight.

    Parameters
    ----------
    table4_row : mapping
        PDB ID -> F1 (number or summary).

    Returns
    -------
    list of dict
        ``{"pdb", "mw_kda", "f1"}`` by increasing weight (``f1`` None where missing).
    """
    return [{"pdb": c.pdb_id, "mw_kda": c.mw_kda, "f1": _num(table4_row.get(c.pdb_id))}
            for c in sorted(SHREC2020_CLASSES, key=lambda c: c.mw_kda)]


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(len(x), dtype=np.float64)
    for v in np.unique(x):                       # ties share their mean rank
        tie = x == v
        r[tie] = r[tie].mean()
    return r


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (ties get mean ranks); NaN for fewer than 2 points.

    Parameters
    ----------
    x, y : sequence of float
        Paired values.

    Returns
    -------
    float
    """
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"x and y must be 1-D of equal length, got {a.shape} and {b.shape}")
    if len(a) < 2:
        return math.nan
    ra, rb = _ranks(a), _ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = math.sqrt(float((ra ** 2).sum() * (rb ** 2).sum()))
    return float((ra * rb).sum() / den) if den > 0 else math.nan


@dataclass(frozen=True)
class Finding:
    """One of Section 5's findings checked on a set of results.

    Attributes
    ----------
    key : str
        ``learned_beat_tm``, ``size_correlation``, ``tm_small_gap`` or ``unet_best``.
    claim : str
        The paper's words (cited).
    holds : bool or None
        Whether our numbers support it (None: the numbers needed are missing).
    evidence : dict
        The numbers the verdict was computed from.
    text : str
        One sentence from those numbers.
    """

    key: str
    claim: str
    holds: bool | None
    evidence: dict[str, Any]
    text: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def _best(values: Mapping[str, float | None], names: Sequence[str]) -> tuple[str, float] | None:
    got = [(n, v) for n, v in values.items() if n in names and v is not None]
    return max(got, key=lambda t: t[1]) if got else None


def _learned_beat_tm(loc: Mapping[str, float | None], cls: Mapping[str, float | None]
                     ) -> Finding:
    claim = ("learning-based methods can achieve higher performance than the traditional "
             "baseline template matching (Sec. 5)")
    ev: dict[str, Any] = {}
    verdicts = []
    for what, vals in (("localisation F1", loc), ("mean classification F1", cls)):
        bl, bt = _best(vals, LEARNED), _best(vals, TEMPLATE_MATCHING)
        ev[what] = {"best_learned": bl, "best_template_matching": bt}
        if bl is not None and bt is not None:
            verdicts.append(bl[1] > bt[1])
    holds = all(verdicts) if len(verdicts) == 2 else None
    parts = [f"{w}: best learned {e['best_learned'][0]} {e['best_learned'][1]:.3f} vs best "
             f"template matching {e['best_template_matching'][0]} "
             f"{e['best_template_matching'][1]:.3f}" for w, e in ev.items()
             if e["best_learned"] and e["best_template_matching"]]
    return Finding("learned_beat_tm", claim, holds, ev, _sentence(holds, parts))


def _size_correlation(t4: Mapping[str, Mapping[str, Any]]) -> Finding:
    claim = ("a correlation between macromolecular complex size and classification "
             "performance for all methods (Sec. 5, Table 6, Fig. 11)")
    rho: dict[str, float | None] = {}
    for name, row in t4.items():
        pts = [(p["mw_kda"], p["f1"]) for p in f1_vs_weight(row) if p["f1"] is not None]
        if len(pts) >= 3:
            r = spearman([p[0] for p in pts], [p[1] for p in pts])
            rho[name] = r if math.isfinite(r) else None     # undefined: F1 the same for all
    defined = {n: r for n, r in rho.items() if r is not None}
    # "for all methods": one method without a positive correlation refutes it; it holds only
    # when every method's correlation is defined and positive
    if any(r <= 0 for r in defined.values()):
        holds: bool | None = False
    else:
        holds = True if defined and len(defined) == len(rho) else None
    cells = [f"{n} {r:+.2f}" if r is not None else f"{n} undefined (equal F1 for every class)"
             for n, r in rho.items()]
    parts = [f"Spearman rho(weight, F1) {', '.join(cells)}"]
    return Finding("size_correlation", claim, holds, {"spearman_rho": rho},
                   _sentence(holds, parts if defined else []))


def _tm_small_gap(t6: Mapping[str, Mapping[str, Any]]) -> Finding:
    claim = ("template matching provides comparable results for finding large and medium "
             "particles, but rapidly falls behind as the size decreases (Sec. 5)")
    ev: dict[str, Any] = {}
    for g in TABLE6_COLUMNS:
        vals = {n: _num(r.get(g)) for n, r in t6.items()}
        bl, bt = _best(vals, LEARNED), _best(vals, TEMPLATE_MATCHING)
        ev[g] = None if bl is None or bt is None else bl[1] - bt[1]
    small, large = ev.get("Small"), ev.get("Large")
    holds, parts = None, []
    if small is not None and large is not None:
        holds = bool(small > large and small > 0)
        gaps = ", ".join(f"{g.lower()} {v:+.3f}" for g, v in ev.items() if v is not None)
        parts = [f"best learned minus best template matching: {gaps}"]
    return Finding("tm_small_gap", claim, holds, {"gap_learned_minus_tm": ev},
                   _sentence(holds, parts))


def _unet_best(loc: Mapping[str, float | None], cls: Mapping[str, float | None]) -> Finding:
    claim = ("neural networks can achieve significantly better localization and "
             "classification performance, in particular ... those based on U-Net "
             "architecture (abstract, Sec. 5)")
    bl, bc = _best(loc, tuple(loc)), _best(cls, tuple(cls))
    ev = {"best_localisation": bl, "best_classification": bc, "unet_based": list(UNET_BASED)}
    holds, parts = None, []
    if bl is not None and bc is not None:
        holds = bl[0] in UNET_BASED and bc[0] in UNET_BASED
        parts = [(f"best localisation F1 {bl[0]} {bl[1]:.3f}, best mean classification F1 "
                 f"{bc[0]} {bc[1]:.3f}")]
    return Finding("unet_best", claim, holds, ev, _sentence(holds, parts))


def _sentence(holds: bool | None, parts: Sequence[str]) -> str:
    if holds is None:
        return "Not checked: the numbers it needs are missing."
    return ("Holds" if holds else "Does not hold") + (": " + "; ".join(parts) if parts else "") \
        + "."


def findings(table3: Mapping[str, Mapping[str, Any]], table4: Mapping[str, Mapping[str, Any]],
             table6: Mapping[str, Mapping[str, Any]]) -> list[Finding]:
    """Check Section 5's findings on a set of method rows.

    Parameters
    ----------
    table3, table4, table6 : mapping
        Method row name (the paper's names) -> its row of that table (numbers or summaries).

    Returns
    -------
    list of Finding
        ``learned_beat_tm``, ``size_correlation``, ``tm_small_gap``, ``unet_best``.
    """
    loc = {n: _num(r.get("F1 Score")) for n, r in table3.items()}
    cls = {n: mean_f1(r) for n, r in table4.items()}
    return [_learned_beat_tm(loc, cls), _size_correlation(table4), _tm_small_gap(table6),
            _unet_best(loc, cls)]


def paper_findings() -> list[Finding]:
    """Section 5's findings checked on the paper's own Tables 3, 4 and 6 (all hold)."""
    return findings(TABLE3, TABLE4, TABLE6)
