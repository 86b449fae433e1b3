"""Ground truth of targets boxed from simulated tomograms: own densities, level masks, alignment.

For subtomograms cut around targets of a scene (:func:`~cryo_companion.simulate.tomogram.
extract_targets`: a target is ``(particle index, centre x-y-z in scene voxels)``, boxes of
``box``³ tomogram voxels, the scene ``bin_factor`` times finer):

* :func:`target_densities` renders each target's own noise-free density in its box, as the
  scene placed it (Da/Å³ averaged over each tomogram voxel): what DSM-Net's recovery regresses;
* :func:`level_masks` turns those into masks "density >= level x the template's maximum",
  less the envelopes of every other object of the scene;
* :func:`align_by_poses` turns boxes back into the template's frame by the targets' true
  poses (rotation and sub-voxel offset), e.g. to average what a network recovered.

Conventions: volumes z-y-x; centres and offsets x-y-z; Euler angles ZYZ in degrees,
``R = Rz(φ) Ry(θ) Rz(ψ)`` acting on the template's x-y-z coordinates about its centre voxel
(:mod:`cryo_companion.rotation`); an offset is the target's centre minus the box's centre voxel
``box // 2`` (tomogram voxels), as :func:`~cryo_companion.simulate.tomogram.extract_targets`
returns it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import Tensor

from cryo_companion import rotation
from cryo_companion.devices import ArrayOrTensor
from cryo_companion.simulate.scene import Scene, Template
from cryo_companion.simulate.tomogram import scene_to_tomogram_vox

__all__ = ["align_by_poses", "level_masks", "target_densities"]

Target = tuple[int, Sequence[float]]


def _check(targets: Sequence[Target], box: int, bin_factor: int) -> None:
    if box < 2 or box % 2 or bin_factor < 1:
        raise ValueError(f"box {box} must be even and >= 2 and bin_factor {bin_factor} >= 1")
    if not len(targets):
        raise ValueError("no targets to render")


def target_densities(scene: Scene, templates: Mapping[str, Template],
                     targets: Sequence[Target], box: int, bin_factor: int) -> Tensor:
    """Render each target's own density in its box (Da/Å³ per tomogram voxel).

    As the scene placed it: the template rotated by the particle's rotation about its centre
    voxel and put at its integer centre on the scene grid, then averaged over ``bin_factor``³
    blocks onto the tomogram grid.

    Parameters
    ----------
    scene : Scene
        The scene the targets are particles of.
    templates : Mapping of str to Template
        The templates the scene was packed with, by class name.
    targets : sequence of tuple
        ``(particle index, centre (x, y, z) in scene voxels)``, as for ``extract_targets``.
    box : int
        Box edge in tomogram voxels (even).
    bin_factor : int
        Scene voxels per tomogram voxel along each axis.

    Returns
    -------
    torch.Tensor
        `(N, box, box, box)` float32 on the CPU, z-y-x.
    """
    _check(targets, box, bin_factor)
    os_, b = int(bin_factor), int(box)
    B = b * os_
    out = torch.zeros(len(targets), b, b, b)
    by_class: dict[str, list[int]] = {}
    for j, (pid, _) in enumerate(targets):
        by_class.setdefault(scene.particles[pid]["class_name"], []).append(j)
    for name, js in by_class.items():
        t = templates[name]
        D = t.density.shape[0]
        half = D // 2
        for k in range(0, len(js), 256):
            chunk = js[k:k + 256]
            e = torch.tensor([scene.particles[targets[j][0]]["euler_zyz_deg"] for j in chunk],
                             dtype=torch.float64).deg2rad()
            R = rotation.euler_zyz_to_matrix(e[:, 0], e[:, 1], e[:, 2]).to(torch.float32)
            rot = rotation.rotate_volumes(t.density.expand(len(chunk), D, D, D).contiguous(),
                                          R).clamp_min(0)
            for r, j in zip(rot, chunk):
                cx, cy, cz = targets[j][1]
                pos = np.array([cz, cy, cx]).round().astype(int)          # scene voxel, z-y-x
                ct = np.round(scene_to_tomogram_vox(pos, os_)).astype(int)
                start = (ct - b // 2) * os_                               # box origin, scene
                lo = pos - half - start                                   # template origin
                big = torch.zeros(B, B, B)
                src, dst = [], []
                for a in range(3):
                    s0, s1 = max(0, -lo[a]), min(D, B - lo[a])
                    src.append(slice(s0, s1))
                    dst.append(slice(lo[a] + s0, lo[a] + s1))
                big[tuple(dst)] = r[tuple(src)].cpu()
                out[j] = F.avg_pool3d(big[None, None], os_)[0, 0] if os_ > 1 else big
    return out


def level_masks(scene: Scene, templates: Mapping[str, Template], targets: Sequence[Target],
                density: Tensor, box: int, bin_factor: int, level: float) -> Tensor:
    """Mask "target density >= level x its template's maximum", less other objects' envelopes.

    Parameters
    ----------
    scene : Scene
        The scene (its ``occupancy`` gives the other objects' envelopes).
    templates : Mapping of str to Template
        The templates, by class name.
    targets : sequence of tuple
        As for :func:`target_densities`.
    density : torch.Tensor
        `(N, box, box, box)` the targets' densities (:func:`target_densities`).
    box : int
        Box edge in tomogram voxels.
    bin_factor : int
        Scene voxels per tomogram voxel.
    level : float
        Fraction of the template's maximum density, in (0, 1).

    Returns
    -------
    torch.Tensor
        `(N, box, box, box)` bool; a tomogram voxel belongs to another object when at least half
        of its scene voxels do.

    Raises
    ------
    ValueError
        ``level`` lies outside (0, 1), or ``density`` is not `(len(targets), box, box, box)`.
    """
    _check(targets, box, bin_factor)
    if not 0 < level < 1:
        raise ValueError(f"level {level} is outside (0, 1)")
    if tuple(density.shape) != (len(targets), box, box, box):
        raise ValueError(f"density has shape {tuple(density.shape)}; expected "
                         f"{(len(targets), box, box, box)}")
    os_, b = int(bin_factor), int(box)
    occ = scene.occupancy
    out = torch.zeros(density.shape, dtype=torch.bool)
    for j, (pid, (cx, cy, cz)) in enumerate(targets):
        name = scene.particles[pid]["class_name"]
        thr = level * float(templates[name].density.max())
        pos = np.array([cz, cy, cx]).round().astype(int)
        s = np.round(scene_to_tomogram_vox(pos, os_)).astype(int) - b // 2
        ss = tuple(slice(a * os_, (a + b) * os_) for a in s)
        o = occ[ss].cpu()
        other = ((o != 0) & (o != pid + 1)).float()[None, None]
        other_b = (F.avg_pool3d(other, os_)[0, 0] >= 0.5) if os_ > 1 else other[0, 0] > 0
        out[j] = (density[j] >= thr) & ~other_b
    return out


def align_by_poses(volumes: ArrayOrTensor, euler_zyz_deg: npt.ArrayLike,
                   offset_xyz_vox: npt.ArrayLike) -> Tensor:
    """Turn boxed targets back into their template's frame by their true poses.

    Each box is rotated by the inverse of its target's rotation and shifted so that the
    target's centre lands on the box's geometric centre ``(D − 1) / 2`` (trilinear
    interpolation, zeros from outside): boxes of one class then superpose and can be averaged.

    Parameters
    ----------
    volumes : torch.Tensor or numpy.ndarray
        `(N, D, D, D)` boxes, z-y-x, on any device.
    euler_zyz_deg : array-like
        `(N, 3)` each target's (φ, θ, ψ) in degrees.
    offset_xyz_vox : array-like
        `(N, 3)` each target's centre minus the box's centre voxel ``D // 2`` (x, y, z).

    Returns
    -------
    torch.Tensor
        `(N, D, D, D)` aligned boxes, float32, on the volumes' device.

    Raises
    ------
    ValueError
        ``volumes`` is not `(N, D, D, D)` or ``euler_zyz_deg`` and ``offset_xyz_vox`` are not `(N,
        3)`.
    """
    v = torch.as_tensor(np.asarray(volumes) if not isinstance(volumes, Tensor) else volumes)
    e = torch.as_tensor(np.asarray(euler_zyz_deg, dtype=np.float64))
    off = torch.as_tensor(np.asarray(offset_xyz_vox, dtype=np.float64))
    n = v.shape[0] if v.dim() == 4 else -1
    if v.dim() != 4 or len(set(v.shape[1:])) != 1 or e.shape != (n, 3) or off.shape != (n, 3):
        raise ValueError(f"need volumes (N, D, D, D), euler_zyz_deg (N, 3) and offset_xyz_vox "
                         f"(N, 3), got {tuple(v.shape)}, {tuple(e.shape)}, {tuple(off.shape)}")
    D = v.shape[-1]
    er = e.deg2rad()
    R = rotation.euler_zyz_to_matrix(er[:, 0], er[:, 1], er[:, 2]).to(torch.float32)
    # the target's centre relative to the rotation centre (D − 1) / 2
    delta = off.to(torch.float32) + (D // 2 - (D - 1) / 2)
    t = -(R.transpose(1, 2) @ delta[:, :, None])[:, :, 0]
    return rotation.rotate_volumes(v.float(), R.transpose(1, 2).to(v.device), t.to(v.device))
