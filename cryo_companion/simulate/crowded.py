"""Crowded-tomogram subtomogram sets: every complex of simulated tomograms, boxed, as targets.

Each box has the voxels of its centre complex as ground truth (SSN3D, Liu et al. 2018, 4.1;
DSM-Net, 3.1).

A :class:`CrowdedConfig` describes one data set: a class set of the catalogue, a number of
tomograms of a given shape, each holding ``n_complexes`` randomly placed and oriented complexes
(equal numbers per class), imaged as a tilt series and reconstructed by weighted
back-projection, and a ``box``³ subtomogram cut around the true centre of every complex whose
box lies inside the tomogram. The physics is the project's tomogram simulator, used through its
public functions: :func:`~cryo_companion.simulate.scene.make_scene` packs the scene (potential
relative to vitreous ice filling the whole tomogram height; no membranes),
:func:`~cryo_companion.simulate.tiltseries.simulate_tilt_series` projects it tilt by tilt with
the defocus-sliced CTF, radiation damage, zero-loss attenuation, shot noise and detector MTF, and
:func:`~cryo_companion.simulate.tiltseries.reconstruct` back-projects it;
:func:`~cryo_companion.simulate.tomogram.extract_targets` cuts the boxes.

Each subtomogram comes with (:class:`CrowdedSubtomograms`)

* ``masks``: the voxels of the centre complex only (its envelope: the voxels whose density
  holds the molecule's mass at protein density, as the scene packs it); neighbours and ice are
  background. ``mask_level`` replaces the envelope by "target density >= level x the maximum
  of its template" minus the envelopes of other complexes;
* ``density``: the noise-free density of the target alone (Da/Å³, averaged over each
  tomogram voxel), rotated and placed as in the scene: what DSM-Net's recovery subnet regresses;
* the pose: ``euler_zyz_deg`` (φ, θ, ψ; ``R = Rz(φ) Ry(θ) Rz(ψ)`` acting on the template's
  x-y-z coordinates, :mod:`cryo_companion.rotation`), ``offset_xyz_vox`` (the true centre minus
  the box's centre voxel ``box // 2``, tomogram voxels, x-y-z), ``centre_xyz_vox`` (the true
  centre in tomogram voxels) and ``tomogram_index``.

SNR. The paper estimates each data set's SNR "using aligned subtomograms containing GroEL
according to [Frank & Al-Ali 1975]". Frank & Al-Ali correlate two images of the same object
with independent noise: ``ρ / (1 − ρ)`` estimates ``var(signal) / var(noise)``. Here every
tomogram is also reconstructed noise-free from the same tilt series (same defocus errors,
same radiation damage), so that ratio is computed directly on the boxes of the reference class
(:func:`cryo_companion.snr.snr_from_clean`, no estimator noise) and summarised by its median
over the boxes. The signal is everything deterministic in the box (target, neighbours, ice
texture); the noise is the shot noise after reconstruction. (Pairs of *different* copies of
the reference, aligned by their poses, cannot reach the paper's SNR of 0.5 in crowded boxes:
neighbours and the per-particle missing wedge do not correlate, and cap ρ far below 1/3.)
The reference is named by its structure entry (``snr_reference``), which must stand for one of
the class set's classes, so the reference is in the tomograms.

Dose calibration (:func:`calibrate_dose`): shot noise makes ``var(noise) ∝ 1 / dose`` while the
signal falls slowly with dose through radiation damage, so SNR ∝ dose to first order. A pilot
tomogram (same height, number density and classes, its own seed) is simulated once; its SNR is
measured at a first dose, the dose rescaled to the target, and refined by log-log secant steps
until the measured SNR is within ``rtol`` of the target. Every measurement is recorded.

Conventions: tomogram volumes are z-y-x, ``tomogram_shape`` is (Z, Y, X) in tomogram voxels,
positions are x-y-z; the beam is along z and the tilt axis is y; raw reconstructions keep the
physical sign (mass is dark, ``meta["contrast"] == "dark"``).
"""
from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from cryo_companion import snr
from cryo_companion._io import write_text
from cryo_companion._progress import progress as progress_bar
from cryo_companion.dataset import (
    SubtomogramSet,
    default_data_dir,
    load_subtomograms,
    save_subtomograms,
)
from cryo_companion.devices import resolve_device
from cryo_companion.simulate.scene import Scene, SceneSpec, Template, make_scene
from cryo_companion.simulate.targets import level_masks, target_densities
from cryo_companion.simulate.tiltseries import Imaging, reconstruct, simulate_tilt_series
from cryo_companion.simulate.tomogram import (
    extract_targets,
    load_templates,
    scene_to_tomogram_vox,
)
from cryo_companion.structures.catalogue import CLASS_SETS, class_set

__all__ = [
    "FORMAT",
    "CalibrationError",
    "CrowdedConfig",
    "CrowdedSubtomograms",
    "DoseCalibration",
    "calibrate_dose",
    "config_hash",
    "ensure_calibrated_crowded",
    "ensure_calibration",
    "ensure_crowded",
    "expected_extractable_fraction",
    "load_crowded",
    "make_crowded",
    "pilot_config",
    "pilot_tomograms",
    "save_crowded",
]

#: Format tag of a saved crowded set (``config.json``).
FORMAT = "cryo_companion.crowded/1"
_POSE_COLUMNS = ("file", "class", "phi_deg", "theta_deg", "psi_deg", "offset_x_vox",
                 "offset_y_vox", "offset_z_vox", "centre_x_vox", "centre_y_vox", "centre_z_vox",
                 "tomogram")


class CalibrationError(RuntimeError):
    """The dose that gives the requested SNR could not be found."""


@dataclass(frozen=True)
class CrowdedConfig:
    """Everything that determines a crowded subtomogram set (its hash is the cache key).

    Attributes
    ----------
    class_set : str
        Name of a class set of :mod:`cryo_companion.structures.catalogue` (e.g. ``"liu22"``).
    tomogram_shape : tuple of int
        `(Z, Y, X)` tomogram voxels; Z along the beam. The ice fills the whole height.
    n_complexes : int
        Complexes per tomogram, equal numbers per class (the remainder to random classes).
    n_tomograms : int
        Tomograms (each with its own scene and noise).
    voxel_size_A : float
        Tomogram voxel edge (Å).
    box : int
        Subtomogram edge (voxels), even.
    oversample : int
        The scene and the detector are this many times finer than the tomogram.
    tilt_min_deg, tilt_max_deg, tilt_step_deg : float
        Tilt range and step (degrees; the step must divide the range).
    total_dose_e_A2 : float
        Electrons per Å² over the whole tilt series (set by :func:`calibrate_dose`).
    defocus_um : float
        Nominal defocus (µm, negative = underfocus).
    cs_mm, voltage_kv, amplitude_contrast, bfactor_per_dose_A2 : float
        Spherical aberration (mm), voltage (kV), amplitude contrast, radiation-damage B-factor
        per e/Å² received (Å²); the other acquisition parameters are
        :class:`~cryo_companion.simulate.tiltseries.Imaging`'s defaults.
    contact_fraction : float
        Fraction of placements next to an already placed complex (molecular crowding).
    snr_reference : str
        Structure entry of the class whose boxes measure the SNR (the GroEL stand-in).
    n_subtomograms : int or None
        Keep this many of the extractable boxes, drawn at random; None keeps all.
    mask_level : float or None
        None: target mask = the target's envelope; else density >= level x template maximum.
    seed : int
        Seed of the scenes (positions, orientations, class counts, the subset).
    noise_seed : int or None
        Seed of the imaging (defocus errors, shot noise); None uses ``seed``.
    """

    class_set: str = "liu22"
    tomogram_shape: tuple[int, int, int] = (300, 600, 600)
    n_complexes: int = 10_000
    n_tomograms: int = 1
    voxel_size_A: float = 13.68
    box: int = 40
    oversample: int = 1
    tilt_min_deg: float = -60.0
    tilt_max_deg: float = 60.0
    tilt_step_deg: float = 2.0
    total_dose_e_A2: float = 100.0
    defocus_um: float = -6.0
    cs_mm: float = 2.7
    voltage_kv: float = 300.0
    amplitude_contrast: float = 0.07
    bfactor_per_dose_A2: float = 4.0
    contact_fraction: float = 0.8
    snr_reference: str = "4v94"
    n_subtomograms: int | None = None
    mask_level: float | None = None
    seed: int = 0
    noise_seed: int | None = None

    def __post_init__(self) -> None:
        """Refuse a configuration that cannot be generated, before any work."""
        object.__setattr__(self, "tomogram_shape", tuple(int(s) for s in self.tomogram_shape))
        n_classes = self._check_classes()
        self._check_geometry()
        self._check_counts(n_classes)
        self._check_options()
        self.imaging()  # validates the acquisition parameters

    def _check_classes(self) -> int:
        """Refuse an unknown or procedural class set or a foreign SNR reference; count classes."""
        if self.class_set.lower() not in CLASS_SETS:
            raise ValueError(f"unknown class set {self.class_set!r}; valid names: "
                             f"{', '.join(CLASS_SETS)}")
        cs = class_set(self.class_set)
        procedural = [c.name for c in cs if c.source == "procedural"]
        if procedural:
            raise ValueError(f"class set {self.class_set!r} has procedural classes "
                             f"{procedural}; the crowded generator places macromolecules only")
        entries = [c.entry for c in cs]
        if self.snr_reference not in entries:
            raise ValueError(f"snr_reference {self.snr_reference!r} stands for no class of "
                             f"{self.class_set!r}; its entries: {', '.join(entries)}")
        return len(cs)

    def _check_geometry(self) -> None:
        """Refuse a tomogram shape or box that cannot hold a subtomogram."""
        if len(self.tomogram_shape) != 3 or min(self.tomogram_shape) < 1:
            raise ValueError(f"tomogram_shape must be three positive sizes (Z, Y, X), got "
                             f"{self.tomogram_shape}")
        if self.box < 2 or self.box % 2:
            raise ValueError(f"box {self.box} must be an even number of voxels >= 2 (e.g. 40)")
        if self.box > min(self.tomogram_shape):
            raise ValueError(f"box {self.box} does not fit in the tomogram "
                             f"{self.tomogram_shape} (Z, Y, X)")

    def _check_counts(self, n_classes: int) -> None:
        """Refuse counts below one, fewer complexes than classes, or a non-positive voxel."""
        for name in ("n_complexes", "n_tomograms", "oversample"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_complexes < n_classes:
            raise ValueError(f"n_complexes {self.n_complexes} is fewer than the "
                             f"{n_classes} classes of {self.class_set!r}")
        if not self.voxel_size_A > 0:
            raise ValueError(f"voxel_size_A must be > 0, got {self.voxel_size_A}")
        if self.n_subtomograms is not None and self.n_subtomograms < 1:
            raise ValueError(f"n_subtomograms must be >= 1 or None, got {self.n_subtomograms}")

    def _check_options(self) -> None:
        """Refuse a mask level, contact fraction or seed outside its range."""
        if self.mask_level is not None and not 0 < self.mask_level < 1:
            raise ValueError(f"mask_level {self.mask_level} is outside (0, 1) (or None)")
        if not 0 <= self.contact_fraction <= 1:
            raise ValueError(f"contact_fraction {self.contact_fraction} is outside [0, 1]")
        if self.seed < 0 or (self.noise_seed is not None and self.noise_seed < 0):
            raise ValueError(f"seeds must be >= 0, got seed {self.seed}, "
                             f"noise_seed {self.noise_seed}")

    def imaging(self) -> Imaging:
        """Return the acquisition parameters (ice thickness = the tomogram height).

        Returns
        -------
        Imaging
        """
        return Imaging(tilt_min_deg=self.tilt_min_deg, tilt_max_deg=self.tilt_max_deg,
                       tilt_step_deg=self.tilt_step_deg, voltage_kv=self.voltage_kv,
                       cs_mm=self.cs_mm, amplitude_contrast=self.amplitude_contrast,
                       defocus_um=self.defocus_um, total_dose_e_A2=self.total_dose_e_A2,
                       bfactor_per_dose_A2=self.bfactor_per_dose_A2,
                       ice_thickness_A=self.tomogram_shape[0] * self.voxel_size_A)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-able form (tuples as lists)."""
        d = asdict(self)
        d["tomogram_shape"] = list(self.tomogram_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CrowdedConfig:
        """Make a configuration from :meth:`to_dict`'s form (unknown keys are an error).

        Parameters
        ----------
        d : dict
            A dictionary written by :meth:`to_dict`.

        Returns
        -------
        CrowdedConfig

        Raises
        ------
        ValueError
            ``d`` holds a key that is not a field (or a value the configuration refuses).
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown crowded-config keys {unknown}; valid: {sorted(known)}")
        kw = dict(d)
        if "tomogram_shape" in kw:
            kw["tomogram_shape"] = tuple(kw["tomogram_shape"])
        return cls(**kw)


def config_hash(config: CrowdedConfig) -> str:
    """Return the sha256 (hex) of the canonical JSON of ``config`` and the format tag.

    Parameters
    ----------
    config : CrowdedConfig
        The configuration; its hash names the cache folder of its subtomograms.

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    canon = json.dumps({"format": FORMAT, **config.to_dict()}, sort_keys=True,
                       separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()


def expected_extractable_fraction(config: CrowdedConfig, radius_vox: float = 0.0) -> float:
    """Return the expected fraction of complexes whose box fits, for uniform placement.

    A centre is uniform over the voxels where the complex's envelope fits in the ice (``z``
    in ``[r, Z − 1 − r]``, all of ``x`` and ``y``); its box of edge ``b`` is kept when the
    centre voxel ``c`` has ``c − b/2 >= 0`` and ``c + b/2 <= N`` on every axis, i.e.
    ``N − b + 1`` of the ``N`` positions per axis. For the paper's 600 x 600 x 300 tomogram
    and 40³ boxes this is about 0.76 (7,600 of 10,000 complexes), not the paper's 0.338.

    Parameters
    ----------
    config : CrowdedConfig
        Tomogram shape and box.
    radius_vox : float
        Typical envelope half-height of a complex (voxels); 0 ignores it.

    Returns
    -------
    float
    """
    Z, Y, X = config.tomogram_shape
    b = config.box
    xy = max(0, X - b + 1) / X * max(0, Y - b + 1) / Y
    lo, hi = math.ceil(radius_vox), Z - 1 - math.ceil(radius_vox)
    if hi < lo:
        return 0.0
    z_ok = max(0, min(hi, Z - b // 2) - max(lo, b // 2) + 1)
    return xy * z_ok / (hi - lo + 1)


@dataclass
class CrowdedSubtomograms(SubtomogramSet):
    """A :class:`~cryo_companion.dataset.SubtomogramSet` with the targets' densities and poses.

    Attributes
    ----------
    density : numpy.ndarray
        `(N, D, D, D)` float32 noise-free density of each target alone (Da/Å³), z-y-x.
    euler_zyz_deg : numpy.ndarray
        `(N, 3)` float64 (φ, θ, ψ) of each target, degrees.
    offset_xyz_vox : numpy.ndarray
        `(N, 3)` float64 true centre minus the box's centre voxel ``D // 2`` (x, y, z).
    centre_xyz_vox : numpy.ndarray
        `(N, 3)` float64 true centre in tomogram voxels (x, y, z).
    tomogram_index : numpy.ndarray
        `(N,)` int64 tomogram each subtomogram was cut from.
    """

    density: np.ndarray | None = None
    euler_zyz_deg: np.ndarray | None = None
    offset_xyz_vox: np.ndarray | None = None
    centre_xyz_vox: np.ndarray | None = None
    tomogram_index: np.ndarray | None = None

    def __post_init__(self) -> None:
        """Check that every per-subtomogram array matches the volumes; no NaN anywhere."""
        super().__post_init__()
        n = len(self)
        if self.masks is None:
            raise ValueError("a crowded set needs target masks (N, D, D, D), got None")
        if not np.isfinite(self.volumes).all():
            raise ValueError("volumes contain NaN or infinite values")
        for name, shape, dtype in (("density", self.volumes.shape, np.float32),
                                   ("euler_zyz_deg", (n, 3), np.float64),
                                   ("offset_xyz_vox", (n, 3), np.float64),
                                   ("centre_xyz_vox", (n, 3), np.float64),
                                   ("tomogram_index", (n,), np.int64)):
            v = getattr(self, name)
            if v is None:
                raise ValueError(f"{name} is required, shape {shape}")
            v = np.asarray(v, dtype=dtype)
            if v.shape != shape:
                raise ValueError(f"{name} has shape {v.shape}; expected {shape} (one per "
                                 f"subtomogram of the {n})")
            if v.dtype.kind == "f" and not np.isfinite(v).all():
                raise ValueError(f"{name} contains NaN or infinite values")
            setattr(self, name, v)

    def subset(self, index: npt.ArrayLike) -> CrowdedSubtomograms:
        """Return the subtomograms at ``index`` with their densities and poses.

        Parameters
        ----------
        index : sequence of int or numpy.ndarray
            Positions (or a boolean mask) of the subtomograms to keep.

        Returns
        -------
        CrowdedSubtomograms
        """
        idx = np.asarray(index)
        assert self.masks is not None and self.density is not None
        assert self.euler_zyz_deg is not None and self.offset_xyz_vox is not None
        assert self.centre_xyz_vox is not None and self.tomogram_index is not None
        return CrowdedSubtomograms(
            self.volumes[idx], self.labels[idx], self.masks[idx], list(self.class_names),
            self.voxel_size_A, dict(self.meta), density=self.density[idx],
            euler_zyz_deg=self.euler_zyz_deg[idx], offset_xyz_vox=self.offset_xyz_vox[idx],
            centre_xyz_vox=self.centre_xyz_vox[idx], tomogram_index=self.tomogram_index[idx])


# ------------------------------------------------------------------------------ generation
@functools.lru_cache(maxsize=4)
def _load_templates(set_name: str, voxel_size_A: float) -> dict[str, Template]:
    """Templates of a class set (read once per process: scenes never modify them)."""
    return load_templates({c.name: c.entry for c in class_set(set_name)}, voxel_size_A)


def _templates(config: CrowdedConfig) -> tuple[list[str], dict[str, Template], str]:
    cs = class_set(config.class_set)
    ref = next(c.name for c in cs if c.entry == config.snr_reference)
    vs = config.voxel_size_A / config.oversample
    return cs.class_names, _load_templates(cs.name, vs), ref


def _counts(config: CrowdedConfig, names: list[str], g: torch.Generator) -> dict[str, int]:
    k = len(names)
    base, extra = divmod(config.n_complexes, k)
    plus = set(torch.randperm(k, generator=g)[:extra].tolist())
    return {n: base + (1 if i in plus else 0) for i, n in enumerate(names)}


def _scene(config: CrowdedConfig, templates: dict[str, Template], names: list[str],
           g: torch.Generator, device: torch.device, progress: bool) -> Scene:
    os_ = config.oversample
    Z, Y, X = config.tomogram_shape
    spec = SceneSpec(shape=(Z * os_, Y * os_, X * os_),
                     voxel_size_A=config.voxel_size_A / os_,
                     ice_thickness_A=Z * config.voxel_size_A, counts=_counts(config, names, g),
                     membrane_class=None, contact_fraction=config.contact_fraction)
    return make_scene(spec, templates, names, g, device, progress=progress)


def _image(config: CrowdedConfig, scene: Scene, dose_e_A2: float, seed: int, progress: bool
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Reconstruct the noisy and the noise-free tomogram of one tilt series.

    The same generator seed gives the same per-tilt defocus; the same dose the same radiation
    damage.
    """
    imaging = replace(config, total_dose_e_A2=float(dose_e_A2)).imaging()
    Z = config.tomogram_shape[0]
    out = []
    for noise in (True, False):
        series = simulate_tilt_series(scene.potential_V, scene.voxel_size_A, imaging,
                                      torch.Generator().manual_seed(seed),
                                      bin_factor=config.oversample, noise=noise,
                                      progress=progress)
        out.append(reconstruct(series, Z))
    return out[0], out[1]


def _extractable(config: CrowdedConfig, scene: Scene) -> list[tuple[int, tuple]]:
    """(particle index, centre x-y-z in scene voxels) of every complex whose box fits."""
    Z, Y, X = config.tomogram_shape
    h, b = config.box // 2, config.box
    lim = np.array([X, Y, Z])
    out = []
    for i, p in enumerate(scene.particles):
        c = np.round(scene_to_tomogram_vox(np.array(p["centre_xyz_vox"]),
                                           config.oversample)).astype(int)
        if np.all(c - h >= 0) and np.all(c - h + b <= lim):
            out.append((i, tuple(p["centre_xyz_vox"])))
    return out


def _target_densities(config: CrowdedConfig, scene: Scene, templates: dict[str, Template],
                      targets: list[tuple[int, tuple]]) -> torch.Tensor:
    """Render each target's own density in its box (Da/Å³ per tomogram voxel)."""
    return target_densities(scene, templates, targets, config.box, config.oversample)


def _level_masks(config: CrowdedConfig, scene: Scene, templates: dict[str, Template],
                 targets: list[tuple[int, tuple]], density: torch.Tensor) -> torch.Tensor:
    """Masks "density >= level x template maximum", less other complexes' envelopes."""
    assert config.mask_level is not None
    return level_masks(scene, templates, targets, density, config.box, config.oversample,
                       config.mask_level)


def _snr_summary(values: np.ndarray, reference: str, per_tomogram: list[int]) -> dict[str, Any]:
    return {"method": "var(noise-free box) / var(noisy box - noise-free box), median over the "
                      "boxes of the reference class (the Frank & Al-Ali quantity)",
            "reference_class": reference, "n_boxes": int(values.size),
            "boxes_per_tomogram": per_tomogram,
            "median": float(np.median(values)) if values.size else None,
            "mean": float(np.mean(values)) if values.size else None,
            "q25": float(np.quantile(values, 0.25)) if values.size else None,
            "q75": float(np.quantile(values, 0.75)) if values.size else None}


def _seeds(config: CrowdedConfig, t: int) -> tuple[int, int]:
    """Scene and imaging seeds of tomogram ``t`` (distinct streams, reproducible)."""
    base = config.seed * 1_000_003 + t
    noise = (config.noise_seed if config.noise_seed is not None else config.seed) * 1_000_003 + t
    return base, noise + 500_009


def make_crowded(config: CrowdedConfig, device: torch.device | str | None = None, *,
                 progress: bool = True) -> CrowdedSubtomograms:
    """Simulate the crowded subtomogram set of ``config``.

    Parameters
    ----------
    config : CrowdedConfig
        The data set (validated when it was made).
    device : torch.device or str or None
        Where the scenes are packed and imaged (``"auto"``, ``"cpu"``, ``"cuda"``; None: auto).
    progress : bool
        Progress bars on a terminal.

    Returns
    -------
    CrowdedSubtomograms
        Boxes z-y-x at ``config.voxel_size_A``, labels in the class set's order, target masks,
        densities and poses; ``meta`` holds the config and its hash, the measured SNR, the
        counts of complexes placed, extractable and kept, and the time of each stage.

    Raises
    ------
    ValueError
        ``n_subtomograms`` exceeds the extractable boxes (after the simulation: the count is
        random), or the packing is impossible (from the scene, before any imaging).
    """
    dev = device if isinstance(device, torch.device) else resolve_device(device or "auto")
    timing: dict[str, float] = {}

    def tick(stage: str, t0: float) -> float:
        now = time.perf_counter()
        timing[stage] = timing.get(stage, 0.0) + now - t0
        return now

    t0 = time.perf_counter()
    names, templates, ref = _templates(config)
    ref_k = names.index(ref)
    t0 = tick("templates", t0)
    vols, masks, dens, eul, offs, cents, tomo_idx, labels = [], [], [], [], [], [], [], []
    snr_vals: list[np.ndarray] = []
    per_tomo_ref: list[int] = []
    placed = extractable = 0
    bar = progress_bar(range(config.n_tomograms), desc="tomograms", show=progress)
    for t in bar:
        s_scene, s_noise = _seeds(config, t)
        g = torch.Generator().manual_seed(s_scene)
        scene = _scene(config, templates, names, g, dev, progress)
        placed += len(scene.particles)
        t0 = tick("scene", t0)
        noisy, clean = _image(config, scene, config.total_dose_e_A2, s_noise, progress)
        t0 = tick("tilt_series_and_wbp", t0)
        targets = _extractable(config, scene)
        extractable += len(targets)
        v, m, off = extract_targets(scene, noisy, targets, config.box, config.oversample)
        lab = np.array([scene.particles[i]["class_index"] for i, _ in targets], dtype=np.int64)
        ref_t = [tg for tg, k in zip(targets, lab) if k == ref_k]
        if ref_t:
            vr, _, _ = extract_targets(scene, noisy, ref_t, config.box, config.oversample)
            cr, _, _ = extract_targets(scene, clean, ref_t, config.box, config.oversample)
            snr_vals.append(snr.snr_from_clean(cr, vr).cpu().numpy())
        per_tomo_ref.append(len(ref_t))
        d = _target_densities(config, scene, templates, targets)
        if config.mask_level is not None:
            m = _level_masks(config, scene, templates, targets, d)
        t0 = tick("extraction", t0)
        vols.append(v.cpu())
        masks.append(m.cpu())
        dens.append(d)
        offs.append(off)
        labels.append(lab)
        eul.append(np.array([scene.particles[i]["euler_zyz_deg"] for i, _ in targets]))
        cents.append(np.array([scene_to_tomogram_vox(np.array(c), config.oversample)
                               for _, c in targets]).reshape(-1, 3))
        tomo_idx.append(np.full(len(targets), t, dtype=np.int64))
        del scene, noisy, clean
    bar.close()
    n_all = int(sum(len(x) for x in labels))
    keep = np.arange(n_all)
    if config.n_subtomograms is not None:
        if config.n_subtomograms > n_all:
            raise ValueError(f"n_subtomograms {config.n_subtomograms} exceeds the {n_all} "
                             "extractable boxes of the simulated tomograms; use more "
                             "tomograms or complexes, or fewer subtomograms")
        g_sub = torch.Generator().manual_seed(config.seed * 1_000_003 + 999_983)
        keep = np.sort(torch.randperm(n_all, generator=g_sub)[:config.n_subtomograms].numpy())
    snr_all = np.concatenate(snr_vals) if snr_vals else np.zeros(0)
    lab_all = np.concatenate(labels)
    # the SNR of the kept set: its reference boxes (in extraction order, as snr_all)
    ref_rows = np.flatnonzero(lab_all == ref_k)
    kept_ref = np.isin(ref_rows, keep)
    meta = {"generator": FORMAT, "config": config.to_dict(), "config_hash": config_hash(config),
            "contrast": "dark", "density_unit": "Da/A^3",
            "snr": _snr_summary(snr_all[kept_ref], ref, per_tomo_ref),
            "complexes_placed": placed, "extractable": extractable, "kept": int(keep.size),
            "extractable_fraction": extractable / placed, "device": str(dev),
            "timing_s": timing, "tilts": len(config.imaging().tilts_deg)}
    data = CrowdedSubtomograms(
        torch.cat(vols).numpy()[keep], lab_all[keep], torch.cat(masks).numpy()[keep], names,
        config.voxel_size_A, meta, density=torch.cat(dens).numpy()[keep],
        euler_zyz_deg=np.concatenate(eul)[keep], offset_xyz_vox=np.concatenate(offs)[keep],
        centre_xyz_vox=np.concatenate(cents)[keep], tomogram_index=np.concatenate(tomo_idx)[keep])
    data.meta["counts"] = data.counts
    return data


# ------------------------------------------------------------------------------ calibration
@dataclass
class DoseCalibration:
    """The dose found for a target SNR and every measurement on the pilot tomogram.

    Attributes
    ----------
    target_snr : float
        The SNR asked for.
    dose_e_A2 : float
        The calibrated total dose (e/Å²).
    measurements : list of dict
        ``{"dose_e_A2", "snr", "snr_q25", "snr_q75", "n_boxes"}`` in the order measured.
    pilot : dict
        The pilot's configuration (:meth:`CrowdedConfig.to_dict`).
    rtol : float
        Accepted relative deviation of the last measurement from the target.
    """

    target_snr: float
    dose_e_A2: float
    measurements: list[dict[str, Any]] = field(default_factory=list)
    pilot: dict[str, Any] = field(default_factory=dict)
    rtol: float = 0.05

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-able form."""
        return asdict(self)


def pilot_config(config: CrowdedConfig, pilot_xy: int | None = None) -> CrowdedConfig:
    """Return the pilot tomogram of ``config``: same height, number density, classes, optics.

    Parameters
    ----------
    config : CrowdedConfig
        The data set to calibrate.
    pilot_xy : int or None
        Lateral size (voxels) of the pilot; None: ``min(X, Y, 4 box)``.

    Returns
    -------
    CrowdedConfig
        One tomogram of ``(Z, pilot_xy, pilot_xy)`` with the number of complexes scaled by the
        area, its own seeds (never those of the data set), all boxes kept.

    Raises
    ------
    ValueError
        ``pilot_xy`` is smaller than the box.
    """
    Z, Y, X = config.tomogram_shape
    xy = int(pilot_xy) if pilot_xy is not None else min(X, Y, 4 * config.box)
    if not config.box <= xy:
        raise ValueError(f"pilot_xy {xy} must be at least the box {config.box}")
    n = max(len(class_set(config.class_set)),
            round(config.n_complexes * xy * xy / (X * Y)))
    return replace(config, tomogram_shape=(Z, xy, xy), n_complexes=n, n_tomograms=1,
                   n_subtomograms=None, seed=config.seed + 7_919,
                   noise_seed=(config.noise_seed or config.seed) + 7_919)


def calibrate_dose(config: CrowdedConfig, target_snr: float, *, pilot_xy: int | None = None,
                   rtol: float = 0.05, max_steps: int = 6,
                   device: torch.device | str | None = None, progress: bool = True
                   ) -> DoseCalibration:
    """Find the total dose at which the reference boxes of a pilot tomogram have ``target_snr``.

    Parameters
    ----------
    config : CrowdedConfig
        The data set; its ``total_dose_e_A2`` is the first dose tried.
    target_snr : float
        The SNR to hit (> 0), measured as :func:`make_crowded` measures it.
    pilot_xy : int or None
        Lateral size of the pilot (:func:`pilot_config`).
    rtol : float
        Stop when the measured SNR is within this relative deviation of the target.
    max_steps : int
        Measurements at most.
    device : torch.device or str or None
        Compute device (None: auto).
    progress : bool
        Progress bars on a terminal.

    Returns
    -------
    DoseCalibration
        The dose of the last measurement and all measurements.

    Raises
    ------
    ValueError
        A target SNR <= 0 or a bad ``rtol`` / ``max_steps`` (before any work).
    CalibrationError
        The pilot has no box of the reference class, the SNR stops growing with dose
        (radiation damage wins), or ``max_steps`` measurements did not reach ``rtol``.
    """
    if not target_snr > 0 or not math.isfinite(target_snr):
        raise ValueError(f"target_snr must be a positive number, got {target_snr}")
    if not 0 < rtol < 1 or max_steps < 2:
        raise ValueError(f"need 0 < rtol < 1 and max_steps >= 2, got {rtol}, {max_steps}")
    pilot = pilot_config(config, pilot_xy)
    dev = device if isinstance(device, torch.device) else resolve_device(device or "auto")
    names, templates, ref = _templates(pilot)
    s_scene, s_noise = _seeds(pilot, 0)
    scene = _scene(pilot, templates, names, torch.Generator().manual_seed(s_scene), dev,
                   progress)
    ref_k = names.index(ref)
    ref_t = [tg for tg in _extractable(pilot, scene)
             if scene.particles[tg[0]]["class_index"] == ref_k]
    if not ref_t:
        raise CalibrationError(f"the pilot tomogram {pilot.tomogram_shape} holds no whole box "
                               f"of the reference {ref!r}; use a larger pilot_xy")
    cal = DoseCalibration(float(target_snr), float("nan"), [], pilot.to_dict(), rtol)
    dose = float(config.total_dose_e_A2)
    for _ in range(max_steps):
        noisy, clean = _image(pilot, scene, dose, s_noise, progress)
        vr, _, _ = extract_targets(scene, noisy, ref_t, pilot.box, pilot.oversample)
        cr, _, _ = extract_targets(scene, clean, ref_t, pilot.box, pilot.oversample)
        s = snr.snr_from_clean(cr, vr).cpu().numpy()
        cal.measurements.append({"dose_e_A2": dose, "snr": float(np.median(s)),
                                 "snr_q25": float(np.quantile(s, 0.25)),
                                 "snr_q75": float(np.quantile(s, 0.75)),
                                 "n_boxes": int(s.size)})
        cal.dose_e_A2 = dose
        m = cal.measurements
        if abs(m[-1]["snr"] / target_snr - 1) <= rtol:
            return cal
        if len(m) == 1:
            slope = 1.0           # shot-noise-limited: SNR proportional to dose
        else:
            slope = (math.log(m[-1]["snr"] / m[-2]["snr"])
                     / math.log(m[-1]["dose_e_A2"] / m[-2]["dose_e_A2"]))
            if not slope > 0.05:
                raise CalibrationError(
                    f"the SNR stops growing with dose near {dose:.4g} e/A^2 (measurements "
                    f"{m}): radiation damage limits it below the target {target_snr}")
        if m[-1]["snr"] <= 0:
            raise CalibrationError(f"non-positive SNR measured at {dose:.4g} e/A^2: {m}")
        dose = dose * (target_snr / m[-1]["snr"]) ** (1 / slope)
    raise CalibrationError(f"no dose within {rtol:.0%} of SNR {target_snr} after {max_steps} "
                           f"measurements: {cal.measurements}")


def pilot_tomograms(config: CrowdedConfig, doses_e_A2: list[float], *,
                    pilot_xy: int | None = None, device: torch.device | str | None = None,
                    progress: bool = True) -> tuple[list[np.ndarray], int]:
    """Reconstruct the pilot tomogram of ``config`` at several doses (for showing the noise).

    The pilot's scene (:func:`pilot_config`: the data set's height, crowding and classes, its
    own seeds) is packed once and imaged at each dose with the same imaging seed, as
    :func:`calibrate_dose` images it: the same region, only the dose differs.

    Parameters
    ----------
    config : CrowdedConfig
        The data set.
    doses_e_A2 : list of float
        Total doses (e/Å²), each > 0.
    pilot_xy : int or None
        Lateral size of the pilot (:func:`pilot_config`).
    device : torch.device or str or None
        Compute device.
    progress : bool
        Progress bars on a terminal.

    Returns
    -------
    tuple
        The `(Z, Y, X)` float32 weighted back-projections (z-y-x, mass dark), one per dose,
        and the number of complexes in the scene.

    Raises
    ------
    ValueError
        ``doses_e_A2`` is empty or holds a dose that is not a positive finite number.
    """
    if not doses_e_A2 or not all(d > 0 and math.isfinite(d) for d in doses_e_A2):
        raise ValueError(f"doses must be positive numbers, got {doses_e_A2}")
    pilot = pilot_config(config, pilot_xy)
    dev = device if isinstance(device, torch.device) else resolve_device(device or "auto")
    names, templates, _ = _templates(pilot)
    s_scene, s_noise = _seeds(pilot, 0)
    scene = _scene(pilot, templates, names, torch.Generator().manual_seed(s_scene), dev,
                   progress)
    out = []
    for dose in doses_e_A2:
        imaging = replace(pilot, total_dose_e_A2=float(dose)).imaging()
        series = simulate_tilt_series(scene.potential_V, scene.voxel_size_A, imaging,
                                      torch.Generator().manual_seed(s_noise),
                                      bin_factor=pilot.oversample, noise=True,
                                      progress=progress)
        out.append(reconstruct(series, pilot.tomogram_shape[0]).cpu().numpy())
    return out, len(scene.particles)


def ensure_calibration(config: CrowdedConfig, target_snr: float,
                       folder: str | os.PathLike | None = None, *, pilot_xy: int | None = None,
                       rtol: float = 0.05, device: torch.device | str | None = None,
                       progress: bool = True) -> DoseCalibration:
    """Return the dose calibration of ``config`` for ``target_snr``, computed once and cached.

    The cache file ``ROOT/crowded/calibration_HASH16.json`` is keyed by the pilot's
    configuration (which carries the first dose tried), the target and ``rtol``, so a data set
    is calibrated once and every later run reads the same dose.

    Parameters
    ----------
    config : CrowdedConfig
        The data set (its dose is the first one tried).
    target_snr : float
        The SNR to hit.
    folder : str or os.PathLike or None
        Cache root (None: :func:`~cryo_companion.dataset.default_data_dir`).
    pilot_xy : int or None
        Lateral size of the pilot (:func:`pilot_config`).
    rtol : float
        Accepted relative deviation.
    device : torch.device or str or None
        Compute device.
    progress : bool
        Progress bars on a terminal.

    Returns
    -------
    DoseCalibration
    """
    pilot = pilot_config(config, pilot_xy)
    key = json.dumps({"format": FORMAT, "pilot": pilot.to_dict(), "target_snr": target_snr,
                      "rtol": rtol}, sort_keys=True, separators=(",", ":"))
    root = Path(folder) if folder is not None else default_data_dir()
    path = root / "crowded" / f"calibration_{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"
    if path.is_file():
        try:
            d = json.loads(path.read_text())
            return DoseCalibration(**d)
        except (ValueError, TypeError):
            pass  # unreadable: recompute
    cal = calibrate_dose(config, target_snr, pilot_xy=pilot_xy, rtol=rtol, device=device,
                         progress=progress)
    write_text(path, json.dumps(cal.to_dict(), indent=2) + "\n")
    return cal


# ------------------------------------------------------------------------------ disk
def _poses_csv(data: CrowdedSubtomograms) -> str:
    assert data.euler_zyz_deg is not None and data.offset_xyz_vox is not None
    assert data.centre_xyz_vox is not None and data.tomogram_index is not None
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(_POSE_COLUMNS)
    for i in range(len(data)):
        name = data.class_names[int(data.labels[i])]
        w.writerow([f"{i:05d}", name, *(repr(float(x)) for x in data.euler_zyz_deg[i]),
                    *(repr(float(x)) for x in data.offset_xyz_vox[i]),
                    *(repr(float(x)) for x in data.centre_xyz_vox[i]),
                    int(data.tomogram_index[i])])
    return buf.getvalue()


def save_crowded(folder: str | os.PathLike, data: CrowdedSubtomograms) -> Path:
    """Write a crowded set: subtomograms, densities, poses and configuration.

    ``subtomograms/`` and ``density/`` are in the project's data-set format
    (:func:`~cryo_companion.dataset.save_subtomograms`), with ``poses.csv`` and
    ``config.json`` beside them.

    The whole folder is built under a temporary name next to ``folder`` and renamed onto it
    at the end: a failure leaves nothing half-written, and an existing ``folder`` (a stale
    cache entry) is replaced only once the new one is complete.

    Parameters
    ----------
    folder : str or os.PathLike
        Destination folder.
    data : CrowdedSubtomograms
        The set (its ``meta["config"]`` is stored in ``config.json``).

    Returns
    -------
    pathlib.Path
        ``folder``.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        base = SubtomogramSet(data.volumes, data.labels, data.masks, data.class_names,
                              data.voxel_size_A, data.meta)
        save_subtomograms(tmp / "subtomograms", base)
        assert data.density is not None
        save_subtomograms(tmp / "density", SubtomogramSet(
            data.density, data.labels, None, data.class_names, data.voxel_size_A,
            {"unit": "Da/A^3", "what": "noise-free density of each target alone"}))
        write_text(tmp / "poses.csv", _poses_csv(data))
        write_text(tmp / "config.json", json.dumps(
            {"format": FORMAT, "config": data.meta.get("config"),
             "config_hash": data.meta.get("config_hash"), "n": len(data)}, indent=2) + "\n")
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
            os.replace(folder, old / folder.name)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def load_crowded(folder: str | os.PathLike) -> CrowdedSubtomograms:
    """Read a folder written by :func:`save_crowded`.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder.

    Returns
    -------
    CrowdedSubtomograms

    Raises
    ------
    FileNotFoundError
        No such folder or a missing part.
    ValueError
        Another format, or parts that disagree (counts, classes, order).
    """
    folder = Path(folder)
    cfg_file = folder / "config.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"{folder}: no config.json (not a crowded set)")
    head = json.loads(cfg_file.read_text())
    if head.get("format") != FORMAT:
        raise ValueError(f"{folder}: format {head.get('format')!r}, expected {FORMAT!r}")
    sub = load_subtomograms(folder / "subtomograms")
    den = load_subtomograms(folder / "density")
    with open(folder / "poses.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    n = len(sub)
    if len(den) != n or len(rows) != n or head.get("n") != n:
        raise ValueError(f"{folder}: {n} subtomograms, {len(den)} densities, {len(rows)} "
                         f"poses, config says {head.get('n')}")
    if [sub.class_names[k] for k in sub.labels] != [r["class"] for r in rows]:
        raise ValueError(f"{folder}: poses.csv classes do not match the subtomograms")

    def col(*names: str) -> np.ndarray:
        return np.array([[float(r[c]) for c in names] for r in rows], dtype=np.float64)

    meta = {k: v for k, v in sub.meta.items() if k != "source"}
    meta["source"] = str(folder)
    return CrowdedSubtomograms(
        sub.volumes, sub.labels, sub.masks, sub.class_names, sub.voxel_size_A, meta,
        density=den.volumes, euler_zyz_deg=col("phi_deg", "theta_deg", "psi_deg"),
        offset_xyz_vox=col("offset_x_vox", "offset_y_vox", "offset_z_vox"),
        centre_xyz_vox=col("centre_x_vox", "centre_y_vox", "centre_z_vox"),
        tomogram_index=np.array([int(r["tomogram"]) for r in rows], dtype=np.int64))


def ensure_crowded(config: CrowdedConfig, folder: str | os.PathLike | None = None,
                   device: torch.device | str | None = None, *, progress: bool = True,
                   extra_meta: dict[str, Any] | None = None) -> CrowdedSubtomograms:
    """Return the set of ``config`` from its cache folder, generating and saving it if needed.

    Parameters
    ----------
    config : CrowdedConfig
        The data set.
    folder : str or os.PathLike or None
        Cache root (None: :func:`~cryo_companion.dataset.default_data_dir`); the set lives in
        ``ROOT/crowded/CLASSSET_HASH16``.
    device : torch.device or str or None
        Compute device when generating.
    progress : bool
        Progress bars on a terminal.
    extra_meta : dict or None
        Stored in ``meta`` of a newly generated set (e.g. the dose calibration).

    Returns
    -------
    CrowdedSubtomograms
    """
    root = Path(folder) if folder is not None else default_data_dir()
    h = config_hash(config)
    dest = root / "crowded" / f"{config.class_set}_{h[:16]}"
    if (dest / "config.json").is_file():
        try:
            data = load_crowded(dest)
            if data.meta.get("config_hash") == h:
                return data
        except (ValueError, OSError, KeyError):
            pass  # unreadable or stale: regenerate (the folder is this cache's own)
    data = make_crowded(config, device, progress=progress)
    data.meta.update(extra_meta or {})
    save_crowded(dest, data)
    return data


def ensure_calibrated_crowded(config: CrowdedConfig, target_snr: float,
                              folder: str | os.PathLike | None = None, *,
                              pilot_xy: int | None = None, device: torch.device | str | None = None,
                              progress: bool = True, extra_meta: dict[str, Any] | None = None
                              ) -> tuple[CrowdedSubtomograms, DoseCalibration]:
    """Calibrate the dose of ``config`` for ``target_snr`` (cached), then make or read the set.

    Parameters
    ----------
    config : CrowdedConfig
        The data set (its dose is the first one the calibration tries).
    target_snr : float
        The SNR to hit (:func:`ensure_calibration`).
    folder : str or os.PathLike or None
        Cache root (None: :func:`~cryo_companion.dataset.default_data_dir`).
    pilot_xy : int or None
        Lateral size of the calibration's pilot region (None: the data set's).
    device : torch.device or str or None
        Compute device.
    progress : bool
        Progress bars on a terminal.
    extra_meta : dict or None
        Stored in ``meta`` of a newly generated set after ``"calibration"`` (the calibration's
        record).

    Returns
    -------
    tuple
        The data set at the calibrated dose and the calibration.
    """
    cal = ensure_calibration(config, target_snr, folder, pilot_xy=pilot_xy, device=device,
                             progress=progress)
    data = ensure_crowded(replace(config, total_dose_e_A2=cal.dose_e_A2), folder, device,
                          progress=progress,
                          extra_meta={"calibration": cal.to_dict(), **(extra_meta or {})})
    return data, cal
