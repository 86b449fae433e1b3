"""Tables and figures of the structures chapter: class sets, sizes, atoms against maps.

Every table is Markdown (:func:`cryo_companion.tables.format_table`), shown with
``IPython.display.Markdown`` and rendered by the book as an HTML table; every figure has its axes
in nm and a colour bar with its unit.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from cryo_companion.structures.catalogue import class_set, substitution_table
from cryo_companion.structures.density import structure_size
from cryo_companion.structures.membrane import MembraneParams
from cryo_companion.structures.templates import TemplateBank
from cryo_companion.tables import format_table

__all__ = [
    "atoms_vs_map_table",
    "bank_table",
    "class_set_table",
    "class_sizes",
    "plot_class_densities",
    "plot_membrane_patches",
    "sizes_table",
    "substitutions_table",
]

#: Classes per row of :func:`plot_class_densities`.
PER_ROW = 8


def class_set_table(name: str) -> str:
    """Tabulate a class set: label, class, the paper's ID, the entry used and its source.

    Parameters
    ----------
    name : str
        A class set of :func:`cryo_companion.structures.catalogue.class_set`.

    Returns
    -------
    str
        A Markdown table, one row per class, after a bold line with the set's description.
    """
    cs = class_set(name)
    rows = [{"label": i, "class": c.name, "paper ID": c.paper_id or "–", "entry": c.entry,
             "source": c.source} for i, c in enumerate(cs)]
    return (f"**{name}** — {cs.description}\n\n"
            + format_table(rows, ["label", "class", "paper ID", "entry", "source"],
                           style="markdown"))


def class_sizes(bank: TemplateBank, limit: int | None = None) -> dict[str, dict[str, Any]]:
    """Measure the size of the first volume of every class of a bank (membranes excluded).

    Parameters
    ----------
    bank : TemplateBank
        Templates of a class set (:func:`cryo_companion.structures.templates.template_bank`).
    limit : int, optional
        Only the first ``limit`` classes (all when None).

    Returns
    -------
    dict
        ``{class name: {"diameter_nm", "n_voxels", "mass_kda", "paper_mw_kda", "entry"}}``
        (see :func:`cryo_companion.structures.density.structure_size`); procedural classes (a
        membrane patch fills the box) have no size of their own and are left out.
    """
    cs = class_set(bank.set_name)
    out: dict[str, dict[str, Any]] = {}
    for label, c in enumerate(cs.classes[:limit] if limit else cs.classes):
        if c.source == "procedural":
            continue
        s: dict[str, Any] = dict(structure_size(bank.of_class(label)[0], bank.voxel_size_A))
        s["paper_mw_kda"] = c.mw_kda
        s["entry"] = c.entry
        out[c.name] = s
    return out


def sizes_table(sizes: Mapping[str, Mapping[str, Any]]) -> str:
    """Tabulate :func:`class_sizes`: diameter, voxels, mass and the paper's molecular weight.

    Parameters
    ----------
    sizes : mapping
        The output of :func:`class_sizes`.

    Returns
    -------
    str
        A Markdown table, one row per class; a missing paper weight shows as ``-``.
    """
    rows = {name: {"entry": s["entry"], "diameter (nm)": s["diameter_nm"],
                   "voxels": s["n_voxels"], "mass (kDa)": s["mass_kda"],
                   "paper MW (kDa)": s.get("paper_mw_kda")} for name, s in sizes.items()}
    return format_table(rows, ["entry", "diameter (nm)", "voxels", "mass (kDa)",
                               "paper MW (kDa)"], first="class", style="markdown",
                        formats={"diameter (nm)": ".1f", "mass (kDa)": ".0f",
                                 "paper MW (kDa)": ".0f"})


def atoms_vs_map_table(comparisons: Mapping[str, Mapping[str, float]]) -> str:
    """Tabulate the atoms-against-map comparison of every entry.

    Parameters
    ----------
    comparisons : mapping
        ``{entry: compare_atoms_to_map(entry, ...)}`` (keys ``r``, ``mass_atoms_kda``,
        ``mass_map_kda``).

    Returns
    -------
    str
        A Markdown table: Pearson r and both masses, one row per entry.
    """
    rows = {e: {"r": v["r"], "mass from atoms (kDa)": v["mass_atoms_kda"],
                "mass of map, volume estimate (kDa)": v["mass_map_kda"]}
            for e, v in comparisons.items()}
    return format_table(rows, ["r", "mass from atoms (kDa)",
                               "mass of map, volume estimate (kDa)"], first="entry",
                        style="markdown",
                        formats={"r": ".3f", "mass from atoms (kDa)": ".0f",
                                 "mass of map, volume estimate (kDa)": ".0f"})


def substitutions_table(name: str) -> str:
    """Tabulate the substituted classes of a set: the paper's ID, the entry used, the reason.

    Parameters
    ----------
    name : str
        A class set name.

    Returns
    -------
    str
        A bold line with the set's name, then a Markdown table (one row per substitution).
    """
    rows = [{"class": r["class"], "paper ID": r["paper_id"] or "–", "used": r["entry"],
             "reason": r["reason"]} for r in substitution_table(name)]
    return f"**{name}**\n\n" + format_table(rows, ["class", "paper ID", "used", "reason"],
                                            style="markdown")


def plot_class_densities(bank: TemplateBank, labels: Sequence[int] | None = None) -> Figure:
    """Show the central z slice and z projection of each class's first volume, axes in nm.

    Parameters
    ----------
    bank : TemplateBank
        Templates of a class set.
    labels : sequence of int, optional
        The classes to show (default: all), :data:`PER_ROW` per row of panels.

    Returns
    -------
    matplotlib.figure.Figure
        For every row of classes, a row of central slices (Da/Å³) above a row of projections
        along the beam (Da/Å²), each with one shared colour bar.

    Raises
    ------
    ValueError
        ``labels`` is empty.
    """
    labels = list(range(bank.n_classes)) if labels is None else list(labels)
    if not labels:
        raise ValueError("labels is empty: give at least one class label")
    ncol = min(PER_ROW, len(labels))
    nblock = -(-len(labels) // ncol)
    fig, axes = plt.subplots(2 * nblock, ncol, figsize=(1.9 * ncol + 1.2, 4.0 * nblock),
                             squeeze=False, layout="constrained")
    h = bank.voxel_size_A / 10.0
    ext = (0.0, bank.volumes.shape[-1] * h, 0.0, bank.volumes.shape[-2] * h)
    c = bank.volumes.shape[1] // 2
    slices = [bank.of_class(lab)[0][c] for lab in labels]
    projs = [bank.of_class(lab)[0].sum(0) * bank.voxel_size_A for lab in labels]
    vmax0, vmax1 = max(float(x.max()) for x in slices), max(float(x.max()) for x in projs)
    for ax in axes.ravel():
        ax.set_axis_off()
    im0 = im1 = None
    for j, lab in enumerate(labels):
        r, col = 2 * (j // ncol), j % ncol
        top, bottom = axes[r, col], axes[r + 1, col]
        for ax in (top, bottom):
            ax.set_axis_on()
            ax.tick_params(labelsize=6)
        im0 = top.imshow(slices[j], cmap="gray_r", origin="lower", extent=ext, vmin=0,
                         vmax=vmax0)
        im1 = bottom.imshow(projs[j], cmap="gray_r", origin="lower", extent=ext, vmin=0,
                            vmax=vmax1)
        top.set_title(f"{lab}: {bank.class_names[lab][:18]}", fontsize=8)
        bottom.set_xlabel("x (nm)", fontsize=7)
        if col == 0:
            top.set_ylabel("central slice\ny (nm)", fontsize=7)
            bottom.set_ylabel("projection along z\ny (nm)", fontsize=7)
    assert im0 is not None and im1 is not None
    even = [ax for i, row in enumerate(axes) for ax in row if i % 2 == 0]
    odd = [ax for i, row in enumerate(axes) for ax in row if i % 2 == 1]
    fig.colorbar(im0, ax=even, shrink=0.8, label="density (Da/Å³)")
    fig.colorbar(im1, ax=odd, shrink=0.8, label="projected density (Da/Å²)")
    fig.suptitle(f"{bank.set_name} at {bank.voxel_size_A:g} Å per voxel", fontsize=10)
    return fig


def plot_membrane_patches(patches: Sequence[tuple[np.ndarray, MembraneParams]],
                          voxel_size_A: float) -> Figure:
    """Show central z slices of membrane patches, titled with their curvature and protein.

    Parameters
    ----------
    patches : sequence of (numpy.ndarray, MembraneParams)
        ``membrane_patch(..., return_params=True)`` results: `(D, D, D)` volumes, z-y-x, in
        Da/Å³, with their drawn parameters.
    voxel_size_A : float
        Voxel size in Å.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per patch, axes in nm, one colour bar.

    Raises
    ------
    ValueError
        ``patches`` is empty.
    """
    if not patches:
        raise ValueError("patches is empty")
    fig, axes = plt.subplots(1, len(patches), figsize=(2.5 * len(patches), 2.8),
                             squeeze=False, layout="constrained")
    c = patches[0][0].shape[0] // 2
    width_nm = patches[0][0].shape[-1] * voxel_size_A / 10.0
    vmax = max(float(v[c].max()) for v, _ in patches)
    im = None
    for ax, (v, par) in zip(axes[0], patches):
        im = ax.imshow(v[c], cmap="gray_r", origin="lower", extent=(0, width_nm, 0, width_nm),
                       vmin=0, vmax=vmax)
        r = "flat" if par.radius_A == np.inf else f"R = {par.radius_A / 10:.0f} nm"
        ax.set_title(f"{r}, {par.protein or 'no protein'}", fontsize=8)
        ax.set_xlabel("x (nm)")
    axes[0, 0].set_ylabel("y (nm)")
    assert im is not None
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="density, central z slice (Da/Å³)")
    return fig


def bank_table(banks: Mapping[str, TemplateBank], timings_s: Mapping[str, float]) -> str:
    """Tabulate the template banks: volumes, box, voxel size and the time each took.

    Parameters
    ----------
    banks : mapping of str to TemplateBank
        ``{set name: bank}``.
    timings_s : mapping of str to float
        ``{set name: seconds}`` to compute the bank (files read and every volume computed).

    Returns
    -------
    str
        A Markdown table, one row per set.
    """
    rows = {name: {"volumes": len(b), "box (voxels)": f"{b.volumes.shape[1]}³",
                   "voxel size (Å)": b.voxel_size_A,
                   "time": f"{timings_s[name]:.2f} s"} for name, b in banks.items()}
    return format_table(rows, ["volumes", "box (voxels)", "voxel size (Å)", "time"],
                        first="class set", style="markdown", formats={"voxel size (Å)": "g"})
