"""Crowded scenes: macromolecules packed in contact, membranes and an ice slab, with ground truth.

After SHREC 2020 (Gubins et al., section 2.1, and the crowded cytoplasm that
Che et al. 2019 stress in their introduction). A scene is a potential map relative to vitreous
ice (V) on a grid ``(Z, Y, X)`` with voxel ``voxel_size_A``, plus its ground truth:

* ``particles`` — one record per object: ``class_index``, ``class_name``, ``centre_xyz_vox``
  (x, y, z) in **voxel indices of the scene grid** (index 0 = centre of the first voxel),
  ``euler_zyz_deg`` (φ, θ, ψ) in degrees with ``R = Rz(φ) Ry(θ) Rz(ψ)`` acting actively on the
  template's (x, y, z) coordinates about its centre voxel (the convention of
  :mod:`cryo_companion.rotation`), and ``radius_A`` (membranes: the shell radius);
* ``class_mask`` — uint8, 0 = ice/background, ``k + 1`` = class k of ``class_names``;
* ``occupancy`` — int32, 0 = none, ``i + 1`` = ``particles[i]``.

Physics of the potential: a macromolecule of mass density ρ (Da/Å³, from
:func:`cryo_companion.structures.density.load_density`) has mean inner potential
``φ_protein · ρ / ρ_p`` (ρ_p = 0.81 Da/Å³) and displaces ice of potential ``φ_ice`` from the
fraction ``min(ρ / ρ_p, 1)`` of each voxel, so the contrast against ice is
``φ_protein · ρ/ρ_p − φ_ice · min(ρ/ρ_p, 1)``. Membranes are lipid bilayers on spherical shells
(small radius: vesicles; radius larger than the field: gently curved sheets crossing the slab),
with two head-group layers denser than ice and a hydrocarbon core less dense. Vitreous ice is a
slab of the given thickness centred in z with small density fluctuations; outside it is vacuum
(potential relative to ice 0: a laterally uniform layer adds only a constant phase).

Packing: objects never overlap (their envelopes, the ρ ≥ threshold voxels whose volume equals
mass / ρ_p, are disjoint on the grid), and most touch: a proposal is placed next to an already
placed neighbour and slid towards it by bisection until the envelopes are one voxel short of
overlapping (molecular crowding).

Isolation (``SceneSpec.isolation_half_width_A`` > 0, for test sets of isolated particles): the
cube of that half-width centred on any macromolecule holds no part of another macromolecule's
bounding sphere, i.e. the Chebyshev (largest per-axis) distance between two centres is at least
the half-width plus the larger of the two radii. A subtomogram box of that half-width cut around
one of them then contains that molecule alone (plus ice; membranes are not kept out).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from cryo_companion import rotation
from cryo_companion._progress import progress as progress_bar
from cryo_companion.devices import DeviceLike

__all__ = ["Template", "make_template", "Scene", "SceneSpec", "make_scene", "bilayer_potential_V",
           "PackingError", "PROTEIN_DENSITY_DA_A3"]

#: Mean protein density, 1.35 g/cm³ (Fischer et al. 2004).
PROTEIN_DENSITY_DA_A3 = 0.81


class PackingError(ValueError):
    """The requested objects do not fit in the scene."""


@dataclass
class Template:
    """A macromolecule ready to be placed.

    Attributes
    ----------
    name : str
        Class name.
    density : Tensor
        `(D, D, D)` float32 tensor, Da/Å³, D odd, centre of mass at ``D // 2``.
    threshold : float
        Density (Da/Å³) above which a voxel belongs to the envelope.
    volume_A3 : float
        Envelope volume (Å³) = mass / ρ_p.
    radius_vox : float
        Radius of the envelope's bounding sphere about the centre (voxels).
    """

    name: str
    density: Tensor
    threshold: float
    volume_A3: float
    radius_vox: float


def make_template(name: str, density: np.ndarray | Tensor, voxel_size_A: float) -> Template:
    """Prepare a density (Da/Å³, centre of mass at ``D // 2``) for packing.

    The box is trimmed to the smallest odd cube holding the envelope (so that the rotation
    centre ``(D − 1)/2`` is the centre-of-mass voxel). The envelope threshold is chosen so that
    the envelope's volume equals the molecule's mass divided by the protein density.

    Parameters
    ----------
    name : str
        Class name.
    density : np.ndarray or Tensor
        `(D, D, D)` density in Da/Å³, z-y-x, centre of mass at voxel ``D // 2``.
    voxel_size_A : float
        Voxel edge in Å.

    Returns
    -------
    Template
        The trimmed float32 density (odd edge), its envelope threshold, volume and radius.

    Raises
    ------
    ValueError
        If the density is not a cube, not finite or has no positive value.
    """
    d = torch.as_tensor(np.asarray(density, dtype=np.float32))
    if d.ndim != 3 or len(set(d.shape)) != 1:
        raise ValueError(f"template {name!r}: density must be a cube (D, D, D), "
                         f"got {tuple(d.shape)}")
    if not bool(torch.isfinite(d).all()) or float(d.max()) <= 0:
        raise ValueError(f"template {name!r}: density must be finite with a positive maximum")
    d = d.clamp_min(0)
    D = d.shape[0]
    if D % 2 == 0:  # centre of mass at D // 2: keep [1:] so it sits at the middle of an odd box
        d = d[1:, 1:, 1:]
        D -= 1
    v_vox = voxel_size_A ** 3
    mass = float(d.sum()) * v_vox
    n_env = max(1, int(round(mass / PROTEIN_DENSITY_DA_A3 / v_vox)))
    vals = torch.sort(d.flatten(), descending=True).values
    threshold = float(vals[min(n_env, vals.numel()) - 1])
    env = d >= threshold
    c = (D - 1) / 2
    idx = torch.nonzero(env).float()
    r = float(((idx - c) ** 2).sum(1).sqrt().max()) + 0.5
    half = min(D // 2, int(math.ceil(r)) + 1)
    d = d[D // 2 - half:D // 2 + half + 1, D // 2 - half:D // 2 + half + 1,
          D // 2 - half:D // 2 + half + 1].contiguous()
    return Template(name=name, density=d, threshold=threshold, volume_A3=n_env * v_vox,
                    radius_vox=r)


def bilayer_potential_V(distance_A: Tensor, voxel_size_A: float) -> Tensor:
    """Compute the potential of a lipid bilayer relative to ice at a distance from its mid-plane.

    Two head-group layers at ±19 Å (Gaussian, sd 4 Å, +2.0 V: phosphocholine is denser than
    water) and a hydrocarbon core (sd 9 Å, −0.6 V: alkyl chains are less dense than ice), so the
    head-to-head distance is about 4 nm as in cryo-ET of membranes. Each Gaussian is widened by
    the voxel's own width (variance + a²/12) with its integral kept, so a coarse grid does not
    alias it.

    Parameters
    ----------
    distance_A : Tensor
        Signed distances from the mid-plane in Å, any shape.
    voxel_size_A : float
        Voxel edge in Å (the width each Gaussian is widened by).

    Returns
    -------
    Tensor
        Potential in V relative to ice, the shape of ``distance_A``.
    """
    a2 = voxel_size_A ** 2 / 12

    def g(mu: float, sd: float, amp: float) -> Tensor:
        s = math.sqrt(sd * sd + a2)
        return amp * sd / s * torch.exp(-0.5 * ((distance_A - mu) / s) ** 2)

    return g(19.0, 4.0, 2.0) + g(-19.0, 4.0, 2.0) + g(0.0, 9.0, -0.6)


#: half-thickness of a membrane's envelope (Å): head groups ± 2 sd
MEMBRANE_HALF_THICKNESS_A = 27.0


@dataclass
class SceneSpec:
    """What to put in a scene.

    Attributes
    ----------
    shape : tuple of int
        `(Z, Y, X)` voxels.
    voxel_size_A : float
        Voxel edge (Å).
    ice_thickness_A : float
        Thickness of the vitreous ice slab, centred in z (Å).
    counts : dict of str to int
        ``{template name: number of copies}``.
    vesicles : int, optional
        Number of vesicles (radius uniform in ``vesicle_radius_A``).
    sheets : int, optional
        Number of gently curved membrane sheets (radius uniform in ``sheet_radius_A``).
    vesicle_radius_A : tuple of float, optional
        ``(low, high)`` radius range of vesicles (Å); capped so a vesicle fits in the ice.
    sheet_radius_A : tuple of float, optional
        ``(low, high)`` radius range of the sheets' spheres (Å), larger than the field.
    membrane_class : str or None, optional
        Class name of membranes (or None: no membranes allowed).
    phi_protein_V, phi_ice_V : float, optional
        Mean inner potentials (V).
    ice_sd_V : float, optional
        Sd of the ice's voxel-wise potential fluctuation (V).
    contact_fraction : float, optional
        Fraction of proposals placed in contact with a neighbour.
    max_tries : int, optional
        Proposals per object before the packing is declared unsatisfiable.
    isolation_half_width_A : float, optional
        Half-width (Å) of the cube around each macromolecule that no other macromolecule's
        bounding sphere may enter (module docstring); 0 turns isolation off. Needs
        ``contact_fraction`` 0.
    skip_unplaceable : bool, optional
        Leave out a macromolecule that finds no free place in ``max_tries`` proposals (counted
        in ``Scene.stats["skipped"]``) instead of raising :class:`PackingError`; for isolated
        packings, whose capacity is not known in advance.
    """

    shape: tuple[int, int, int]
    voxel_size_A: float
    ice_thickness_A: float
    counts: dict[str, int]
    vesicles: int = 0
    sheets: int = 0
    vesicle_radius_A: tuple[float, float] = (250.0, 600.0)
    sheet_radius_A: tuple[float, float] = (4000.0, 12000.0)
    membrane_class: str | None = "membrane"
    phi_protein_V: float = 7.0
    phi_ice_V: float = 4.5
    ice_sd_V: float = 0.05
    contact_fraction: float = 0.8
    max_tries: int = 200
    isolation_half_width_A: float = 0.0
    skip_unplaceable: bool = False


@dataclass
class Scene:
    """A crowded scene and its ground truth (see the module docstring for conventions).

    Attributes
    ----------
    potential_V : Tensor
        `(Z, Y, X)` float32 potential relative to vitreous ice in V.
    class_mask : Tensor
        `(Z, Y, X)` uint8: 0 ice/background, ``k + 1`` class k of ``class_names``.
    occupancy : Tensor
        `(Z, Y, X)` int32: 0 none, ``i + 1`` object ``particles[i]``.
    particles : list of dict
        One record per object (module docstring).
    class_names : list of str
        Class order of ``class_mask``.
    voxel_size_A : float
        Voxel edge in Å.
    ice_z_vox : tuple of int
        First and last z index inside the ice slab.
    stats : dict
        Counts and the occupied fraction of the ice (:func:`make_scene`).
    """

    potential_V: Tensor
    class_mask: Tensor
    occupancy: Tensor
    particles: list[dict[str, Any]]
    class_names: list[str]
    voxel_size_A: float
    ice_z_vox: tuple[int, int]
    stats: dict[str, Any] = field(default_factory=dict)


def _check_spec(spec: SceneSpec, templates: dict[str, Template],
                class_names: Sequence[str]) -> None:
    """Refuse a spec that cannot be built, before any work (the order of the checks is fixed)."""
    _check_geometry(spec)
    _check_counts(spec, templates, class_names)
    iso = spec.isolation_half_width_A
    if not (math.isfinite(iso) and iso >= 0):
        raise ValueError(f"isolation_half_width_A must be a finite value >= 0, got {iso}")
    if iso > 0 and spec.contact_fraction > 0:
        raise ValueError(f"isolation (isolation_half_width_A {iso:g} Å) excludes contact "
                         f"packing: contact_fraction must be 0, got {spec.contact_fraction}")
    if (spec.vesicles or spec.sheets) and spec.membrane_class not in class_names:
        raise KeyError(f"membrane class {spec.membrane_class!r} is not in {list(class_names)}")
    _check_capacity(spec, templates)


def _check_geometry(spec: SceneSpec) -> None:
    """Check the scene's shape, voxel size and ice thickness."""
    if len(spec.shape) != 3 or any(int(s) < 1 for s in spec.shape):
        raise ValueError(f"scene shape must be three positive sizes (Z, Y, X), got {spec.shape}")
    if not spec.voxel_size_A > 0:
        raise ValueError(f"voxel_size_A must be > 0, got {spec.voxel_size_A}")
    Z = spec.shape[0]
    if not 0 < spec.ice_thickness_A <= Z * spec.voxel_size_A:
        raise ValueError(f"ice thickness {spec.ice_thickness_A:g} Å must be in (0, "
                         f"{Z * spec.voxel_size_A:g}] Å (the scene height)")


def _check_counts(spec: SceneSpec, templates: dict[str, Template],
                  class_names: Sequence[str]) -> None:
    """Check that every counted class has a template, is in the class set and counts >= 0."""
    for name, n in spec.counts.items():
        if name not in templates:
            raise KeyError(f"no structure for class {name!r}; available: {sorted(templates)}")
        if name not in class_names:
            raise KeyError(f"class {name!r} is not in the class set {list(class_names)}")
        if n < 0:
            raise ValueError(f"count of {name!r} must be >= 0, got {n}")


def _check_capacity(spec: SceneSpec, templates: dict[str, Template]) -> None:
    """Refuse an unsatisfiable packing: too much envelope volume, or a molecule thicker than ice.

    Envelopes cannot fill more than the random-close-packing fraction of spheres (0.64) of the
    ice slab; 55 % is the limit used.
    """
    ice_vol = spec.ice_thickness_A * spec.shape[1] * spec.shape[2] * spec.voxel_size_A ** 2
    need = sum(templates[k].volume_A3 * n for k, n in spec.counts.items())
    if need > 0.55 * ice_vol:
        raise PackingError(
            f"unsatisfiable packing: the particles' envelopes need {need / 1e9:.3g}e9 Å³, "
            f"{need / ice_vol:.0%} of the ice slab ({ice_vol / 1e9:.3g}e9 Å³); at most 55% "
            "can be packed: fewer particles, a bigger scene or thicker ice")
    for name, t in templates.items():
        r_A = t.radius_vox * spec.voxel_size_A
        if spec.counts.get(name, 0) and 2 * r_A > spec.ice_thickness_A:
            raise PackingError(f"{name!r} ({2 * r_A:.0f} Å across) does not fit in "
                               f"{spec.ice_thickness_A:g} Å of ice")


def _region(centre: Sequence[int], half: int,
            shape: Sequence[int]) -> tuple[tuple[slice, ...], tuple[slice, ...]]:
    """Return slices of the scene and of a (2h+1)³ box centred at ``centre`` (z, y, x), clipped."""
    out_s, box_s = [], []
    for c, n in zip(centre, shape):
        lo, hi = c - half, c + half + 1
        out_s.append(slice(max(lo, 0), min(hi, n)))
        box_s.append(slice(max(lo, 0) - lo, 2 * half + 1 - (hi - min(hi, n))))
    return tuple(out_s), tuple(box_s)


def _uniform(g: torch.Generator, a: float, b: float) -> float:
    """Draw one float64 uniform on [a, b) from ``g``."""
    return a + (b - a) * float(torch.rand((), generator=g, dtype=torch.float64))


@dataclass
class _Canvas:
    """The volumes and the particle list of a scene while it is built."""

    pot: Tensor
    cmask: Tensor
    occ: Tensor
    particles: list[dict[str, Any]]
    z_lo: int
    z_hi: int
    in_ice: Tensor

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(Z, Y, X)`` of the scene."""
        Z, Y, X = self.occ.shape
        return Z, Y, X


def _empty_canvas(spec: SceneSpec, dev: torch.device) -> _Canvas:
    """Make empty volumes and the ice slab's z range (centred, ``ice_thickness_A`` thick)."""
    Z, Y, X = (int(s) for s in spec.shape)
    ice_half = spec.ice_thickness_A / float(spec.voxel_size_A) / 2
    z_lo = int(math.floor((Z - 1) / 2 - ice_half + 0.5))
    z_hi = int(math.ceil((Z - 1) / 2 + ice_half - 0.5))
    zz = torch.arange(Z, device=dev, dtype=torch.float32).reshape(Z, 1, 1)
    in_ice = ((zz >= z_lo) & (zz <= z_hi)).expand(Z, Y, X)
    return _Canvas(pot=torch.zeros(Z, Y, X, device=dev),
                   cmask=torch.zeros(Z, Y, X, dtype=torch.uint8, device=dev),
                   occ=torch.zeros(Z, Y, X, dtype=torch.int32, device=dev),
                   particles=[], z_lo=z_lo, z_hi=z_hi, in_ice=in_ice)


def make_scene(spec: SceneSpec, templates: dict[str, Template], class_names: Sequence[str],
               generator: torch.Generator | None = None, device: DeviceLike = None,
               *, progress: bool = False) -> Scene:
    """Build a crowded scene.

    Parameters
    ----------
    spec : SceneSpec
        What to place and where.
    templates : dict of str to Template
        ``{name: Template}`` for every name in ``spec.counts``, at ``spec.voxel_size_A``.
    class_names : sequence of str
        Class order of ``class_mask`` (value k + 1 = ``class_names[k]``).
    generator : torch.Generator or None, optional
        CPU torch generator: same seed, same scene (None: seed 0).
    device : DeviceLike, optional
        Where the volumes live (default CPU).
    progress : bool, optional
        Progress bar over objects (on a terminal only).

    Returns
    -------
    Scene
        The potential, class mask, occupancy and particle list (membranes first, then the
        macromolecules, largest first), with ``stats``: ``n_objects``, ``n_macromolecules``,
        ``n_membranes``, ``contact_placements``, ``occupied_fraction_of_ice`` (and ``skipped``
        with ``spec.skip_unplaceable``).

    Raises
    ------
    ValueError
        For a shape, voxel size, ice thickness, count or isolation width out of range, or
        isolation together with contact packing.
    KeyError
        For a class without a template, or not in ``class_names`` (membranes included).
    PackingError
        The objects cannot fit (checked up front from volumes; or when an object finds no free
        place in ``max_tries`` proposals). Nothing is returned half-built.
    """
    class_names = list(class_names)
    _check_spec(spec, templates, class_names)
    dev = torch.device(device) if device is not None else torch.device("cpu")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    canvas = _empty_canvas(spec, dev)
    n_membranes = _place_membranes(canvas, spec, class_names, g)
    n_todo, n_contact, n_skipped = _place_macromolecules(canvas, spec, templates, class_names,
                                                         g, progress=progress)
    if spec.ice_sd_V > 0:
        gd = torch.Generator(device=dev).manual_seed(
            int(torch.randint(0, 2**62, (1,), generator=g)))
        noise = torch.randn(*canvas.shape, generator=gd, device=dev) * spec.ice_sd_V
        canvas.pot += noise * canvas.in_ice * (canvas.occ == 0)
    Z, Y, X = canvas.shape
    ice_vox = (canvas.z_hi - canvas.z_lo + 1) * Y * X
    stats: dict[str, Any] = {
        "n_objects": len(canvas.particles), "n_macromolecules": n_todo - n_skipped,
        "n_membranes": n_membranes, "contact_placements": n_contact,
        "occupied_fraction_of_ice": float((canvas.occ > 0).sum()) / ice_vox}
    if spec.skip_unplaceable:
        stats["skipped"] = n_skipped
    return Scene(potential_V=canvas.pot, class_mask=canvas.cmask, occupancy=canvas.occ,
                 particles=canvas.particles, class_names=class_names,
                 voxel_size_A=float(spec.voxel_size_A), ice_z_vox=(canvas.z_lo, canvas.z_hi),
                 stats=stats)


# --- membranes first (large objects), each a shell that must not cross another ----------------

def _place_membranes(canvas: _Canvas, spec: SceneSpec, class_names: list[str],
                     g: torch.Generator) -> int:
    """Place ``spec.vesicles`` vesicles, then ``spec.sheets`` sheets; return how many."""
    kinds = ["vesicle"] * spec.vesicles + ["sheet"] * spec.sheets
    if not kinds:
        return 0
    mem_k = class_names.index(str(spec.membrane_class)) + 1
    Z, Y, X = canvas.shape
    dev = canvas.occ.device
    grids = (torch.arange(Z, device=dev, dtype=torch.float32).reshape(Z, 1, 1),
             torch.arange(Y, device=dev, dtype=torch.float32).reshape(1, Y, 1),
             torch.arange(X, device=dev, dtype=torch.float32).reshape(1, 1, X))
    for kind in kinds:
        for _ in range(spec.max_tries):
            c, R = _draw_membrane(kind, canvas, spec, g)
            if _try_membrane(canvas, grids, c, R, kind, mem_k, spec):
                break
        else:
            raise PackingError(f"could not place a {kind} without crossing another membrane in "
                               f"{spec.max_tries} tries: fewer membranes or a bigger scene")
    return len(kinds)


def _draw_membrane(kind: str, canvas: _Canvas, spec: SceneSpec,
                   g: torch.Generator) -> tuple[Tensor, float]:
    """Draw a shell: its centre ``(x, y, z)`` and radius, both in voxels."""
    Z, Y, X = canvas.shape
    vs = float(spec.voxel_size_A)
    dev = canvas.occ.device
    if kind == "vesicle":
        ice_half = spec.ice_thickness_A / vs / 2
        R = _uniform(g, *spec.vesicle_radius_A) / vs
        R = min(R, ice_half - MEMBRANE_HALF_THICKNESS_A / vs)
        if R < 2 * MEMBRANE_HALF_THICKNESS_A / vs:
            raise PackingError("ice too thin for a vesicle")
        c = torch.tensor([_uniform(g, 0, X - 1), _uniform(g, 0, Y - 1),
                          _uniform(g, canvas.z_lo + R, canvas.z_hi - R)], device=dev)
        return c, R
    R = _uniform(g, *spec.sheet_radius_A) / vs
    # centre far outside the field: a gently curved sheet through the slab
    n = torch.randn(3, generator=g, dtype=torch.float64)
    n[2] *= 0.5
    n = (n / n.norm()).to(dev, torch.float32)
    p = torch.tensor([_uniform(g, 0.15, 0.85) * (X - 1), _uniform(g, 0.15, 0.85) * (Y - 1),
                      (Z - 1) / 2], device=dev)
    return p + R * n, R


def _try_membrane(canvas: _Canvas, grids: tuple[Tensor, Tensor, Tensor], c: Tensor, R: float,
                  kind: str, mem_k: int, spec: SceneSpec) -> bool:
    """Add the shell if it lies in the ice, 3 nm clear of other membranes; True if added."""
    zz, yy, xx = grids
    vs = float(spec.voxel_size_A)
    d = (torch.sqrt((xx - c[0]) ** 2 + (yy - c[1]) ** 2 + (zz - c[2]) ** 2) - R) * vs
    env = (d.abs() <= MEMBRANE_HALF_THICKNESS_A) & canvas.in_ice
    if not bool(env.any()):
        return False
    near = (d.abs() <= MEMBRANE_HALF_THICKNESS_A + 30.0) & canvas.in_ice
    if bool((canvas.occ[near] > 0).any()):
        return False
    i = len(canvas.particles) + 1
    shell = (d.abs() <= 3 * MEMBRANE_HALF_THICKNESS_A) & canvas.in_ice
    canvas.pot[shell] += bilayer_potential_V(d[shell], vs)
    canvas.occ[env] = i
    canvas.cmask[env] = mem_k
    canvas.particles.append({"class_index": mem_k - 1, "class_name": spec.membrane_class,
                             "kind": kind, "centre_xyz_vox": [float(v) for v in c.tolist()],
                             "euler_zyz_deg": [0.0, 0.0, 0.0], "radius_A": R * vs})
    return True


# --- macromolecules, largest first ------------------------------------------------------------

@dataclass
class _Oriented:
    """A template turned into its pose: density, envelope and the centres' allowed z range."""

    rot: Tensor
    env: Tensor
    half: int
    lo_z: int
    hi_z: int
    radius_vox: float


def _orient(t: Template, Rm: Tensor, canvas: _Canvas) -> _Oriented:
    """Rotate a template by ``Rm`` ``(1, 3, 3)``; its envelope must stay inside the ice in z."""
    dev = canvas.occ.device
    rot = rotation.rotate_volumes(t.density.to(dev)[None], Rm.to(dev))[0].clamp_min(0)
    env = rot >= t.threshold
    half = t.density.shape[0] // 2
    zs = torch.nonzero(env.any(dim=(1, 2))).flatten()
    zmin, zmax = int(zs.min()) - half, int(zs.max()) - half     # envelope extent in z
    return _Oriented(rot, env, half, canvas.z_lo - zmin, canvas.z_hi - zmax, t.radius_vox)


class _Packer:
    """Free-place search for macromolecules: no overlap, contact or isolation as asked."""

    def __init__(self, canvas: _Canvas, spec: SceneSpec, g: torch.Generator) -> None:
        self.canvas, self.spec, self.g = canvas, spec, g
        self.placed_c: list[Tensor] = []
        self.placed_r: list[float] = []
        self.iso_vox = spec.isolation_half_width_A / float(spec.voxel_size_A)

    def _isolated(self, pos: tuple[int, int, int], radius_vox: float) -> bool:
        """Tell whether ``pos`` keeps the isolation distance from every placed centre."""
        # Chebyshev distance to every placed centre >= half-width + the larger radius
        d = (torch.stack(self.placed_c) - torch.tensor(pos, dtype=torch.float32)).abs().amax(1)
        need = self.iso_vox + torch.clamp(torch.tensor(self.placed_r), min=radius_vox)
        return bool((d >= need).all())

    def free(self, o: _Oriented, cz: int, cy: int, cx: int) -> bool:
        """Tell whether the posed envelope fits at ``(cz, cy, cx)``."""
        if not o.lo_z <= cz <= o.hi_z:
            return False
        if self.iso_vox > 0 and self.placed_c and not self._isolated((cz, cy, cx), o.radius_vox):
            return False
        so, sb = _region((cz, cy, cx), o.half, self.canvas.shape)
        return not bool((self.canvas.occ[so] > 0)[o.env[sb]].any())

    def find(self, o: _Oriented) -> tuple[tuple[int, int, int] | None, bool]:
        """Search ``max_tries`` proposals; return the place (or None) and whether by contact."""
        g = self.g
        _, Y, X = self.canvas.shape
        for _ in range(self.spec.max_tries):
            if self.placed_c and _uniform(g, 0, 1) < self.spec.contact_fraction:
                pos = self._contact(o)
                if pos is not None:
                    return pos, True
            else:
                cand = (int(torch.randint(max(1, o.hi_z - o.lo_z + 1), (1,), generator=g))
                        + o.lo_z,
                        int(torch.randint(Y, (1,), generator=g)),
                        int(torch.randint(X, (1,), generator=g)))
                if self.free(o, *cand):
                    return cand, False
        return None, False

    def _contact(self, o: _Oriented) -> tuple[int, int, int] | None:
        """Propose a place next to a random placed neighbour, slid towards it by bisection."""
        _, Y, X = self.canvas.shape
        k = int(torch.randint(len(self.placed_c), (1,), generator=self.g))
        dirv = torch.randn(3, generator=self.g, dtype=torch.float64)
        dirv = (dirv / dirv.norm()).to(torch.float32)
        far = self.placed_r[k] + o.radius_vox + 1.5
        cz0, cy0, cx0 = (self.placed_c[k] + far * dirv).round().long().tolist()
        if not (0 <= cy0 < Y and 0 <= cx0 < X) or not self.free(o, cz0, cy0, cx0):
            return None
        # bisection on the distance to the neighbour: closest free position
        a, b = 0.0, far
        best = (cz0, cy0, cx0)
        for _ in range(6):
            m = (a + b) / 2
            cz, cy, cx = (self.placed_c[k] + m * dirv).round().long().tolist()
            if self.free(o, cz, cy, cx):
                b, best = m, (cz, cy, cx)
            else:
                a = m
        return best

    def add(self, pos: tuple[int, int, int], radius_vox: float) -> None:
        """Record a placed centre and its bounding radius."""
        self.placed_c.append(torch.tensor(pos, dtype=torch.float32))
        self.placed_r.append(radius_vox)


def _place_macromolecules(canvas: _Canvas, spec: SceneSpec, templates: dict[str, Template],
                          class_names: list[str], g: torch.Generator, *,
                          progress: bool) -> tuple[int, int, int]:
    """Place ``spec.counts``, largest first; return ``(to place, by contact, skipped)``."""
    order = sorted(((n, t) for n, c in spec.counts.items() for t in [c]),
                   key=lambda nt: -templates[nt[0]].volume_A3)
    todo = [name for name, c in order for _ in range(c)]
    R_all = rotation.random_rotation_matrices(len(todo), g)
    packer = _Packer(canvas, spec, g)
    n_contact = n_skipped = 0
    bar = progress_bar(total=len(todo), desc="packing", show=progress, leave=False)
    for j, name in enumerate(todo):
        t = templates[name]
        Rm = R_all[j:j + 1]
        o = _orient(t, Rm, canvas)
        pos, by_contact = packer.find(o)
        if pos is None and spec.skip_unplaceable:
            n_skipped += 1
            bar.update(1)
            continue
        if pos is None:
            bar.close()
            raise PackingError(
                f"unsatisfiable packing: no free place for {name!r} (object {j + 1} of "
                f"{len(todo)}) after {spec.max_tries} tries; fewer particles or a bigger scene")
        n_contact += by_contact
        _stamp(canvas, o, pos, Rm, class_names.index(name), name, spec)
        packer.add(pos, t.radius_vox)
        bar.update(1)
    bar.close()
    return len(todo), n_contact, n_skipped


def _stamp(canvas: _Canvas, o: _Oriented, pos: tuple[int, int, int], Rm: Tensor, k: int,
           name: str, spec: SceneSpec) -> None:
    """Write a placed macromolecule into the potential, occupancy, class mask and list."""
    so, sb = _region(pos, o.half, canvas.shape)
    # protein displaces ice (module docstring)
    frac = o.rot[sb] / PROTEIN_DENSITY_DA_A3
    canvas.pot[so] += spec.phi_protein_V * frac - spec.phi_ice_V * frac.clamp(max=1.0)
    i = len(canvas.particles) + 1
    e = o.env[sb]
    canvas.occ[so][e] = i  # the slice is a view: the masked assignment writes through
    canvas.cmask[so][e] = k + 1
    phi, theta, psi = rotation.matrix_to_euler_zyz(Rm.to(torch.float64))
    canvas.particles.append({"class_index": k, "class_name": name, "kind": "macromolecule",
                             "centre_xyz_vox": [float(pos[2]), float(pos[1]), float(pos[0])],
                             "euler_zyz_deg": [math.degrees(float(a)) for a in (phi, theta, psi)],
                             "radius_A": o.radius_vox * float(spec.voxel_size_A)})
