"""Figure helpers shared by every chapter.

Central slices, Fourier slices, image grids, curves, histograms and stacked bars.

Conventions (the project's, see CONTRIBUTING): volumes are ``(z, y, x)`` with the electron beam
along z and the tilt axis along y; voxel sizes are in Å and the axes of every figure are in nm
(real space) or 1/nm (Fourier space). The three central slices of a volume are

=========  =============  ====================  ===========================================
name       plane shown    fixed coordinate      what it shows in a tomogram
=========  =============  ====================  ===========================================
``"xy"``   x (→), y (↑)   z = centre            the view along the beam
``"xz"``   x (→), z (↑)   y = centre            the plane in which the missing wedge lies
``"yz"``   y (→), z (↑)   x = centre            the plane containing the tilt axis
=========  =============  ====================  ===========================================

In Fourier space the missing wedge is therefore seen in the ``"xz"`` slice (k_y = 0).
The functions take NumPy arrays or torch tensors (moved to the CPU) and return Matplotlib figures.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeAlias

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

if TYPE_CHECKING:
    import torch

__all__ = [
    "SLICE_PLANES",
    "as_numpy",
    "central_slices",
    "fourier_log_amplitude",
    "plot_central_slices",
    "plot_confusion_matrix",
    "plot_curves",
    "plot_fourier_slices",
    "plot_histograms",
    "plot_image_grid",
    "plot_stages",
]

#: What the plots take: a NumPy array (or anything ``np.asarray`` reads) or a torch tensor on
#: any device.
ArrayOrTensor: TypeAlias = "npt.ArrayLike | torch.Tensor"
#: ``extent_fn(n_horizontal, n_vertical)`` -> imshow extent (left, right, bottom, top).
_ExtentFn: TypeAlias = "Callable[[int, int], tuple[float, float, float, float]]"

#: name -> (axis held fixed, horizontal axis label, vertical axis label); axes index (z, y, x).
SLICE_PLANES: dict[str, tuple[int, str, str]] = {
    "xy": (0, "x", "y"),
    "xz": (1, "x", "z"),
    "yz": (2, "y", "z"),
}


def as_numpy(volume: ArrayOrTensor) -> np.ndarray:
    """Return ``volume`` (array or torch tensor, any device) as a float NumPy array.

    Parameters
    ----------
    volume : array-like or torch.Tensor
        The data (a tensor is detached and moved to the CPU).

    Returns
    -------
    np.ndarray
        The values, floating point (integers and booleans become float64).
    """
    if hasattr(volume, "detach"):
        volume = volume.detach().cpu().numpy()
    arr = np.asarray(volume)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def _check_volume(volume: ArrayOrTensor) -> np.ndarray:
    """Return a 3-D volume as a float array, refusing other shapes."""
    arr = as_numpy(volume)
    if arr.ndim != 3:
        raise ValueError(f"expected a 3-D volume (z, y, x), got shape {arr.shape}")
    if min(arr.shape) < 1:
        raise ValueError(f"volume has an empty axis: shape {arr.shape}")
    return arr


def central_slices(volume: ArrayOrTensor) -> dict[str, np.ndarray]:
    """Cut the three central slices of a ``(z, y, x)`` volume.

    Parameters
    ----------
    volume : array-like or torch.Tensor
        `(Z, Y, X)` volume.

    Returns
    -------
    dict
        ``{"xy": v[Z//2], "xz": v[:, Y//2], "yz": v[:, :, X//2]}``; each 2-D array is indexed
        ``[vertical, horizontal]`` (rows z or y, columns x or y) as in :data:`SLICE_PLANES`.
        ``Z//2`` is the centre voxel for odd sizes and the zero-frequency index of an
        ``fftshift``-ed even-sized spectrum.

    Raises
    ------
    ValueError
        If ``volume`` is not 3-D or has an empty axis.
    """
    v = _check_volume(volume)
    z, y, x = (s // 2 for s in v.shape)
    return {"xy": v[z], "xz": v[:, y, :], "yz": v[:, :, x]}


def fourier_log_amplitude(volume: ArrayOrTensor, *, eps: float = 1e-12) -> np.ndarray:
    """Compute ``log10 |F(v)|`` of a real volume, zero frequency at the centre (``fftshift``).

    Parameters
    ----------
    volume : array-like or torch.Tensor
        `(Z, Y, X)` real volume.
    eps : float, optional
        Added to the amplitude before the logarithm so that exact zeros (inside the missing
        wedge, on CTF zeros) stay finite.

    Returns
    -------
    np.ndarray
        `(Z, Y, X)` decimal logarithm of the Fourier amplitude, same axes as ``volume``.

    Raises
    ------
    ValueError
        If ``volume`` is not 3-D or has an empty axis.
    """
    v = _check_volume(volume)
    amp = np.abs(np.fft.fftshift(np.fft.fftn(v)))
    return np.log10(amp + eps)


def _extent_nm(n_h: int, n_v: int, voxel_size_A: float) -> tuple[float, float, float, float]:
    """Imshow extent (left, right, bottom, top) in nm for a slice centred on 0."""
    s = voxel_size_A / 10.0
    return (-n_h * s / 2, n_h * s / 2, -n_v * s / 2, n_v * s / 2)


def _extent_inv_nm(n_h: int, n_v: int, voxel_size_A: float) -> tuple[float, float, float, float]:
    """Imshow extent in 1/nm for an fftshift-ed spectrum slice (pixel centres at k = j/(N d))."""
    d_nm = voxel_size_A / 10.0

    def edges(n: int) -> tuple[float, float]:
        f = np.fft.fftshift(np.fft.fftfreq(n, d=d_nm))
        step = 1.0 / (n * d_nm)
        return float(f[0] - step / 2), float(f[-1] + step / 2)

    lo_h, hi_h = edges(n_h)
    lo_v, hi_v = edges(n_v)
    return (lo_h, hi_h, lo_v, hi_v)


def _robust_limits(arrays: Sequence[np.ndarray], percentile: float) -> tuple[float, float]:
    """Return the ``percentile`` .. ``100 - percentile`` range of the finite values."""
    data = np.concatenate([a.ravel() for a in arrays])
    data = data[np.isfinite(data)]
    if data.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(data, [percentile, 100.0 - percentile])
    if hi <= lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def _slice_row(axes: Iterable[Axes], slices: Mapping[str, np.ndarray], *, extent_fn: _ExtentFn,
               unit: str, prefix: str, cmap: str, vmin: float, vmax: float,
               titles: bool) -> AxesImage:
    """Draw named central slices into a row of axes; return the last image."""
    ims = []
    for ax, (name, img) in zip(axes, slices.items()):
        fixed, h, v = SLICE_PLANES[name]
        ext = extent_fn(img.shape[1], img.shape[0])
        ims.append(ax.imshow(img, cmap=cmap, origin="lower", extent=ext, vmin=vmin, vmax=vmax,
                             interpolation="nearest"))
        ax.set_xlabel(f"{prefix}{h} ({unit})")
        ax.set_ylabel(f"{prefix}{v} ({unit})")
        if titles:
            ax.set_title(f"{prefix}{h}–{prefix}{v} plane ({prefix}{'zyx'[fixed]} = 0)")
    return ims[-1]


def plot_central_slices(volume: ArrayOrTensor, voxel_size_A: float, *, title: str | None = None,
                        cmap: str = "gray", percentile: float = 0.5,
                        colorbar_label: str = "density (a.u.)",
                        axes: Sequence[Axes] | None = None) -> Figure:
    """Plot the central x–y, x–z and y–z slices of a volume, axes in nm, one shared colour bar.

    Parameters
    ----------
    volume : array-like or torch.Tensor
        `(Z, Y, X)` volume.
    voxel_size_A : float
        Voxel size in Å (the axes are labelled in nm).
    title : str or None, optional
        Figure title.
    cmap : str, optional
        Matplotlib colour map.
    percentile : float, optional
        The colour range spans the ``percentile`` .. ``100 - percentile`` percentiles of the
        three slices (robust to a few extreme voxels).
    colorbar_label : str, optional
        Label of the colour bar (give the unit).
    axes : sequence of Axes or None, optional
        Three existing axes to draw into (a new figure otherwise).

    Returns
    -------
    matplotlib.figure.Figure
        The figure (the one holding ``axes`` when given).

    Raises
    ------
    ValueError
        If ``voxel_size_A`` is not a positive number, ``volume`` is not 3-D, or ``axes`` is not
        three axes.
    """
    _check_positive(voxel_size_A, "voxel_size_A")
    slices = central_slices(volume)
    fig, axes = _axes_or_new(axes, 3)
    vmin, vmax = _robust_limits(list(slices.values()), percentile)
    im = _slice_row(axes, slices, extent_fn=lambda h, v: _extent_nm(h, v, voxel_size_A),
                    unit="nm", prefix="", cmap=cmap, vmin=vmin, vmax=vmax, titles=True)
    fig.colorbar(im, ax=list(axes), label=colorbar_label, shrink=0.8)
    if title:
        fig.suptitle(title)
    return fig


def plot_fourier_slices(volume: ArrayOrTensor, voxel_size_A: float, *, title: str | None = None,
                        cmap: str = "magma", floor_decades: float = 6.0,
                        axes: Sequence[Axes] | None = None) -> Figure:
    """Plot the central slices of ``log10 |F(v)|`` (k_z = 0, k_y = 0, k_x = 0), axes in 1/nm.

    The k_y = 0 slice (``"xz"``) shows the missing wedge (beam z, tilt axis y); CTF zeros show as
    dark rings in every slice.

    Parameters
    ----------
    volume : array-like or torch.Tensor
        `(Z, Y, X)` volume, real space.
    voxel_size_A : float
        Voxel size in Å; Nyquist is ``10 / (2 voxel_size_A)`` 1/nm.
    title : str or None, optional
        Figure title.
    cmap : str, optional
        Matplotlib colour map.
    floor_decades : float, optional
        The colour range spans ``floor_decades`` decades below the maximum, so that exact zeros
        (the wedge) show as the darkest colour instead of stretching the scale.
    axes : sequence of Axes or None, optional
        Three existing axes to draw into (a new figure otherwise).

    Returns
    -------
    matplotlib.figure.Figure
        The figure (the one holding ``axes`` when given).

    Raises
    ------
    ValueError
        If ``voxel_size_A`` is not a positive number, ``volume`` is not 3-D, or ``axes`` is not
        three axes.
    """
    _check_positive(voxel_size_A, "voxel_size_A")
    logamp = fourier_log_amplitude(volume)
    slices = central_slices(logamp)
    fig, axes = _axes_or_new(axes, 3)
    vmax = max(float(np.max(s)) for s in slices.values())
    vmin = vmax - floor_decades
    im = _slice_row(axes, slices, extent_fn=lambda h, v: _extent_inv_nm(h, v, voxel_size_A),
                    unit="1/nm", prefix="k", cmap=cmap, vmin=vmin, vmax=vmax, titles=True)
    fig.colorbar(im, ax=list(axes), label="log$_{10}$ |F| (a.u.)", shrink=0.8)
    if title:
        fig.suptitle(title)
    return fig


def plot_stages(stages: Mapping[str, ArrayOrTensor], voxel_size_A: float, *,
                fourier: bool = True, percentile: float = 0.5, floor_decades: float = 6.0,
                panel_size: float = 1.9) -> Figure:
    """Plot one row per stage of a pipeline: three real-space slices, then three Fourier slices.

    Parameters
    ----------
    stages : mapping of str to array-like or torch.Tensor
        Ordered mapping ``stage name -> volume (Z, Y, X)`` (e.g. density, rotated, noisy, CTF,
        MTF, wedge).
    voxel_size_A : float
        Voxel size in Å.
    fourier : bool, optional
        Also show the Fourier log-amplitude slices (three more columns).
    percentile : float, optional
        Robust colour range of each real-space row (per stage).
    floor_decades : float, optional
        Dynamic range of the Fourier rows (decades below each row's maximum).
    panel_size : float, optional
        Inches per panel.

    Returns
    -------
    matplotlib.figure.Figure
        Each row has its own colour bar(s): the real-space intensity (a.u.) and, with
        ``fourier``, ``log10 |F|``.

    Raises
    ------
    ValueError
        If ``stages`` is empty, ``voxel_size_A`` is not a positive number or a volume is not
        3-D.
    """
    if not stages:
        raise ValueError("stages is empty: give at least one stage name -> volume")
    _check_positive(voxel_size_A, "voxel_size_A")
    ncol = 6 if fourier else 3
    n = len(stages)
    fig, axs = plt.subplots(n, ncol, figsize=(panel_size * ncol + 1.5, panel_size * n + 0.4),
                            squeeze=False, layout="constrained")
    for r, (name, vol) in enumerate(stages.items()):
        slices = central_slices(vol)
        vmin, vmax = _robust_limits(list(slices.values()), percentile)
        im = _slice_row(axs[r, :3], slices,
                        extent_fn=lambda h, v: _extent_nm(h, v, voxel_size_A), unit="nm",
                        prefix="", cmap="gray", vmin=vmin, vmax=vmax, titles=(r == 0))
        fig.colorbar(im, ax=list(axs[r, :3]), label="a.u.", shrink=0.85, pad=0.01)
        axs[r, 0].annotate(name, xy=(-0.55, 0.5), xycoords="axes fraction", rotation=90,
                           va="center", ha="center", fontsize="large", fontweight="bold")
        if fourier:
            fslices = central_slices(fourier_log_amplitude(vol))
            fmax = max(float(np.max(s)) for s in fslices.values())
            im = _slice_row(axs[r, 3:], fslices,
                            extent_fn=lambda h, v: _extent_inv_nm(h, v, voxel_size_A),
                            unit="1/nm", prefix="k", cmap="magma", vmin=fmax - floor_decades,
                            vmax=fmax, titles=(r == 0))
            fig.colorbar(im, ax=list(axs[r, 3:]), label="log$_{10}$|F|", shrink=0.85,
                         pad=0.01)
    for ax in axs.ravel():
        ax.tick_params(labelsize="x-small")
        ax.xaxis.label.set_size("small")
        ax.yaxis.label.set_size("small")
        ax.title.set_size("small")
    return fig


def plot_image_grid(images: ArrayOrTensor, *, row_labels: Sequence[str] | None = None,
                    col_labels: Sequence[str] | None = None, voxel_size_A: float | None = None,
                    cmap: str = "gray", percentile: float = 0.5, shared_range: bool = False,
                    colorbar_label: str = "intensity (a.u.)", panel_size: float = 1.6,
                    title: str | None = None) -> Figure:
    """Plot a grid of 2-D images (rows × columns), e.g. one column per class, one per sample.

    Parameters
    ----------
    images : array-like or torch.Tensor
        `(R, C, H, W)` images, each ``[y, x]``.
    row_labels, col_labels : sequence of str or None, optional
        Labels of rows (left) and columns (top).
    voxel_size_A : float or None, optional
        If given, the bottom-left panel carries axes in nm; otherwise axes are hidden.
    cmap : str, optional
        Matplotlib colour map.
    percentile : float, optional
        Robust colour range (per image, or over all with ``shared_range``).
    shared_range : bool, optional
        One colour range and one colour bar for the whole grid; otherwise each image is scaled
        to its own range (the paper's Fig. 3 style) and the colour bar reads "per-image range".
    colorbar_label : str, optional
        Label of the colour bar.
    panel_size : float, optional
        Inches per panel.
    title : str or None, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, one colour bar for the grid.

    Raises
    ------
    ValueError
        If ``images`` is not 4-D or the labels do not match its rows and columns.
    """
    arr = as_numpy(images)
    if arr.ndim != 4:
        raise ValueError(f"images must have shape (rows, cols, H, W), got {arr.shape}")
    nr, nc = arr.shape[:2]
    for labels, n, what in ((row_labels, nr, "row_labels"), (col_labels, nc, "col_labels")):
        if labels is not None and len(labels) != n:
            raise ValueError(f"{what} has {len(labels)} entries for {n} {what[:3]}s")
    fig, axs = plt.subplots(nr, nc, figsize=(panel_size * nc + 1.2, panel_size * nr + 0.5),
                            squeeze=False, layout="constrained")
    lims = _robust_limits([arr], percentile) if shared_range else None
    ext = (_extent_nm(arr.shape[3], arr.shape[2], voxel_size_A)
           if voxel_size_A is not None else None)
    ims = []
    for r in range(nr):
        for c in range(nc):
            ax = axs[r, c]
            vmin, vmax = lims if lims else _robust_limits([arr[r, c]], percentile)
            if not shared_range:
                # per-image range mapped to [0, 1] so one colour bar describes the grid
                img = np.clip((arr[r, c] - vmin) / (vmax - vmin), 0, 1)
                vmin, vmax = 0.0, 1.0
            else:
                img = arr[r, c]
            ims.append(ax.imshow(img, cmap=cmap, origin="lower", vmin=vmin, vmax=vmax,
                                 extent=ext, interpolation="nearest"))
            is_corner = r == nr - 1 and c == 0 and voxel_size_A is not None
            _label_grid_panel(ax, is_corner=is_corner,
                              col_label=col_labels[c] if r == 0 and col_labels else None,
                              row_label=row_labels[r] if c == 0 and row_labels else None)
    label = colorbar_label if shared_range else f"{colorbar_label}, per-image range"
    fig.colorbar(ims[-1], ax=axs.ravel().tolist(), label=label, shrink=0.6)
    if title:
        fig.suptitle(title)
    return fig


def plot_curves(x: ArrayOrTensor, curves: Mapping[str, ArrayOrTensor], *, xlabel: str,
                ylabel: str, title: str | None = None,
                vlines: Mapping[str, float] | None = None, ax: Axes | None = None) -> Figure:
    """Plot several labelled curves on shared axes, with optional labelled vertical markers.

    Parameters
    ----------
    x : array-like or torch.Tensor
        1-D shared abscissa (e.g. spatial frequency in 1/nm).
    curves : mapping of str to array-like or torch.Tensor
        ``label -> y`` (each the length of ``x``).
    xlabel, ylabel : str
        Axis labels, with units.
    title : str or None, optional
        Axes title.
    vlines : mapping of str to float, or None, optional
        ``label -> x position`` drawn as dashed vertical lines (e.g. Nyquist).
    ax : Axes or None, optional
        Existing axes to draw into.

    Returns
    -------
    matplotlib.figure.Figure
        The figure (the one holding ``ax`` when given).

    Raises
    ------
    ValueError
        If a curve's length differs from that of ``x``.
    """
    xs = as_numpy(x).ravel()
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
    else:
        fig = _figure_of(ax)
    for label, y in curves.items():
        ys = as_numpy(y).ravel()
        if ys.shape != xs.shape:
            raise ValueError(f"curve {label!r} has {ys.size} points for {xs.size} x values")
        ax.plot(xs, ys, label=label, lw=1.2)
    for label, pos in (vlines or {}).items():
        ax.axvline(pos, color="k", ls="--", lw=1)
        ax.annotate(label, xy=(pos, 1.0), xycoords=("data", "axes fraction"), ha="right",
                    va="top", rotation=90, fontsize="small")
    ax.axhline(0.0, color="0.6", lw=0.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small", loc="lower left")
    return fig


def plot_histograms(samples: Mapping[str, ArrayOrTensor], *,
                    ranges: Mapping[str, tuple[float, float]] | None = None,
                    log_x: Sequence[str] = (), labels: Mapping[str, str] | None = None,
                    bins: int = 30, fixed: Mapping[str, float] | None = None,
                    range_label: str = "paper's range", title: str | None = None) -> Figure:
    """Plot histograms of sampled parameters, one panel each, with the reference range shaded.

    Parameters
    ----------
    samples : mapping of str to array-like or torch.Tensor
        ``name -> 1-D samples``.
    ranges : mapping of str to tuple of float, or None, optional
        ``name -> (low, high)``: the paper's range, shaded and marked.
    log_x : sequence of str, optional
        Names whose panels use a logarithmic x axis with log-spaced bins (e.g. SNR).
    labels : mapping of str to str, or None, optional
        ``name -> axis label with unit`` (default: the name).
    bins : int, optional
        Number of bins.
    fixed : mapping of str to float, or None, optional
        ``name -> value`` of a fixed setting (e.g. the baseline) drawn as a red line.
    range_label : str, optional
        Legend entry of the shaded ranges.
    title : str or None, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, one panel per sampled parameter.

    Raises
    ------
    ValueError
        If ``samples`` is empty, or a logarithmic panel has values or a range <= 0.
    """
    if not samples:
        raise ValueError("samples is empty")
    ranges = ranges or {}
    labels = labels or {}
    fixed = fixed or {}
    n = len(samples)
    fig, axs = plt.subplots(1, n, figsize=(3.0 * n, 2.8), squeeze=False, layout="constrained")
    for ax, (name, vals) in zip(axs[0], samples.items()):
        v = as_numpy(vals).ravel()
        lo, hi = ranges.get(name, (float(v.min()), float(v.max())))
        edges: np.ndarray | int
        if name in log_x:
            if np.any(v <= 0) or lo <= 0:
                raise ValueError(f"{name}: a logarithmic axis needs positive values")
            edges = np.geomspace(lo, hi, bins + 1)
            ax.set_xscale("log")
            if hi / lo < 10:  # under a decade matplotlib labels the minor ticks, which collide
                ax.set_xticks(np.unique(np.round(np.geomspace(lo, hi, 4), 2)))
                ax.xaxis.set_major_formatter(mticker.FormatStrFormatter("%g"))
                ax.xaxis.set_minor_formatter(mticker.NullFormatter())
        else:
            edges = np.linspace(lo, hi, bins + 1) if hi > lo else bins
        ax.hist(v, bins=edges, color="C0", alpha=0.8, label=f"sampled (n={v.size})")
        if name in ranges:
            ax.axvspan(lo, hi, color="C2", alpha=0.12, label=range_label)
        if name in fixed:
            ax.axvline(fixed[name], color="C3", lw=1.5, label="baseline")
        ax.set_xlabel(labels.get(name, name))
        ax.set_ylabel("count")
    axs[0, 0].legend(fontsize="x-small")
    if title:
        fig.suptitle(title)
    return fig


def plot_stacked_bars(rows: Mapping[str, Mapping[str, float]], *, xlabel: str,
                      title: str | None = None) -> Figure:
    """Plot horizontal stacked bars, one per row, of named parts (e.g. a pipeline's stages).

    Parameters
    ----------
    rows : mapping of str to mapping of str to float
        ``row label -> {part: value}``; every row has the same parts, in the same order.
    xlabel : str
        Label of the value axis, with its unit.
    title : str or None, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, rows top to bottom in the order given.

    Raises
    ------
    ValueError
        If ``rows`` is empty, the rows' parts differ, or a value is negative or not finite.
    """
    if not rows:
        raise ValueError("rows is empty")
    parts = list(next(iter(rows.values())))
    for label, vals in rows.items():
        if list(vals) != parts:
            raise ValueError(f"row {label!r} has parts {list(vals)}, expected {parts}")
        if not all(np.isfinite(v) and v >= 0 for v in vals.values()):
            raise ValueError(f"row {label!r}: values must be finite and >= 0")
    fig, ax = plt.subplots(figsize=(8.5, 0.6 * len(rows) + 1.6), layout="constrained")
    labels = list(rows)
    left = np.zeros(len(rows))
    for i, part in enumerate(parts):
        w = np.array([rows[r][part] for r in labels])
        ax.barh(labels, w, left=left, color=plt.get_cmap("tab10")(i % 10), label=part)
        left += w
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.legend(fontsize="x-small", ncols=min(len(parts), 4), loc="upper center",
              bbox_to_anchor=(0.5, -0.35 if len(rows) < 3 else -0.2))
    if title:
        ax.set_title(title)
    return fig


def plot_confusion_matrix(ax: Axes, counts: npt.ArrayLike, true_labels: Sequence[str],
                          predicted_labels: Sequence[str] | None = None, *,
                          normalise_rows: bool = False, title: str = "",
                          xlabel: str = "predicted class", ylabel: str = "true class",
                          cmap: str = "Blues", colorbar: bool = True,
                          show_zeros: bool = True) -> AxesImage:
    """Draw a confusion matrix with its counts written in the cells.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        The axes to draw into.
    counts : array-like
        `(T, P)` counts: row = true class, column = predicted class (``P`` may exceed ``T``, e.g.
        a "not found" column).
    true_labels : sequence of str
        `T` row labels.
    predicted_labels : sequence of str, optional
        `P` column labels (default: ``true_labels``).
    normalise_rows : bool
        Colour by the fraction of each true class (rows sum to 1; the cells still show the
        counts), on a fixed 0-1 scale; otherwise colour by count.
    title, xlabel, ylabel : str
        Titles of the axes.
    cmap : str
        Matplotlib colour map.
    colorbar : bool
        Draw a colour bar beside the axes.
    show_zeros : bool
        Write zero counts too (False leaves empty cells blank).

    Returns
    -------
    matplotlib.image.AxesImage
        The image (for a shared colour bar).

    Raises
    ------
    ValueError
        When the labels do not match the shape of ``counts``.
    """
    cm = np.asarray(counts, dtype=float)
    cols = list(predicted_labels) if predicted_labels is not None else list(true_labels)
    if cm.ndim != 2 or cm.shape != (len(true_labels), len(cols)):
        raise ValueError(f"counts of shape {cm.shape} do not match {len(true_labels)} true and "
                         f"{len(cols)} predicted labels")
    if normalise_rows:
        shown = cm / np.maximum(cm.sum(1, keepdims=True), 1)
        im = ax.imshow(shown, cmap=cmap, vmin=0, vmax=1)
    else:
        shown = cm
        im = ax.imshow(shown, cmap=cmap, vmin=0)
    top = float(shown.max()) if shown.size else 0.0
    for (i, j), v in np.ndenumerate(cm):
        if v or show_zeros:
            ax.text(j, i, f"{int(v)}", ha="center", va="center", fontsize=7,
                    color="w" if shown[i, j] > top / 2 else "k")
    ax.set_xticks(range(len(cols)), cols, rotation=90 if len(cols) > 6 else 30, fontsize=8)
    ax.set_yticks(range(len(true_labels)), list(true_labels), fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046,
                           label="fraction of the true class" if normalise_rows else "count")
    return im


def _label_grid_panel(ax: Axes, *, is_corner: bool, col_label: str | None,
                      row_label: str | None) -> None:
    """Give a grid panel its axes in nm (bottom-left corner only) and its labels."""
    if is_corner:
        ax.set_xlabel("x (nm)", fontsize="small")
        ax.set_ylabel("y (nm)", fontsize="small")
        ax.tick_params(labelsize="x-small")
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    if col_label is not None:
        ax.set_title(col_label, fontsize="medium")
    if row_label is not None:
        ax.annotate(row_label, xy=(-0.08 if not is_corner else -0.62, 0.5),
                    xycoords="axes fraction", rotation=90, va="center", ha="right",
                    fontsize="small")


def _figure_of(ax: Axes) -> Figure:
    """Return the figure holding ``ax`` (the top-level one if ``ax`` is in a subfigure)."""
    fig = ax.figure
    while not isinstance(fig, Figure):
        fig = fig.figure
    return fig


def _axes_or_new(axes: Sequence[Axes] | None, n: int) -> tuple[Figure, Sequence[Axes]]:
    """Return ``axes`` (checked: ``n`` of them) and their figure, or a new row of ``n``."""
    if axes is None:
        fig, ax = plt.subplots(1, n, figsize=(3.3 * n + 1, 3.2), layout="constrained")
        return fig, list(ax)
    if len(axes) != n:
        raise ValueError(f"need {n} axes, got {len(axes)}")
    return _figure_of(axes[0]), list(axes)


def _check_positive(value: float, name: str) -> None:
    """Refuse a value that is not a positive finite number."""
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
