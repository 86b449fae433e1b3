"""Figures of the SHREC evaluation chapter.

Detections on an occupancy slice, the confusion matrix (Fig. 12 layout) and cumulative F1 curves
(Fig. 10).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap

from cryo_companion.book.plotting import plot_confusion_matrix
from cryo_companion.papers.shrec2020.metrics import (
    CLASS_ORDER,
    NOT_FOUND,
    ClassificationResult,
    LocalisationResult,
)
from cryo_companion.papers.shrec2020.particles import ParticleList

__all__ = ["OUTCOME_STYLE", "plot_confusion", "plot_cumulative_f1", "plot_detection_slice"]

#: Marker, colour and legend label of each detection outcome.
OUTCOME_STYLE: dict[str, dict[str, Any]] = {
    "TP": {"marker": "o", "color": "#1a9850", "label": "TP (first hit on a particle)"},
    "MH": {"marker": "^", "color": "#fdae61", "label": "MH (further hit, same particle)"},
    "FP": {"marker": "X", "color": "#d73027", "label": "FP (background)"},
    "RO": {"marker": "s", "color": "#7b3294", "label": "RO (outside the volume)"},
}


def plot_detection_slice(ax: Axes, occupancy: np.ndarray, z: int, pred: ParticleList,
                         result: LocalisationResult, truth: ParticleList | None = None,
                         max_dz: float = 0.5) -> None:
    """Draw the occupancy slice ``occupancy[z]`` and the detections near it, by outcome.

    Parameters
    ----------
    ax : Axes
        Matplotlib axes.
    occupancy : np.ndarray
        `(z, y, x)` labels.
    z : int
        Slice index.
    pred : ParticleList
        The detections.
    result : LocalisationResult
        Their localisation result (the outcome of each detection).
    truth : ParticleList or None, optional
        Optional truth list, to label each region with its index and class.
    max_dz : float, optional
        Show detections whose rounded z is within this many voxels of ``z``.
    """
    sl = occupancy[z]
    n = int(occupancy.max())
    tab = plt.get_cmap("tab10")(np.arange(max(n, 1)) % 10)
    colours = 0.55 * tab + 0.45  # lightened, so the markers stay visible
    cmap = ListedColormap(np.vstack([[1, 1, 1, 1], colours]))
    ax.imshow(sl, cmap=cmap, vmin=-0.5, vmax=n + 0.5, origin="lower", interpolation="nearest")
    ax.contour(sl > 0, levels=[0.5], colors="0.4", linewidths=0.6)  # x, y = voxel centres
    if truth is not None:
        for i, (x, y, zz) in enumerate(truth.xyz):
            if abs(round(zz) - z) <= max_dz:
                ax.annotate(f"{i + 1}: {truth.classes[i]}", (x, y), xytext=(0, -11),
                            textcoords="offset points", ha="center", fontsize=7, color="0.25")
    near = np.abs(np.rint(pred.xyz[:, 2]) - z) <= max_dz
    for outcome, style in OUTCOME_STYLE.items():
        sel = near & (result.outcome == outcome)
        if sel.any():
            ax.scatter(pred.xyz[sel, 0], pred.xyz[sel, 1], s=60, marker=style["marker"],
                       color=style["color"], edgecolors="k", linewidths=0.6,
                       label=f"{style['label']}: {int(sel.sum())}", zorder=3)
    pad = 3
    ax.set_xlim(min(-0.5, pred.xyz[near, 0].min(initial=0) - pad),
                max(sl.shape[1] - 0.5, pred.xyz[near, 0].max(initial=0) + pad))
    ax.set_ylim(-0.5, sl.shape[0] - 0.5)
    ax.axvline(sl.shape[1] - 0.5, color="k", lw=0.8, ls="--")
    ax.axvline(-0.5, color="k", lw=0.8, ls="--")
    ax.set_xlabel("x (voxels)")
    ax.set_ylabel("y (voxels)")
    ax.set_title(f"occupancy map, slice z = {z} (dashed: volume edge)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def plot_confusion(ax: Axes, result: ClassificationResult, title: str = "") -> None:
    """Draw the confusion matrix, classes by molecular weight (Fig. 12), plus *not found*.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        The axes to draw into.
    result : ClassificationResult
        The classification result (its ``confusion`` counts and ``classes``).
    title : str
        Title (default: "confusion matrix (classes by molecular weight)").
    """
    plot_confusion_matrix(ax, result.confusion, list(result.classes),
                          list(result.classes) + [NOT_FOUND], show_zeros=False,
                          title=title or "confusion matrix (classes by molecular weight)",
                          xlabel="predicted class (first detection on the particle)")


def plot_cumulative_f1(ax: Axes, rows: Mapping[str, Mapping[str, float | None]]) -> None:
    """Plot the running sum of per-class F1 over the classes by molecular weight (Fig. 10).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        The axes to draw into.
    rows : mapping of str to mapping of str to float or None
        ``submission -> {class: F1}``; a missing or None F1 counts as 0.
    """
    x = np.arange(len(CLASS_ORDER))
    for name, row in rows.items():
        f1 = np.array([row.get(c) if row.get(c) is not None else 0.0 for c in CLASS_ORDER],
                      dtype=float)
        ax.plot(x, np.cumsum(f1), marker=".", label=name)
    ax.set_xticks(x, CLASS_ORDER, rotation=90)
    ax.set_xlabel("class (increasing molecular weight)")
    ax.set_ylabel("cumulative F1 (sum over classes)")
    ax.legend(fontsize=8)
