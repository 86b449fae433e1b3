"""Density volumes from atomic models and maps: centred, at any voxel size, in a given box.

Every volume here is float32 ``(box, box, box)`` in z-y-x order, a mass density in Da/Å³
(protein interior ≈ 0.81 Da/Å³), with the molecule's centre of mass on voxel ``box // 2`` of each
axis (the FFT / RELION convention, so rotations about the box centre keep it centred).

- :func:`atoms_to_density`: PDB2VOL-style Gaussians (``sigma = R / 2``, see :mod:`.gaussian`).
- :func:`resample_map`: a map to another voxel size, conserving mass.
- :func:`map_to_density`: a map scaled to Da/Å³, centred, resampled, blurred to a resolution.
- :func:`load_density`: by ID or path, through :mod:`.sources`, cached on disk.
"""
from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage, special

from cryo_companion._io import atomic_path
from cryo_companion.devices import DeviceLike
from cryo_companion.mrc import read_mrc
from cryo_companion.structures.atoms import Atoms, read_atoms
from cryo_companion.structures.gaussian import as_tensor, sigma_from_resolution, splat_gaussians
from cryo_companion.structures.sources import cache_dir, find_structure

__all__ = [
    "CACHE_VERSION",
    "IMPLICIT_H",
    "MAP_COPIES",
    "PROTEIN_DENSITY_DA_PER_A3",
    "BoxTooSmallError",
    "atom_masses_Da",
    "atoms_to_density",
    "box_centre",
    "center_of_mass_vox",
    "compare_atoms_to_map",
    "default_resolution_A",
    "density_cache_path",
    "entries_with_atoms_and_map",
    "fit_box",
    "isolate_copy",
    "load_density",
    "map_mass_Da",
    "map_to_density",
    "resample_map",
    "structure_size",
]

#: Mean protein density 1.35 g/cm³ = 0.81 Da/Å³ (Fischer et al. 2004).
PROTEIN_DENSITY_DA_PER_A3 = 0.81
#: Fraction of the mass allowed to fall outside the box before it is "too small".
MAX_LOST_FRACTION = 0.005
#: Bump when the way volumes are computed changes (invalidates the disk cache).
CACHE_VERSION = 2


# Mean number of hydrogens carried by a heavy atom of a protein (over the 20 amino acids at
# natural abundance about one H per heavy atom, 7.7 H per residue). Most models (X-ray, cryo-EM)
# have no hydrogens; adding them back makes the summed mass match the molecular weight.
IMPLICIT_H: dict[str, float] = {"C": 1.1, "N": 1.1, "O": 0.4, "S": 0.5, "SE": 0.5}
_H_MASS_DA = 1.008


#: Maps of the offline mirror that hold several copies of the complex (a crystal's asymmetric
#: unit): entry -> number of copies. :func:`map_to_density` keeps one.
MAP_COPIES: dict[str, int] = {"4v94": 2}  # two TRiC/CCT complexes side by side (21 x 25 x 31 nm)


class BoxTooSmallError(ValueError):
    """The molecule does not fit in the requested box."""


def box_centre(n: int) -> int:
    """Return the index of the centre voxel of an axis (FFT convention).

    Parameters
    ----------
    n : int
        Number of voxels along the axis.

    Returns
    -------
    int
        ``n // 2``.
    """
    return int(n) // 2


def atom_masses_Da(atoms: Atoms, *, implicit_hydrogens: bool = True) -> np.ndarray:
    """Return the masses of the atoms, plus implicit hydrogens if the model has none.

    With ``implicit_hydrogens`` and no H/D atoms in ``atoms``, each C, N, O, S carries the mean
    hydrogen mass of :data:`IMPLICIT_H`, so that X-ray/cryo-EM models weigh what the complex
    weighs (about 8 % more than the heavy atoms).

    Parameters
    ----------
    atoms : Atoms
        The model.
    implicit_hydrogens : bool
        Add the implicit hydrogens to models without H/D atoms.

    Returns
    -------
    np.ndarray
        `(n,)` float64 masses in Da.
    """
    m = atoms.mass_da
    if implicit_hydrogens and not np.isin(atoms.element, ["H", "D"]).any():
        m = m + _H_MASS_DA * np.array([IMPLICIT_H.get(e, 0.0) for e in atoms.element])
    return m


def default_resolution_A(voxel_size_A: float) -> float:
    """Return the resolution used when none is given: twice the voxel size (Nyquist).

    Parameters
    ----------
    voxel_size_A : float
        Voxel edge in Å.

    Returns
    -------
    float
        ``2 * voxel_size_A`` in Å.
    """
    return 2.0 * float(voxel_size_A)


def _check_common(voxel_size_A: float, box: int, resolution_A: float | None) -> float:
    """Check the voxel size, box and resolution; return the resolution to use (Å)."""
    if not (isinstance(voxel_size_A, (int, float, np.floating)) and voxel_size_A > 0
            and math.isfinite(voxel_size_A)):
        raise ValueError(f"voxel size {voxel_size_A!r} Å must be a positive number")
    if not (isinstance(box, (int, np.integer)) and not isinstance(box, bool) and box >= 4):
        raise ValueError(f"box {box!r} must be an integer >= 4 (voxels per edge)")
    if resolution_A is None:
        return default_resolution_A(voxel_size_A)
    if not (resolution_A > 0 and math.isfinite(resolution_A)):
        raise ValueError(f"resolution {resolution_A!r} Å must be a positive number (or None)")
    return float(resolution_A)


def _needed_box(radius_vox: np.ndarray) -> int:
    """Smallest box whose centre voxel ``box // 2`` leaves ``radius_vox`` (z, y, x) each side."""
    r = math.ceil(float(np.max(radius_vox)))
    return 2 * r + 2


def _lost_fraction(u: np.ndarray, mass: np.ndarray, s: float, box: int) -> float:
    """Compute the fraction of Gaussian mass outside ``[-0.5, box - 0.5)`` on some axis."""
    c = 1.0 / (math.sqrt(2.0) * s)
    inside = np.prod(0.5 * (special.erf((box - 0.5 - u) * c) - special.erf((-0.5 - u) * c)),
                     axis=1)
    return float((mass * (1.0 - inside)).sum() / mass.sum())


def atoms_to_density(atoms: Atoms, voxel_size_A: float, box: int,
                     resolution_A: float | None = None, *, grow_box: bool = False,
                     center: bool = True, implicit_hydrogens: bool = True,
                     device: DeviceLike = None) -> np.ndarray:
    """Compute the mass density of an atomic model, PDB2VOL style (Che et al. 2019, III-A).

    Parameters
    ----------
    atoms : Atoms
        The model (:func:`~cryo_companion.structures.atoms.read_atoms`).
    voxel_size_A : float
        Voxel edge (Å).
    box : int
        Edge of the cubic output (voxels).
    resolution_A : float or None, optional
        PDB2VOL resolution R (Å); each atom is a Gaussian of ``sigma = R / 2``. Default: ``2 *
        voxel_size_A``.
    grow_box : bool, optional
        If the molecule does not fit, return a larger (even) box instead of failing.
    center : bool, optional
        Put the centre of mass on voxel ``box // 2`` (else keep file coordinates, origin at
        voxel ``box // 2``).
    implicit_hydrogens : bool, optional
        Add hydrogen mass to heavy atoms (:func:`atom_masses_Da`).
    device : DeviceLike, optional
        Torch device for the computation (default CPU).

    Returns
    -------
    np.ndarray
        `(box, box, box)` float32, z-y-x, Da/Å³ (or larger with ``grow_box``).

    Raises
    ------
    ValueError
        For a voxel size or resolution that is not a positive number, or a box that is not an
        integer >= 4.
    BoxTooSmallError
        More than 0.5 % of the mass would fall outside the box (and ``grow_box`` is False);
        the message gives the box that fits.
    """
    res = _check_common(voxel_size_A, box, resolution_A)
    sigma_vox = sigma_from_resolution(res) / voxel_size_A
    mass = atom_masses_Da(atoms, implicit_hydrogens=implicit_hydrogens)
    origin = (atoms.xyz_A * mass[:, None]).sum(0) / mass.sum() if center else np.zeros(3)
    # file columns are x, y, z; volumes are z, y, x
    rel = (atoms.xyz_A - origin)[:, ::-1] / voxel_size_A
    need = _needed_box(np.abs(rel).max(0) + 3.0 * sigma_vox)
    u = rel + box // 2
    if _lost_fraction(u, mass, sigma_vox, box) > MAX_LOST_FRACTION:
        if not grow_box:
            raise BoxTooSmallError(
                f"box {box} voxels ({box * voxel_size_A / 10:.1f} nm) is too small for "
                f"{Path(atoms.source).name or 'the molecule'}: it needs about {need} voxels "
                f"({need * voxel_size_A / 10:.1f} nm) at {voxel_size_A} Å/voxel; "
                "pass a larger box or grow_box=True")
        box = max(box, need)
        u = rel + box // 2
    grid = splat_gaussians(as_tensor(u, device), as_tensor(mass, device), box,
                           sigma_vox)
    return (grid / voxel_size_A ** 3).to(torch.float32).cpu().numpy()


def center_of_mass_vox(vol: np.ndarray) -> np.ndarray:
    """Compute the centre of mass of a non-negative volume.

    Parameters
    ----------
    vol : np.ndarray
        `(D, H, W)` non-negative volume, z-y-x.

    Returns
    -------
    np.ndarray
        `(3,)` float64 centre (z, y, x) in voxel indices.

    Raises
    ------
    ValueError
        If the volume has no positive mass.
    """
    tot = float(vol.sum())
    if not tot > 0:
        raise ValueError("volume has no positive mass; cannot find its centre")
    return np.array(ndimage.center_of_mass(vol), dtype=np.float64)


def resample_map(vol: np.ndarray, voxel_in_A: float, voxel_out_A: float,
                 shape: tuple[int, int, int] | None = None, *,
                 center_in_vox: np.ndarray | None = None) -> np.ndarray:
    """Resample a density (per Å³) to another voxel size, conserving its total mass.

    Band-limited (Fourier) interpolation with anti-aliasing when the voxels grow
    (:func:`~cryo_companion.structures.maps.resample_volume`); output voxel ``n // 2`` is the
    input point ``center_in_vox`` (default: the centre of mass, so the result is centred).
    ``sum * voxel³`` is the same before and after when the output covers the molecule.

    Parameters
    ----------
    vol : np.ndarray
        `(D, H, W)` density per Å³, z-y-x.
    voxel_in_A : float
        Voxel edge of ``vol`` in Å.
    voxel_out_A : float
        Voxel edge of the result in Å.
    shape : tuple of int or None
        Output shape ``(D, H, W)`` (default: the same physical extent).
    center_in_vox : np.ndarray or None
        `(3,)` input point (z, y, x, voxels) that lands on output voxel ``n // 2`` of each axis
        (default: the centre of mass of the positive part).

    Returns
    -------
    np.ndarray
        float32 of ``shape``, per Å³.

    Raises
    ------
    ValueError
        If ``vol`` is not 3-D, or the voxel sizes or shape are not valid (see
        :func:`~cryo_companion.structures.maps.resample_volume`).
    """
    from cryo_companion.structures.maps import (  # maps imports box_centre from here
        center_of_mass,
        resample_volume,
    )

    vol = np.asarray(vol, dtype=np.float64)
    if vol.ndim != 3:
        raise ValueError(f"expected a 3-D volume, got shape {vol.shape}")
    if center_in_vox is None:
        center_in_vox = center_of_mass(torch.as_tensor(np.clip(vol, 0, None))).numpy()
    out = resample_volume(vol * voxel_in_A ** 3, voxel_in_A, voxel_out_A, shape=shape,
                          center_zyx=np.asarray(center_in_vox, dtype=np.float64))
    return (out / voxel_out_A ** 3).to(torch.float32).numpy()


def map_mass_Da(vol: np.ndarray, voxel_size_A: float, *, threshold_fraction: float = 0.5
                ) -> float:
    """Estimate the molecular mass of a map from its enclosed volume.

    The molecule is taken as the voxels above ``threshold_fraction`` of a robust maximum (the
    99.9th percentile of the positive voxels), filled at 0.81 Da/Å³ (protein density). This is
    the usual volume-based estimate. The default threshold was chosen on the 10 Å maps of
    ``shared/structures`` that also have atomic models (the estimate over the models' mass has a
    median near 1, within about ±20 %; the structures chapter prints the table).

    Parameters
    ----------
    vol : np.ndarray
        `(D, H, W)` map (any positive scale).
    voxel_size_A : float
        Voxel edge of the map in Å.
    threshold_fraction : float
        Threshold as a fraction of the robust maximum.

    Returns
    -------
    float
        The estimated mass in Da.

    Raises
    ------
    ValueError
        If the map has no positive density.
    """
    pos = vol[vol > 0]
    if pos.size == 0:
        raise ValueError("map has no positive density; cannot estimate its mass")
    top = np.percentile(pos, 99.9)
    n = int((vol > threshold_fraction * top).sum())
    return n * voxel_size_A ** 3 * PROTEIN_DENSITY_DA_PER_A3


def isolate_copy(vol: np.ndarray, n_copies: int, *, blur_vox: float = 2.0) -> np.ndarray:
    """Keep one of ``n_copies`` equal copies of a complex in a map (non-negative, per Å³).

    The map is blurred and thresholded at increasing levels until it falls apart into
    ``n_copies`` components of comparable mass; every voxel is then given to the nearest
    component (Euclidean distance transform), and the voxels of the heaviest component kept.

    Parameters
    ----------
    vol : np.ndarray
        `(D, H, W)` non-negative map.
    n_copies : int
        Number of copies in the map (1 or less: ``vol`` is returned as it is).
    blur_vox : float
        Standard deviation of the Gaussian blur in voxels.

    Returns
    -------
    np.ndarray
        `(D, H, W)` map, zero outside the kept copy's region.

    Raises
    ------
    ValueError
        If no threshold separates the copies.
    """
    if n_copies <= 1:
        return vol
    b = ndimage.gaussian_filter(vol, blur_vox)
    for t in np.arange(0.1, 0.95, 0.05):
        lab, n = ndimage.label(b > t * b.max())
        if n < n_copies:
            continue
        mass = np.asarray(ndimage.sum(b, lab, range(1, n + 1)))
        order = np.argsort(mass)[::-1]
        if mass[order[n_copies - 1]] < 0.5 * mass[order[0]]:
            continue
        keep = np.isin(lab, order[:n_copies] + 1)
        lab = np.where(keep, lab, 0)
        _, idx = ndimage.distance_transform_edt(lab == 0, return_indices=True)
        nearest = lab[tuple(idx)]
        return np.where(nearest == order[0] + 1, vol, 0.0)
    raise ValueError(f"could not separate the {n_copies} copies of the complex in the map")


def map_to_density(vol: np.ndarray, map_voxel_A: float, voxel_size_A: float, box: int,
                   resolution_A: float | None = None, *, mass_Da: float | None = None,
                   map_resolution_A: float | None = None, grow_box: bool = False,
                   n_copies: int = 1, name: str = "map") -> np.ndarray:
    """Turn a density map into a centred Da/Å³ volume at ``voxel_size_A`` in a ``box``³.

    Negative values (background and noise of experimental maps) are set to zero after
    subtracting the median of the map's outer shell (its solvent level). The map is scaled so
    that its mass equals ``mass_Da`` (default: :func:`map_mass_Da`, the volume-based estimate),
    blurred to ``resolution_A`` (PDB2VOL convention ``sigma = R / 2``; the map is assumed to
    hold ``map_resolution_A``, default twice its voxel size), centred on its centre of mass and
    resampled (:func:`resample_map`). A map holding ``n_copies`` of the complex is reduced to
    one first (:func:`isolate_copy`).

    Parameters
    ----------
    vol : np.ndarray
        `(D, H, W)` map, z-y-x, any scale.
    map_voxel_A : float
        Voxel edge of the map in Å.
    voxel_size_A : float
        Voxel edge of the result in Å.
    box : int
        Edge of the cubic result (voxels, >= 4).
    resolution_A : float or None
        Target resolution in Å (default ``2 * voxel_size_A``).
    mass_Da : float or None
        Mass to scale the map to (default: :func:`map_mass_Da`).
    map_resolution_A : float or None
        Resolution the map holds in Å (default twice its voxel size).
    grow_box : bool
        Return a larger box instead of raising :class:`BoxTooSmallError`.
    n_copies : int
        Copies of the complex in the map; one is kept.
    name : str
        Name of the map in error messages.

    Returns
    -------
    np.ndarray
        `(box, box, box)` float32 (or larger with ``grow_box``), z-y-x, Da/Å³, non-negative.

    Raises
    ------
    ValueError
        Invalid voxel size, box or resolution, a map that is not 3-D, non-finite values, no
        positive density, or copies that cannot be separated.
    BoxTooSmallError
        More than 0.5 % of the mass would fall outside the box (and ``grow_box`` is False).
    """
    res = _check_common(voxel_size_A, box, resolution_A)
    vol = np.asarray(vol, dtype=np.float64)
    if vol.ndim != 3:
        raise ValueError(f"{name}: expected a 3-D map, got shape {vol.shape}")
    if not np.isfinite(vol).all():
        raise ValueError(f"{name}: map contains NaN/inf values")
    from cryo_companion.structures.maps import (
        subtract_background,  # maps imports box_centre from here
    )

    vol = subtract_background(vol).numpy()
    if not vol.sum() > 0:
        raise ValueError(f"{name}: map has no density above its background")
    vol = isolate_copy(vol, n_copies)
    mass = map_mass_Da(vol, map_voxel_A) if mass_Da is None else float(mass_Da)
    vol *= mass / (vol.sum() * map_voxel_A ** 3)
    map_res = 2.0 * map_voxel_A if map_resolution_A is None else map_resolution_A
    extra = sigma_from_resolution(res) ** 2 - sigma_from_resolution(map_res) ** 2
    if extra > 0:
        vol = ndimage.gaussian_filter(vol, math.sqrt(extra) / map_voxel_A, mode="constant")
    com = center_of_mass_vox(vol)
    # does it fit? mass outside the output box, measured on the input grid
    half_A = (box // 2 - 0.5) * voxel_size_A
    idx = np.indices(vol.shape, dtype=np.float64)
    dist = np.max(np.abs(idx - com[:, None, None, None]), axis=0) * map_voxel_A
    lost = float(vol[dist > half_A].sum() / vol.sum())
    if lost > MAX_LOST_FRACTION:
        need = _needed_box(np.array([dist[vol > 1e-3 * vol.max()].max() / voxel_size_A + 1]))
        if not grow_box:
            raise BoxTooSmallError(
                f"box {box} voxels ({box * voxel_size_A / 10:.1f} nm) is too small for {name}: "
                f"{100 * lost:.1f} % of its mass lies outside; it needs about {need} voxels "
                f"({need * voxel_size_A / 10:.1f} nm) at {voxel_size_A} Å/voxel; "
                "pass a larger box or grow_box=True")
        box = max(box, need)
    out = resample_map(vol, map_voxel_A, voxel_size_A, (box, box, box), center_in_vox=com)
    return np.clip(out, 0, None)  # Fourier ringing below zero is not density


def fit_box(vol: np.ndarray, box: int, *, grow_box: bool = False) -> np.ndarray:
    """Pad (zeros) or crop a cubic volume about its centre voxel ``n // 2`` to ``box``.

    Parameters
    ----------
    vol : np.ndarray
        `(n, n, n)` volume.
    box : int
        Edge of the result (voxels).
    grow_box : bool
        Where cropping would cut mass, return ``vol`` uncropped instead of raising.

    Returns
    -------
    np.ndarray
        `(box, box, box)` volume of ``vol``'s dtype (or ``vol`` itself, see ``grow_box``).

    Raises
    ------
    ValueError
        If ``vol`` is not a cubic 3-D volume.
    BoxTooSmallError
        If cropping would cut more than 0.5 % of the positive mass (and ``grow_box`` is False).
    """
    vol = np.asarray(vol)
    if vol.ndim != 3 or len(set(vol.shape)) != 1:
        raise ValueError(f"expected a cubic 3-D volume, got shape {vol.shape}")
    n = vol.shape[0]
    if box == n:
        return vol
    if box > n:
        out = np.zeros((box,) * 3, dtype=vol.dtype)
        o = box // 2 - n // 2
        out[o:o + n, o:o + n, o:o + n] = vol
        return out
    o = n // 2 - box // 2
    crop = vol[o:o + box, o:o + box, o:o + box]
    pos = np.clip(vol, 0, None).sum()
    if pos > 0 and 1 - np.clip(crop, 0, None).sum() / pos > MAX_LOST_FRACTION:
        if grow_box:
            return vol
        raise BoxTooSmallError(f"cropping {n}³ to {box}³ would cut "
                               f"{100 * (1 - np.clip(crop, 0, None).sum() / pos):.1f} % of the "
                               "mass; use a larger box or grow_box=True")
    return crop


# --------------------------------------------------------------------------- load + cache
def _file_key(path: Path) -> str:
    """Return a short hash of a file's path, size and modification time."""
    st = path.stat()
    return hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]


def density_cache_path(entry: str, voxel_size_A: float, box: int, resolution_A: float,
                       source: str, file_key: str = "") -> Path:
    """Return the cache file of a computed volume (under ``cache_dir()/volumes``).

    Parameters
    ----------
    entry : str
        Structure ID or path (its file name is used).
    voxel_size_A : float
        Voxel edge in Å.
    box : int
        Box edge in voxels.
    resolution_A : float
        Resolution in Å.
    source : str
        ``"atoms"`` or ``"map"``.
    file_key : str
        Extra key (a file's hash, a mass), appended when not empty.

    Returns
    -------
    Path
        ``cache_dir()/volumes/v{CACHE_VERSION}_....npy``.
    """
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(entry).name)[:40]
    key = f"v{CACHE_VERSION}_{safe}_{source}_{voxel_size_A:.4f}A_{box}_{resolution_A:.4f}A"
    if file_key:
        key += f"_{file_key}"
    return cache_dir() / "volumes" / f"{key}.npy"


def load_density(entry: str | os.PathLike, voxel_size_A: float, box: int,
                 resolution_A: float | None = None, *, source: str = "auto",
                 grow_box: bool = False, mass_Da: float | None = None,
                 use_cache: bool = True, device: DeviceLike = None) -> np.ndarray:
    """Load the density of a structure by ID or path, centred, at ``voxel_size_A`` in ``box``³.

    Parameters
    ----------
    entry : str or os.PathLike
        Structure ID (``"4v94"``, ``"mb_5gjv"``, ``"4v4r_30S"``) or a path to a PDB/mmCIF model
        or an MRC map (plain or ``.gz``). Located by
        :func:`~cryo_companion.structures.sources.find_structure`.
    voxel_size_A : float
        Voxel edge (Å); e.g. 13.68 (Che et al. 2019), 10 (SHREC 2020).
    box : int
        Output edge (voxels); e.g. 40.
    resolution_A : float or None, optional
        PDB2VOL resolution (Å), ``sigma = R / 2``; default ``2 * voxel_size_A``.
    source : str, optional
        ``"auto"`` (atomic model if there is one, else map), ``"atoms"`` or ``"map"``.
    grow_box : bool, optional
        Return a larger box instead of raising :class:`BoxTooSmallError`.
    mass_Da : float or None, optional
        Mass to scale a map to (default: the volume-based estimate; atoms carry theirs).
    use_cache : bool, optional
        Read/write ``cache_dir()/volumes`` (keyed by entry, source, voxel size, box, resolution
        and, for files, path/size/mtime).
    device : DeviceLike, optional
        Torch device for atoms -> density (default CPU).

    Returns
    -------
    np.ndarray
        `(box, box, box)` float32, z-y-x, Da/Å³, centre of mass at voxel ``box // 2``.

    Raises
    ------
    ValueError
        For ``"membrane"`` (procedural), an unknown ``source``, an invalid voxel size, box or
        resolution, or a map that cannot be used (see :func:`map_to_density`).
    StructureNotFoundError
        If the structure is not found (see
        :func:`~cryo_companion.structures.sources.find_structure`).
    BoxTooSmallError
        If the structure does not fit in ``box`` (and ``grow_box`` is False).
    """
    res = _check_common(voxel_size_A, box, resolution_A)
    if str(entry).lower() == "membrane":
        raise ValueError("'membrane' is procedural: use cryo_companion.structures.membrane."
                         "membrane_patch(box, voxel_size_A, rng)")
    if source not in ("auto", "atoms", "map"):
        raise ValueError(f"source={source!r}; valid values: auto, atoms, map")
    loc = find_structure(entry, kind=source)
    fkey = _file_key(loc.path) if loc.origin == "path" else ""
    if mass_Da is not None:
        fkey += f"m{mass_Da:.0f}"
    cpath = density_cache_path(str(entry), voxel_size_A, box, res, loc.kind, fkey)
    if use_cache and cpath.is_file():
        try:
            vol = np.load(cpath)
            # a grown volume (grow_box=True earlier) is only an answer when growing is allowed
            if vol.dtype == np.float32 and (vol.shape[0] == box or grow_box):
                return vol
        except (OSError, ValueError):
            pass  # unreadable cache entry: recompute and overwrite
    name = loc.path.name
    if loc.kind == "atoms":
        vol = atoms_to_density(read_atoms(loc.path), voxel_size_A, box, res,
                               grow_box=grow_box, device=device)
    else:
        m = read_mrc(loc.path)
        stem = name.split(".")[0]
        vol = map_to_density(m.data, m.voxel_size_A, voxel_size_A, box, res, mass_Da=mass_Da,
                             grow_box=grow_box, n_copies=MAP_COPIES.get(stem, 1), name=name)
    if use_cache:
        try:
            with atomic_path(cpath, suffix=".npy") as tmp, open(tmp, "wb") as fh:
                np.save(fh, vol)
        except OSError:
            pass  # a read-only cache is not an error
    return vol


# --------------------------------------------------------------------------- summaries
def structure_size(vol: np.ndarray, voxel_size_A: float, *, threshold_fraction: float = 0.1
                   ) -> dict[str, float]:
    """Measure a centred density: diameter (nm), voxels occupied, mass (kDa).

    The molecule is the set of voxels above ``threshold_fraction`` of the maximum; its
    diameter is twice the largest distance of those voxels from the centre of mass (plus one
    voxel), its mass the integral of the whole volume (Da/Å³ times voxel volume).

    Parameters
    ----------
    vol : np.ndarray
        `(D, H, W)` density in Da/Å³, z-y-x.
    voxel_size_A : float
        Voxel edge in Å.
    threshold_fraction : float
        Threshold as a fraction of the maximum.

    Returns
    -------
    dict of str to float
        ``diameter_nm``, ``n_voxels``, ``mass_kda``.

    Raises
    ------
    ValueError
        If ``vol`` is not 3-D or has no positive density.
    """
    vol = np.asarray(vol, dtype=np.float64)
    if vol.ndim != 3 or not vol.max() > 0:
        raise ValueError("expected a 3-D volume with positive density")
    mask = vol > threshold_fraction * vol.max()
    com = center_of_mass_vox(np.clip(vol, 0, None))
    idx = np.argwhere(mask)
    r = np.sqrt(((idx - com) ** 2).sum(1)).max()
    return {"diameter_nm": float((2 * r + 1) * voxel_size_A / 10.0),
            "n_voxels": int(mask.sum()),
            "mass_kda": float(vol.sum() * voxel_size_A ** 3 / 1e3)}


def entries_with_atoms_and_map() -> list[str]:
    """List the IDs that ``$CRYO_COMPANION_STRUCTURES`` holds as atomic model and as 10 Å map.

    Returns
    -------
    list of str
        Sorted structure IDs.

    Raises
    ------
    ValueError
        If ``CRYO_COMPANION_STRUCTURES`` is not set.
    """
    from cryo_companion.structures.sources import structures_dir

    root = structures_dir()
    if root is None:
        raise ValueError("CRYO_COMPANION_STRUCTURES is not set: no offline structures folder")
    atoms = {p.name.split(".")[0] for p in (root / "pdb").glob("*.pdb*")}
    maps = {p.name.split(".")[0] for p in (root / "maps_10A").glob("*.mrc*")}
    return sorted(atoms & maps)


def compare_atoms_to_map(entry: str, *, voxel_size_A: float = 10.0, box: int = 80,
                         resolution_A: float = 20.0, use_cache: bool = True
                         ) -> dict[str, float]:
    """Compare the densities of ``entry`` from its atoms and from its map (both centred).

    Parameters
    ----------
    entry : str
        A structure ID with both an atomic model and a map.
    voxel_size_A : float
        Voxel edge in Å.
    box : int
        Box edge in voxels.
    resolution_A : float
        Resolution of both densities in Å.
    use_cache : bool
        Read/write the disk cache of :func:`load_density`.

    Returns
    -------
    dict of str to float
        ``r`` (Pearson correlation of the two volumes), ``mass_atoms_kda`` and ``mass_map_kda``
        (the map's from :func:`map_mass_Da`).
    """
    a = load_density(entry, voxel_size_A, box, resolution_A, source="atoms", use_cache=use_cache)
    m = load_density(entry, voxel_size_A, box, resolution_A, source="map", use_cache=use_cache)
    a64, m64 = a.astype(np.float64).ravel(), m.astype(np.float64).ravel()
    a64 -= a64.mean()
    m64 -= m64.mean()
    r = float(a64 @ m64 / np.sqrt((a64 @ a64) * (m64 @ m64)))
    k = voxel_size_A ** 3 / 1e3
    return {"r": r, "mass_atoms_kda": float(a.sum() * k), "mass_map_kda": float(m.sum() * k)}
