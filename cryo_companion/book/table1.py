"""Figures of the Table I chapter.

The precision check, validation curves, threshold sweep and the confusion matrices of both
arms. Every figure takes the recorded summaries (training runs' ``summary``, ``summarize_runs``) and
returns a Matplotlib figure with labelled axes.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from cryo_companion.book.plotting import plot_confusion_matrix

__all__ = ["plot_arm_confusions", "plot_precision_check", "plot_threshold_sweep",
           "plot_validation"]


def plot_precision_check(check: Mapping[str, Any], window: int = 20) -> Figure:
    """Loss curves of the same training in TF32 and in bfloat16 autocast.

    Parameters
    ----------
    check : mapping
        The precision check (``"tf32"`` and ``"bf16"`` loss lists).
    window : int
        Width of the running mean, in iterations.

    Returns
    -------
    matplotlib.figure.Figure
        Both running means against the iteration.
    """
    fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
    for k in ("tf32", "bf16"):
        ax.plot(np.convolve(check[k], np.ones(window) / window, mode="valid"), label=k)
    ax.set(xlabel="iteration", ylabel=f"training loss ({window}-iteration mean)",
           title="TF32 vs bfloat16 autocast, same weights, same batches")
    ax.legend()
    return fig


def plot_validation(summaries: Sequence[Mapping[str, Any]]) -> Figure:
    """Plot the validation loss and accuracy of every run against the iteration.

    Parameters
    ----------
    summaries : sequence of mapping
        Each run's training summary (``config`` with ``arm`` and ``seed``; ``history`` with
        ``iteration``, ``val_loss`` and ``val_accuracy``).

    Returns
    -------
    matplotlib.figure.Figure
        Two panels; randomized runs solid, baseline runs dashed.
    """
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
    for s in summaries:
        h, c = s["history"], s["config"]
        style = "-" if c["arm"] == "randomized" else "--"
        it = [e["iteration"] for e in h]
        axes[0].plot(it, [e["val_loss"] for e in h], style, label=f"{c['arm']} seed {c['seed']}")
        axes[1].plot(it, [e["val_accuracy"] for e in h], style)
    axes[0].set(xlabel="iteration", ylabel="validation loss", title="simulated validation set")
    axes[1].set(xlabel="iteration", ylabel="validation accuracy", ylim=(0, 1))
    axes[0].legend(fontsize=7)
    return fig


def plot_threshold_sweep(summary: Mapping[str, Any], labels: Mapping[str, str],
                         thresholds: Mapping[str, float]) -> Figure:
    """Plot mIoU and pixel accuracy of both arms at every mask threshold (mean ± std).

    Parameters
    ----------
    summary : mapping
        ``summarize_runs`` of the runs (each arm's ``sweep``).
    labels : mapping of str to str
        Axis labels of ``"miou"`` and ``"pixel_accuracy"``.
    thresholds : mapping of str to float
        The paper's threshold of each arm, marked by dotted lines.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels against the mask probability threshold.
    """
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
    for arm, style in (("randomized", "-o"), ("baseline", "--s")):
        sw = summary["arms"][arm]["sweep"]
        th = np.array(sw["threshold"])
        for ax, k in zip(axes, ("miou", "pixel_accuracy")):
            mu, sd = np.array(sw[k]["mean"]), np.array(sw[k]["std"])
            ax.plot(th, mu, style, ms=3, label=arm)
            ax.fill_between(th, mu - sd, mu + sd, alpha=0.2)
    for ax, k in zip(axes, ("miou", "pixel_accuracy")):
        ax.set(xlabel="mask probability threshold", ylabel=labels[k])
        for t in sorted(set(thresholds.values())):
            ax.axvline(t, color="k", lw=0.5, ls=":")
    axes[0].legend()
    return fig


def plot_arm_confusions(summary: Mapping[str, Any], class_names: Sequence[str]) -> Figure:
    """Confusion matrices of both arms, summed over seeds, coloured by row fraction.

    Parameters
    ----------
    summary : mapping
        ``summarize_runs`` of the runs.
    class_names : sequence of str
        Class names in the matrices' order.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per arm with the counts in the cells and one shared colour bar.
    """
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), layout="constrained")
    im = None
    for ax, arm in zip(axes, ("randomized", "baseline")):
        im = plot_confusion_matrix(ax, summary["arms"][arm]["confusion_matrix"],
                                   list(class_names), normalise_rows=True, title=arm,
                                   cmap="viridis", colorbar=False)
    assert im is not None
    fig.colorbar(im, ax=list(axes), label="fraction of the true class")
    return fig
