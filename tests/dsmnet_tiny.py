"""A tiny DSM-Net data set for the tests: the target a dark ball at the centre whose radius
grows with its class (its mask and density the ground truth), a dark neighbour ball off-centre,
noise; boxes of 16³ so that a training step takes milliseconds."""
from __future__ import annotations

import numpy as np

from cryo_companion.simulate.crowded import CrowdedSubtomograms
from cryo_companion.simulate.scene import PROTEIN_DENSITY_DA_A3
from cryo_companion.structures.catalogue import class_set

BOX = 16


def tiny_crowded(n: int = 30, *, class_names: list[str] | None = None, seed: int = 0,
                 noise: float = 0.3, box: int = BOX) -> CrowdedSubtomograms:
    """``n`` subtomograms (labels ``i mod len(class_names)``, default the 22 ``liu22`` classes),
    mass dark, voxel size 13.68 Å."""
    names = list(class_names or class_set("liu22").class_names)
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:box, :box, :box].astype(np.float32)
    c = box // 2
    labels = np.arange(n) % len(names)
    vols, masks = [], []
    for k in labels:
        r = 2.0 + 2.5 * k / max(len(names) - 1, 1) + rng.uniform(-0.2, 0.2)
        target = (z - c) ** 2 + (y - c) ** 2 + (x - c) ** 2 <= r * r
        o = rng.choice([-1, 1], 3) * rng.uniform(5, 6, 3)
        nb = (z - c - o[0]) ** 2 + (y - c - o[1]) ** 2 + (x - c - o[2]) ** 2 <= 4
        v = -(target | nb).astype(np.float32) + noise * rng.standard_normal((box,) * 3)
        vols.append(v.astype(np.float32))
        masks.append(target)
    m = np.stack(masks)
    return CrowdedSubtomograms(
        np.stack(vols), labels, m, names, 13.68, {"contrast": "dark", "dataset": "tiny"},
        density=m.astype(np.float32) * PROTEIN_DENSITY_DA_A3,
        euler_zyz_deg=rng.uniform(0, 360, (n, 3)), offset_xyz_vox=np.zeros((n, 3)),
        centre_xyz_vox=np.full((n, 3), 100.0), tomogram_index=np.zeros(n, dtype=np.int64))
