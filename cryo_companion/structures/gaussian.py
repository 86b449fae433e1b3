"""Atoms to density, the PDB2VOL way: one mass-weighted 3-D Gaussian per atom.

Che et al. 2019 (Sec. III-A) make their 40³ maps at 13.68 Å per voxel with Situs PDB2VOL
(Wriggers et al. 1999). We follow PDB2VOL's default ("Situs") convention for the kernel: the
requested resolution ``R`` is twice the standard deviation of the Gaussian, ``sigma = R / 2``
(the distance between the kernel's inflection points is ``R``). Each atom contributes its mass
(Da); voxel values are the mass that falls inside the voxel divided by its volume, so the result
is a mass density in Da/Å³ (protein interior ≈ 0.81 Da/Å³, i.e. 1.35 g/cm³) and its sum times the
voxel volume is the total mass exactly (when the box holds the molecule).

The Gaussian is separable: each atom's weight on voxel (k, j, i) is ``wz[k] * wy[j] * wx[i]``
with 1-D weights integrated exactly over the voxel (differences of ``erf``). We evaluate these
three short 1-D windows per atom and scatter their outer product with one ``index_add_``; for
wide kernels (many voxels per sigma) the atoms are instead spread on the grid (cloud-in-cell)
and blurred by the Gaussian in Fourier space. Both run on the device of the inputs.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from cryo_companion.devices import DeviceLike

__all__ = ["SITUS_SIGMA_PER_RESOLUTION", "sigma_from_resolution", "splat_gaussians"]

#: Situs/PDB2VOL convention: resolution = 2 sigma.
SITUS_SIGMA_PER_RESOLUTION = 0.5

_MAX_WINDOW = 11  # widest per-atom window (voxels per axis) for the direct method


def sigma_from_resolution(resolution_A: float) -> float:
    """Return the Gaussian standard deviation for a resolution: PDB2VOL's ``sigma = R / 2``.

    Parameters
    ----------
    resolution_A : float
        Resolution R in Å (> 0).

    Returns
    -------
    float
        Sigma in Å.

    Raises
    ------
    ValueError
        If ``resolution_A`` is not a positive finite number.
    """
    if not (resolution_A > 0 and math.isfinite(resolution_A)):
        raise ValueError(f"resolution {resolution_A} Å must be a positive finite number")
    return SITUS_SIGMA_PER_RESOLUTION * float(resolution_A)


def _window_weights(u: torch.Tensor, s: float, half: int,
                    box: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Compute 1-D voxel-integrated Gaussian weights around positions ``u`` (voxel units).

    Returns indices (N, W) and weights (N, W) with W = 2*half + 1.
    """
    base = torch.floor(u + 0.5).long() - half
    offs = torch.arange(2 * half + 1, device=u.device)
    idx = base[:, None] + offs[None, :]
    d = idx.to(u.dtype) - u[:, None]
    c = 1.0 / (math.sqrt(2.0) * s)
    w = 0.5 * (torch.erf((d + 0.5) * c) - torch.erf((d - 0.5) * c))
    w = torch.where((idx >= 0) & (idx < box), w, torch.zeros_like(w))
    return idx.clamp(0, box - 1), w


def splat_gaussians(pos_vox: torch.Tensor, mass: torch.Tensor, box: int,
                    sigma_vox: float, *, chunk_values: int = 1 << 20) -> torch.Tensor:
    """Sum mass-weighted, voxel-integrated 3-D Gaussians on a cubic grid.

    Parameters
    ----------
    pos_vox : torch.Tensor
        `(N, 3)` atom positions in voxel units, columns (z, y, x); voxel ``k`` covers
        ``[k - 0.5, k + 0.5)``.
    mass : torch.Tensor
        `(N,)` weights (Da).
    box : int
        Edge of the output grid (voxels).
    sigma_vox : float
        Gaussian standard deviation in voxels (> 0).
    chunk_values : int
        Memory bound: atoms are processed in chunks of about this many (atom, voxel) values.

    Returns
    -------
    torch.Tensor
        `(box, box, box)` mass per voxel (same units as ``mass``), dtype of ``pos_vox``; weight
        falling outside the grid is lost.

    Raises
    ------
    ValueError
        If ``sigma_vox`` is not > 0.
    """
    if sigma_vox <= 0:
        raise ValueError(f"sigma {sigma_vox} voxels must be > 0")
    dev, dt = pos_vox.device, pos_vox.dtype
    half = math.ceil(4.0 * sigma_vox) + 1
    if 2 * half + 1 > _MAX_WINDOW:
        return _splat_fourier(pos_vox, mass, box, sigma_vox)
    out = torch.zeros(box ** 3, device=dev, dtype=dt)
    w3 = (2 * half + 1) ** 3
    step = max(1, chunk_values // w3)
    for a in range(0, pos_vox.shape[0], step):
        p, m = pos_vox[a:a + step], mass[a:a + step].to(dt)
        iz, wz = _window_weights(p[:, 0], sigma_vox, half, box)
        iy, wy = _window_weights(p[:, 1], sigma_vox, half, box)
        ix, wx = _window_weights(p[:, 2], sigma_vox, half, box)
        w = (wz * m[:, None])[:, :, None, None] * wy[:, None, :, None] * wx[:, None, None, :]
        flat = (iz[:, :, None, None] * box + iy[:, None, :, None]) * box + ix[:, None, None, :]
        out.index_add_(0, flat.reshape(-1), w.reshape(-1))
    return out.reshape(box, box, box)


def _splat_fourier(pos_vox: torch.Tensor, mass: torch.Tensor, box: int,
                   sigma_vox: float) -> torch.Tensor:
    """Spread by cloud-in-cell, then blur by a Gaussian in Fourier space (wide kernels).

    Linear (CIC) spreading itself blurs by a variance of 1/6 voxel² per axis and integrating over
    a voxel by 1/12; the Fourier Gaussian supplies the rest, so the total variance is
    ``sigma_vox² + 1/12`` as in the direct method. Periodic: callers keep the molecule (plus
    4 sigma) inside the box, which :func:`cryo_companion.structures.density` checks.
    """
    dev, dt = pos_vox.device, pos_vox.dtype
    out = torch.zeros(box ** 3, device=dev, dtype=dt)
    f = torch.floor(pos_vox)
    frac = pos_vox - f
    f = f.long()
    for corner in range(8):
        dz, dy, dx = (corner >> 2) & 1, (corner >> 1) & 1, corner & 1
        w = mass.to(dt).clone()
        for ax, d in zip(range(3), (dz, dy, dx)):
            w = w * (frac[:, ax] if d else 1 - frac[:, ax])
        idx = (f + torch.tensor([dz, dy, dx], device=dev)) % box
        out.index_add_(0, (idx[:, 0] * box + idx[:, 1]) * box + idx[:, 2], w)
    grid = out.reshape(box, box, box)
    var = max(sigma_vox ** 2 + 1.0 / 12 - 1.0 / 6, 1e-6)
    k = torch.fft.fftfreq(box, device=dev, dtype=dt)
    g = torch.exp(-2 * math.pi ** 2 * var * k ** 2)
    kr = torch.fft.rfftfreq(box, device=dev, dtype=dt)
    gr = torch.exp(-2 * math.pi ** 2 * var * kr ** 2)
    ft = torch.fft.rfftn(grid) * (g[:, None, None] * g[None, :, None] * gr[None, None, :])
    return torch.fft.irfftn(ft, s=(box, box, box))


def as_tensor(x: np.ndarray, device: DeviceLike = None,
              dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Convert a numpy array to a contiguous torch tensor on ``device``.

    Parameters
    ----------
    x : np.ndarray
        The array.
    device : DeviceLike
        Device of the result (None: the CPU).
    dtype : torch.dtype
        Dtype of the result.

    Returns
    -------
    torch.Tensor
        The values of ``x``.
    """
    return torch.as_tensor(np.ascontiguousarray(x), dtype=dtype, device=device)
