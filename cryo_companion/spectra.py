"""Radially averaged power spectra of volumes (the test domain's reality-gap figure).

Conventions: volumes are `(N, D, D, D)` or `(D, D, D)`, z-y-x, voxel size in Å; spatial
frequencies are in cycles per Å, from 0 to Nyquist ``1 / (2 voxel_size_A)``.
"""
from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["radial_power_spectrum"]


def radial_power_spectrum(volumes: npt.ArrayLike, voxel_size_A: float,
                          n_bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Compute the mean power ``|F|²`` of cubic volumes in shells of spatial frequency.

    Parameters
    ----------
    volumes : array-like
        `(N, D, D, D)` or `(D, D, D)` real volumes, z-y-x, voxel size ``voxel_size_A``; the
        power is averaged over the volumes, then over each shell.
    voxel_size_A : float
        Voxel size in Å (> 0).
    n_bins : int
        Shells of equal width from zero frequency to Nyquist (frequencies beyond Nyquist, the
        corners of the cube, are left out).

    Returns
    -------
    tuple of (numpy.ndarray, numpy.ndarray)
        `(n_bins,)` shell centres in 1/Å and `(n_bins,)` mean power in each shell (NaN for a
        shell that holds no grid point).

    Raises
    ------
    ValueError
        For volumes that are not cubic, a non-positive voxel size or fewer than one bin.
    """
    v = np.asarray(volumes, dtype=np.float64)
    if v.ndim == 3:
        v = v[None]
    if v.ndim != 4 or not (v.shape[1] == v.shape[2] == v.shape[3]) or v.shape[1] < 2:
        raise ValueError(f"volumes must be (N, D, D, D) or (D, D, D) cubes, got {v.shape}")
    if not voxel_size_A > 0:
        raise ValueError(f"voxel_size_A must be > 0, got {voxel_size_A}")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    d = v.shape[-1]
    power = (np.abs(np.fft.fftn(v, axes=(1, 2, 3))) ** 2).mean(0)
    f = np.fft.fftfreq(d)
    k = np.sqrt(f[:, None, None] ** 2 + f[None, :, None] ** 2 + f[None, None, :] ** 2)
    edges = np.linspace(0.0, 0.5, n_bins + 1)
    idx = np.digitize(k.ravel(), edges)  # shell j+1 holds edges[j] <= k < edges[j+1]
    sums = np.bincount(idx, weights=power.ravel(), minlength=n_bins + 2)[1:n_bins + 1]
    counts = np.bincount(idx, minlength=n_bins + 2)[1:n_bins + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        prof = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    centres = 0.5 * (edges[1:] + edges[:-1]) / voxel_size_A
    return centres, prof
