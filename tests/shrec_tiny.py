"""A tiny SHREC-layout model with a few particles, for the training and experiment tests."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cryo_companion.papers.shrec2020.dataset import ShrecModel
from cryo_companion.papers.shrec2020.layout import write_model
from cryo_companion.papers.shrec2020.metrics import CLASS_ORDER

#: Ground-truth slices, y and x of the tiny models.
SHAPE = (32, 48, 48)
#: Particles of every model: (class label 1-12, centre z, y, x, half edge of its cube).
PARTICLES = ((12, 10, 12, 12, 3), (1, 20, 30, 34, 2), (6, 16, 36, 12, 2), (12, 24, 14, 32, 3))


def tiny_model(index: int, seed: int = 0) -> ShrecModel:
    """Cubes of mass (dark) in noise: reconstruction with 4 extra slices each side."""
    rng = np.random.default_rng(seed + index)
    occ = np.zeros(SHAPE, dtype=np.int16)
    cm = np.zeros_like(occ)
    parts = []
    for k, (lab, z, y, x, h) in enumerate(PARTICLES, start=1):
        sl = (slice(z - h, z + h + 1), slice(y - h, y + h + 1), slice(x - h, x + h + 1))
        occ[sl], cm[sl] = k, lab
        parts.append({"pdb": CLASS_ORDER[lab - 1], "xyz": [x, y, z], "zxz_deg": [0, 0, 0]})
    rec = rng.normal(size=(SHAPE[0] + 8, *SHAPE[1:])).astype(np.float32)
    rec[4:-4][occ > 0] -= 2.0
    gm = (occ > 0).astype(np.float32) * 2.0
    return ShrecModel(index=index, reconstruction=rec, grandmodel=gm, grandmodel_noisefree=gm,
                      class_mask=cm, occupancy=occ, particles=parts)


def write_tiny_models(root: Path, indices: tuple[int, ...],
                      meta: dict[str, Any] | None = None) -> list[Path]:
    """Write tiny models ``indices`` under ``root`` (10 Å voxels); their folders.

    ``meta`` (default ``{"recipe": {}}``) is what ``meta.json`` records: give a plan's recipe and
    the data-set seed to make the models current for it (``layout.is_current``).
    """
    for k in indices:
        write_model(root, tiny_model(k), 10.0, dict(meta or {"recipe": {}}))
    return [root / f"model_{k}" for k in indices]
