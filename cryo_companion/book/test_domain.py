"""Tables and figures of the test-domain chapter.

The frozen configuration, a tomogram and its tilt series, one subtomogram per class (the
paper's Fig. 4) and the reality gap. Image axes are in nm with a 10-nm scale bar where a reader
compares sizes; mass is dark in the test domain's raw contrast.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

from cryo_companion.book.plotting import ArrayOrTensor, as_numpy
from cryo_companion.spectra import radial_power_spectrum
from cryo_companion.tables import format_table

__all__ = [
    "add_scale_bar",
    "config_table",
    "plot_class_examples",
    "plot_reality_gap",
    "plot_tilt_images",
    "plot_tomogram",
]


def add_scale_bar(ax: Axes, length_nm: float = 10.0, color: str = "white") -> None:
    """Draw a labelled scale bar in the lower right of an image whose axes are in nm.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Axes showing an image with its extent in nm.
    length_nm : float
        Length of the bar in nm.
    color : str
        Colour of the bar and its label.
    """
    ax.add_artist(AnchoredSizeBar(ax.transData, length_nm, f"{length_nm:g} nm", "lower right",
                                  pad=0.3, color=color, frameon=False, size_vertical=0.6,
                                  fontproperties={"size": 7}))


def config_table(config: Mapping[str, Any]) -> str:
    """Tabulate the frozen imaging parameters and the reason for each choice (Markdown).

    Parameters
    ----------
    config : mapping
        The test-domain configuration (``TEST_DOMAIN_CONFIG``) with ``imaging`` and ``notes``.

    Returns
    -------
    str
        A table of the imaging parameters, then the notes as a list.
    """
    rows = [{"parameter": f"`{k}`", "value": v} for k, v in config["imaging"].items()]
    notes = "\n".join(f"- **{k}**: {v}" for k, v in config.get("notes", {}).items())
    return (format_table(rows, ["parameter", "value"], style="markdown", formats={"value": "g"})
            + ("\n\n" + notes if notes else ""))


def plot_tomogram(tomogram: ArrayOrTensor, class_mask: ArrayOrTensor,
                  voxel_size_A: float) -> Figure:
    """Show a tomogram's central xy and xz slices and the class mask of the xy slice.

    Parameters
    ----------
    tomogram : array-like or torch.Tensor
        `(Z, Y, X)` reconstruction, z-y-x, at ``voxel_size_A``.
    class_mask : array-like or torch.Tensor
        `(Z, Y, X)` class labels at the same sampling (0 ice, 1-4 the classes, higher values
        crowders, drawn as one colour).
    voxel_size_A : float
        Voxel size in Å.

    Returns
    -------
    matplotlib.figure.Figure
        Three panels with axes in nm and colour bars.
    """
    t, cm = as_numpy(tomogram), as_numpy(class_mask)
    z, y, x = t.shape
    h = voxel_size_A / 10.0
    fig, ax = plt.subplots(1, 3, figsize=(13, 4.4), layout="constrained")
    im0 = ax[0].imshow(t[z // 2], cmap="gray", origin="lower", extent=(0, x * h, 0, y * h))
    ax[0].set(title="tomogram, xy slice", xlabel="x (nm)", ylabel="y (nm)")
    fig.colorbar(im0, ax=ax[0], shrink=0.8, label="contrast (a.u.)")
    im1 = ax[1].imshow(t[:, y // 2], cmap="gray", origin="lower", aspect="auto",
                       extent=(0, x * h, 0, z * h))
    ax[1].set(title="tomogram, xz slice", xlabel="x (nm)", ylabel="z (nm)")
    fig.colorbar(im1, ax=ax[1], shrink=0.8, label="contrast (a.u.)")
    shown = np.where(cm[z // 2] <= 4, cm[z // 2], 5)
    im2 = ax[2].imshow(shown, cmap="tab10", vmin=0, vmax=9, interpolation="nearest",
                       origin="lower", extent=(0, x * h, 0, y * h))
    ax[2].set(title="class mask (0 ice, 1-4 classes, 5 crowders)", xlabel="x (nm)",
              ylabel="y (nm)")
    fig.colorbar(im2, ax=ax[2], shrink=0.8, label="class")
    return fig


def plot_tilt_images(images: ArrayOrTensor, tilts_deg: npt.ArrayLike, defocus_um: npt.ArrayLike,
                     pixel_size_A: float) -> Figure:
    """Show the first, the untilted and the last image of a tilt series.

    Parameters
    ----------
    images : array-like or torch.Tensor
        `(T, Y, U)` contrast images (``counts / expected − 1``).
    tilts_deg, defocus_um : array-like
        `(T,)` tilt angles (degrees, about y) and defocus (µm, negative = underfocus).
    pixel_size_A : float
        Pixel size of the images in Å.

    Returns
    -------
    matplotlib.figure.Figure
        Three panels with axes in nm, each titled with its tilt and defocus.
    """
    imgs, tilts, dz = as_numpy(images), np.asarray(tilts_deg), np.asarray(defocus_um)
    h = pixel_size_A / 10.0
    fig, axes = plt.subplots(1, 3, figsize=(12, 4), layout="constrained")
    for a, i in zip(axes, [0, int(np.argmin(np.abs(tilts))), len(tilts) - 1]):
        img = imgs[i]
        im = a.imshow(img, cmap="gray", origin="lower",
                      extent=(0, img.shape[1] * h, 0, img.shape[0] * h))
        a.set(title=f"tilt {tilts[i]:+.0f}°, defocus {dz[i]:.2f} µm", xlabel="u (nm)",
              ylabel="y (nm)")
        fig.colorbar(im, ax=a, shrink=0.8, label="counts/expected − 1")
    return fig


def plot_class_examples(volumes: ArrayOrTensor, masks: npt.ArrayLike, labels: npt.ArrayLike,
                        class_names: list[str], voxel_size_A: float,
                        scale_bar_nm: float = 10.0) -> Figure:
    """Show central slices along the three axes of one subtomogram per class (paper's Fig. 4).

    Parameters
    ----------
    volumes : array-like or torch.Tensor
        `(N, D, D, D)` subtomograms, z-y-x.
    masks : array-like
        `(N, D, D, D)` segmentation ground truth of each target.
    labels : array-like
        `(N,)` class index of each subtomogram.
    class_names : list of str
        Class names (index = label); one row per class that has a subtomogram.
    voxel_size_A : float
        Voxel size in Å.
    scale_bar_nm : float
        Length of the scale bar drawn in every panel.

    Returns
    -------
    matplotlib.figure.Figure
        One row per class (xy, xz, yz), axes in nm on the outer panels, a scale bar in every
        panel and the target's ground-truth contour in orange.

    Raises
    ------
    ValueError
        No subtomogram has a label of ``class_names``.
    """
    vols, msk, lab = as_numpy(volumes), np.asarray(masks), np.asarray(labels)
    present = [k for k in range(len(class_names)) if (lab == k).any()]
    if not present:
        raise ValueError("no subtomogram of any class")
    d = vols.shape[-1]
    c = d // 2
    w = d * voxel_size_A / 10.0
    fig, ax = plt.subplots(len(present), 3, figsize=(7.5, 2.5 * len(present) + 0.4),
                           squeeze=False, layout="constrained")
    planes = [((c, slice(None), slice(None)), "xy", "x", "y"),
              ((slice(None), c, slice(None)), "xz", "x", "z"),
              ((slice(None), slice(None), c), "yz", "y", "z")]
    for r, k in enumerate(present):
        i = int(np.flatnonzero(lab == k)[0])
        for col, (sl, name, hname, vname) in enumerate(planes):
            a = ax[r, col]
            a.imshow(vols[i][sl], cmap="gray", origin="lower", extent=(0, w, 0, w))
            m = msk[i][sl]
            if m.any():
                a.contour(m.astype(float), levels=[0.5], colors="tab:orange", linewidths=0.8,
                          extent=(0, w, 0, w))
            a.set_title(f"{class_names[k]}, {name}", fontsize=9)
            a.tick_params(labelsize=7)
            a.set_xlabel(f"{hname} (nm)", fontsize=7)
            a.set_ylabel(f"{vname} (nm)", fontsize=7)
            add_scale_bar(a, scale_bar_nm)
    return fig


def plot_reality_gap(train: ArrayOrTensor, test: ArrayOrTensor, voxel_size_A: float) -> Figure:
    """Plot power spectra and intensity histograms of training and test subtomograms.

    Parameters
    ----------
    train, test : array-like or torch.Tensor
        `(N, D, D, D)` subtomograms of the training simulator and of the test domain; each set
        is standardised with its own global mean and standard deviation first.
    voxel_size_A : float
        Voxel size in Å.

    Returns
    -------
    matplotlib.figure.Figure
        Left: radially averaged power (normalised to sum 1) against spatial frequency in 1/nm;
        right: intensity histograms on a logarithmic density axis.
    """
    fig, ax = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    for x, label in ((train, "training simulator (baseline)"), (test, "test domain")):
        v = as_numpy(x)
        z = (v - v.mean()) / v.std()
        k, p = radial_power_spectrum(z, voxel_size_A)
        ax[0].semilogy(10.0 * k, p / np.nansum(p), label=label)
        ax[1].hist(z.ravel(), bins=100, density=True, histtype="step", label=label)
    ax[0].set(xlabel="spatial frequency (1/nm)", ylabel="normalised power",
              title="power spectra")
    ax[1].set(xlabel="standardised intensity", ylabel="density", title="intensity histograms",
              yscale="log")
    ax[0].legend()
    ax[1].legend()
    return fig
