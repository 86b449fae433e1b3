"""Tables and figures of the DSM-Net chapter.

Tables 2-4 beside the paper's, the claims, Fig. 2, the t-SNE map and the FSC curve.
Presentation only: the numbers come from :mod:`cryo_companion.papers.dsmnet` (tables, claims,
unseen) and the chapter's runs.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from cryo_companion.book.plotting import as_numpy, plot_image_grid
from cryo_companion.papers.dsmnet.paper_tables import FAILED
from cryo_companion.papers.dsmnet.tables import METRICS, ClaimCheck
from cryo_companion.tables import format_table

__all__ = ["claims_table", "parameters_table", "plot_fig2", "plot_fsc", "plot_tsne",
           "results_table", "runs_table", "unseen_table"]

_HEAD = {"pixel_accuracy": "Pix acc", "miou": "mIoU", "object_accuracy": "Obj acc"}


def _paper_cell(v: Any) -> str:
    if v is None:
        return "-"
    if v == FAILED:
        return "* (fails to converge)"
    return f"{100 * float(v):.2f}"


def _ours_cell(v: Mapping[str, Any] | None, paper: Any, converged: Sequence[bool] | None
               ) -> str:
    if v is None:
        return "missing" if paper is not None else "-"
    s = f"{100 * v['mean']:.2f}"
    if v.get("std") is not None:
        s += f" ± {100 * v['std']:.2f}"
    s += f" (n={v['n']})"
    if converged is not None and not all(converged):
        s += f", {len(converged) - sum(converged)} of {len(converged)} did not converge"
    return s


def results_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Format one of Tables 2-4 as Markdown: every metric the paper's beside ours, in percent.

    Parameters
    ----------
    rows : sequence of Mapping
        :func:`cryo_companion.papers.dsmnet.tables.table_rows`.

    Returns
    -------
    str
        A Markdown table: method, backbone (where the paper gives one), then per metric the
        paper's value and ours (mean ± std over seeds, n); "-" where the task does not apply,
        "missing" where we have not produced it.
    """
    cols = ["Method"] + (["Backbone"] if any(r.get("backbone") for r in rows) else [])
    for m in METRICS:
        cols += [f"{_HEAD[m]}, paper", f"{_HEAD[m]}, ours"]
    recs = []
    for r in rows:
        rec: dict[str, object] = {"Method": r["method"], "Backbone": r.get("backbone")}
        for m in METRICS:
            rec[f"{_HEAD[m]}, paper"] = _paper_cell(r[m]["paper"])
            # convergence is the classification loss's: noted beside the object accuracy
            rec[f"{_HEAD[m]}, ours"] = _ours_cell(r[m]["ours"], r[m]["paper"],
                                                  r.get("converged")
                                                  if m == "object_accuracy" else None)
        recs.append(rec)
    return format_table(recs, cols, style="markdown")


def claims_table(checks: Sequence[ClaimCheck]) -> str:
    """Format the paper's claims, checked on its tables and on ours, as Markdown.

    Parameters
    ----------
    checks : sequence of ClaimCheck
        :func:`cryo_companion.papers.dsmnet.tables.check_claims`.

    Returns
    -------
    str
        One row per claim: the claim, the paper's table, ours, the numbers compared.
    """
    recs = [{"Claim (3.3)": c.statement, "On the paper's tables": c.paper, "On ours": c.ours,
             "Compared": c.detail} for c in checks]
    return format_table(recs, ["Claim (3.3)", "On the paper's tables", "On ours", "Compared"],
                        style="markdown")


def parameters_table(counts: Mapping[str, int], paper: Mapping[str, float] | None = None
                     ) -> str:
    """Tabulate the trainable parameters of every network the runs train.

    Parameters
    ----------
    counts : Mapping of str to int
        ``row name -> parameters`` (:func:`cryo_companion.papers.dsmnet.training.
        parameter_counts`).
    paper : Mapping of str to float or None
        ``row name -> the paper's count`` where it gives one.

    Returns
    -------
    str
        A Markdown table: row, parameters (and the paper's).
    """
    rows = {k: {"parameters": int(v), "paper": (paper or {}).get(k)} for k, v in counts.items()}
    cols = ["parameters"] + (["paper"] if paper else [])
    return format_table(rows, cols, "run (row)", style="markdown",
                        formats={"parameters": ",d", "paper": ",.0f"})


def runs_table(records: Mapping[str, Mapping[str, Any]]) -> str:
    """Tabulate the recorded runs: how long each trained, where it stopped, how it stepped.

    Parameters
    ----------
    records : Mapping
        ``name -> {"data": ..., "provenance": ...}``
        (:func:`cryo_companion.papers.dsmnet.experiments.collect_records`).

    Returns
    -------
    str
        A Markdown table, one row per run (a line saying none when there are none).
    """
    if not records:
        return "*No run recorded yet at this scale.*"
    rows = {}
    for name, rec in records.items():
        d = rec.get("data") or {}
        t = d.get("timing") or {}
        rows[name] = {"epochs": d.get("epochs_trained"), "best epoch": d.get("best_epoch"),
                      "stopped early": "yes" if d.get("stopped_epoch") is not None else "no",
                      "converged": ("-" if d.get("converged") is None
                                    else "yes" if d["converged"] else "no"),
                      "stepper": d.get("stepper"), "runs per step": t.get("runs_per_step"),
                      "train / val / test": "{train} / {validation} / {test}".format(
                          **d.get("split_sizes", {"train": "-", "validation": "-",
                                                  "test": "-"}))}
    return format_table(rows, list(next(iter(rows.values()))), "run", style="markdown")


def unseen_table(unseen: Mapping[str, Any]) -> str:
    """Tabulate the unseen-structure analysis: the enriched cluster and the recovered structure.

    Parameters
    ----------
    unseen : Mapping
        The ``"data"`` of ``results/dsmnet_unseen.json``
        (:func:`cryo_companion.papers.dsmnet.experiments.analyze_unseen` and its run).

    Returns
    -------
    str
        A Markdown table of the numbers 3.5 reports or implies, ours beside the paper's where
        it gives one.
    """
    e = unseen["discovery"]["enriched"]
    res = unseen["fsc"]["resolution"]
    ref = unseen["reference_fsc"]["resolution"]
    nm = {k: (v or {}).get("resolution_nm") for k, v in res.items()}
    ref_nm = {k: (v or {}).get("resolution_nm") for k, v in ref.items()}
    rows = {
        "GroEL subtomograms (never trained on)": {"ours": unseen["n_groel"], "paper": None},
        f"k-means clusters of the {unseen['n']:,} subtomograms": {
            "ours": unseen["discovery"]["k"], "paper": 22},
        "GroEL in the enriched cluster": {"ours": e["n_target_in_cluster"], "paper": None},
        "purity of the enriched cluster": {"ours": e["purity"], "paper": None},
        "recall of GroEL": {"ours": e["recall"], "paper": None},
        "recovered structure, resolution at FSC 0.5 (nm)": {
            "ours": nm.get("fsc_0_5"), "paper": unseen["fsc"].get("paper_score")},
        "recovered structure, resolution at FSC 0.143 (nm)": {"ours": nm.get("fsc_0_143"),
                                                              "paper": None},
        "average of the inputs by true poses, FSC 0.5 (nm)": {"ours": ref_nm.get("fsc_0_5"),
                                                              "paper": None},
        "Nyquist (nm)": {"ours": unseen["fsc"]["nyquist_nm"], "paper": None},
    }
    return format_table(rows, ["ours", "paper"], "3.5", style="markdown",
                        formats={"ours": ".3g", "paper": "g"})


def plot_fig2(volumes: Any, truth: Any, masks: Any, recovery: Any, voxel_size_A: float, *,
              titles: Sequence[str] | None = None) -> Figure:
    """Draw the paper's Fig. 2: input, true structure, segmentation, recovered density (slices).

    Parameters
    ----------
    volumes : array-like
        `(n, D, D, D)` input subtomograms.
    truth : array-like
        `(n, D, D, D)` the targets' true densities.
    masks : array-like
        `(n, D, D, D)` the predicted target masks.
    recovery : array-like
        `(n, D, D, D)` the recovered densities.
    voxel_size_A : float
        Voxel edge (Å): the axes are in nm.
    titles : sequence of str or None
        One title per subtomogram (e.g. its class).

    Returns
    -------
    matplotlib.figure.Figure
        One column per subtomogram, rows (a)-(d) as in the paper, central x-y slices.
    """
    arrs = [as_numpy(a) for a in (volumes, truth, masks, recovery)]
    n = arrs[0].shape[0]
    if any(a.ndim != 4 or a.shape != arrs[0].shape for a in arrs) or n == 0:
        raise ValueError(f"volumes, truth, masks and recovery must share one (n, D, D, D) "
                         f"shape, got {[a.shape for a in arrs]}")
    if titles is not None and len(titles) != n:
        raise ValueError(f"{len(titles)} titles for {n} subtomograms")
    c = arrs[0].shape[1] // 2
    grid = np.stack([a[:, c] for a in arrs])                  # (4 rows, n columns, D, D)
    return plot_image_grid(grid, row_labels=["(a) input", "(b) true structure",
                                             "(c) segmentation", "(d) recovered density"],
                           col_labels=list(titles) if titles is not None else None,
                           voxel_size_A=voxel_size_A, title="Central x-y slices (z = D/2)")


def plot_tsne(embedding: Any, labels: Any, highlight: int, *, clusters: Any | None = None,
              enriched: int | None = None, highlight_name: str = "held-out class") -> Figure:
    """Draw the t-SNE map of the hidden units, the held-out class in red (the paper's Fig. 3g).

    Parameters
    ----------
    embedding : array-like
        `(N, 2)` t-SNE coordinates.
    labels : array-like
        `(N,)` true classes.
    highlight : int
        The class drawn in red.
    clusters : array-like or None
        `(N,)` k-means clusters; with ``enriched``, that cluster's members are ringed.
    enriched : int or None
        The cluster enriched in the held-out class.
    highlight_name : str
        Legend label of the highlighted class.

    Returns
    -------
    matplotlib.figure.Figure
    """
    e, lab = as_numpy(embedding), np.asarray(labels)
    if e.ndim != 2 or e.shape[1] != 2 or lab.shape != (e.shape[0],):
        raise ValueError(f"need embedding (N, 2) and labels (N,), got {e.shape}, {lab.shape}")
    fig, ax = plt.subplots(figsize=(6.4, 5.6), layout="constrained")
    other = lab != highlight
    ax.scatter(e[other, 0], e[other, 1], c=lab[other], cmap="tab20", s=6, alpha=0.6,
               label="the 21 training classes (colour: class)")
    ax.scatter(e[~other, 0], e[~other, 1], c="red", s=14, label=highlight_name)
    if clusters is not None and enriched is not None:
        sel = np.asarray(clusters) == enriched
        ax.scatter(e[sel, 0], e[sel, 1], facecolors="none", edgecolors="k", s=40, lw=0.6,
                   label=f"k-means cluster {enriched} (enriched in it)")
    ax.set_xlabel("t-SNE 1 (a.u.)")
    ax.set_ylabel("t-SNE 2 (a.u.)")
    ax.legend(fontsize="small", loc="best")
    return fig


def plot_fsc(report: Mapping[str, Any], *, title: str | None = None) -> Figure:
    """Draw the FSC of the recovered against the true structure, with the resolutions marked.

    Parameters
    ----------
    report : Mapping
        :func:`cryo_companion.papers.dsmnet.unseen.structure_fsc`.
    title : str or None
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
        FSC against spatial frequency (1/nm), shells from 1 to Nyquist.
    """
    curve = report["curve"]
    f = np.asarray(curve["frequency_per_A"][1:], dtype=float) * 10.0          # 1/nm
    fsc = np.asarray(curve["fsc"][1:], dtype=float)            # None (an empty shell): NaN
    fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
    ax.plot(f, fsc, "o-", ms=3, lw=1.2, label="FSC, recovered vs true")
    for r in report["resolution"].values():
        ax.axhline(r["threshold"], color="0.5", ls=":", lw=1)
        ax.axvline(10.0 / r["resolution_A"] if r["resolution_A"] else 0, color="k", ls="--",
                   lw=0.8)
        ax.annotate(f"FSC {r['threshold']:g}: {r['resolution_nm']:.1f} nm ({r['crossed']})",
                    xy=(10.0 / r["resolution_A"], r["threshold"]), xytext=(4, 4),
                    textcoords="offset points", fontsize="small")
    paper = report.get("paper_score")
    if paper:
        ax.axvline(1.0 / float(paper), color="tab:red", ls="-.", lw=0.8)
        ax.annotate(f"paper's '{paper:g}' as nm", xy=(1.0 / float(paper), 0.02),
                    xycoords=("data", "axes fraction"), rotation=90, fontsize="small",
                    color="tab:red", ha="right", va="bottom")
    ax.axhline(0.0, color="0.6", lw=0.6)
    ax.set_xlabel("spatial frequency (1/nm)")
    ax.set_ylabel("FSC")
    ax.set_ylim(min(-0.1, float(np.nanmin(fsc, initial=0.0)) - 0.05), 1.05)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small", loc="upper right")
    return fig
