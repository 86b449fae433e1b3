"""Tables and figures of the domain-randomization chapter: presets, sampler checks, Fig. 3."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from cryo_companion.book.plotting import plot_image_grid
from cryo_companion.simulate.randomization import Preset
from cryo_companion.simulate.subtomogram import SimBatch, Simulator
from cryo_companion.structures.templates import TemplateBank
from cryo_companion.tables import format_table

__all__ = [
    "LABELS",
    "class_batches",
    "distribution_table",
    "plot_subtomogram_grid",
    "preset_table",
]

#: Axis labels (with units) of the simulation parameters.
LABELS: dict[str, str] = {
    "snr": "SNR", "wedge_deg": "missing wedge α (°)", "defocus_um": "defocus Dz (µm)",
    "cs_mm": "Cs (mm)", "intensity_scale": "contrast gain g",
    "intensity_offset": "offset o (× std)", "bfactor_A2": "envelope B (Å²)"}

_PARAMS = ("snr", "wedge_deg", "defocus_um", "cs_mm", "bfactor_A2", "intensity_scale",
           "intensity_offset")


def _range(v: tuple[float, float]) -> str:
    return f"{v[0]:g}" if v[0] == v[1] else f"{v[0]:g} – {v[1]:g}"


def preset_table(randomized: Preset, baseline: Preset,
                 paper_ranges: Mapping[str, tuple[float, float]]) -> str:
    """Tabulate both presets beside the paper's ranges (Markdown).

    Parameters
    ----------
    randomized, baseline : Preset
        The two presets.
    paper_ranges : mapping of str to (float, float)
        The ranges the paper states; parameters it does not give read "ours".

    Returns
    -------
    str
        One row per parameter: the randomized range, the baseline value and the paper's range.
    """
    rows = {LABELS[k]: {"randomized": _range(getattr(randomized, k)),
                        "baseline": _range(getattr(baseline, k)),
                        "paper (III-B)": _range(paper_ranges[k]) if k in paper_ranges
                        else "ours"} for k in _PARAMS}
    return format_table(rows, ["randomized", "baseline", "paper (III-B)"], first="parameter",
                        style="markdown")


def distribution_table(checks: Mapping[str, Mapping[str, Any]]) -> str:
    """Tabulate :func:`cryo_companion.simulate.checks.distribution_check` per parameter.

    Parameters
    ----------
    checks : mapping
        ``{parameter: check}``.

    Returns
    -------
    str
        A Markdown table: the drawn range, whether it lies in the paper's, the KS distance and
        its p-value.
    """
    rows = {LABELS.get(k, k): {"drawn min": c["min"], "drawn max": c["max"],
                               "in paper range": "yes" if c["inside_range"] else "**no**",
                               "KS D": c["ks_statistic"], "p": c["ks_pvalue"]}
            for k, c in checks.items()}
    return format_table(rows, ["drawn min", "drawn max", "in paper range", "KS D", "p"],
                        first="parameter", style="markdown",
                        formats={"drawn min": ".4g", "drawn max": ".4g", "KS D": ".4f",
                                 "p": ".2f"})


def class_batches(sim: Simulator, bank: TemplateBank, preset: Preset,
                  classes: Sequence[str], n: int, seed: int) -> list[SimBatch]:
    """Simulate ``n`` subtomograms of each class with a preset (templates drawn uniformly).

    Parameters
    ----------
    sim : Simulator
        The simulator of ``bank``.
    bank : TemplateBank
        Its templates (for the class labels).
    preset : Preset
        The parameter ranges.
    classes : sequence of str
        Class names, one batch each, in this order.
    n : int
        Subtomograms per class.
    seed : int
        Class ``i`` uses a generator on the simulator's device seeded ``seed + i``.

    Returns
    -------
    list of SimBatch
        One batch per class.
    """
    out = []
    for i, name in enumerate(classes):
        g = torch.Generator(device=sim.device).manual_seed(seed + i)
        pool = torch.as_tensor(np.flatnonzero(bank.labels == bank.class_names.index(name)),
                               device=sim.device)
        idx = pool[torch.randint(len(pool), (n,), generator=g, device=sim.device)]
        with torch.no_grad():
            out.append(sim.sample(n, preset, g, template_index=idx))
    return out


def plot_subtomogram_grid(panels: Sequence[Sequence[tuple[SimBatch, int]]],
                          col_labels: Sequence[str], row_labels: Sequence[str],
                          voxel_size_A: float, *, title: str | None = None,
                          annotate: bool = True) -> Figure:
    """Show central x–y slices of simulated subtomograms in a grid.

    Parameters
    ----------
    panels : sequence of sequence of (SimBatch, int)
        ``panels[r][c] = (batch, i)``: the ``i``-th subtomogram of ``batch`` goes in row ``r``,
        column ``c``.
    col_labels, row_labels : sequence of str
        Column titles and row labels.
    voxel_size_A : float
        Voxel size in Å (the bottom-left panel carries axes in nm).
    title : str, optional
        Figure title.
    annotate : bool
        Write each panel's SNR, wedge angle and defocus into its corner.

    Returns
    -------
    matplotlib.figure.Figure
        Each panel scaled to its own range (the paper's Fig. 3 style).

    Raises
    ------
    ValueError
        ``panels`` is empty or its first row is.
    """
    if not panels or not panels[0]:
        raise ValueError("panels is empty")
    images = np.stack([[b.noisy[i, b.noisy.shape[1] // 2].cpu().numpy() for b, i in row]
                       for row in panels])  # (rows, cols, Y, X)
    fig = plot_image_grid(images, col_labels=list(col_labels), row_labels=list(row_labels),
                          voxel_size_A=voxel_size_A, title=title)
    if annotate:
        img_axes = [ax for ax in fig.axes if ax.images]
        for r, row in enumerate(panels):
            for c, (b, i) in enumerate(row):
                p = {k: float(b.params[k][i]) for k in ("snr", "wedge_deg", "defocus_um")}
                ax = img_axes[r * len(row) + c]
                ax.text(0.02, 0.02, f"SNR {p['snr']:.2g}\nα {p['wedge_deg']:.0f}°, "
                        f"Dz {p['defocus_um']:.1f}", transform=ax.transAxes, fontsize=6,
                        color="yellow", va="bottom")
    return fig
