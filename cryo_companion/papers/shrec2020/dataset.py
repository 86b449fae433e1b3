"""The SHREC 2020 data set made by this package's simulator, from the benchmark's recipe.

Gubins et al. 2020, Sec. 2.1, and the organisers' generator as configured for the benchmark:
ten cell-like tomograms of twelve complexes (Table 1), 2,400-2,800 copies each at
random positions and uniformly random orientations, never overlapping but free to touch; 200 nm
of ice with a mean potential and random variation; 41 tilts from −60° to +60° in 3° steps;
per-tilt structural noise (beam damage); multislice propagation in 5 nm slices; the exit wave
through a CTF at 3 µm underfocus, 300 kV, Cs 2.7 mm, 8 % amplitude contrast and a Gaussian
decay; detector noise at an "SNR" of 0.05 per projection; weighted back-projection to 512³ at
1 nm per voxel. Model 9 is the test model.

How the recipe maps onto this package (the choices the paper leaves open are :data:`CHOICES`):

* **Grand model.** The particles are packed by :func:`cryo_companion.simulate.scene.make_scene`
  (``contact_fraction=0``: random sequential placement, rejection of overlapping envelopes,
  touching allowed) into the ground-truth field of ``field_vox``² x ``thickness_vox`` voxels
  (512² x 200) and embedded at the centre of a grand model ``grand_model_factor`` times wider
  (1024²), whose margin is ice: the tilted projections of the central field take their rays
  through it, and the periodic FFTs of multislice do not wrap onto the recorded field.
* **Solvent.** The organisers add a solvent potential 0.15 (sd 0.01) where the protein density
  is below 0.242, scaled by ``(1 − ρ/0.242)`` (their map units). Here densities are in Da/Å³ and
  potentials in V (:mod:`cryo_companion.simulate.scene`: protein 7.0 V at ρ_p = 0.81 Da/Å³, ice
  4.5 V, displaced in proportion ``min(ρ/ρ_p, 1)``). 0.242 is read as the protein interior level
  in units where ice is 0.15 (0.242/0.15 = 1.61, the scene module's 7.0/4.5 = 1.56), so the
  displacement rule is the scene module's, and the solvent's variation is its mean times
  0.01/0.15 = 6.7 %, drawn per voxel and scaled by the solvent fraction ``1 − min(ρ/ρ_p, 1)``.
* **Structural noise.** sd 0.04 in the same units, i.e. 0.04/0.15 of the ice potential per
  voxel, drawn anew for every tilt (:class:`~cryo_companion.simulate.tiltseries.Imaging`).
* **Gaussian CTF decay 0.4⁻¹.** Read as the TOM/SHREC simulators' envelope
  ``exp(−(k / (0.4 k_Nyquist))²)``, a B-factor ``B = 4 / (0.4 k_Nyquist)²`` (10,000 Å² at 1 nm).
* **Noise.** :func:`~cryo_companion.simulate.tiltseries.snr_noise` at SNR 0.05 per projection
  (half CTF-modulated, half white), computed on each recorded projection. The paper's 0.004 is
  not a parameter: :func:`measure_snr` measures it on our result.

Coordinates: volumes z-y-x; the ground truth is in the mask's frame (512 x 512 x 200, slices
0-199), the reconstruction's slice ``z + 156`` holds the mask's slice ``z`` (the official
evaluation's z + 156 convention); particle centres are whole voxel indices, 0-based, x-y-z.
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from scipy.spatial import cKDTree

from cryo_companion import rotation
from cryo_companion.papers.shrec2020.metrics import BENCHMARK_SCRIPT, CLASS_ORDER, evaluate
from cryo_companion.papers.shrec2020.paper_tables import TABLE2_COUNTS
from cryo_companion.papers.shrec2020.particles import ParticleList
from cryo_companion.simulate.scene import Scene, SceneSpec, make_scene
from cryo_companion.simulate.tiltseries import Imaging, reconstruct, simulate_tilt_series
from cryo_companion.simulate.tomogram import load_templates
from cryo_companion.structures.catalogue import class_set

__all__ = [
    "self_evaluation_rows",
    "CHOICES",
    "DATASET_SEED",
    "PAPER_SNR",
    "RECIPES",
    "ShrecModel",
    "ShrecRecipe",
    "choices_markdown",
    "class_counts",
    "counts_table",
    "crowding_rows",
    "crowding_stats",
    "fill_cavities",
    "make_model",
    "measure_snr",
    "model_seed",
    "recipe",
    "recipe_rows",
    "snr_rows",
    "templates_for",
    "zyz_to_zxz_deg",
]

#: The data set's seed (every model's own seed is derived from it and the model's number), so
#: that the command line, the chapter and the methods' chapters make the same models.
DATASET_SEED = 2020
#: Gubins et al. 2020, Sec. 2.1 and 2.3 (cited): the SNR of the 2020 data ("0.004").
PAPER_SNR = 0.004
#: Gubins et al. 2020, Sec. 2.1 (cited): solvent 0.15 (sd 0.01) below the density 0.242;
#: structural noise sd 0.04; all in the organisers' map units.
_SOLVENT_MEAN, _SOLVENT_SD, _STRUCTURAL_SD = 0.15, 0.01, 0.04


@dataclass(frozen=True)
class ShrecRecipe:
    """The parameters of one data set (paper scale: :data:`RECIPES` ``["paper"]``).

    Attributes
    ----------
    field_vox : int
        Ground-truth field and projections, x and y (voxels): 512.
    thickness_vox : int
        Ice thickness = ground-truth slices (voxels): 200.
    reconstruction_slices : int
        Slices of the reconstruction (512); the ground truth sits in the middle
        (``(512 − 200) / 2 = 156`` slices above and below).
    grand_model_factor : int
        Grand-model width over the field (2: 1024²).
    margin_px : int
        Pixels simulated beyond the recorded field on each side (32): the multislice FFTs are
        periodic, and the wave spreads by a few pixels (CTF delocalisation λ|Δf|k ≈ 3 nm at
        Nyquist); along the tilt axis the grand model is used only this far beyond the field.
    voxel_size_A : float
        Voxel and pixel edge (Å): 10.
    particles : tuple of int
        Range (inclusive) of the number of particles per model: 2,400-2,800.
    classes : tuple of str
        PDB IDs placed (Table 1; the twelve by default); equal probabilities.
    tilt_min_deg, tilt_max_deg, tilt_step_deg : float
        −60° to +60° in 3° steps (41 tilts).
    voltage_kv, cs_mm, amplitude_contrast, defocus_um : float
        300 kV, 2.7 mm, 0.08, −3 µm (negative = underfocus).
    ctf_decay_nyquist : float
        The Gaussian CTF decay: envelope 1/e at this fraction of Nyquist (0.4).
    slice_thickness_A : float
        Multislice slice thickness (Å): 50.
    phi_protein_V, phi_ice_V : float
        Mean inner potentials of protein and ice (V), as in the scene module.
    solvent_sd_fraction : float
        Sd of the solvent potential over its mean (0.01 / 0.15).
    structural_noise_fraction : float
        Sd of the per-tilt structural noise over the ice potential (0.04 / 0.15).
    snr : float
        Detector-noise SNR per projection (0.05).
    """

    field_vox: int = 512
    thickness_vox: int = 200
    reconstruction_slices: int = 512
    grand_model_factor: int = 2
    margin_px: int = 32
    voxel_size_A: float = 10.0
    particles: tuple[int, int] = (2400, 2800)
    classes: tuple[str, ...] = CLASS_ORDER
    tilt_min_deg: float = -60.0
    tilt_max_deg: float = 60.0
    tilt_step_deg: float = 3.0
    voltage_kv: float = 300.0
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.08
    defocus_um: float = -3.0
    ctf_decay_nyquist: float = 0.4
    slice_thickness_A: float = 50.0
    phi_protein_V: float = 7.0
    phi_ice_V: float = 4.5
    solvent_sd_fraction: float = _SOLVENT_SD / _SOLVENT_MEAN
    structural_noise_fraction: float = _STRUCTURAL_SD / _SOLVENT_MEAN
    snr: float = 0.05

    def __post_init__(self) -> None:
        """Validate the parameters (one clear error naming what is wrong)."""
        for name in ("field_vox", "thickness_vox", "reconstruction_slices", "grand_model_factor"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.margin_px < 0 or self.field_vox + 2 * self.margin_px > \
                self.field_vox * self.grand_model_factor:
            raise ValueError(f"margin_px {self.margin_px} must be >= 0 and fit in the grand "
                             f"model ({self.grand_model_factor} x {self.field_vox})")
        if self.reconstruction_slices < self.thickness_vox or \
                (self.reconstruction_slices - self.thickness_vox) % 2:
            raise ValueError(
                f"reconstruction_slices {self.reconstruction_slices} must hold the "
                f"{self.thickness_vox} ground-truth slices with an even margin")
        lo, hi = self.particles
        if not 0 <= lo <= hi:
            raise ValueError(f"particles range {self.particles} must be 0 <= low <= high")
        unknown = [c for c in self.classes if c not in CLASS_ORDER]
        if unknown or not self.classes:
            raise ValueError(f"classes {list(self.classes)}: valid PDB IDs are "
                             f"{', '.join(CLASS_ORDER)}")
        for name in ("voxel_size_A", "ctf_decay_nyquist", "slice_thickness_A", "snr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not self.phi_protein_V > self.phi_ice_V > 0:
            raise ValueError("potentials must satisfy phi_protein_V > phi_ice_V > 0")

    @property
    def z_offset(self) -> int:
        """Slices of the reconstruction above the ground truth (156 at paper scale)."""
        return (self.reconstruction_slices - self.thickness_vox) // 2

    @property
    def bfactor_A2(self) -> float:
        """B-factor of the Gaussian CTF decay: ``4 / (decay · k_Nyquist)²`` (Å²)."""
        k_ny = 0.5 / self.voxel_size_A
        return 4.0 / (self.ctf_decay_nyquist * k_ny) ** 2

    def imaging(self) -> Imaging:
        """Return the tilt-series parameters of the recipe."""
        return Imaging(tilt_min_deg=self.tilt_min_deg, tilt_max_deg=self.tilt_max_deg,
                       tilt_step_deg=self.tilt_step_deg, voltage_kv=self.voltage_kv,
                       cs_mm=self.cs_mm, amplitude_contrast=self.amplitude_contrast,
                       defocus_um=self.defocus_um, defocus_tilt_sd_um=0.0,
                       bfactor_per_dose_A2=0.0, bfactor_A2=self.bfactor_A2,
                       ice_thickness_A=self.thickness_vox * self.voxel_size_A,
                       slab_thickness_A=self.slice_thickness_A, propagation="multislice",
                       structural_noise_sd_V=self.structural_noise_fraction * self.phi_ice_V,
                       noise_model="snr", snr=self.snr, detector_mtf=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters."""
        d = asdict(self)
        d["particles"], d["classes"] = list(self.particles), list(self.classes)
        return d


#: Paper scale (the benchmark's sizes) and smoke scale (a 96² field with the paper's 200
#: slices and 156-slice offset, about a hundred particles: a CPU check, not the data set).
RECIPES: dict[str, ShrecRecipe] = {
    "paper": ShrecRecipe(),
    "smoke": ShrecRecipe(field_vox=96, particles=(84, 98)),
}


def recipe(scale: str, **overrides: Any) -> ShrecRecipe:
    """Return the recipe of ``scale`` (``"paper"`` or ``"smoke"``) with optional overrides.

    Parameters
    ----------
    scale : str
        ``"paper"`` or ``"smoke"``.
    **overrides
        :class:`ShrecRecipe` fields to change (``field_vox=128``, ...); ``field_vox`` alone also
        scales the particle range by the field's area (unless ``particles`` is given) and
        keeps ``margin_px`` inside the grand model.

    Returns
    -------
    ShrecRecipe
    """
    if scale not in RECIPES:
        raise ValueError(f"unknown scale {scale!r}; valid: {', '.join(RECIPES)}")
    base = RECIPES[scale]
    if "field_vox" in overrides:
        f = int(overrides["field_vox"])
        if "particles" not in overrides:
            a = (f / base.field_vox) ** 2
            overrides["particles"] = (round(base.particles[0] * a), round(base.particles[1] * a))
        if "margin_px" not in overrides:
            factor = int(overrides.get("grand_model_factor", base.grand_model_factor))
            overrides["margin_px"] = min(base.margin_px, f * (factor - 1) // 2)
    return replace(base, **overrides)


#: Where this data set differs from the paper's (or where the paper is silent): stated in the
#: chapter. Each entry: (topic, the paper / the organisers' generator, this package).
CHOICES: tuple[tuple[str, str, str], ...] = (
    ('structures',
     'density maps of the 12 PDB entries at 3 Å (Chimera), resampled to 1 nm',
     ('the offline structures (atoms -> Gaussians, or 10 Å maps), 4d8q replaced by 4v94 '
      '(the same TRiC/CCT complex): see the structures chapter')),
    ('tilts',
     "'40 evenly spaced tilt angles' from -60 to +60 deg (text)",
     "41 tilts in 3 deg steps (the organisers' configuration)"),
    ('rotation of the grand model',
     'the 1024^2 x 200 model rotated per tilt (cubic B-spline)',
     ('line integrals through the untilted model along tilted rays (bilinear), per 5 nm '
      'slab of beam height')),
    ('field of the projections',
     '1024^2 projections of the 1024^2 grand model, cropped to 512^2 (presumably)',
     ('576^2 simulated (512 + 2 x 32 px margin) and cropped to 512^2: the rays still cross'
      ' the 1024-wide grand model along x; along y only the margin is needed')),
    ('placement',
     'random positions, no overlap, no limit on closeness',
     ('random sequential placement with rejection (contact_fraction 0); centres within the'
      " 512^2 field, the grand model's margin holds ice only; envelopes kept inside the "
      '200 slices (particles may touch z = 0 and 199 and are cut at the lateral edges)')),
    ('occupancy and class masks',
     'voxel -> particle and voxel -> class (the threshold is not stated)',
     ('the envelope (the densest voxels, of volume mass / 0.81 Da/A^3) with the solvent it '
      "encloses (TRiC's chamber) given to the particle, so that every listed centre lies in "
      'its own particle (fill_cavities)')),
    ('potential units',
     'map densities with solvent 0.15 +- 0.01 below 0.242',
     ('V relative to ice: protein 7.0 V, ice 4.5 V, 0.242 read as the protein level '
      '(module docstring); solvent variation 6.7 % of the ice potential')),
    ('amplitude contrast',
     '8 % (no formula given)',
     ('a complex slice potential: transmission exp(sigma v (i sqrt(1 - A^2) - A)), which '
      'gives the CTF sin(chi - arcsin A) in the weak-phase limit')),
    ('structural noise',
     'sd 0.04 after each rotation (beam damage), in the map units',
     'white noise of sd 0.04/0.15 x 4.5 V = 1.2 V per voxel, drawn anew for each tilt'),
    ('CTF decay',
     "'Gaussian CTF decay of 0.4^-1'",
     'envelope exp(-(k / 0.4 k_Nyquist)^2), B = 10,000 A^2 at 1 nm'),
    ('detector noise',
     "CTF-dependent and background noise, 'SNR 0.004'",
     ('Gaussian noise of variance var(projection)/0.05, half CTF-filtered and half white; '
      'no detector MTF; the SNR is measured on the result (measure_snr)')),
    ('reconstruction',
     'weighted back-projection, 512^3 at 1 nm',
     ('R-weighted (Ram-Lak) back-projection into 512 slices; mass appears dark (physical '
      'sign), the ground truth in slices 156-355')),
    ('particle list',
     'ZZX (sic) Euler angles',
     ("ZXZ: R = Rz(rot_Z1) Rx(rot_X) Rz(rot_Z2) active on the template's x, y, z about its"
      ' centre voxel, degrees')),
)


def model_seed(seed: int, model: int) -> int:
    """Seed of one model: a deterministic function of the data set's seed and the model index."""
    return int(np.random.SeedSequence([int(seed), int(model)]).generate_state(1)[0])


def class_counts(recipe_: ShrecRecipe, generator: torch.Generator) -> dict[str, int]:
    """Draw the copies per class of one model: a total uniform in the range, split uniformly.

    Parameters
    ----------
    recipe_ : ShrecRecipe
        The recipe (``particles``, ``classes``).
    generator : torch.Generator
        CPU generator.

    Returns
    -------
    dict of str to int
        PDB ID -> copies, in the recipe's class order.
    """
    lo, hi = recipe_.particles
    n = lo + int(torch.randint(hi - lo + 1, (1,), generator=generator))
    k = len(recipe_.classes)
    draw = torch.multinomial(torch.full((k,), 1.0 / k, dtype=torch.float64), n, replacement=True,
                             generator=generator) if n else torch.zeros(0, dtype=torch.long)
    counts = torch.bincount(draw, minlength=k).tolist()
    return dict(zip(recipe_.classes, (int(c) for c in counts)))


def zyz_to_zxz_deg(euler_zyz_deg: Sequence[float]) -> tuple[float, float, float]:
    """ZYZ Euler angles (this package) to the benchmark's ZXZ triple, degrees.

    ``Rz(φ) Ry(θ) Rz(ψ) = Rz(φ + 90°) Rx(θ) Rz(ψ − 90°)`` because ``Ry(θ) = Rz(90°) Rx(θ)
    Rz(−90°)``.

    Parameters
    ----------
    euler_zyz_deg : sequence of float
        ``(φ, θ, ψ)`` with ``R = Rz(φ) Ry(θ) Rz(ψ)``.

    Returns
    -------
    tuple of float
        ``(rot_Z1, rot_X, rot_Z2)`` with ``R = Rz(rot_Z1) Rx(rot_X) Rz(rot_Z2)``, the z angles
        wrapped to (−180, 180].
    """
    phi, theta, psi = (float(a) for a in euler_zyz_deg)

    def wrap(a: float) -> float:
        w = math.remainder(a, 360.0)
        return 180.0 if w == -180.0 else w

    return wrap(phi + 90.0), theta, wrap(psi - 90.0)


@dataclass
class ShrecModel:
    """One model of the data set: the benchmark's volumes, its particle list and statistics.

    Attributes
    ----------
    index : int
        Model number (0-9; 9 is the test model).
    reconstruction : np.ndarray
        `(reconstruction_slices, field, field)` float32 WBP tomogram, z-y-x.
    grandmodel, grandmodel_noisefree : np.ndarray
        `(thickness, field, field)` float32 potential (V, absolute: ice 4.5 V), with and
        without the solvent's random variation.
    class_mask : np.ndarray
        `(thickness, field, field)` int16: 0 background, ``k`` = the ``k``-th class of
        :data:`~cryo_companion.papers.shrec2020.metrics.CLASS_ORDER` (1-based, by weight).
    occupancy : np.ndarray
        `(thickness, field, field)` int16 (int32 beyond 32,767 particles): 0 background,
        ``i`` = the ``i``-th particle of ``particles`` (1-based).
    particles : list of dict
        ``pdb``, ``xyz`` (whole voxels, 0-based, mask frame), ``zxz_deg`` per particle.
    stats : dict
        Counts per class, crowding, SNR, timing (JSON-ready).
    """

    index: int
    reconstruction: np.ndarray
    grandmodel: np.ndarray
    grandmodel_noisefree: np.ndarray
    class_mask: np.ndarray
    occupancy: np.ndarray
    particles: list[dict]
    stats: dict = field(default_factory=dict)


def crowding_stats(occupancy: np.ndarray, centres_xyz: np.ndarray,
                   voxel_size_A: float) -> dict[str, Any]:
    """How crowded a model is: occupied fraction, contacts, nearest-neighbour distances.

    Parameters
    ----------
    occupancy : np.ndarray
        `(z, y, x)` labels, 0 background, ``i`` = particle ``i`` (1-based).
    centres_xyz : np.ndarray
        `(N, 3)` particle centres (voxels, x-y-z).
    voxel_size_A : float
        Voxel edge (Å).

    Returns
    -------
    dict
        ``occupied_fraction`` (of the volume), ``touching_fraction`` (particles whose envelope
        shares a face with another's), ``contacts_per_particle`` (mean number of distinct
        neighbours touched), ``nn_centre_distance_nm`` (median, 5th percentile and minimum of the
        nearest-neighbour centre distances).
    """
    occ = np.asarray(occupancy)
    n = len(centres_xyz)
    pairs: set[tuple[int, int]] = set()
    for ax in range(3):
        a = np.moveaxis(occ, ax, 0)
        u, v = a[:-1].ravel(), a[1:].ravel()
        m = (u > 0) & (v > 0) & (u != v)
        if m.any():
            p = np.unique(np.stack([np.minimum(u[m], v[m]), np.maximum(u[m], v[m])]), axis=1)
            pairs.update(map(tuple, p.T.tolist()))
    touched = np.zeros(n + 1, dtype=np.int64)
    for i, j in pairs:
        touched[i] += 1
        touched[j] += 1
    out: dict[str, Any] = {"n_particles": n, "occupied_fraction": float((occ > 0).mean()),
                           "touching_pairs": len(pairs),
                           "touching_fraction": float((touched[1:] > 0).mean()) if n else None,
                           "contacts_per_particle": float(touched[1:].mean()) if n else None}
    if n >= 2:
        d, _ = cKDTree(np.asarray(centres_xyz, dtype=np.float64)).query(centres_xyz, k=2)
        nn = d[:, 1] * voxel_size_A / 10.0
        out["nn_centre_distance_nm"] = {"median": float(np.median(nn)),
                                        "p5": float(np.percentile(nn, 5)), "min": float(nn.min())}
    else:
        out["nn_centre_distance_nm"] = None
    return out


def fill_cavities(occupancy: np.ndarray, class_mask: np.ndarray, particles: Sequence[Mapping],
                  templates: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Give each particle the solvent its envelope encloses (TRiC's chamber).

    A particle's envelope (its ρ ≥ threshold voxels, :mod:`cryo_companion.simulate.scene`) can
    enclose solvent, and a chaperonin's centre of mass lies in it: without this, the particle's
    own listed centre would be a background voxel and a detection there a false positive. The
    enclosed voxels are found in the template's own frame (``binary_fill_holes`` of its
    envelope, so a particle cut by the field's edge keeps its chamber), turned like the particle
    and given to it where they are background.

    Parameters
    ----------
    occupancy : np.ndarray
        `(z, y, x)` labels, 0 background, ``i`` = ``particles[i − 1]``.
    class_mask : np.ndarray
        `(z, y, x)` class labels of the same voxels.
    particles : sequence of mapping
        The scene's particle records (``class_name``, ``centre_xyz_vox``, ``euler_zyz_deg``).
    templates : mapping
        Class name -> :class:`~cryo_companion.simulate.scene.Template` used for the scene.

    Returns
    -------
    tuple of np.ndarray
        The filled occupancy and class mask (copies).
    """
    occ, cm = np.array(occupancy, copy=True), np.array(class_mask, copy=True)
    if occ.shape != cm.shape or occ.ndim != 3:
        raise ValueError(f"occupancy {occ.shape} and class mask {cm.shape} must be the same 3-D "
                         "shape")
    cavity: dict[str, torch.Tensor] = {}
    for name, t in templates.items():
        env = (t.density >= t.threshold).cpu().numpy()
        cavity[name] = torch.from_numpy(ndimage.binary_fill_holes(env) & ~env)
    for i, p in enumerate(particles, start=1):
        cav = cavity.get(p["class_name"])
        if cav is None or not bool(cav.any()):
            continue
        e = torch.deg2rad(torch.tensor(p["euler_zyz_deg"], dtype=torch.float64))
        R = rotation.euler_zyz_to_matrix(e[0], e[1], e[2]).to(torch.float32)
        turned = (rotation.rotate_volumes(cav.float()[None], R[None])[0] >= 0.5).numpy()
        half = cav.shape[0] // 2
        cx, cy, cz = (round(float(v)) for v in p["centre_xyz_vox"])
        grid, box = [], []
        for c, n in zip((cz, cy, cx), occ.shape):
            lo, hi = c - half, c + half + 1
            grid.append(slice(max(lo, 0), min(hi, n)))
            box.append(slice(max(lo, 0) - lo, 2 * half + 1 - (hi - min(hi, n))))
        g, b = tuple(grid), tuple(box)
        add = turned[b] & (occ[g] == 0)
        if add.any():
            occ[g][add] = i
            cm[g][add] = CLASS_ORDER.index(p["class_name"]) + 1
    return occ, cm


def measure_snr(clean: torch.Tensor, noisy: torch.Tensor) -> float:
    """Variance ratio ``var(clean) / var(noisy − clean)``: the SNR of a noisy image or volume.

    Parameters
    ----------
    clean : torch.Tensor
        The noise-free signal (any shape).
    noisy : torch.Tensor
        The same with noise, same shape.

    Returns
    -------
    float
    """
    if clean.shape != noisy.shape:
        raise ValueError(f"clean {tuple(clean.shape)} and noisy {tuple(noisy.shape)} differ")
    c = clean.double()
    return float(c.var() / (noisy.double() - c).var())


def _solvent_fraction(pot_rel: torch.Tensor, r: ShrecRecipe) -> torch.Tensor:
    """``1 − min(ρ/ρ_p, 1)`` from the scene's potential relative to ice (no membranes)."""
    return 1.0 - (pot_rel / (r.phi_protein_V - r.phi_ice_V)).clamp(0.0, 1.0)


def templates_for(r: ShrecRecipe) -> dict:
    """Prepare the templates of the recipe's classes at its voxel size (offline structures).

    Parameters
    ----------
    r : ShrecRecipe
        The recipe (``classes``, ``voxel_size_A``).

    Returns
    -------
    dict
        PDB ID -> :class:`~cryo_companion.simulate.scene.Template` (4d8q from entry 4v94).
    """
    entries = {c.paper_id: c.entry for c in class_set("shrec2020").classes}
    return load_templates({p: str(entries[p]) for p in r.classes}, r.voxel_size_A)


def make_model(r: ShrecRecipe, index: int, seed: int, device: torch.device | str | None = None,
               *, templates: Mapping | None = None, snr: bool = True,
               progress: bool = False) -> ShrecModel:
    """Simulate one model of the data set.

    Parameters
    ----------
    r : ShrecRecipe
        The recipe.
    index : int
        Model number (>= 0; the benchmark's are 0-9, 9 the test model).
    seed : int
        Seed of the data set (:func:`model_seed` gives this model's).
    device : torch.device or str or None
        Where the simulation runs (CPU by default).
    templates : mapping or None
        Prepared templates by PDB ID (:func:`cryo_companion.simulate.tomogram.load_templates`
        at the recipe's voxel size); None loads them.
    snr : bool
        Also simulate the noise-free series and measure the SNR (twice the imaging work).
    progress : bool
        Progress bars (on a terminal only).

    Returns
    -------
    ShrecModel
    """
    if int(index) < 0:
        raise ValueError(f"model index must be >= 0, got {index}")
    dev = torch.device(device) if device is not None else torch.device("cpu")
    t0 = time.perf_counter()
    tpl = dict(templates) if templates is not None else templates_for(r)
    g = torch.Generator().manual_seed(model_seed(seed, index))
    counts = class_counts(r, g)
    F, Z, vs = r.field_vox, r.thickness_vox, r.voxel_size_A
    spec = SceneSpec(shape=(Z, F, F), voxel_size_A=vs, ice_thickness_A=Z * vs, counts=counts,
                     membrane_class=None, phi_protein_V=r.phi_protein_V, phi_ice_V=r.phi_ice_V,
                     ice_sd_V=0.0, contact_fraction=0.0, max_tries=500)
    scene: Scene = make_scene(spec, tpl, CLASS_ORDER, g, dev, progress=progress)
    _sync(dev)
    t_scene = time.perf_counter()
    # grand model: the field at the centre of an ice slab grand_model_factor times wider
    G = F * r.grand_model_factor
    m = (G - F) // 2
    gd = torch.Generator(device=dev).manual_seed(int(torch.randint(0, 2**62, (1,), generator=g)))
    pot = torch.zeros(Z, G, G, device=dev)
    pot[:, m:m + F, m:m + F] = scene.potential_V
    solvent = _solvent_fraction(pot, r)
    fluct = (r.solvent_sd_fraction * r.phi_ice_V) * solvent * torch.randn(
        Z, G, G, generator=gd, device=dev)
    specimen = pot + fluct                                   # relative to ice (V)
    imaging = r.imaging()
    series = simulate_tilt_series(specimen, vs, imaging, g, progress=progress,
                                  detector_shape=(F, F), field_margin_px=r.margin_px)
    tomo = reconstruct(series, r.reconstruction_slices)
    _sync(dev)
    t_img = time.perf_counter()
    stats: dict[str, Any] = {}
    if snr:
        clean = simulate_tilt_series(specimen, vs, imaging, g, noise=False, progress=progress,
                                     detector_shape=(F, F), field_margin_px=r.margin_px)
        tomo_clean = reconstruct(clean, r.reconstruction_slices)
        zs = slice(r.z_offset, r.z_offset + Z)
        per_tilt = [measure_snr(c, n) for c, n in zip(clean.images, series.images)]
        zero = int(np.argmin(np.abs(series.tilts_deg)))
        stats["snr"] = {"parameter_per_projection": r.snr,
                        "projection_mean": float(np.mean(per_tilt)),
                        "projection_0deg": per_tilt[zero],
                        "tomogram_specimen_slices": measure_snr(tomo_clean[zs], tomo[zs]),
                        "paper": PAPER_SNR}
        _sync(dev)
    t_end = time.perf_counter()
    inner = (slice(None), slice(m, m + F), slice(m, m + F))
    noisefree = (pot[inner] + r.phi_ice_V).cpu().numpy().astype(np.float32)
    occ, cmask = fill_cavities(scene.occupancy.cpu().numpy(), scene.class_mask.cpu().numpy(),
                               scene.particles, tpl)
    occ_dtype = np.int16 if occ.max(initial=0) <= np.iinfo(np.int16).max else np.int32
    particles = [{"pdb": p["class_name"], "xyz": [round(v) for v in p["centre_xyz_vox"]],
                  "zxz_deg": list(zyz_to_zxz_deg(p["euler_zyz_deg"]))} for p in scene.particles]
    centres = np.array([p["xyz"] for p in particles], dtype=np.float64).reshape(-1, 3)
    per_class = {c: 0 for c in CLASS_ORDER}
    for p in particles:
        per_class[p["pdb"]] += 1
    stats.update({"model": int(index), "seed": model_seed(seed, index), "dataset_seed": int(seed),
                  "n_particles": len(particles), "requested": counts, "counts": per_class,
                  "crowding": crowding_stats(occ, centres, vs), "scene": scene.stats,
                  "tilts": len(series.tilts_deg), "device": str(dev),
                  "timing_s": {"scene": t_scene - t0, "tilt_series_and_wbp": t_img - t_scene,
                               "snr_measurement": t_end - t_img, "total": t_end - t0}})
    return ShrecModel(
        index=int(index), reconstruction=tomo.cpu().numpy().astype(np.float32),
        grandmodel=noisefree + fluct[inner].cpu().numpy().astype(np.float32),
        grandmodel_noisefree=noisefree, class_mask=cmask.astype(np.int16),
        occupancy=occ.astype(occ_dtype), particles=particles, stats=stats)


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def counts_table(counts: Mapping[str, int]) -> dict[str, dict[str, int | None]]:
    """Rows of the chapter's table: this model's copies per class beside the paper's Table 2.

    Parameters
    ----------
    counts : mapping of str to int
        PDB ID -> copies in our test model (9).

    Returns
    -------
    dict
        ``{"Table 2 (paper, model 9)": {pdb: n}, "this companion (model 9)": {pdb: n}}`` with a
        ``total`` column; classes in :data:`CLASS_ORDER`.
    """
    paper = {c: TABLE2_COUNTS[c] for c in CLASS_ORDER}
    ours = {c: int(counts.get(c, 0)) for c in CLASS_ORDER}
    return {"Table 2 (paper, model 9)": {**paper, "total": sum(paper.values())},
            "this companion (model 9)": {**ours, "total": sum(ours.values())}}



def snr_rows(snr: Mapping[str, Any]) -> dict[str, dict[str, float | str | None]]:
    """Rows of the chapter's SNR table: the paper's number beside ours, each labelled.

    Parameters
    ----------
    snr : mapping
        ``ShrecModel.stats["snr"]`` (:func:`make_model`).

    Returns
    -------
    dict
        Row name -> ``{"SNR": value, "where": what it is}``.
    """
    return {
        "paper, Sec. 2.1 (cited)": {"SNR": PAPER_SNR, "where": "as stated in the paper"},
        "recipe parameter": {"SNR": snr.get("parameter_per_projection"),
                             "where": "detector noise, per projection"},
        "measured: projections": {"SNR": snr.get("projection_mean"),
                                  "where": "mean over tilts, structural + detector noise"},
        "measured: 0 deg projection": {"SNR": snr.get("projection_0deg"),
                                       "where": "the untilted projection"},
        "measured: tomogram": {"SNR": snr.get("tomogram_specimen_slices"),
                               "where": "WBP, the 200 slices of the specimen"},
    }


def crowding_rows(crowding: Mapping[str, Any]) -> dict[str, dict[str, float | int | None]]:
    """Rows of the chapter's crowding table (:func:`crowding_stats` of one model).

    Parameters
    ----------
    crowding : mapping
        ``ShrecModel.stats["crowding"]``.

    Returns
    -------
    dict
        Row name -> ``{"value": number}``.
    """
    nn = crowding.get("nn_centre_distance_nm") or {}
    return {"particles": {"value": crowding.get("n_particles")},
            "occupied fraction of the volume": {"value": crowding.get("occupied_fraction")},
            "particles touching another": {"value": crowding.get("touching_fraction")},
            "touching pairs": {"value": crowding.get("touching_pairs")},
            "contacts per particle": {"value": crowding.get("contacts_per_particle")},
            "nearest-neighbour centre distance, median (nm)": {"value": nn.get("median")},
            "nearest-neighbour centre distance, 5th pct (nm)": {"value": nn.get("p5")},
            "nearest-neighbour centre distance, min (nm)": {"value": nn.get("min")}}


def choices_markdown() -> str:
    """Return the differences from the paper (:data:`CHOICES`) as a Markdown table."""
    lines = ["| topic | the paper / the organisers' generator | this companion |",
             "|---|---|---|"]
    lines += [f"| {t} | {p} | {o} |" for t, p, o in CHOICES]
    return "\n".join(lines)


def recipe_rows(r: ShrecRecipe) -> dict[str, dict[str, str]]:
    """Return the rows of the chapter's recipe table: parameter -> ``{"value": text}``.

    Parameters
    ----------
    r : ShrecRecipe
        The recipe.

    Returns
    -------
    dict
    """
    return {k: {"value": str(v)} for k, v in r.to_dict().items()}


def self_evaluation_rows(truth: ParticleList, occupancy: np.ndarray,
                         class_mask: np.ndarray) -> dict[str, dict[str, float | int | None]]:
    """Score a model's ground truth against itself in both evaluation modes (a check: all TP).

    Parameters
    ----------
    truth : ParticleList
        The model's particle list (mask frame, 0-based voxels).
    occupancy : numpy.ndarray
        `(200, Y, X)` occupancy map (voxel -> 1-based particle index).
    class_mask : numpy.ndarray
        `(200, Y, X)` class map.

    Returns
    -------
    dict
        ``{"default": row, "benchmark script": row}`` with ``TP``, ``particles``, ``FP``,
        ``RO``, ``F1``, ``z shift`` and ``mean class F1``.
    """
    out: dict[str, dict[str, float | int | None]] = {}
    for name, kw in (("default", {}), ("benchmark script", BENCHMARK_SCRIPT)):
        ev = evaluate(truth, truth, occupancy, class_mask=class_mask, **kw)
        loc = ev.localisation
        out[name] = {"TP": loc.TP, "particles": loc.n_particles, "FP": loc.FP, "RO": loc.RO,
                     "F1": loc.f1, "z shift": loc.z_shift,
                     "mean class F1": ev.classification.mean_f1}
    return out

