"""Tables of the SHREC evaluation chapter: what happened to every detection of a list."""
from __future__ import annotations

import numpy as np

from cryo_companion.papers.shrec2020.metrics import LocalisationResult
from cryo_companion.papers.shrec2020.particles import ParticleList
from cryo_companion.tables import format_table

__all__ = ["detection_table"]


def detection_table(pred: ParticleList, result: LocalisationResult) -> str:
    """Tabulate every detection: class, position, rounded voxel, particle hit and outcome.

    Parameters
    ----------
    pred : ParticleList
        The detections (positions x, y, z in voxels).
    result : LocalisationResult
        Their localisation result (``particle``: 1-based label hit, 0 for none; ``outcome``).

    Returns
    -------
    str
        A Markdown table, one row per detection in list order.
    """
    rows = [{"detection": k, "class": pred.classes[k],
             "(x, y, z)": "(" + ", ".join(f"{float(v):g}" for v in pred.xyz[k]) + ")",
             "rounded voxel": str(tuple(int(v) for v in np.rint(pred.xyz[k]))),
             "particle": int(result.particle[k]), "outcome": str(result.outcome[k])}
            for k in range(len(pred))]
    return format_table(rows, ["detection", "class", "(x, y, z)", "rounded voxel", "particle",
                               "outcome"], style="markdown")
