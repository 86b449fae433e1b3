"""Tables and figures of the SSN3D chapter (data sets, recipe, runs, Fig. 5, learning curves).

Every function takes recorded numbers or arrays and returns Markdown or a Matplotlib figure with
labelled axes (nm for lengths, a colour bar where intensity matters).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from cryo_companion.tables import format_table

__all__ = ["dataset_table", "networks_table", "plot_fig5", "plot_learning_curves",
           "plot_subtomograms", "plot_tomogram_slices", "recipe_table", "runs_table"]


def dataset_table(summaries: Mapping[str, Mapping[str, Any]]) -> str:
    """Tabulate the data sets: target and measured SNR, calibrated dose, sizes.

    Parameters
    ----------
    summaries : mapping
        ``name -> summary`` (:func:`cryo_companion.papers.ssn3d.experiments.dataset_summary`).

    Returns
    -------
    str
        A Markdown table, one row per data set.
    """
    rows = {}
    for name, s in summaries.items():
        snr = s.get("snr") or {}
        rows[name] = {"SNR (paper)": s["target_snr"], "SNR (measured, median)": snr.get("median"),
                      "SNR quartiles": (f"{snr['q25']:.3g} – {snr['q75']:.3g}"
                                        if snr.get("q25") is not None else "–"),
                      "GroEL boxes": snr.get("n_boxes"), "dose (e/Å²)": s["dose_e_A2"],
                      "dose steps": len(s.get("calibration") or []),
                      "subtomograms": s["n"], "complexes placed": s.get("complexes_placed"),
                      "whole boxes": s.get("extractable"),
                      "target share of a box (%)": 100 * s["target_fraction"]}
    return format_table(rows, list(next(iter(rows.values()))), "data set", style="markdown",
                        formats={"SNR (paper)": "g", "SNR (measured, median)": ".3g",
                                 "dose (e/Å²)": ".4g", "target share of a box (%)": ".2f",
                                 "complexes placed": ",d", "whole boxes": ",d",
                                 "subtomograms": ",d"})


def networks_table(counts: Mapping[str, int], paper: Mapping[str, int]) -> str:
    """Tabulate each network's parameter count beside the paper's capacity.

    Parameters
    ----------
    counts : mapping
        ``name -> our parameter count`` (``"SSN3D-v1"``, ...).
    paper : mapping
        ``name -> the paper's capacity``.

    Returns
    -------
    str
        A Markdown table.
    """
    rows = {n: {"parameters (ours)": c, "capacity (paper)": paper[n],
                "equal": "yes" if c == paper[n] else "no"} for n, c in counts.items()}
    return format_table(rows, ["parameters (ours)", "capacity (paper)", "equal"], "network",
                        style="markdown", formats={"parameters (ours)": ",d",
                                                   "capacity (paper)": ",d"})


def recipe_table(paper: Mapping[str, Any], released: Mapping[str, Any]) -> str:
    """Tabulate the paper's training recipe beside the authors' released code.

    Parameters
    ----------
    paper : mapping
        :meth:`cryo_companion.papers.ssn3d.training.Recipe.to_dict` of the paper's.
    released : mapping
        The same of the released code's.

    Returns
    -------
    str
        A Markdown table, one row per setting.
    """
    rows = {k: {"paper (4.2)": str(paper[k]), "released code": str(released[k]),
                "same": "yes" if paper[k] == released[k] else "no"} for k in paper}
    return format_table(rows, ["paper (4.2)", "released code", "same"], "setting",
                        style="markdown")


def runs_table(records: Mapping[str, Mapping[str, Any]]) -> str:
    """Tabulate every training run: epochs, where it stopped, its test scores, its speed.

    Parameters
    ----------
    records : mapping
        ``name -> record`` (``{"data": run record}``).

    Returns
    -------
    str
        A Markdown table, one row per run (scores in %).
    """
    rows = {}
    for name, rec in records.items():
        d = rec.get("data") or {}
        if "epochs_trained" not in d:
            continue
        t = d["test"]
        rows[name] = {"epochs": d["epochs_trained"], "best epoch": d["best_epoch"],
                      "stopped early": "yes" if d["stopped_epoch"] else "no",
                      "test boxes": d["split_sizes"]["test"],
                      "pixel acc. (%)": 100 * t["pixel_accuracy"], "mIoU (%)": 100 * t["miou"],
                      "target IoU (%)": 100 * t["target_iou"],
                      "runs per step": d["timing"]["runs_per_step"], "stepper": d["stepper"]}
    if not rows:
        return "*No training run recorded yet.*"
    return format_table(rows, list(next(iter(rows.values()))), "run", style="markdown",
                        formats={"pixel acc. (%)": ".2f", "mIoU (%)": ".2f",
                                 "target IoU (%)": ".2f"})


def plot_tomogram_slices(tomograms: Sequence[np.ndarray], labels: Sequence[str],
                         voxel_size_A: float) -> Figure:
    """Central xy and xz slices of tomograms of one region at several doses.

    Parameters
    ----------
    tomograms : sequence of numpy.ndarray
        `(Z, Y, X)` reconstructions, z-y-x.
    labels : sequence of str
        One per tomogram (e.g. the data set and its SNR).
    voxel_size_A : float
        Voxel size (Å).

    Returns
    -------
    matplotlib.figure.Figure
        One column per tomogram; rows xy (the central z) and xz (the central y); each image
        scaled to its own robust range, axes in nm.
    """
    n = len(tomograms)
    Z, Y, X = tomograms[0].shape
    nm = voxel_size_A / 10
    fig, axes = plt.subplots(2, n, figsize=(3.2 * n, 3.2 + 3.2 * Z / Y), squeeze=False,
                             layout="constrained", height_ratios=[Y, Z])
    for j, (t, lab) in enumerate(zip(tomograms, labels)):
        for i, (img, ext, ylab) in enumerate(((t[Z // 2], (0, X * nm, Y * nm, 0), "y (nm)"),
                                              (t[:, Y // 2], (0, X * nm, Z * nm, 0), "z (nm)"))):
            lo, hi = np.percentile(img, [0.5, 99.5])
            ax = axes[i, j]
            im = ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, extent=ext)
            ax.set(xlabel="x (nm)", ylabel=ylab)
            if i == 0:
                ax.set_title(lab)
        fig.colorbar(im, ax=axes[:, j], shrink=0.6, label="reconstruction (a.u.)")
    return fig


def plot_subtomograms(volumes: np.ndarray, masks: np.ndarray, titles: Sequence[str],
                      voxel_size_A: float) -> Figure:
    """Central xy slices of subtomograms with the outline of their target's mask.

    Parameters
    ----------
    volumes : numpy.ndarray
        `(N, D, D, D)` subtomograms.
    masks : numpy.ndarray
        `(N, D, D, D)` bool target masks.
    titles : sequence of str
        One per subtomogram.
    voxel_size_A : float
        Voxel size (Å).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per subtomogram, the target's outline in red.
    """
    n, d = len(volumes), volumes.shape[1]
    ext = (0, d * voxel_size_A / 10, d * voxel_size_A / 10, 0)
    fig, axes = plt.subplots(1, n, figsize=(2.2 * n, 2.6), squeeze=False, layout="constrained")
    for ax, v, m, t in zip(axes[0], volumes, masks, titles):
        img = v[d // 2]
        lo, hi = np.percentile(img, [0.5, 99.5])
        ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, extent=ext)
        if m[d // 2].any():
            ax.contour(m[d // 2].astype(float), levels=[0.5], colors="red", linewidths=0.8,
                       extent=(0, ext[1], 0, ext[2]), origin="upper")
        ax.set_title(t, fontsize=8)
        ax.set(xlabel="x (nm)")
    axes[0, 0].set_ylabel("y (nm)")
    return fig


def _isosurface(ax: Any, mask: np.ndarray, voxel_size_A: float, colour: str) -> None:
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection  # type: ignore[import-untyped]
    from skimage.measure import marching_cubes

    d = mask.shape[0] * voxel_size_A / 10
    ax.set(xlim=(0, d), ylim=(0, d), zlim=(0, d), xlabel="x (nm)", ylabel="y (nm)",
           zlabel="z (nm)")
    if mask.any() and not mask.all():
        verts, faces, _, _ = marching_cubes(np.pad(mask, 1).astype(np.float32), 0.5)
        verts = (verts - 1) * voxel_size_A / 10          # z, y, x in nm
        ax.add_collection3d(Poly3DCollection(verts[faces][:, :, ::-1], facecolor=colour,
                                             edgecolor="none", alpha=0.8))
    ax.tick_params(labelsize=6)


def plot_fig5(inputs: np.ndarray, truth: np.ndarray, pred: np.ndarray, titles: Sequence[str],
              voxel_size_A: float) -> Figure:
    """Draw the paper's Fig. 5: ground truth and prediction as central slices and isosurfaces.

    Parameters
    ----------
    inputs : numpy.ndarray
        `(N, D, D, D)` subtomograms as the network saw them.
    truth : numpy.ndarray
        `(N, D, D, D)` bool ground-truth target masks.
    pred : numpy.ndarray
        `(N, D, D, D)` bool predicted masks.
    titles : sequence of str
        One per subtomogram (column).
    voxel_size_A : float
        Voxel size (Å).

    Returns
    -------
    matplotlib.figure.Figure
        Rows: input, ground truth and prediction (central xy slices, axes in nm), then the
        isosurfaces (marching cubes at 0.5) of the ground truth (grey) and of the prediction
        (orange).
    """
    n, d = len(inputs), inputs.shape[1]
    size = d * voxel_size_A / 10
    ext = (0, size, size, 0)
    fig = plt.figure(figsize=(2.3 * n, 11.5), layout="constrained")
    rows = (("input", inputs[:, d // 2], "gray"), ("ground truth", truth[:, d // 2], "magma"),
            ("prediction", pred[:, d // 2], "magma"))
    for i, (lab, imgs, cmap) in enumerate(rows):
        for j in range(n):
            ax = fig.add_subplot(5, n, i * n + j + 1)
            img = imgs[j].astype(float)
            lo, hi = (np.percentile(img, [0.5, 99.5]) if i == 0 else (0.0, 1.0))
            im = ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi, extent=ext)
            ax.set_xlabel("x (nm)", fontsize=7)
            ax.tick_params(labelsize=6)
            if j == 0:
                ax.set_ylabel(f"{lab}\ny (nm)", fontsize=8)
            if i == 0:
                ax.set_title(titles[j], fontsize=7)
        fig.colorbar(im, ax=fig.axes[-n:], shrink=0.8,
                     label="standardised" if i == 0 else "mask")
    for i, (masks, colour, lab) in enumerate(((truth, "0.55", "ground truth"),
                                              (pred, "tab:orange", "prediction"))):
        for j in range(n):
            ax = fig.add_subplot(5, n, (3 + i) * n + j + 1, projection="3d")
            _isosurface(ax, masks[j], voxel_size_A, colour)
            ax.set_title(f"{lab} (3-D)", fontsize=7)
    return fig


def plot_learning_curves(records: Mapping[str, Mapping[str, Any]]) -> Figure:
    """Plot the validation pixel accuracy and loss per epoch of every Table 2 run.

    Parameters
    ----------
    records : mapping
        ``name -> record`` (``{"data": run record}`` with ``history`` and
        ``iters_per_epoch``).

    Returns
    -------
    matplotlib.figure.Figure
        Two panels against the epoch; one colour per network and data set, the best epoch of
        each run marked.
    """
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    colours: dict[str, Any] = {}
    for name, rec in sorted(records.items()):
        d = rec.get("data") or {}
        if (d.get("run") or {}).get("table") != "table2" or not d.get("history"):
            continue
        key = f"SSN3D-{d['run']['variant']} on {d['run']['dataset']}"
        c = colours.setdefault(key, f"C{len(colours)}")
        ep = [h["iteration"] / d["iters_per_epoch"] for h in d["history"]]
        a1.plot(ep, [100 * h["val_pixel_accuracy"] for h in d["history"]], color=c,
                label=key if key not in a1.get_legend_handles_labels()[1] else None)
        a2.plot(ep, [h["val_loss"] for h in d["history"]], color=c)
        if d.get("best_epoch"):
            best = next((h for h in d["history"] if h["iteration"] / d["iters_per_epoch"]
                         == d["best_epoch"]), None)
            if best is not None:
                a1.plot(d["best_epoch"], 100 * best["val_pixel_accuracy"], "o", color=c, ms=4)
    a1.set(xlabel="epoch", ylabel="validation pixel accuracy (%)")
    a2.set(xlabel="epoch", ylabel="validation loss (cross-entropy)", yscale="log")
    if colours:
        a1.legend(fontsize=7)
    return fig
