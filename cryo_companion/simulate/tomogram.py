"""Realistic subtomograms from simulated tomograms.

A scene (:mod:`.scene`) is imaged as a tilt series and reconstructed (:mod:`.tiltseries`), then
boxes are cut around chosen targets with the masks of their targets only, and the SNR is
measured the way one measures it on real data.

Conventions: scene and tomogram volumes are z-y-x; particle centres are x-y-z in scene voxels;
the scene is ``bin_factor`` times finer than the tomogram, with voxel centres at whole numbers
on both grids (:func:`scene_to_tomogram_vox`).

Imaging modes (:func:`image_scene`, realism added one step at a time; :data:`IMAGING_MODES`):

* ``"ideal"``: no imaging at all, the scene's potential itself averaged onto the tomogram grid
  (mass bright);
* ``"projection"``: line integrals of the potential through the tilted specimen at every tilt of
  the series (phase ``σ ∫ φ dz``), Fourier-binned and reconstructed by weighted back-projection:
  the missing wedge and the reconstruction's artefacts, with no CTF, no detector and no noise
  (mass bright);
* ``"ctf"``: the full image formation of :func:`~cryo_companion.simulate.tiltseries.
  simulate_tilt_series` without shot noise: per-tilt, per-slab CTF with the defocus gradient,
  the dose-dependent B-factor, the detector MTF (mass dark);
* ``"full"``: the same with Poisson shot noise (mass dark): what the test domain uses.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from cryo_companion import rotation, snr
from cryo_companion.simulate.scene import Scene, Template, make_template
from cryo_companion.simulate.tiltseries import (
    Imaging,
    TiltSeries,
    fourier_bin,
    interaction_constant,
    project,
    reconstruct,
    simulate_tilt_series,
    wbp,
)

__all__ = ["IMAGING_MODES", "MODE_CONTRAST", "extract_targets", "image_scene", "load_templates",
           "measure_snr", "membrane_targets", "scene_to_tomogram_vox", "simulate_tomogram"]

#: Imaging modes of :func:`image_scene`, from none to the test domain's (module docstring).
IMAGING_MODES: tuple[str, ...] = ("ideal", "projection", "ctf", "full")
#: How mass appears in a tomogram of each mode ("bright": positive, "dark": negative).
MODE_CONTRAST: dict[str, str] = {"ideal": "bright", "projection": "bright", "ctf": "dark",
                                 "full": "dark"}


_Coord = TypeVar("_Coord", float, np.ndarray)


def scene_to_tomogram_vox(c: _Coord, bin_factor: int) -> _Coord:
    """Map voxel coordinates on the (oversampled) scene grid to the tomogram grid.

    Voxel centres are at whole numbers on both grids.

    Parameters
    ----------
    c : float or np.ndarray
        Coordinates in scene voxels (any shape, any axis order).
    bin_factor : int
        Scene voxels per tomogram voxel.

    Returns
    -------
    float or np.ndarray
        ``(c + 0.5) / bin_factor − 0.5``, tomogram voxels, of the kind of ``c``.
    """
    return (c + 0.5) / bin_factor - 0.5


def load_templates(names_entries: Mapping[str, str], voxel_size_A: float) -> dict[str, Template]:
    """Make packing templates at ``voxel_size_A`` (entries located by the structures layer).

    Parameters
    ----------
    names_entries : mapping of str to str
        ``{class name: structure entry}``.
    voxel_size_A : float
        Voxel edge of the scene in Å.

    Returns
    -------
    dict of str to Template
        ``{class name: Template}``.

    Raises
    ------
    KeyError
        Naming the entry when a structure cannot be found.
    """
    from cryo_companion.structures.density import load_density

    out = {}
    for name, entry in names_entries.items():
        box = int(2 * math.ceil(400.0 / voxel_size_A) + 1)  # 80 nm holds every complex used
        try:
            d = load_density(entry, voxel_size_A, box, grow_box=True)
        except FileNotFoundError as exc:
            raise KeyError(f"structure {entry!r} for class {name!r} not found ({exc})") from exc
        out[name] = make_template(name, d, voxel_size_A)
    return out


def simulate_tomogram(scene: Scene, imaging: Imaging, bin_factor: int,
                      generator: torch.Generator, *,
                      progress: bool = False) -> tuple[TiltSeries, torch.Tensor]:
    """Image a scene as a tilt series and reconstruct it by weighted back-projection.

    Parameters
    ----------
    scene : Scene
        The scene; its potential is imaged on its device.
    imaging : Imaging
        Acquisition parameters.
    bin_factor : int
        Scene voxels per tomogram voxel along each axis.
    generator : torch.Generator
        CPU generator (defocus errors, noise).
    progress : bool
        Progress bar over tilts (on a terminal only).

    Returns
    -------
    series : TiltSeries
        The tilt series.
    tomogram : torch.Tensor
        `(Z / b, Y / b, X / b)` float32 reconstruction.

    Raises
    ------
    ValueError
        If ``bin_factor`` does not divide the scene's size (as
        :func:`~cryo_companion.simulate.tiltseries.simulate_tilt_series`, and its height).
    """
    series = simulate_tilt_series(scene.potential_V, scene.voxel_size_A, imaging, generator,
                                  bin_factor=bin_factor, progress=progress)
    Z = scene.potential_V.shape[0]
    if Z % bin_factor:
        raise ValueError(f"scene height {Z} is not divisible by bin_factor {bin_factor}")
    tomo = reconstruct(series, Z // bin_factor)
    return series, tomo


def image_scene(scene: Scene, imaging: Imaging, bin_factor: int, generator: torch.Generator,
                mode: str = "full", *, progress: bool = False
                ) -> tuple[TiltSeries | None, torch.Tensor]:
    """Make the tomogram of a scene in one of the :data:`IMAGING_MODES` (module docstring).

    Parameters
    ----------
    scene : Scene
        The scene; its potential (V, relative to ice) is imaged on its device.
    imaging : Imaging
        Acquisition parameters (``"projection"`` uses only the tilt angles and the voltage).
    bin_factor : int
        Scene voxels per tomogram voxel along each axis (>= 1; divides every scene size).
    generator : torch.Generator
        CPU generator of the tilt-series modes (defocus errors, shot noise); ``"ideal"`` and
        ``"projection"`` draw nothing from it.
    mode : str
        One of :data:`IMAGING_MODES`.
    progress : bool
        Progress bar over tilts (on a terminal only).

    Returns
    -------
    tuple
        ``(series, tomogram)``: the :class:`~cryo_companion.simulate.tiltseries.TiltSeries`
        (None for ``"ideal"`` and ``"projection"``) and the `(Z/b, Y/b, X/b)` float32
        tomogram; mass appears as :data:`MODE_CONTRAST` says.

    Raises
    ------
    ValueError
        For an unknown ``mode``, or a ``bin_factor`` < 1 or not dividing the scene's shape.
    """
    if mode not in IMAGING_MODES:
        raise ValueError(f"unknown imaging mode {mode!r}; valid: {', '.join(IMAGING_MODES)}")
    b = int(bin_factor)
    pot = scene.potential_V
    if b < 1 or any(n % b for n in pot.shape):
        raise ValueError(f"bin_factor {bin_factor} must be >= 1 and divide the scene's shape "
                         f"{tuple(pot.shape)}")
    if mode == "ideal":
        tomo = F.avg_pool3d(pot[None, None].float(), b)[0, 0] if b > 1 else pot.float().clone()
        return None, tomo
    if mode == "projection":
        tilts = imaging.tilts_deg.tolist()
        phase = project(pot, tilts, scene.voxel_size_A) * interaction_constant(imaging.voltage_kv)
        return None, wbp(fourier_bin(phase, b), tilts, pot.shape[0] // b)
    series = simulate_tilt_series(pot, scene.voxel_size_A, imaging, generator, bin_factor=b,
                                  noise=mode == "full", progress=progress)
    return series, reconstruct(series, pot.shape[0] // b)


def membrane_targets(scene: Scene, box: int, bin_factor: int, n: int, spacing_vox: float,
                      generator: torch.Generator) -> list[tuple[int, tuple[float, float, float]]]:
    """Draw points of the membranes at least ``spacing_vox`` apart, away from the borders.

    Parameters
    ----------
    scene : Scene
        The scene (its occupancy holds the membranes' envelopes).
    box : int
        Edge of the subtomograms to be cut (tomogram voxels): points keep half of it, plus one
        tomogram voxel, from every border.
    bin_factor : int
        Scene voxels per tomogram voxel.
    n : int
        Number of points wanted (fewer when the membranes do not hold them).
    spacing_vox : float
        Smallest distance between two points (scene voxels).
    generator : torch.Generator
        CPU generator of the candidates' order.

    Returns
    -------
    list of tuple
        ``(particle index, (x, y, z) in scene voxels)`` per point.
    """
    occ = scene.occupancy
    Z, Y, X = occ.shape
    mids = [i for i, p in enumerate(scene.particles) if p["kind"] in ("vesicle", "sheet")]
    cands = []
    m = box * bin_factor // 2 + bin_factor
    for i in mids:
        pts = torch.nonzero(occ[:, m:Y - m, m:X - m] == i + 1)
        if len(pts):
            pts[:, 1:] += m
            cands.append((i, pts))
    chosen: list[tuple[int, tuple[float, float, float]]] = []
    if not cands:
        return chosen
    allp = torch.cat([p for _, p in cands]).cpu()
    owner = torch.cat([torch.full((len(p),), i) for i, p in cands])
    keep = (allp[:, 0] >= m) & (allp[:, 0] < Z - m)
    allp, owner = allp[keep], owner[keep]
    perm = torch.randperm(len(allp), generator=generator)[: 50 * max(n, 1)]
    taken = torch.empty(0, 3)
    for j in perm.tolist():
        p = allp[j].float()
        if len(taken) and bool((((taken - p) ** 2).sum(1) < spacing_vox ** 2).any()):
            continue
        taken = torch.cat([taken, p[None]])
        chosen.append((int(owner[j]), (float(p[2]), float(p[1]), float(p[0]))))
        if len(chosen) >= n:
            break
    return chosen


def extract_targets(scene: Scene, tomogram: torch.Tensor,
                    targets: Sequence[tuple[int, tuple[float, float, float]]], box: int,
                    bin_factor: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Cut ``box``³ subtomograms of the tomogram around targets, with their targets' masks.

    Parameters
    ----------
    scene : Scene
        The scene the tomogram was made from (its occupancy gives the targets' masks).
    tomogram : torch.Tensor
        `(Z / b, Y / b, X / b)` reconstruction, z-y-x.
    targets : sequence of (int, (float, float, float))
        ``(particle index, centre (x, y, z) in scene voxels)`` of each target.
    box : int
        Edge of the subtomograms (tomogram voxels).
    bin_factor : int
        Scene voxels per tomogram voxel along each axis.

    Returns
    -------
    tuple of (torch.Tensor, torch.Tensor, numpy.ndarray)
        Volumes `(N, box, box, box)` float32, masks `(N, box, box, box)` bool, and offsets
        `(N, 3)` x-y-z: the target centre minus the box's centre voxel ``box // 2`` (tomogram
        voxels).
    """
    occ = scene.occupancy
    vols, masks, offs = [], [], []
    h = box // 2
    for pid, (cx, cy, cz) in targets:
        c = np.array([cz, cy, cx])
        ct = scene_to_tomogram_vox(c, bin_factor)          # centre on the tomogram grid
        s = np.round(ct).astype(int) - h
        sl = tuple(slice(a, a + box) for a in s)
        vols.append(tomogram[sl])
        ss = tuple(slice(a * bin_factor, (a + box) * bin_factor) for a in s)
        mk = (occ[ss] == pid + 1).float()[None, None]
        masks.append(F.avg_pool3d(mk, bin_factor)[0, 0] >= 0.5 if bin_factor > 1 else mk[0, 0] > 0)
        offs.append((ct - (s + h))[::-1].copy())
    return torch.stack(vols), torch.stack(masks), np.array(offs, dtype=np.float64)


def measure_snr(vols: torch.Tensor, labels: np.ndarray, eulers_deg: np.ndarray,
                offsets: np.ndarray, class_names: list[str], pairs_per_class: int,
                generator: torch.Generator) -> dict[str, Any]:
    """Measure the SNR the way one does on real data (Che et al.: "measured the testing data").

    Pairs of same-class subtomograms are aligned with their (here: known) poses — each is
    rotated back by its rotation and shifted by its sub-voxel offset — and the Frank & Al-Ali
    estimate ρ/(1−ρ) of the pair's correlation over the whole box is taken
    (:func:`cryo_companion.snr.snr_from_correlation`). Membranes have no pose and are left out.

    Parameters
    ----------
    vols : torch.Tensor
        `(N, D, D, D)` subtomograms, z-y-x.
    labels : np.ndarray
        `(N,)` class index of each.
    eulers_deg : np.ndarray
        `(N, 3)` ZYZ Euler angles (φ, θ, ψ) in degrees of each particle's pose.
    offsets : np.ndarray
        `(N, 3)` x-y-z offset of each target centre from the box's centre voxel (voxels).
    class_names : list of str
        Names of the classes (``"membrane"`` is skipped).
    pairs_per_class : int
        Largest number of disjoint pairs per class.
    generator : torch.Generator
        CPU generator of the pairing.

    Returns
    -------
    dict
        ``per_class`` (median SNR per class), ``pairs`` (number of pairs), ``median`` and
        ``mean`` over all pairs (None without pairs).
    """
    out: dict[str, Any] = {"per_class": {}, "pairs": 0}
    allv = []
    for k, name in enumerate(class_names):
        idx = np.flatnonzero(labels == k)
        if name == "membrane" or len(idx) < 2:
            continue
        perm = idx[torch.randperm(len(idx), generator=generator).numpy()]
        npair = min(pairs_per_class, len(perm) // 2)
        a_i, b_i = perm[:npair], perm[npair:2 * npair]
        sel = np.concatenate([a_i, b_i])
        e = torch.as_tensor(np.deg2rad(eulers_deg[sel]))
        R = rotation.euler_zyz_to_matrix(e[:, 0], e[:, 1], e[:, 2]).to(torch.float32)
        D = vols.shape[-1]
        # target centre relative to rotate_volumes' centre (D − 1)/2: offset + (D//2 − (D−1)/2)
        delta = torch.as_tensor(offsets[sel], dtype=torch.float32) + (D // 2 - (D - 1) / 2)
        t = -(R.transpose(1, 2) @ delta[:, :, None])[:, :, 0]
        v = vols[torch.as_tensor(sel)].float()
        al = rotation.rotate_volumes(v, R.transpose(1, 2).to(v.device), t.to(v.device))
        s = snr.snr_from_correlation(al[:npair], al[npair:]).cpu().numpy()
        out["per_class"][name] = float(np.median(s))
        allv.append(s)
        out["pairs"] += int(npair)
    allv_ = np.concatenate(allv) if allv else np.array([np.nan])
    out["median"] = float(np.median(allv_)) if allv else None
    out["mean"] = float(np.mean(allv_)) if allv else None
    return out
