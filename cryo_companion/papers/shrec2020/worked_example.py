"""A small hand-built SHREC scene whose every counter is known: the chapter's worked example.

Five spherical particles in one plane of a ``(z, y, x) = (5, 24, 40)`` volume and seven
detections: a first hit (TP), a second hit on the same particle (MH), a hit with a fractional
centre that rounds onto the particle centre, a hit with the wrong class, a hit on the boundary
voxel of a particle, a detection on background (FP) and one outside the volume (RO). One
particle is never hit (FN). The expected Table 3 values are in :data:`EXPECTED`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cryo_companion.papers.shrec2020.classes import SHREC2020_CLASSES
from cryo_companion.papers.shrec2020.metrics import CLASS_ORDER
from cryo_companion.papers.shrec2020.particles import ParticleList, particle_list

__all__ = ["EXPECTED", "WorkedExample", "sphere_occupancy", "worked_example"]

SHAPE_ZYX = (5, 24, 40)
# (class, x, y, z, radius in voxels)
_PARTICLES = (("1bxn", 6, 6, 2, 3), ("4d8q", 16, 12, 2, 4), ("1s3x", 28, 6, 2, 2),
              ("3cf3", 34, 17, 2, 3), ("2cg9", 8, 18, 2, 3))
# (predicted class, x, y, z): what each should be, in order:
# TP, MH, TP (rounds to the centre), TP with a wrong class, TP on a boundary voxel, FP, RO.
_DETECTIONS = (("1bxn", 7, 6, 2), ("1bxn", 5, 7, 2), ("4d8q", 16.4, 11.6, 2.2),
               ("3qm1", 28, 6, 2), ("2cg9", 11, 18, 2), ("1qvr", 22, 20, 2),
               ("4cr2", 42, 10, 2))

# Expected Table 3 values (hand-worked: recall 4/5, precision 4/7, AD = (1 + 0 + 0 + 3) / 4).
EXPECTED = {"RR": 7, "TP": 4, "FP": 1, "FN": 1, "MH": 1, "RO": 1, "duplicates": 1, "AD": 1.0,
            "recall": 0.8, "precision": 4 / 7, "miss_rate": 0.2,
            "f1": 2 * 0.8 * (4 / 7) / (0.8 + 4 / 7),
            "outcome": ("TP", "MH", "TP", "TP", "TP", "FP", "RO")}


@dataclass(frozen=True)
class WorkedExample:
    """The worked example's ground truth and detections.

    Attributes
    ----------
    occupancy : np.ndarray
        `(5, 24, 40)` int32, z-y-x: 0 background, ``i`` = the ``i``-th particle of ``truth``.
    class_mask : np.ndarray
        `(5, 24, 40)` int32: 0 background, ``k`` = the ``k``-th class of ``SHREC2020_CLASSES``
        (1-based, by weight).
    truth : ParticleList
        The five particles.
    pred : ParticleList
        The seven detections, in the order of ``EXPECTED["outcome"]``.
    z_slice : int
        The plane holding every particle centre.
    """

    occupancy: np.ndarray
    class_mask: np.ndarray
    truth: ParticleList
    pred: ParticleList
    z_slice: int


def sphere_occupancy(shape_zyx: tuple[int, int, int], centres_xyz: np.ndarray,
                     radii: np.ndarray) -> np.ndarray:
    """Draw balls into an occupancy map: voxels within ``radius`` of centre ``i`` get ``i+1``.

    Parameters
    ----------
    shape_zyx : tuple of int
        Volume shape (z, y, x).
    centres_xyz : np.ndarray
        `(N, 3)` centres (x, y, z), 0-based voxels.
    radii : np.ndarray
        `(N,)` radii in voxels (inclusive).

    Returns
    -------
    np.ndarray
        `shape_zyx` int32 occupancy: 0 background, ``i + 1`` inside ball ``i``.

    Raises
    ------
    ValueError
        If two balls overlap (SHREC particles never share a voxel).
    """
    occ = np.zeros(shape_zyx, dtype=np.int32)
    zz, yy, xx = np.indices(shape_zyx, sparse=True)
    for i, ((x, y, z), r) in enumerate(zip(np.asarray(centres_xyz, float), radii)):
        ball = (xx - x) ** 2 + (yy - y) ** 2 + (zz - z) ** 2 <= r * r
        if (occ[ball] != 0).any():
            raise ValueError(f"particle {i + 1} overlaps another particle")
        occ[ball] = i + 1
    return occ


def worked_example() -> WorkedExample:
    """Build the worked example (deterministic).

    Returns
    -------
    WorkedExample
        The ground truth and the detections whose counters :data:`EXPECTED` gives.
    """
    truth = particle_list([p[0] for p in _PARTICLES], [p[1:4] for p in _PARTICLES])
    pred = particle_list([d[0] for d in _DETECTIONS], [d[1:4] for d in _DETECTIONS])
    occ = sphere_occupancy(SHAPE_ZYX, truth.xyz, np.array([p[4] for p in _PARTICLES]))
    index = {c.pdb_id: k + 1 for k, c in enumerate(SHREC2020_CLASSES)}
    lut = np.array([0] + [index[c] for c in truth.classes], dtype=np.int32)
    return WorkedExample(occupancy=occ, class_mask=lut[occ], truth=truth, pred=pred, z_slice=2)


def grid_scene(size: int, n_particles: int, n_detections: int, seed: int = 0, *,
               cell: int = 16, jitter_vox: float = 2.0
               ) -> tuple[np.ndarray, ParticleList, ParticleList]:
    """Make a large synthetic scene for timing: cubes on a grid, detections near their centres.

    The volume ``(size,)*3`` is cut into cells of ``cell`` voxels; ``n_particles`` random cells
    hold a cube of ``cell - 4`` voxels (label = particle index). Detections: 90 % at a random
    particle's centre plus Gaussian jitter (``jitter_vox`` voxels), 10 % uniform over the volume
    and a 5-voxel margin around it (background and outside). Classes are random.

    Parameters
    ----------
    size : int
        Edge of the cubic volume (voxels).
    n_particles : int
        Number of particles (at most the number of cells).
    n_detections : int
        Number of detections.
    seed : int
        Seed of every random choice.
    cell : int
        Edge of a grid cell (voxels).
    jitter_vox : float
        Standard deviation of the detections' offset from their particle's centre (voxels).

    Returns
    -------
    occupancy : np.ndarray
        `(size, size, size)` int32 occupancy, z-y-x.
    truth : ParticleList
        The particles.
    pred : ParticleList
        The detections.

    Raises
    ------
    ValueError
        If the particles do not fit in the cells.
    """
    rng = np.random.default_rng(seed)
    g = size // cell
    if n_particles > g ** 3:
        raise ValueError(f"{n_particles} particles do not fit in {g}^3 cells of {cell} voxels")
    cells = rng.choice(g ** 3, n_particles, replace=False)
    labels = np.zeros(g ** 3, dtype=np.int32)
    labels[cells] = np.arange(1, n_particles + 1)
    inner = np.zeros(cell, dtype=bool)
    inner[2:cell - 2] = True
    keep = np.zeros(size, dtype=bool)
    keep[: g * cell] = np.tile(inner, g)
    cell_of = np.minimum(np.arange(size) // cell, g - 1)
    occ = np.zeros((size, size, size), dtype=np.int32)
    ix = np.ix_(keep, keep, keep)
    occ[ix] = labels.reshape(g, g, g)[np.ix_(cell_of[keep], cell_of[keep], cell_of[keep])]
    cz, cy, cx = np.unravel_index(cells, (g, g, g))
    centres = np.stack([cx, cy, cz], axis=1) * cell + cell / 2
    truth = particle_list(rng.choice(CLASS_ORDER, n_particles).tolist(), centres)
    det = centres[rng.integers(0, n_particles, n_detections)] + rng.normal(
        0, jitter_vox, (n_detections, 3))
    n_bg = n_detections // 10
    det[:n_bg] = rng.uniform(-5, size + 5, (n_bg, 3))
    pred = particle_list(rng.choice(CLASS_ORDER, n_detections).tolist(), det)
    return occ, truth, pred
