"""Tables 2 and 3 assembled from the run records, beside the paper's, and the paper's claims checked.

:func:`table2` and :func:`table3` turn the records of
:mod:`cryo_companion.papers.ssn3d.experiments` (``{name: {"data": ..., "provenance": ...}}``)
into rows with our mean, standard deviation (over seeds, ``ddof=1``; None for one seed) and
per-seed values of every metric, next to the paper's numbers (as fractions). A row without
records is kept, with ``n = 0``, so a missing result shows as missing. :func:`check_claims`
decides the paper's five claims from the numbers, :func:`table2_markdown`,
:func:`table3_markdown` and :func:`claims_markdown` write them for the book.

The paper's "mIoU" of the Xu row is compared with our *target* IoU: at the paper's pixel
accuracy the two-class mIoU that the authors' code computes cannot be as low as 27.40 %
(:func:`cryo_companion.papers.ssn3d.paper_tables.min_two_class_miou`); both of ours are shown.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cryo_companion.metrics import mean_std
from cryo_companion.models.ssn3d import PAPER_PARAMETER_COUNTS
from cryo_companion.papers.ssn3d.paper_tables import TABLE2, TABLE3
from cryo_companion.papers.ssn3d.train import held_out_ids
from cryo_companion.tables import format_table

__all__ = ["METRICS", "ROWS", "check_claims", "claims_markdown", "row_key", "table2",
           "table2_markdown", "table3", "table3_markdown"]

#: Metrics of every row (fractions).
METRICS = ("pixel_accuracy", "miou", "target_iou", "background_iou")
#: Table 2's rows: key, method as the paper prints it, variant (None: Xu), data set, SNR.
ROWS: tuple[tuple[str, str, str | None, str, float], ...] = (
    ("xu_A", "Xu[20]", None, "A", 0.5),
    ("v1_A", "SSN3D-v1", "v1", "A", 0.5),
    ("v2_A", "SSN3D-v2", "v2", "A", 0.5),
    ("ed_A", "SSN3D-ED", "ed", "A", 0.5),
    ("ed_B", "SSN3D-ED", "ed", "B", 0.06),
    ("ed_C", "SSN3D-ED", "ed", "C", 0.01),
)
#: Least margin (fraction) by which "far above" and "similar" are decided, besides 2 std.
TOLERANCE = 0.02


def row_key(variant: str | None, dataset: str) -> str:
    """Return the key of a Table 2 row (``"ed_A"``; ``"xu_A"`` for the baseline).

    Parameters
    ----------
    variant : str or None
        ``"v1"``, ``"v2"``, ``"ed"`` or None for Xu.
    dataset : str
        ``"A"``, ``"B"`` or ``"C"``.

    Returns
    -------
    str
    """
    return f"{variant or 'xu'}_{dataset}"


def _summary(tests: Sequence[Mapping[str, float]], seeds: Sequence[int]) -> dict[str, Any]:
    out: dict[str, Any] = {"n": len(tests), "seeds": list(seeds)}
    for m in METRICS:
        vals = [float(t[m]) for t in tests if m in t]
        out[m] = {**mean_std(vals), "values": vals} if vals else {
            "mean": None, "std": None, "n": 0, "values": []}
    return out


def _runs(records: Mapping[str, Mapping[str, Any]], table: str) -> list[dict[str, Any]]:
    return [r["data"] for r in records.values()
            if (r.get("data") or {}).get("run", {}).get("table") == table]


def table2(records: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Assemble Table 2: ours (mean, std, per-seed) beside the paper's, row by row.

    Parameters
    ----------
    records : mapping
        Run records by name (:func:`~cryo_companion.papers.ssn3d.experiments.load_records`),
        including ``xu_A`` for the baseline.

    Returns
    -------
    dict
        ``key -> {"method", "variant", "dataset", "snr", "n", "seeds", METRIC: {"mean",
        "std", "n", "values"}, "epochs", "capacity", "paper": {"pixel_accuracy", "miou",
        "capacity"}}`` in the paper's order.
    """
    runs = _runs(records, "table2")
    paper = {(m, snr): (acc / 100, miou / 100, cap) for m, acc, miou, cap, snr in TABLE2}
    out = {}
    for key, method, variant, dataset, snr in ROWS:
        if variant is None:
            rec = (records.get(key) or {}).get("data")
            tests = [rec["test"]] if rec else []
            row = _summary(tests, [])
            row.update(epochs=[], capacity=None)
        else:
            mine = sorted((r for r in runs if r["run"]["variant"] == variant
                           and r["run"]["dataset"] == dataset), key=lambda r: r["run"]["seed"])
            row = _summary([r["test"] for r in mine], [r["run"]["seed"] for r in mine])
            row.update(epochs=[r["epochs_trained"] for r in mine],
                       capacity=PAPER_PARAMETER_COUNTS[variant])
        acc, miou, cap = paper[(method, snr)]
        out[key] = {"method": method, "variant": variant, "dataset": dataset, "snr": snr,
                    **row, "paper": {"pixel_accuracy": acc, "miou": miou, "capacity": cap}}
    return out


def table3(records: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Assemble Table 3: each held-out class, ours beside the paper's, in the paper's order.

    Parameters
    ----------
    records : mapping
        Run records by name.

    Returns
    -------
    dict
        ``PDB ID -> {"n", "seeds", METRIC: {...}, "n_test", "paper": {"pixel_accuracy",
        "miou"}}``.
    """
    runs = _runs(records, "table3")
    out = {}
    for pdb, (acc, miou) in TABLE3.items():
        mine = sorted((r for r in runs if r["run"]["held_out"] == pdb),
                      key=lambda r: r["run"]["seed"])
        row = _summary([r["test"] for r in mine], [r["run"]["seed"] for r in mine])
        row["n_test"] = mine[0]["split_sizes"]["test"] if mine else None
        out[pdb] = {**row, "paper": {"pixel_accuracy": acc / 100, "miou": miou / 100}}
    assert sorted(out) == sorted(held_out_ids())
    return out


def _mean(row: Mapping[str, Any] | None, metric: str) -> float | None:
    if not row or not row.get("n"):
        return None
    return row[metric]["mean"]


def _std(row: Mapping[str, Any], metric: str) -> float:
    return float(row[metric]["std"] or 0.0)


def _claim(claim: str, holds: bool | None, text: str) -> dict[str, Any]:
    return {"claim": claim, "holds": holds, "text": text}


def _missing(claim: str, what: str) -> dict[str, Any]:
    return _claim(claim, None, f"not decided: {what} not yet reproduced")


def check_claims(t2: Mapping[str, Mapping[str, Any]], t3: Mapping[str, Mapping[str, Any]],
                 tolerance: float = TOLERANCE) -> list[dict[str, Any]]:
    """Decide the paper's claims from our numbers (4.2 and 4.3).

    1. Skip connections help: SSN3D-v2's mIoU is higher than SSN3D-v1's.
    2. SSN3D-ED is similar to SSN3D-v2 (mIoU within ``max(tolerance, 2 std)``) with about half
       the capacity (at most 0.5 of its parameters).
    3. Every CNN is far above the baseline: pixel accuracy, mIoU and target IoU (the likelier
       reading of the paper's Xu value) each higher than Xu's by more than
       ``max(tolerance, 2 std)`` of the CNN row.
    4. At the lowest SNR (data set C) SSN3D-ED has pixel accuracy >= 97 % and mIoU >= 73 %.
    5. Every held-out structure of Table 3 has pixel accuracy >= 96 % and mIoU >= 72 %.

    Parameters
    ----------
    t2 : mapping
        :func:`table2`.
    t3 : mapping
        :func:`table3`.
    tolerance : float
        Least margin of claims 2 and 3.

    Returns
    -------
    list of dict
        ``{"claim", "holds" (True, False, or None when a row is missing), "text"}`` each,
        in the order above; the text quotes the numbers it decides from.
    """
    out = []
    v1, v2, ed = (_mean(t2.get(k), "miou") for k in ("v1_A", "v2_A", "ed_A"))
    c1 = "skip connections help (SSN3D-v2 > SSN3D-v1 in mIoU)"
    if v1 is None or v2 is None:
        out.append(_missing(c1, "SSN3D-v1 or -v2"))
    else:
        out.append(_claim(c1, v2 > v1, f"mIoU SSN3D-v2 {v2:.4f}, SSN3D-v1 {v1:.4f} "
                                       f"(difference {v2 - v1:+.4f})"))
    c2 = "SSN3D-ED is similar to SSN3D-v2 with about half the capacity"
    if v2 is None or ed is None:
        out.append(_missing(c2, "SSN3D-ED or -v2 at SNR 0.5"))
    else:
        band = max(tolerance, 2 * _std(t2["ed_A"], "miou"), 2 * _std(t2["v2_A"], "miou"))
        ratio = PAPER_PARAMETER_COUNTS["ed"] / PAPER_PARAMETER_COUNTS["v2"]
        out.append(_claim(c2, abs(ed - v2) <= band and ratio <= 0.5,
                          f"mIoU SSN3D-ED {ed:.4f}, SSN3D-v2 {v2:.4f} (difference "
                          f"{ed - v2:+.4f}, similar within {band:.4f}); capacity ratio "
                          f"{ratio:.3f}"))
    c3 = "every CNN is far above the baseline (Xu)"
    xu = t2.get("xu_A")
    cnn = [k for k in ("v1_A", "v2_A", "ed_A") if (t2.get(k) or {}).get("n")]
    if not (xu or {}).get("n") or not cnn:
        out.append(_missing(c3, "the baseline or the CNN rows at SNR 0.5"))
    else:
        parts, ok = [], True
        for k in cnn:
            diffs = []
            for m, label in (("pixel_accuracy", "pixel accuracy"), ("miou", "mIoU"),
                             ("target_iou", "target IoU")):
                d = t2[k][m]["mean"] - xu[m]["mean"]  # type: ignore[index]
                ok = ok and d > max(tolerance, 2 * _std(t2[k], m))
                diffs.append(f"{label} {d:+.4f}")
            parts.append(f"{t2[k]['method']} over Xu: " + ", ".join(diffs))
        missing = "" if len(cnn) == 3 else f" ({3 - len(cnn)} CNN row(s) missing)"
        out.append(_claim(c3, ok if len(cnn) == 3 or not ok else None,
                          "; ".join(parts) + missing))
    c4 = "at the lowest SNR (0.01) SSN3D-ED keeps >= 97 % pixel accuracy and >= 73 % mIoU"
    acc_c, miou_c = _mean(t2.get("ed_C"), "pixel_accuracy"), _mean(t2.get("ed_C"), "miou")
    if acc_c is None or miou_c is None:
        out.append(_missing(c4, "SSN3D-ED at SNR 0.01"))
    else:
        out.append(_claim(c4, acc_c >= 0.97 and miou_c >= 0.73,
                          f"pixel accuracy {acc_c:.4f}, mIoU {miou_c:.4f}"))
    c5 = "every held-out structure keeps >= 96 % pixel accuracy and >= 72 % mIoU"
    have = {k: r for k, r in t3.items() if r.get("n")}
    if not have:
        out.append(_missing(c5, "Table 3"))
    else:
        acc = {k: r["pixel_accuracy"]["mean"] for k, r in have.items()}
        miou = {k: r["miou"]["mean"] for k, r in have.items()}
        worst_a, worst_m = min(acc, key=acc.__getitem__), min(miou, key=miou.__getitem__)
        ok = min(acc.values()) >= 0.96 and min(miou.values()) >= 0.72
        n_missing = len(t3) - len(have)
        text = (f"lowest pixel accuracy {acc[worst_a]:.4f} ({worst_a}), lowest mIoU "
                f"{miou[worst_m]:.4f} ({worst_m}) over {len(have)} of {len(t3)} classes")
        holds: bool | None = ok if not n_missing or not ok else None
        out.append(_claim(c5, holds, text + (f"; {n_missing} missing" if n_missing else "")))
    return out


def _pct(s: Mapping[str, Any] | None, per_seed: bool = True) -> str:
    if not s or s.get("mean") is None:
        return "— not yet reproduced"
    txt = f"{100 * s['mean']:.2f}"
    if s.get("std") is not None:
        txt += f" ± {100 * s['std']:.2f}"
    if per_seed and len(s.get("values", [])) > 1:
        txt += " (" + ", ".join(f"{100 * v:.2f}" for v in s["values"]) + ")"
    return txt


def table2_markdown(t2: Mapping[str, Mapping[str, Any]]) -> str:
    """Write Table 2, ours (mean ± std over seeds, per-seed in brackets, %) beside the paper's.

    Parameters
    ----------
    t2 : mapping
        :func:`table2`.

    Returns
    -------
    str
        A Markdown table.
    """
    rows = [{"method": r["method"], "SNR": f"{r['snr']:g}", "seeds": r["n"],
             "pixel acc. (ours)": _pct(r["pixel_accuracy"]),
             "pixel acc. (paper)": 100 * r["paper"]["pixel_accuracy"],
             "mIoU (ours)": _pct(r["miou"]), "mIoU (paper)": 100 * r["paper"]["miou"],
             "target IoU (ours)": _pct(r["target_iou"]),
             "capacity": r["paper"]["capacity"]} for r in t2.values()]
    cols = list(rows[0])
    return format_table(rows, cols, style="markdown",
                        formats={"pixel acc. (paper)": ".2f", "mIoU (paper)": ".2f",
                                 "capacity": ",d"})


def table3_markdown(t3: Mapping[str, Mapping[str, Any]]) -> str:
    """Write Table 3, ours (mean ± std over seeds, %) beside the paper's.

    Parameters
    ----------
    t3 : mapping
        :func:`table3`.

    Returns
    -------
    str
        A Markdown table.
    """
    rows = {pdb: {"test boxes": r["n_test"],
                  "pixel acc. (ours)": _pct(r["pixel_accuracy"], False),
                  "pixel acc. (paper)": 100 * r["paper"]["pixel_accuracy"],
                  "mIoU (ours)": _pct(r["miou"], False), "mIoU (paper)": 100 * r["paper"]["miou"],
                  "target IoU (ours)": _pct(r["target_iou"], False)} for pdb, r in t3.items()}
    cols = list(next(iter(rows.values())))
    return format_table(rows, cols, "held-out class", style="markdown",
                        formats={"pixel acc. (paper)": ".2f", "mIoU (paper)": ".2f"})


def claims_markdown(checks: Sequence[Mapping[str, Any]]) -> str:
    """Write the decided claims as a list (holds / does not hold / not decided).

    Parameters
    ----------
    checks : sequence of mapping
        :func:`check_claims`.

    Returns
    -------
    str
        One Markdown list item per claim.
    """
    word = {True: "**holds**", False: "**does not hold**", None: "**not decided**"}
    return "\n".join(f"- The paper's claim that {c['claim']} {word[c['holds']]} here: "
                     f"{c['text']}." for c in checks)
