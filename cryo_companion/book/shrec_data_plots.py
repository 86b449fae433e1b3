"""Figures of the chapter "SHREC 2020: the data set".

The paper's Fig. 3 from our data, and the class distribution beside the paper's Table 2.
"""
from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from cryo_companion.papers.shrec2020.metrics import CLASS_ORDER

__all__ = ["plot_class_fractions", "plot_fig3"]


def plot_fig3(grandmodel: np.ndarray, class_mask: np.ndarray, reconstruction: np.ndarray,
              z_offset: int, voxel_size_A: float, *, title: str | None = None) -> Figure:
    """Draw the paper's Fig. 3: central slices of the grand model, class mask, reconstruction.

    The same plane in each: (a) the grand model, (b) the class mask, (c) the reconstruction.

    Parameters
    ----------
    grandmodel : np.ndarray
        `(Z, Y, X)` specimen potential (V), the mask's frame.
    class_mask : np.ndarray
        `(Z, Y, X)` class labels (0 background, ``k`` = ``CLASS_ORDER[k - 1]``).
    reconstruction : np.ndarray
        `(H, Y, X)` tomogram; the mask's slice ``z`` is its slice ``z + z_offset``.
    z_offset : int
        Slices of the reconstruction above the mask (156 in the benchmark).
    voxel_size_A : float
        Voxel edge (Å), for the axes in nm.
    title : str or None
        Figure title.

    Returns
    -------
    Figure
    """
    Z, Y, X = grandmodel.shape
    z = Z // 2
    ext = (0, X * voxel_size_A / 10, 0, Y * voxel_size_A / 10)
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.8), constrained_layout=True)
    g = grandmodel[z]
    im = axes[0].imshow(g, cmap="gray", origin="lower", extent=ext,
                        vmin=float(np.percentile(g, 1)), vmax=float(np.percentile(g, 99.8)))
    fig.colorbar(im, ax=axes[0], shrink=0.8, label="potential (V)")
    axes[0].set_title(f"(a) grand model, slice {z} of {Z}")
    n = len(CLASS_ORDER)
    colours = plt.get_cmap("tab20")(np.arange(n) % 20)
    cmap = ListedColormap(np.vstack([[1, 1, 1, 1], colours]))
    im = axes[1].imshow(class_mask[z], cmap=cmap, vmin=-0.5, vmax=n + 0.5, origin="lower",
                        extent=ext, interpolation="nearest")
    cb = fig.colorbar(im, ax=axes[1], shrink=0.8, ticks=np.arange(n + 1))
    cb.ax.set_yticklabels(["background", *CLASS_ORDER], fontsize=7)
    axes[1].set_title("(b) class mask")
    r = reconstruction[z + z_offset]
    lo, hi = np.percentile(r, [1, 99])
    im = axes[2].imshow(r, cmap="gray", origin="lower", extent=ext, vmin=float(lo),
                        vmax=float(hi))
    fig.colorbar(im, ax=axes[2], shrink=0.8, label="WBP (contrast)")
    axes[2].set_title(f"(c) reconstruction, slice {z + z_offset} of {reconstruction.shape[0]}")
    for ax in axes:
        ax.set_xlabel("x (nm)")
        ax.set_ylabel("y (nm)")
    if title:
        fig.suptitle(title)
    return fig


def plot_class_fractions(rows: Mapping[str, Mapping[str, int | None]], *,
                         title: str | None = None) -> Figure:
    """Draw grouped bars: the fraction of particles in each class, one bar per row.

    Parameters
    ----------
    rows : mapping
        Row name -> {PDB ID: count} (e.g. :func:`~cryo_companion.papers.shrec2020.dataset.
        counts_table`); a ``total`` entry is ignored.
    title : str or None
        Axes title.

    Returns
    -------
    Figure
    """
    fig, ax = plt.subplots(figsize=(10, 3.8), constrained_layout=True)
    x = np.arange(len(CLASS_ORDER))
    w = 0.8 / max(1, len(rows))
    for i, (name, r) in enumerate(rows.items()):
        v = np.array([float(r.get(c) or 0) for c in CLASS_ORDER])
        frac = v / v.sum() if v.sum() else v
        ax.bar(x + (i - (len(rows) - 1) / 2) * w, frac, w, label=name)
    ax.axhline(1 / len(CLASS_ORDER), color="0.4", lw=0.8, ls="--", label="uniform (1/12)")
    ax.set_xticks(x, CLASS_ORDER)
    ax.set_xlabel("class (by molecular weight)")
    ax.set_ylabel("fraction of the particles")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig
