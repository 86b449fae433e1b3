"""Figures and tables of the reality-gap ladder (chapter "The reality gap, rung by rung").

Presentation only: the numbers come from
:func:`cryo_companion.papers.che2019.ladder_eval.summarize_ladder` (or its record in
``results/reality_gap.json``), the sets from :mod:`cryo_companion.papers.che2019.ladder`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from cryo_companion.book.plotting import plot_image_grid
from cryo_companion.papers.che2019.evaluate import needs_inversion, preprocess
from cryo_companion.papers.che2019.ladder import RUNGS, rung
from cryo_companion.papers.che2019.ladder_eval import LADDER_METRICS

__all__ = ["ladder_table", "per_class_table", "plot_ladder", "plot_rung_examples",
           "rungs_table", "sets_table"]

_STYLE = {"paper": "-", "matched": "--"}
_MARK = {"randomized": "o", "baseline": "s"}


def rungs_table() -> str:
    """Tabulate the rungs (Markdown): what each adds, what its scenes hold, its imaging.

    Returns
    -------
    str
        One row per rung of :data:`~cryo_companion.papers.che2019.ladder.RUNGS`.
    """
    lines = ["| # | rung | adds | scene | imaging |", "|---|---|---|---|---|"]
    for i, r in enumerate(RUNGS, 1):
        re = r.realism
        scene = ("isolated targets" if re.isolated else
                 ", ".join(["target copies"] + [k for k in ("crowders", "contact", "membranes")
                                                if getattr(re, k)]))
        lines.append(f"| {i} | `{r.name}` | {r.adds} | {scene} | `{r.mode}` |")
    return "\n".join(lines)


def sets_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Tabulate the ladder's sets (:func:`~cryo_companion.papers.che2019.ladder.describe`).

    Parameters
    ----------
    rows : sequence of Mapping
        One per rung: ``rung``, ``n``, ``counts``, ``tomograms``, ``snr_median``.

    Returns
    -------
    str
        The table; a missing SNR shows as "—".
    """
    lines = ["| rung | subtomograms | per class | tomograms | measured SNR (median) |",
             "|---|---|---|---|---|"]
    for r in rows:
        counts = ", ".join(f"{k} {v}" for k, v in r["counts"].items() if v)
        snr = "—" if r["snr_median"] is None else f"{r['snr_median']:.3g}"
        lines.append(f"| `{r['rung']}` | {r['n']} | {counts} | {r['tomograms']} | {snr} |")
    return "\n".join(lines)


_SHORT = {"particle_accuracy": "accuracy, particle classes",
          "miou_particles": "mIoU, particle classes",
          "membrane_called": "share called \"membrane\"",
          "accuracy": "accuracy, all classes", "miou": "mIoU, all classes"}


def plot_ladder(summary: Mapping[str, Any], *,
                metrics: Sequence[str] = ("particle_accuracy", "miou_particles",
                                          "membrane_called"),
                protocols: Sequence[str] | None = None) -> Figure:
    """Plot each metric's mean ± std over seeds on every rung, per arm and protocol.

    Parameters
    ----------
    summary : Mapping
        :func:`~cryo_companion.papers.che2019.ladder_eval.summarize_ladder`.
    metrics : sequence of str
        Metrics of :data:`~cryo_companion.papers.che2019.ladder_eval.LADDER_METRICS`.
    protocols : sequence of str or None
        Protocols to draw (default: every one in the summary); the paper's solid, the
        matched one dashed.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        A metric is not one of :data:`LADDER_METRICS`.
    """
    for m in metrics:
        if m not in LADDER_METRICS:
            raise ValueError(f"unknown metric {m!r}; valid: {', '.join(LADDER_METRICS)}")
    order = list(summary["rungs"])
    x = np.arange(len(order))
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.6 * len(metrics), 4.2),
                             layout="constrained", squeeze=False)
    for ax, m in zip(axes[0], metrics):
        for arm, by_prot in summary["arms"].items():
            for prot in (protocols or list(by_prot)):
                cells = by_prot.get(prot, {})
                mu = np.array([cells[r][m]["mean"] if r in cells else np.nan for r in order])
                sd = np.array([(cells[r][m]["std"] or 0.0) if r in cells else np.nan
                               for r in order])
                ax.errorbar(x, mu, yerr=sd, fmt=_STYLE.get(prot, ":") + _MARK.get(arm, "^"),
                            ms=4, capsize=2, lw=1.2, label=f"{arm}, {prot} protocol")
        ax.set_xticks(x)
        ax.set_xticklabels([rung(r).label for r in order], rotation=60, ha="right",
                           fontsize="x-small")
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel(_SHORT[m])
        ax.set_xlabel("rung (realism added left to right)")
        ax.grid(axis="y", lw=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncol=len(labels), fontsize="small")
    return fig


def ladder_table(summary: Mapping[str, Any], *, protocol: str = "paper",
                 metrics: Sequence[str] = ("particle_accuracy", "miou_particles",
                                           "membrane_called")) -> str:
    """Tabulate (Markdown) one row per rung: mean ± std over seeds of each arm's metrics.

    Parameters
    ----------
    summary : Mapping
        :func:`~cryo_companion.papers.che2019.ladder_eval.summarize_ladder`.
    protocol : str
        The protocol shown.
    metrics : sequence of str
        Columns (per arm), from
        :data:`~cryo_companion.papers.che2019.ladder_eval.LADDER_METRICS`.

    Returns
    -------
    str
        The table; a missing value shows as "—".

    Raises
    ------
    ValueError
        A metric is not one of :data:`LADDER_METRICS`.
    """
    for m in metrics:
        if m not in LADDER_METRICS:
            raise ValueError(f"unknown metric {m!r}; valid: {', '.join(LADDER_METRICS)}")
    arms = list(summary["arms"])
    head = ["rung", "n"] + [f"{a}: {_SHORT[m]}" for a in arms for m in metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in summary["rungs"]:
        n = next((c[name]["n"] for a in arms if name in (c := summary["arms"][a].get(protocol,
                                                                                      {}))), "—")
        cells = [f"`{name}`", str(n)]
        for a in arms:
            c = summary["arms"][a].get(protocol, {}).get(name)
            for m in metrics:
                if c is None or c[m]["mean"] is None or not np.isfinite(c[m]["mean"]):
                    cells.append("—")
                    continue
                sd = f" ± {c[m]['std']:.2f}" if c[m]["std"] is not None else ""
                cells.append(f"{c[m]['mean']:.2f}{sd}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_class_table(summary: Mapping[str, Any], *, protocol: str = "paper") -> str:
    """Tabulate (Markdown) each arm's per-class accuracy (recall, mean over seeds) on every rung.

    Parameters
    ----------
    summary : Mapping
        :func:`~cryo_companion.papers.che2019.ladder_eval.summarize_ladder`.
    protocol : str
        The protocol shown.

    Returns
    -------
    str
        The table; a class absent from a rung shows as "—".
    """
    arms = list(summary["arms"])
    first = next(iter(summary["arms"][arms[0]].get(protocol, {}).values()), None)
    names = list(first["per_class_accuracy"]) if first else []
    head = ["rung"] + [f"{a}: {n}" for a in arms for n in names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary["rungs"]:
        cells = [f"`{r}`"]
        for a in arms:
            pc = (summary["arms"][a].get(protocol, {}).get(r) or {}).get("per_class_accuracy", {})
            cells += ["—" if pc.get(n) is None else f"{pc[n]:.2f}" for n in names]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_rung_examples(sets: Mapping[str, Any], *, classes: Sequence[str] | None = None
                       ) -> Figure:
    """Show the first target of each class on every rung (xy slice), as the networks see it.

    Each rung's set is inverted if its mass is dark and standardised as a whole (the test
    protocol without the filter), so the slices show what the network's input looks like.

    Parameters
    ----------
    sets : Mapping
        ``{rung name: SubtomogramSet}``.
    classes : sequence of str or None
        Columns (default: the particle classes, then membrane where present).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import torch

    first = next(iter(sets.values()))
    names = list(first.class_names)
    cols = list(classes) if classes is not None else (
        [n for n in names if n != "membrane"] + ["membrane"])
    D = first.volumes.shape[1]
    grid = np.zeros((len(sets), len(cols), D, D), dtype=np.float32)
    for i, data in enumerate(sets.values()):
        x = preprocess(torch.from_numpy(data.volumes), 0.0,
                       invert=needs_inversion(data.meta.get("contrast", "dark"))).numpy()
        for j, c in enumerate(cols):
            idx = np.flatnonzero(data.labels == names.index(c))
            if len(idx):
                grid[i, j] = x[idx[0], D // 2]
    return plot_image_grid(grid, row_labels=[rung(r).label.replace("\n", " ") for r in sets],
                           col_labels=cols, voxel_size_A=first.voxel_size_A,
                           colorbar_label="standardised intensity", panel_size=1.3)
