"""Figures and table cells of the chapter "SHREC 2020: methods and results".

Every function draws what a saved piece or the assembled ``results/shrec_methods.json`` holds
(:mod:`cryo_companion.papers.shrec2020.experiment`); nothing is computed here but the layout.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from cryo_companion.book.plotting import plot_confusion_matrix
from cryo_companion.papers.shrec2020.metrics import CLASS_ORDER, NOT_FOUND
from cryo_companion.papers.shrec2020.scoring import unpack_slice

__all__ = ["plot_confusions", "plot_f1_vs_weight", "plot_method_outputs",
           "plot_training_curves", "summary_cells", "table_markdown"]

#: Row label of each method in the figures.
_NAMES = {"deepfinder": "DeepFinder", "yopo": "YOPO", "umc": "UMC", "tm": "TM-F"}


def _label_cmap() -> ListedColormap:
    tab = plt.get_cmap("tab20")(np.arange(len(CLASS_ORDER)) % 20)
    return ListedColormap(np.vstack([[1, 1, 1, 1], tab]))


def _labels(ax: Any, lab: np.ndarray, title: str) -> None:
    ax.imshow(lab, cmap=_label_cmap(), vmin=-0.5, vmax=len(CLASS_ORDER) + 0.5, origin="lower",
              interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_method_outputs(pieces: Mapping[str, Mapping[str, Any] | None]) -> Figure | None:
    """Each method's output on slice ``z`` of the test model beside its truth.

    Parameters
    ----------
    pieces : mapping
        Piece name -> the saved piece (:func:`~cryo_companion.papers.shrec2020.experiment.
        collect`) or None. Networks give their label maps (DeepFinder's binned by 2, YOPO's
        confident voxels, UMC's segmentation and denoised slice); template matching its TM-F
        detections within 3 slices of ``z``.

    Returns
    -------
    matplotlib.figure.Figure or None
        One row per method present (None when there is none).
    """
    have = [k for k in ("deepfinder", "yopo", "umc", "tm") if pieces.get(k)]
    if not have:
        return None
    fig, axes = plt.subplots(len(have), 3, figsize=(10, 3.2 * len(have)), squeeze=False)
    for row, key in zip(axes, have):
        pc = pieces[key]
        assert pc is not None
        maps = pc["slices"]["maps"]
        z = int(pc["slices"]["z"])
        tomo = unpack_slice(maps["tomogram_bin2"])
        row[0].imshow(tomo, cmap="gray", origin="lower")
        row[0].set_title(f"tomogram, z = {z} (binned by 2)", fontsize=9)
        row[0].set_xticks([])
        row[0].set_yticks([])
        _labels(row[1], unpack_slice(maps["truth"]), "class mask (truth)")
        if key == "tm":
            _tm_panel(row[2], pc, tomo.shape, z)
        else:
            names = {"deepfinder": "labels (binned by 2, arg-max)",
                     "yopo": "labels where p > threshold", "umc": "segmentation decoder"}
            _labels(row[2], unpack_slice(maps["labels"]), f"{_NAMES[key]}: {names[key]}")
        row[0].set_ylabel(_NAMES[key] if key != "tm" else "template matching")
    fig.tight_layout()
    return fig


def _tm_panel(ax: Any, pc: Mapping[str, Any], shape: Sequence[int], z: int) -> None:
    det = pc["lists"]["TM-F"]["detections"][0]
    zz, yy, xx = (np.asarray(det[a], dtype=float) for a in "zyx")
    lab = np.asarray(det["label"], dtype=int)
    near = np.abs(zz - z) <= 3
    ax.imshow(np.zeros((2 * shape[0], 2 * shape[1])), cmap="gray_r", origin="lower", vmin=0,
              vmax=1)
    cmap = _label_cmap()
    ax.scatter(xx[near], yy[near], c=[cmap(k) for k in lab[near]], s=12, edgecolors="k",
               linewidths=0.3)
    ax.set_title(f"TM-F: {int(near.sum())} detections within 3 slices", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_training_curves(methods: Mapping[str, Mapping[str, Any]], *,
                         mode: str = "default") -> Figure | None:
    """Training losses by iteration and localisation F1 against training time, per seed.

    Parameters
    ----------
    methods : mapping
        ``data["methods"]`` of :func:`~cryo_companion.papers.shrec2020.methods_results.assemble`.
    mode : str
        Evaluation mode of the F1 points (``"default"``: the curves are scored in it).

    Returns
    -------
    matplotlib.figure.Figure or None
        Two panels per network present (None when there is none).
    """
    nets = [k for k in ("deepfinder", "yopo", "umc") if k in methods]
    if not nets:
        return None
    fig, axes = plt.subplots(len(nets), 2, figsize=(10, 3.0 * len(nets)), squeeze=False)
    for (a_loss, a_f1), key in zip(axes, nets):
        m = methods[key]
        tr = m["training"]
        for run in tr["runs"]:
            it = np.arange(1, len(run["loss"]) + 1) * int(run["loss_every"])
            a_loss.plot(it, run["loss"], lw=0.8, label=f"seed {run['seed']}")
        a_loss.set_xlabel("iteration")
        a_loss.set_ylabel("training loss")
        a_loss.set_title(f"{m['row']}: loss ({tr['runs_per_step']} runs per step, "
                         f"{tr['stepper']})", fontsize=9)
        a_loss.legend(fontsize=7)
        t = [pt["train_s_per_run"] for pt in m["curve"]]
        for i, seed in enumerate(m["seeds"]):
            f1 = [pt["scores"][i].get(f"{mode}_f1") for pt in m["curve"]]
            a_f1.plot(t, [np.nan if v is None else v for v in f1], marker="o",
                      label=f"seed {seed}")
        a_f1.set_xlabel("training time per run (s; the group's time / runs)")
        a_f1.set_ylabel(f"localisation F1 ({mode})")
        a_f1.set_ylim(0, 1)
        a_f1.set_title(f"{m['row']}: F1 on {m['curve_view']}", fontsize=9)
        a_f1.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_f1_vs_weight(points: Mapping[str, Sequence[Mapping[str, Any]]]) -> Figure | None:
    """Per-class F1 against molecular weight, one line per method (the paper's Fig. 11).

    Parameters
    ----------
    points : mapping
        Method row -> ``{"pdb", "mw_kda", "f1"}`` by weight (``data["f1_vs_weight"]``).

    Returns
    -------
    matplotlib.figure.Figure or None
        None when there is no method.
    """
    if not points:
        return None
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, pts in points.items():
        w = [p["mw_kda"] for p in pts]
        f1 = [np.nan if p["f1"] is None else p["f1"] for p in pts]
        ax.plot(w, f1, marker="o", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("molecular weight (kDa, log scale)")
    ax.set_ylabel("classification F1")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_confusions(methods: Mapping[str, Mapping[str, Any]]) -> Figure | None:
    """Draw the confusion matrix of every method's first seed (classes by molecular weight).

    Parameters
    ----------
    methods : mapping
        ``data["methods"]`` (their headline-mode evaluations).

    Returns
    -------
    matplotlib.figure.Figure or None
        One panel per method (None when there is none).
    """
    keys = [k for k in methods if methods[k]["evaluations"]]
    if not keys:
        return None
    fig, axes = plt.subplots(1, len(keys), figsize=(5.2 * len(keys), 5), squeeze=False)
    for ax, key in zip(axes[0], keys):
        cls = methods[key]["evaluations"][0]["classification"]
        names = list(cls.get("classes") or CLASS_ORDER)
        plot_confusion_matrix(ax, np.asarray(cls["confusion"]), names, [*names, NOT_FOUND],
                              show_zeros=False, title=methods[key]["row"],
                              xlabel="predicted class")
    fig.tight_layout()
    return fig


def summary_cells(rows: Mapping[str, Mapping[str, Any]], digits: int = 3
                  ) -> dict[str, dict[str, str | float | None]]:
    """Table cells of rows whose values may be summaries over seeds (``mean ± sd (n)``).

    Parameters
    ----------
    rows : mapping
        Label -> column -> a number, None or ``{"mean", "std", "n"}``.
    digits : int
        Decimals shown.

    Returns
    -------
    dict
        The same rows with every summary as text and numbers as they are.
    """
    out: dict[str, dict[str, str | float | None]] = {}
    for label, row in rows.items():
        cells: dict[str, str | float | None] = {}
        for col, v in row.items():
            if isinstance(v, Mapping):
                if v.get("mean") is None:
                    cells[col] = None
                elif (v.get("n") or 0) > 1 and v.get("std") is not None:
                    cells[col] = f"{v['mean']:.{digits}f} ± {v['std']:.{digits}f} ({v['n']})"
                else:
                    cells[col] = f"{v['mean']:.{digits}f}"
            else:
                cells[col] = v
        out[label] = cells
    return out


def table_markdown(rows: Mapping[str, Mapping[str, Any]], first: str = "method",
                   digits: int = 3) -> str:
    """Format rows whose cells may be summaries over seeds as Markdown (:func:`summary_cells`).

    Parameters
    ----------
    rows : mapping
        Label -> column -> a number, None or a summary; the columns are the first row's.
    first : str
        Header of the label column.
    digits : int
        Decimals shown.

    Returns
    -------
    str
        The table (a missing value shows as ``-``); ``"(no rows)"`` when there is none.
    """
    from cryo_companion.tables import format_table

    if not rows:
        return "(no rows)"
    cols = list(dict.fromkeys(c for r in rows.values() for c in r))
    return format_table(summary_cells(rows, digits), cols, first=first, style="markdown")
