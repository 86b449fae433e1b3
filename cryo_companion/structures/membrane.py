"""Procedural membrane patches: a curved lipid bilayer crossing the box (Che et al. 2019's class 1).

The domain randomization paper's fourth class is membrane (Sec. IV: 460 mitochondrial-membrane
subtomograms in its real test set); there is no atomic structure for it, so we draw bilayer
patches. Across the membrane the density profile is two dense head-group leaflets (Gaussian
profiles ``leaflet_fwhm_A`` ≈ 2 nm thick, centres ``spacing_A`` ≈ 4 nm apart) and a lighter
hydrocarbon core between them. The mid-surface is a sphere of random radius (or a plane), with
a random orientation of its normal and a random offset from the box centre; optionally a
membrane protein from ``maps_10A/mb_*`` (aligned there with the membrane normal along z) is
embedded at the point of the surface nearest the centre, rotated with the membrane.

Values are mass densities in Da/Å³ like every volume of :mod:`cryo_companion.structures`
(protein interior ≈ 0.81; lipid head groups are about as dense, the tails lighter).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal, overload

import numpy as np
from scipy import ndimage
from scipy.special import erf

__all__ = [
    "MEMBRANE_PROTEINS",
    "MembraneParams",
    "membrane_patch",
    "membrane_profile",
    "random_rotation_matrix",
]

#: Membrane proteins of the offline mirror (maps_10A/mb_*), membrane normal along z.
MEMBRANE_PROTEINS = ("mb_4pe5", "mb_5gjv", "mb_5ide", "mb_5kxi", "mb_5tj6", "mb_5tqq",
                     "mb_5vai", "mb_5wek", "mb_6rd4")


@dataclass(frozen=True)
class MembraneParams:
    """The drawn parameters of one patch (returned with ``return_params=True``).

    Attributes
    ----------
    normal_zyx : tuple of float
        `(3,)` unit normal (z, y, x) of the membrane at the point nearest the box centre.
    offset_A : float
        Signed distance of the mid-surface from the box centre along the normal (Å).
    radius_A : float
        Radius of curvature of the mid-surface (Å); ``inf`` for a flat patch.
    protein : str or None
        The embedded membrane protein entry, or None.
    protein_angle_deg : float
        Rotation of the protein about the membrane normal (degrees).
    """

    normal_zyx: tuple[float, float, float]
    offset_A: float
    radius_A: float
    protein: str | None
    protein_angle_deg: float

    def as_dict(self) -> dict[str, Any]:
        """Return the parameters as a plain dict.

        Returns
        -------
        dict
            JSON-friendly: the fields, with an infinite radius as None.
        """
        d = asdict(self)
        d["radius_A"] = None if math.isinf(self.radius_A) else self.radius_A
        return d


def membrane_profile(distance_A: np.ndarray, *, spacing_A: float = 40.0,
                     leaflet_fwhm_A: float = 20.0, leaflet_density: float = 0.8,
                     core_density: float = 0.5) -> np.ndarray:
    """Compute the bilayer density at a signed distance from the mid-surface.

    Two Gaussian leaflets of peak ``leaflet_density`` and FWHM ``leaflet_fwhm_A`` centred at
    ``±spacing_A / 2``, plus a core of ``core_density`` between the leaflet centres (smoothed
    with the same Gaussian edge); the maximum of the two is taken so leaflets are not doubled.

    Parameters
    ----------
    distance_A : np.ndarray
        Signed distances from the mid-surface in Å, any shape.
    spacing_A : float
        Distance between the leaflets' centres in Å.
    leaflet_fwhm_A : float
        Full width at half maximum of each leaflet in Å.
    leaflet_density : float
        Peak density of a leaflet in Da/Å³.
    core_density : float
        Density of the hydrocarbon core in Da/Å³.

    Returns
    -------
    np.ndarray
        float64 densities in Da/Å³, the shape of ``distance_A``.
    """
    sigma = leaflet_fwhm_A / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    d = np.asarray(distance_A, dtype=np.float64)
    half = spacing_A / 2.0
    leaflets = leaflet_density * (np.exp(-0.5 * ((d - half) / sigma) ** 2)
                                  + np.exp(-0.5 * ((d + half) / sigma) ** 2))
    core = core_density * 0.5 * (erf((half - np.abs(d)) / (math.sqrt(2.0) * sigma)) + 1.0)
    return np.maximum(leaflets, core)


def random_rotation_matrix(rng: np.random.Generator) -> np.ndarray:
    """Draw a uniformly random 3x3 rotation from a random unit quaternion.

    Parameters
    ----------
    rng : np.random.Generator
        Source of the four normal draws.

    Returns
    -------
    np.ndarray
        `(3, 3)` float64 rotation matrix acting on z-y-x vectors.
    """
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _frame_from_normal(n: np.ndarray, angle_rad: float) -> np.ndarray:
    """Return the rotation R (z-y-x) with R @ e_z = n, spun by ``angle_rad`` about n."""
    ez = np.array([1.0, 0.0, 0.0])  # z axis in (z, y, x) coordinates
    v = np.cross(ez, n)
    s, c = np.linalg.norm(v), float(ez @ n)
    if s < 1e-12:
        base = np.eye(3) if c > 0 else np.diag([-1.0, -1.0, 1.0])
    else:
        k = v / s
        kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
        base = np.eye(3) + s * kx + (1 - c) * kx @ kx
    kx = np.array([[0, -ez[2], ez[1]], [ez[2], 0, -ez[0]], [-ez[1], ez[0], 0]])
    spin = np.eye(3) + math.sin(angle_rad) * kx + (1 - math.cos(angle_rad)) * kx @ kx
    return base @ spin


@overload
def membrane_patch(box: int, voxel_size_A: float, rng: np.random.Generator | int | None = None,
                   *, spacing_A: float = ..., leaflet_fwhm_A: float = ...,
                   leaflet_density: float = ..., core_density: float = ...,
                   radius_range_A: tuple[float, float] = ..., flat_probability: float = ...,
                   max_offset_A: float | None = ..., protein: str | None = ...,
                   resolution_A: float | None = ...,
                   return_params: Literal[False] = ...) -> np.ndarray: ...
@overload
def membrane_patch(box: int, voxel_size_A: float, rng: np.random.Generator | int | None = None,
                   *, spacing_A: float = ..., leaflet_fwhm_A: float = ...,
                   leaflet_density: float = ..., core_density: float = ...,
                   radius_range_A: tuple[float, float] = ..., flat_probability: float = ...,
                   max_offset_A: float | None = ..., protein: str | None = ...,
                   resolution_A: float | None = ...,
                   return_params: Literal[True]) -> tuple[np.ndarray, MembraneParams]: ...
@overload
def membrane_patch(box: int, voxel_size_A: float, rng: np.random.Generator | int | None = None,
                   *, spacing_A: float = ..., leaflet_fwhm_A: float = ...,
                   leaflet_density: float = ..., core_density: float = ...,
                   radius_range_A: tuple[float, float] = ..., flat_probability: float = ...,
                   max_offset_A: float | None = ..., protein: str | None = ...,
                   resolution_A: float | None = ..., return_params: bool = ...,
                   ) -> np.ndarray | tuple[np.ndarray, MembraneParams]: ...
def membrane_patch(box: int, voxel_size_A: float, rng: np.random.Generator | int | None = None,
                   *, spacing_A: float = 40.0, leaflet_fwhm_A: float = 20.0,
                   leaflet_density: float = 0.8, core_density: float = 0.5,
                   radius_range_A: tuple[float, float] = (150.0, 2000.0),
                   flat_probability: float = 0.25, max_offset_A: float | None = None,
                   protein: str | None = None, resolution_A: float | None = None,
                   return_params: bool = False,
                   ) -> np.ndarray | tuple[np.ndarray, MembraneParams]:
    """Draw a random bilayer patch crossing a ``box``³ volume.

    Parameters
    ----------
    box : int
        Edge of the cubic volume (voxels).
    voxel_size_A : float
        Voxel edge (Å), e.g. 13.68 (Che et al. 2019).
    rng : np.random.Generator, int or None, optional
        ``np.random.Generator`` or seed; every random choice comes from it.
    spacing_A : float, optional
        Distance between the two leaflets' centres (Å); head-group to head-group distance of a
        bilayer, about 4 nm.
    leaflet_fwhm_A : float, optional
        Thickness (full width at half maximum, Å) of each leaflet, about 2 nm.
    leaflet_density : float, optional
        Peak density of a leaflet (Da/Å³); lipid head groups, about 1.35 g/cm³ = 0.8 Da/Å³, as
        dense as protein.
    core_density : float, optional
        Density of the hydrocarbon core between the leaflets (Da/Å³); lipid tails, about
        0.85 g/cm³ = 0.5 Da/Å³.
    radius_range_A : tuple of float, optional
        ``(low, high)`` range of the radius of curvature (Å), drawn log-uniformly (15-200 nm:
        small vesicles to nearly flat mitochondrial membranes).
    flat_probability : float, optional
        Probability of a flat patch (infinite radius).
    max_offset_A : float or None, optional
        Largest distance of the mid-surface from the box centre (Å), drawn uniformly in
        ``[-max, max]``; default a quarter of the box edge.
    protein : str or None, optional
        Embed a membrane protein: an entry (``"mb_5gjv"``), ``"random"`` (one of
        :data:`MEMBRANE_PROTEINS` drawn with ``rng``) or None.
    resolution_A : float or None, optional
        Resolution of the embedded protein (see ``load_density``).
    return_params : bool, optional
        Also return the drawn :class:`MembraneParams`.

    Returns
    -------
    np.ndarray or tuple of (np.ndarray, MembraneParams)
        `(box, box, box)` float32, z-y-x, Da/Å³; with ``return_params``, the volume and the
        drawn parameters.

    Raises
    ------
    ValueError
        For a box that is not an integer >= 4, a voxel size, spacing or leaflet width that is
        not > 0, an empty or non-positive radius range, a flat probability outside [0, 1], or
        a protein that is not None, ``"random"`` or an ``mb_*`` entry.
    """
    _check_patch(box, voxel_size_A, radius_range_A, flat_probability, spacing_A,
                 leaflet_fwhm_A, protein)
    lo, hi = radius_range_A
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    max_off = 0.25 * box * voxel_size_A if max_offset_A is None else float(max_offset_A)

    n = rng.normal(size=3)
    n /= np.linalg.norm(n)
    offset = float(rng.uniform(-max_off, max_off))
    flat = bool(rng.random() < flat_probability)
    radius = math.inf if flat else float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    side = 1.0 if rng.random() < 0.5 else -1.0  # bulging towards +n or -n

    c = box // 2
    ax = (np.arange(box) - c) * voxel_size_A
    z, y, x = np.meshgrid(ax, ax, ax, indexing="ij")
    pts = np.stack([z, y, x], axis=-1)
    p0 = offset * n  # point of the mid-surface nearest the box centre
    if flat:
        dist = (pts - p0) @ n
    else:
        centre = p0 - side * radius * n
        dist = side * (np.linalg.norm(pts - centre, axis=-1) - radius)
    vol = membrane_profile(dist, spacing_A=spacing_A, leaflet_fwhm_A=leaflet_fwhm_A,
                           leaflet_density=leaflet_density, core_density=core_density)

    name, angle = None, 0.0
    if protein is not None:
        name = str(rng.choice(MEMBRANE_PROTEINS)) if protein == "random" else str(protein)
        angle = float(rng.uniform(0.0, 360.0))
        vol = _embed_protein(vol, name, angle, n, p0, box, voxel_size_A, resolution_A)
    out = vol.astype(np.float32)
    if return_params:
        normal = (float(n[0]), float(n[1]), float(n[2]))
        return out, MembraneParams(normal, offset, radius, name, angle)
    return out


def _check_patch(box: int, voxel_size_A: float, radius_range_A: tuple[float, float],
                 flat_probability: float, spacing_A: float, leaflet_fwhm_A: float,
                 protein: str | None) -> None:
    """Refuse arguments of :func:`membrane_patch` out of range, before any draw."""
    if not (isinstance(box, (int, np.integer)) and box >= 4):
        raise ValueError(f"box {box!r} must be an integer >= 4")
    if not voxel_size_A > 0:
        raise ValueError(f"voxel size {voxel_size_A} Å must be > 0")
    lo, hi = radius_range_A
    if not 0 < lo <= hi:
        raise ValueError(f"radius_range_A {radius_range_A} must satisfy 0 < low <= high")
    if not 0.0 <= flat_probability <= 1.0:
        raise ValueError(f"flat_probability {flat_probability} must be in [0, 1]")
    for nm, val in (("spacing_A", spacing_A), ("leaflet_fwhm_A", leaflet_fwhm_A)):
        if not val > 0:
            raise ValueError(f"{nm} {val} must be > 0")
    if protein not in (None, "random") and not str(protein).startswith("mb_"):
        raise ValueError(f"protein {protein!r}: use None, 'random' or an mb_* entry "
                         f"({', '.join(MEMBRANE_PROTEINS)})")


def _embed_protein(vol: np.ndarray, name: str, angle_deg: float, n: np.ndarray, p0: np.ndarray,
                   box: int, voxel_size_A: float, resolution_A: float | None) -> np.ndarray:
    """Place the membrane protein ``name`` at ``p0`` (Å), its z along ``n``, displacing lipid."""
    from cryo_companion.structures.density import load_density

    c = box // 2
    prot = load_density(name, voxel_size_A, box, resolution_A, grow_box=True)
    # rotate: protein frame (membrane normal = z) -> patch frame (normal = n), then shift
    # its centre to p0 (the protein's centre of mass sits at the membrane mid-plane).
    rot = _frame_from_normal(n, math.radians(angle_deg))
    pc = prot.shape[0] // 2
    shift_vox = p0 / voxel_size_A
    # output index o -> input index: R^T (o - c - shift) + pc
    offset_in = pc - rot.T @ (np.full(3, c) + shift_vox)
    placed = ndimage.affine_transform(prot.astype(np.float64), rot.T, offset=offset_in,
                                      output_shape=(box,) * 3, order=1, mode="constant")
    # the protein displaces lipid where it sits: lipid weighted by (1 - protein occupancy)
    occupancy = np.clip(placed / (0.5 * placed.max()), 0.0, 1.0) if placed.max() > 0 else 0.0
    return vol * (1.0 - occupancy) + placed
