"""Figures of the Table I chapter.

The precision check, validation curves, threshold sweep, the confusion matrices of every arm and
the paper's Fig. 5 with every arm. Every figure takes recorded summaries (training records'
``data``, ``summarize_runs``) or the networks and returns a Matplotlib figure with labelled axes.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from cryo_companion.book.plotting import plot_confusion_matrix, plot_image_grid

__all__ = ["ARM_STYLES", "fig5_images", "plot_arm_confusions", "plot_fig5",
           "plot_precision_check", "plot_threshold_sweep", "plot_validation"]

#: Line style, marker and colour of each arm (the paper's arms solid and dashed in blue and
#: orange, their context versions the same dash in green and red).
ARM_STYLES: dict[str, dict[str, str]] = {
    "randomized": {"ls": "-", "marker": "o", "color": "C0"},
    "baseline": {"ls": "--", "marker": "s", "color": "C1"},
    "randomized+context": {"ls": "-", "marker": "^", "color": "C2"},
    "baseline+context": {"ls": "--", "marker": "v", "color": "C3"},
}
_OTHER = {"ls": ":", "marker": "x", "color": "C7"}


def _ordered(arms: Sequence[str]) -> list[str]:
    known = [a for a in ARM_STYLES if a in arms]
    return known + sorted(set(arms) - set(known))


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
        Each run's training summary or exported record's ``data`` (``config`` with ``arm`` and
        ``seed``; ``history`` with ``iteration``, ``val_loss`` and ``val_accuracy``).

    Returns
    -------
    matplotlib.figure.Figure
        Two panels; one colour and dash per arm (:data:`ARM_STYLES`), one line per seed.
    """
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
    labelled: set[str] = set()
    for s in summaries:
        h, c = s["history"], s["config"]
        st = ARM_STYLES.get(c["arm"], _OTHER)
        it = [e["iteration"] for e in h]
        label = c["arm"] if c["arm"] not in labelled else None
        labelled.add(c["arm"])
        axes[0].plot(it, [e["val_loss"] for e in h], ls=st["ls"], color=st["color"], label=label)
        axes[1].plot(it, [e["val_accuracy"] for e in h], ls=st["ls"], color=st["color"])
    axes[0].set(xlabel="iteration", ylabel="validation loss", title="simulated validation set")
    axes[1].set(xlabel="iteration", ylabel="validation accuracy", ylim=(0, 1))
    axes[0].legend(fontsize=7)
    return fig


def plot_threshold_sweep(summary: Mapping[str, Any], labels: Mapping[str, str],
                         thresholds: Mapping[str, float]) -> Figure:
    """Plot mIoU and pixel accuracy of every arm at every mask threshold (mean ± std).

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
        Two panels against the mask probability threshold, one line per arm.
    """
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
    for arm in _ordered(list(summary["arms"])):
        sw = summary["arms"][arm].get("sweep")
        if sw is None:
            continue
        st = ARM_STYLES.get(arm, _OTHER)
        th = np.array(sw["threshold"])
        for ax, k in zip(axes, ("miou", "pixel_accuracy")):
            mu, sd = np.array(sw[k]["mean"]), np.array(sw[k]["std"])
            ax.plot(th, mu, ls=st["ls"], marker=st["marker"], color=st["color"], ms=3, label=arm)
            ax.fill_between(th, mu - sd, mu + sd, alpha=0.15, color=st["color"])
    for ax, k in zip(axes, ("miou", "pixel_accuracy")):
        ax.set(xlabel="mask probability threshold", ylabel=labels[k])
        for t in sorted(set(thresholds.values())):
            ax.axvline(t, color="k", lw=0.5, ls=":")
    axes[0].legend(fontsize=7)
    return fig


def plot_arm_confusions(summary: Mapping[str, Any], class_names: Sequence[str]) -> Figure:
    """Confusion matrices of every arm, summed over seeds, coloured by row fraction.

    Parameters
    ----------
    summary : mapping
        ``summarize_runs`` of the runs.
    class_names : sequence of str
        Class names in the matrices' order.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per arm (two per row) with the counts in the cells and one shared colour bar.
    """
    arms = _ordered(list(summary["arms"]))
    if not arms:
        raise ValueError("the summary has no arms")
    rows = (len(arms) + 1) // 2
    fig, axes = plt.subplots(rows, 2, figsize=(9, 3.8 * rows), layout="constrained",
                             squeeze=False)
    im = None
    for ax, arm in zip(axes.flat, arms):
        im = plot_confusion_matrix(ax, summary["arms"][arm]["confusion_matrix"],
                                   list(class_names), normalise_rows=True, title=arm,
                                   cmap="viridis", colorbar=False)
    for ax in list(axes.flat)[len(arms):]:
        ax.set_axis_off()
    assert im is not None
    fig.colorbar(im, ax=list(axes.flat), label="fraction of the true class")
    return fig


def fig5_images(test: Any, models: Mapping[str, Any], thresholds: Mapping[str, float], *,
                sigma_vox: float = 1.0) -> tuple[np.ndarray, list[str], list[str]]:
    """Cut the panels of the paper's Fig. 5: one test subtomogram per class, every arm's mask.

    Parameters
    ----------
    test : SubtomogramSet
        The test set (volumes, labels, masks, class names, ``meta["contrast"]``).
    models : mapping
        ``{arm: network}`` (one per arm, e.g. seed 0), shown in this order.
    thresholds : mapping
        ``{arm: mask threshold}``.
    sigma_vox : float
        Test-time Gaussian filter (1: the paper's protocol).

    Returns
    -------
    tuple of (numpy.ndarray, list of str, list of str)
        `(2 + n_arms, n_classes_present, D, D)` central z slices: the input as the networks saw
        it (the whole set inverted if mass-dark, standardised and filtered), the ground-truth
        mask of the target, and each arm's mask of its predicted class; the row labels; the
        column labels (the class of each column's subtomogram, its first in the set).
    """
    from cryo_companion.papers.che2019.evaluate import needs_inversion, predict, preprocess

    names = list(test.class_names)
    labels = np.asarray(test.labels)
    idx = [int(np.flatnonzero(labels == k)[0]) for k in range(len(names)) if (labels == k).any()]
    if test.masks is None:
        raise ValueError("the test set has no masks")
    invert = needs_inversion((getattr(test, "meta", None) or {}).get("contrast", "dark"))
    x = preprocess(torch.from_numpy(np.asarray(test.volumes)), sigma_vox, invert=invert)[idx]
    zc = x.shape[1] // 2
    rows = [x[:, zc].numpy(), np.asarray(test.masks)[idx, zc].astype(float)]
    for arm, model in models.items():
        dev = next(model.parameters()).device
        pr = predict(model, x.to(dev))
        rows.append(pr.masks(thresholds[arm])[:, zc].float().numpy())
    return (np.stack(rows), ["input", "ground truth", *models],
            [names[int(labels[i])] for i in idx])


def plot_fig5(test: Any, models: Mapping[str, Any], thresholds: Mapping[str, float], *,
              sigma_vox: float = 1.0) -> Figure:
    """Plot the paper's Fig. 5 with every arm (:func:`fig5_images`).

    Parameters
    ----------
    test : SubtomogramSet
        The test set.
    models : mapping
        ``{arm: network}``.
    thresholds : mapping
        ``{arm: mask threshold}``.
    sigma_vox : float
        Test-time Gaussian filter.

    Returns
    -------
    matplotlib.figure.Figure
        Rows input, ground truth and one per arm; one column per class.
    """
    grid, rows, cols = fig5_images(test, models, thresholds, sigma_vox=sigma_vox)
    return plot_image_grid(grid, row_labels=rows, col_labels=cols,
                           voxel_size_A=test.voxel_size_A, colorbar_label="intensity / mask")
