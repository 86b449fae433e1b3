"""A tiny SSN3D data set for the tests: 40³ boxes of the 22 ``liu22`` classes, the target a dark
ball at the centre (its mask the ground truth), a dark neighbour ball off-centre, noise."""
from __future__ import annotations

import numpy as np

from cryo_companion.dataset import SubtomogramSet
from cryo_companion.structures.catalogue import class_set

BOX = 40


def tiny_set(n: int = 24, seed: int = 0, noise: float = 0.3) -> SubtomogramSet:
    """``n`` subtomograms (labels ``i mod 22``), mass dark, voxel size 13.68 Å."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[:BOX, :BOX, :BOX].astype(np.float32)
    c = BOX // 2
    vols, masks = [], []
    for _ in range(n):
        r = rng.uniform(4, 7)
        target = (z - c) ** 2 + (y - c) ** 2 + (x - c) ** 2 <= r * r
        o = rng.choice([-1, 1], 3) * rng.uniform(12, 15, 3)
        nb = (z - c - o[0]) ** 2 + (y - c - o[1]) ** 2 + (x - c - o[2]) ** 2 <= 25
        v = -(target | nb).astype(np.float32) + noise * rng.standard_normal((BOX,) * 3)
        vols.append(v.astype(np.float32))
        masks.append(target)
    names = class_set("liu22").class_names
    return SubtomogramSet(np.stack(vols), np.arange(n) % len(names), np.stack(masks), names,
                          13.68, {"contrast": "dark"})
