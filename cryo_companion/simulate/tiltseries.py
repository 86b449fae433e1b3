"""Image formation by projection: tilt series of a 3-D potential and weighted back-projection.

This is the *realistic* image-formation path of the test domain, deliberately
different from the training simulator, which convolves one volume with a CTF, an MTF and a wedge.
Here, for every tilt of a series (SHREC 2020, Gubins et al., section 2.1, minus the multislice
propagation):

1. the scene's potential (relative to vitreous ice, in V) is integrated along the beam through the
   tilted specimen, **separately for slabs of the beam height** ``t`` (``slab_thickness_A``);
2. each slab's projected phase goes through the CTF with *its own* defocus: the tilt's defocus at
   the eucentric height plus the slab's height (an underfocused lens images a plane above the
   specimen, so higher slabs are less underfocused). Because the specimen is tilted, a point at
   detector position ``u`` and specimen height ``z`` sits at beam height
   ``t = (z − u sin θ) / cos θ``, so this models both the defocus gradient across the tilted field
   and the defocus spread through the ice (the "strip-wise" CTF correction problem of real data);
   weak-phase image ``I = 1 + 2 F⁻¹{Σ_slabs CTF_k · Φ_k}`` with amplitude contrast and a
   radiation-damage B-factor growing with the dose already received (dose-symmetric order);
3. the inelastically scattered electrons are removed (zero-loss image): the transmitted fraction is
   ``exp(−ice / (cos θ · λ_in))``;
4. electrons are counted: Poisson shot noise with the tilt's share of the total dose;
5. the detector blurs signal and noise alike (MTF ``sinc(πω/2)`` of the detector's own Nyquist);
6. the images are binned by Fourier cropping to the tomogram's voxel size and reconstructed by
   weighted (R-weighted, Ram-Lak) back-projection.

``Imaging(propagation="multislice")`` replaces step 2 by multislice propagation
(:mod:`.multislice`, SHREC 2020's image formation): the slabs are the slices (``slab_thickness_A``,
5 nm in SHREC 2020), the wave is transmitted through each and Fresnel-propagated to the next, and
the exit wave (referred to the eucentric height) is imaged through the lens,
``I = |F⁻¹{exp(−iχ) E · F{ψ_exit}}|²``: every order of the phase and the defocus spread through
the specimen, with no further approximation. Options for other recipes (all off by default):
a constant envelope B-factor ``bfactor_A2`` (SHREC's "Gaussian CTF decay"), per-tilt structural
noise of the potential ``structural_noise_sd_V`` (SHREC's beam damage), a Gaussian detector-noise
model ``noise_model="snr"`` (:func:`snr_noise`) instead of counted electrons, no detector MTF,
and a detector smaller than the simulated field (``detector_shape``: the central pixels are
recorded, so that the periodic FFTs of a wider field do not wrap around the recorded image).

Sign of the defocus gradient. A slab or slice at height ``t`` (positive towards the source) is
imaged with the defocus ``Δf + t``: an underfocused (weakened) lens images a plane above the
specimen, so higher slabs are *less* underfocused (the multislice path by its propagation, the
projection path by its per-slab defocus; both tested in ``tests/test_multislice.py``). Until
2026-12-02 the projection path used ``Δf − t`` (and the CTF's Cs term had the sign of an
underfocus); ``Imaging(legacy_signs=True)``
keeps that image formation for the first frozen test domain only, so that it stays the data its
committed results were measured on (the difference, ``2t``, is a few per cent of its defocus).

Geometry (CONTRIBUTING): volumes ``(z, y, x)``, beam along z, tilt axis y. The coordinate of index
``i`` on an axis of ``N`` voxels is ``i − (N − 1) / 2`` (the geometric centre; the tilt axis passes
through it). A tilt θ turns the specimen so that the detector coordinate of a point is
``u = x cos θ + z sin θ``; the projection at ``(y, u)`` is the line integral over the ray. Height
``t`` grows towards the electron source: a point higher by ``t`` is closer to the plane an
underfocused lens images, i.e. less underfocused (defocus ``Δf + t``; negative defocus =
underfocus, as in :mod:`cryo_companion.optics`). Output intensities keep the physical sign: mass
appears **dark**.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from cryo_companion import optics
from cryo_companion._progress import progress as progress_bar
from cryo_companion.devices import DeviceLike
from cryo_companion.simulate.multislice import (
    image_intensity,
    interaction_constant,
    multislice_exit_wave,
)

__all__ = [
    "NOISE_MODELS", "PROPAGATIONS", "Imaging", "TiltSeries", "backproject",
    "dose_symmetric_order", "fourier_bin", "interaction_constant", "project", "project_slabs",
    "ramp_filter", "reconstruct", "simulate_tilt_series", "snr_noise", "tilt_angles_deg", "wbp",
    "write_tilt_series",
]

#: Image formation: weak-phase projection per slab, or multislice propagation.
PROPAGATIONS = ("projection", "multislice")
#: Detector noise: counted electrons (Poisson, dose) or Gaussian noise at a given SNR.
NOISE_MODELS = ("poisson", "snr")

# elements per intermediate tensor in the projector (~0.5 GB of float32)
_BUDGET = 1 << 27


@dataclass(frozen=True)
class Imaging:
    """Acquisition parameters of a tilt series (physical units in the names).

    Attributes
    ----------
    tilt_min_deg, tilt_max_deg, tilt_step_deg : float
        Tilt range and step (degrees; the step must divide the range).
    voltage_kv : float
        Accelerating voltage (kV).
    cs_mm : float
        Spherical aberration (mm).
    amplitude_contrast : float
        Amplitude contrast fraction A, in [0, 1).
    defocus_um : float
        Nominal defocus at the eucentric height (µm, negative = underfocus).
    defocus_tilt_sd_um : float
        Per-tilt random defocus error (µm, sd).
    total_dose_e_A2 : float
        Electrons per Å² over the whole series, spread equally over the tilts.
    bfactor_per_dose_A2 : float
        Radiation-damage B-factor per e/Å² received before the exposure (Å²).
    inelastic_mfp_A : float
        Inelastic mean free path in vitreous ice (Å), for the zero-loss fraction.
    ice_thickness_A : float
        Ice thickness (Å) used for the attenuation.
    slab_thickness_A : float
        Height of the defocus slabs (Å); the slice thickness of multislice.
    propagation : str
        ``"projection"`` (weak phase, per-slab defocus) or ``"multislice"``.
    bfactor_A2 : float
        Constant envelope B-factor (Å²), added to the dose-dependent one.
    structural_noise_sd_V : float
        Sd (V) of white noise added to every voxel of the potential, drawn anew for each tilt
        (beam damage in SHREC 2020); 0: none.
    noise_model : str
        ``"poisson"`` (electrons counted at the dose) or ``"snr"`` (Gaussian noise of variance
        ``var(image) / snr``, half CTF-modulated, see :func:`snr_noise`).
    snr : float or None
        The SNR of ``noise_model="snr"`` (variance ratio per projection, > 0).
    detector_mtf : bool
        Blur the images with the detector MTF.
    legacy_signs : bool
        Regenerate data frozen before 2026-12-02 bit for bit: the projection path then images a
        slab at height ``t`` with ``Δf − t`` and takes the CTF's Cs term with the sign of an
        underfocus, as this package did until then (both wrong; see the module docstring). Only
        the first held-out test domain of Che et al., frozen with them, sets it.

    Raises
    ------
    ValueError
        On construction, for an unknown ``propagation`` or ``noise_model``, ``"snr"`` noise
        without ``snr > 0``, an invalid tilt range, or a parameter out of its range.
    """

    tilt_min_deg: float = -60.0
    tilt_max_deg: float = 60.0
    tilt_step_deg: float = 2.0
    voltage_kv: float = 300.0
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.07
    defocus_um: float = -6.0
    defocus_tilt_sd_um: float = 0.1
    total_dose_e_A2: float = 100.0
    bfactor_per_dose_A2: float = 4.0
    inelastic_mfp_A: float = 3500.0
    ice_thickness_A: float = 1500.0
    slab_thickness_A: float = 200.0
    propagation: str = "projection"
    bfactor_A2: float = 0.0
    structural_noise_sd_V: float = 0.0
    noise_model: str = "poisson"
    snr: float | None = None
    detector_mtf: bool = True
    legacy_signs: bool = False

    def __post_init__(self) -> None:
        """Check every parameter (the tilt range with :func:`tilt_angles_deg`)."""
        if self.propagation not in PROPAGATIONS:
            raise ValueError(f"propagation {self.propagation!r}; valid: {', '.join(PROPAGATIONS)}")
        if self.noise_model not in NOISE_MODELS:
            raise ValueError(f"noise_model {self.noise_model!r}; valid: {', '.join(NOISE_MODELS)}")
        if self.noise_model == "snr" and not (self.snr is not None and self.snr > 0):
            raise ValueError(f"noise_model 'snr' needs snr > 0, got {self.snr}")
        tilt_angles_deg(self.tilt_min_deg, self.tilt_max_deg, self.tilt_step_deg)
        for name in ("voltage_kv", "total_dose_e_A2", "inelastic_mfp_A", "slab_thickness_A"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("cs_mm", "defocus_tilt_sd_um", "bfactor_per_dose_A2", "ice_thickness_A",
                     "bfactor_A2", "structural_noise_sd_V"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.amplitude_contrast < 1:
            raise ValueError(f"amplitude_contrast {self.amplitude_contrast} is outside [0, 1)")

    @property
    def tilts_deg(self) -> np.ndarray:
        """The tilt angles (degrees, ascending)."""
        return tilt_angles_deg(self.tilt_min_deg, self.tilt_max_deg, self.tilt_step_deg)

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters as a plain dict.

        Returns
        -------
        dict
            ``{field: value}``, JSON-ready.
        """
        return asdict(self)


@dataclass
class TiltSeries:
    """A simulated tilt series.

    Attributes
    ----------
    images : Tensor
        `(T, Y, U)` float32 contrast images (``counts / expected − 1``), at ``pixel_size_A``.
    tilts_deg : np.ndarray
        `(T,)` tilt angles.
    defocus_um : np.ndarray
        `(T,)` defocus of each tilt at the eucentric height.
    dose_before_e_A2 : np.ndarray
        `(T,)` dose received before each exposure (dose-symmetric order).
    electrons_per_pixel : np.ndarray
        `(T,)` expected zero-loss electrons per detector pixel (sim sampling).
    pixel_size_A : float
        Pixel size of ``images`` in Å.
    """

    images: Tensor
    tilts_deg: np.ndarray
    defocus_um: np.ndarray
    dose_before_e_A2: np.ndarray
    electrons_per_pixel: np.ndarray
    pixel_size_A: float


def tilt_angles_deg(tilt_min_deg: float, tilt_max_deg: float,
                    tilt_step_deg: float) -> np.ndarray:
    """List the tilt angles from ``tilt_min_deg`` to ``tilt_max_deg`` inclusive.

    Parameters
    ----------
    tilt_min_deg, tilt_max_deg : float
        The first and last tilt in degrees, in (−90, 90).
    tilt_step_deg : float
        The step in degrees (> 0); it must divide the range (−50..+70 in steps of 2° gives 61
        tilts; in steps of 7° is refused).

    Returns
    -------
    np.ndarray
        `(T,)` float64 angles in degrees, ascending.

    Raises
    ------
    ValueError
        For a range outside (−90°, 90°), an empty range, or a step that is not > 0 or does not
        divide the range.
    """
    lo, hi, step = float(tilt_min_deg), float(tilt_max_deg), float(tilt_step_deg)
    if not (-90 < lo < 90 and -90 < hi < 90):
        raise ValueError(f"tilt range [{lo:g}, {hi:g}] deg is outside (-90, 90)")
    if not hi > lo:
        raise ValueError(f"tilt range [{lo:g}, {hi:g}] deg is empty (need min < max)")
    if not step > 0:
        raise ValueError(f"tilt step {step:g} deg must be > 0")
    n = (hi - lo) / step
    if abs(n - round(n)) > 1e-6:
        raise ValueError(f"tilt step {step:g} deg does not divide the range [{lo:g}, {hi:g}] "
                         f"({hi - lo:g} deg); choose a divisor of it")
    return lo + step * np.arange(round(n) + 1, dtype=np.float64)


def dose_symmetric_order(tilts_deg: Sequence[float] | np.ndarray) -> np.ndarray:
    """Rank each tilt in the order of a dose-symmetric acquisition (Hagen et al. 2017).

    Tilts are taken from the one nearest 0° outwards, alternating sides (ties: positive first);
    tilts beyond the shorter side's end follow in order.

    Parameters
    ----------
    tilts_deg : sequence of float or np.ndarray
        `(T,)` tilt angles in degrees.

    Returns
    -------
    np.ndarray
        `(T,)` int64 acquisition ranks 0..T−1.
    """
    t = np.asarray(tilts_deg, dtype=np.float64)
    key = np.lexsort((-np.sign(t), np.abs(t)))
    rank = np.empty(len(t), dtype=np.int64)
    rank[key] = np.arange(len(t))
    return rank


def _coords(n: int, device: DeviceLike, dtype: torch.dtype = torch.float32) -> Tensor:
    """Return the centred coordinates ``i − (n − 1) / 2`` of an axis of ``n`` voxels."""
    return torch.arange(n, device=device, dtype=dtype) - (n - 1) / 2


def _ray_samples(Z: int, tilts_rad: Tensor) -> int:
    """Return the samples per voxel of height that keep the ray step <= 1 voxel at every tilt."""
    c = float(torch.cos(tilts_rad).abs().min())
    return max(1, math.ceil(1.0 / max(c, 1e-3)))


def project_slabs(volume: Tensor, tilts_deg: Sequence[float] | np.ndarray | Tensor,
                  voxel_size_A: float = 1.0, slab_thickness_A: float | None = None, *,
                  width: int | None = None) -> tuple[Tensor, Tensor]:
    """Integrate along the rays through the tilted volume, split into slabs of beam height.

    Parameters
    ----------
    volume : Tensor
        `(Z, Y, X)` tensor (any unit, e.g. V); projected on its device.
    tilts_deg : sequence of float, np.ndarray or Tensor
        `(T,)` tilt angles in degrees, |θ| < 90.
    voxel_size_A : float, optional
        Voxel edge (Å); integrals are in unit·Å.
    slab_thickness_A : float or None, optional
        Height of a slab (Å); None: one slab (a plain projection).
    width : int or None, optional
        Detector columns U, centred on the tilt axis (default X); a narrower detector than the
        volume sees the central columns, its rays still crossing the whole volume.

    Returns
    -------
    slabs : Tensor
        `(T, K, Y, U)` float32 integrals per slab.
    heights_A : Tensor
        `(K,)` height of each slab's centre (Å, positive towards the source).

    Raises
    ------
    ValueError
        If ``volume`` is not 3-D, a tilt is outside (−90, 90), ``width`` < 1 or
        ``slab_thickness_A`` is not > 0.
    """
    if volume.ndim != 3:
        raise ValueError(f"volume must be (Z, Y, X), got {tuple(volume.shape)}")
    dev = volume.device
    tilts = torch.as_tensor(np.asarray(tilts_deg, dtype=np.float64), device=dev)
    if bool((tilts.abs() >= 90).any()):
        raise ValueError("tilt angles must lie in (-90, 90) deg")
    th = torch.deg2rad(tilts).to(torch.float32)
    Z, Y, X = volume.shape
    m = _ray_samples(Z, th)
    S = Z * m
    z = (torch.arange(S, device=dev, dtype=torch.float32) + 0.5) / m - Z / 2  # voxel units
    U = X if width is None else int(width)
    if U < 1:
        raise ValueError(f"width must be >= 1 detector column, got {width}")
    u = _coords(U, dev)
    sin, cos = torch.sin(th), torch.cos(th)
    # height range over the whole series, in voxels
    t_half = float(((Z / 2 + (U / 2) * sin.abs()) / cos).max())
    if slab_thickness_A is None:
        K, slab_vox = 1, 2 * t_half + 2
    else:
        if not slab_thickness_A > 0:
            raise ValueError(f"slab_thickness_A must be > 0, got {slab_thickness_A}")
        slab_vox = slab_thickness_A / voxel_size_A
        K = max(1, math.ceil(2 * t_half / slab_vox))
    t0 = -K * slab_vox / 2
    heights = (t0 + slab_vox * (torch.arange(K, device=dev, dtype=torch.float32) + 0.5)) \
        * voxel_size_A
    # (1, Y, Z, X): y as channels, each (z, x) plane is an independent 2-D problem
    inp = volume.to(torch.float32).permute(1, 0, 2).unsqueeze(0)
    out = torch.zeros(len(th), K, Y, U, device=dev, dtype=torch.float32)
    yc = max(1, min(Y, _BUDGET // max(1, S * U)))
    for i in range(len(th)):
        x = (u[None, :] - z[:, None] * sin[i]) / cos[i]                       # (S, U)
        t = (z[:, None] - u[None, :] * sin[i]) / cos[i]
        k = ((t - t0) / slab_vox).floor().clamp_(0, K - 1).long()            # (S, U)
        gx = x / max((X - 1) / 2, 0.5)
        gz = (z[:, None] / max((Z - 1) / 2, 0.5)).expand(S, U)
        grid = torch.stack([gx, gz], -1).unsqueeze(0)                        # (1, S, U, 2)
        w = float(voxel_size_A / m / cos[i])                                 # path per sample
        for y0 in range(0, Y, yc):
            y1 = min(Y, y0 + yc)
            vals = F.grid_sample(inp[:, y0:y1], grid, mode="bilinear", padding_mode="zeros",
                                 align_corners=True)[0]                      # (yc, S, U)
            acc = torch.zeros(y1 - y0, K, U, device=dev, dtype=torch.float32)
            acc.scatter_add_(1, k.unsqueeze(0).expand(y1 - y0, S, U), vals)
            out[i, :, y0:y1] = acc.permute(1, 0, 2) * w
    return out, heights


def project(volume: Tensor, tilts_deg: Sequence[float] | np.ndarray | Tensor,
            voxel_size_A: float = 1.0) -> Tensor:
    """Project a volume along parallel rays at each tilt.

    Parameters
    ----------
    volume : Tensor
        `(Z, Y, X)` volume (any unit).
    tilts_deg : sequence of float, np.ndarray or Tensor
        `(T,)` tilt angles in degrees, |θ| < 90.
    voxel_size_A : float
        Voxel edge in Å; integrals are in unit·Å.

    Returns
    -------
    Tensor
        `(T, Y, X)` float32 projections.

    Raises
    ------
    ValueError
        As :func:`project_slabs`.
    """
    return project_slabs(volume, tilts_deg, voxel_size_A, None)[0][:, 0]


def ramp_filter(n: int, device: DeviceLike = None) -> Tensor:
    """Make the Ram-Lak filter (R-weighting) for rows of ``n`` pixels, zero-padded to ``2n``.

    The rfft of the spatial kernel (Kak & Slaney eq. 3.61), so that the DC term is right.

    Parameters
    ----------
    n : int
        Pixels per row.
    device : DeviceLike
        Device of the result.

    Returns
    -------
    Tensor
        `(n + 1,)` float32 filter on the rfft grid of ``2n`` samples.
    """
    N = 2 * n
    idx = torch.arange(N, device=device, dtype=torch.float64)
    idx = torch.where(idx > N // 2, idx - N, idx)
    h = torch.zeros(N, device=device, dtype=torch.float64)
    h[idx == 0] = 0.25
    odd = (idx.remainder(2) == 1)
    h[odd] = -1.0 / (math.pi * idx[odd]) ** 2
    return torch.fft.rfft(h).real.to(torch.float32)


def backproject(projections: Tensor, tilts_deg: Sequence[float] | np.ndarray | Tensor,
                thickness: int) -> Tensor:
    """Back-project without filter (the transpose of :func:`project`, pixel-driven, linear).

    Parameters
    ----------
    projections : Tensor
        `(T, Y, U)` images.
    tilts_deg : sequence of float, np.ndarray or Tensor
        `(T,)` angles in degrees.
    thickness : int
        Z, the number of voxels along the beam of the output.

    Returns
    -------
    Tensor
        `(Z, Y, U)` volume: ``Σ_θ p_θ(y, x cos θ + z sin θ)``.

    Raises
    ------
    ValueError
        If ``projections`` is not 3-D or the number of angles differs from T.
    """
    if projections.ndim != 3:
        raise ValueError(f"projections must be (T, Y, U), got {tuple(projections.shape)}")
    T, Y, U = projections.shape
    dev = projections.device
    th = torch.deg2rad(torch.as_tensor(np.asarray(tilts_deg, dtype=np.float64), device=dev)
                       ).to(torch.float32)
    if th.numel() != T:
        raise ValueError(f"{T} projections but {th.numel()} tilt angles")
    z = _coords(int(thickness), dev)
    x = _coords(U, dev)
    out = torch.zeros(int(thickness), Y, U, device=dev, dtype=torch.float32)
    zc = max(1, min(int(thickness), _BUDGET // max(1, Y * U)))
    for i in range(T):
        p = projections[i].to(torch.float32).reshape(1, Y, 1, U)             # y as channels
        for z0 in range(0, int(thickness), zc):
            zz = z[z0:z0 + zc]
            uu = x[None, :] * torch.cos(th[i]) + zz[:, None] * torch.sin(th[i])  # (zc, U)
            gx = uu / max((U - 1) / 2, 0.5)
            grid = torch.stack([gx, torch.zeros_like(gx)], -1).unsqueeze(0)  # (1, zc, U, 2)
            vals = F.grid_sample(p, grid, mode="bilinear", padding_mode="zeros",
                                 align_corners=True)[0]                      # (Y, zc, U)
            out[z0:z0 + zc] += vals.permute(1, 0, 2)
    return out


def wbp(projections: Tensor, tilts_deg: Sequence[float] | np.ndarray | Tensor,
        thickness: int) -> Tensor:
    """Reconstruct by weighted back-projection: Ram-Lak filter along u, back-project, × Δθ.

    For a full, finely sampled tilt range this inverts :func:`project` (the filtered
    back-projection formula ``f = ∫₀^π (p_θ * h)(x cos θ + z sin θ) dθ``); for a limited range
    it gives the missing-wedge-limited reconstruction. Projections in unit·voxel give a volume
    in the unit.

    Parameters
    ----------
    projections : Tensor
        `(T, Y, U)` images.
    tilts_deg : sequence of float, np.ndarray or Tensor
        `(T,)` angles in degrees (Δθ in radians from their spacing; π for a single tilt).
    thickness : int
        Z, the number of voxels along the beam of the output.

    Returns
    -------
    Tensor
        `(Z, Y, U)` float32 volume.

    Raises
    ------
    ValueError
        As :func:`backproject`.
    """
    T, _, U = projections.shape
    tilts = np.asarray(tilts_deg, dtype=np.float64)
    if T > 1:
        dtheta = np.deg2rad(np.gradient(tilts))                               # per-tilt weight
    else:
        dtheta = np.array([math.pi])
    H = ramp_filter(U, projections.device)
    P = torch.fft.rfft(projections.to(torch.float32), n=2 * U, dim=-1) * H
    filt = torch.fft.irfft(P, n=2 * U, dim=-1)[..., :U]
    filt = filt * torch.as_tensor(dtheta, dtype=torch.float32, device=filt.device).reshape(T, 1, 1)
    return backproject(filt, tilts, thickness)


def fourier_bin(images: Tensor, factor: int) -> Tensor:
    """Bin images by an integer factor by Fourier cropping (mean preserved).

    Parameters
    ----------
    images : Tensor
        `(..., H, W)` real images.
    factor : int
        Binning factor (1: ``images`` itself); it must divide H and W.

    Returns
    -------
    Tensor
        `(..., H / factor, W / factor)` images.

    Raises
    ------
    ValueError
        If ``factor`` does not divide the image size.
    """
    if factor == 1:
        return images
    H, W = images.shape[-2:]
    if H % factor or W % factor:
        raise ValueError(f"image size {H}x{W} is not divisible by the binning factor {factor}")
    h, w = H // factor, W // factor
    Fi = torch.fft.rfft2(images)
    ky = torch.cat([torch.arange(0, (h + 1) // 2), torch.arange(H - h // 2, H)]).to(Fi.device)
    Fc = Fi.index_select(-2, ky)[..., : w // 2 + 1]
    return torch.fft.irfft2(Fc, s=(h, w)) / (factor * factor)


def _device_generator(generator: torch.Generator | None,
                      device: torch.device) -> torch.Generator:
    """Make a generator on ``device`` seeded by one draw from ``generator``."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return torch.Generator(device=device).manual_seed(seed)


def snr_noise(image: Tensor, snr: float, ctf_full: Tensor, generator: torch.Generator) -> Tensor:
    """Draw Gaussian detector noise at a signal-to-noise ratio, half CTF-modulated, half white.

    The noise model of the SHREC simulators (Gubins et al. 2020, Sec. 2.1: "CTF dependent noise
    and background noise"): the noise variance is ``var(image) / snr``, split equally between
    white noise filtered by the CTF (normalised to keep its variance) and white background noise.
    So ``var(image) / var(noise) = snr`` in expectation.

    Parameters
    ----------
    image : torch.Tensor
        ``(Y, X)`` noise-free contrast image (its variance sets the noise level).
    snr : float
        Signal-to-noise ratio (variance ratio, > 0).
    ctf_full : torch.Tensor
        ``(Y, X)`` real CTF on the full FFT grid (:func:`cryo_companion.optics.ctf`); not all
        zero.
    generator : torch.Generator
        Generator on the image's device.

    Returns
    -------
    torch.Tensor
        ``(Y, X)`` float32 noise.

    Raises
    ------
    ValueError
        If ``snr`` is not > 0, the shapes differ or are not 2-D, or ``ctf_full`` is all zero.
    """
    if not snr > 0:
        raise ValueError(f"snr must be > 0, got {snr}")
    if image.ndim != 2 or tuple(ctf_full.shape) != tuple(image.shape):
        raise ValueError(f"image {tuple(image.shape)} and ctf_full {tuple(ctf_full.shape)} must "
                         "be the same (Y, X)")
    gain = float((ctf_full.double() ** 2).mean())
    if not gain > 0:
        raise ValueError("ctf_full is zero everywhere: no CTF-modulated noise can be made")
    sd = math.sqrt(0.5 * float(image.double().var()) / snr)
    w = torch.randn(2, *image.shape, generator=generator, device=image.device)
    n_ctf = torch.fft.ifft2(torch.fft.fft2(w[0]) * ctf_full).real / math.sqrt(gain)
    return (sd * (n_ctf + w[1])).to(torch.float32)


def _crop_centre(shape: tuple[int, int], detector_shape: Sequence[int] | None
                 ) -> tuple[slice, slice]:
    """Return the ``(y, x)`` slices of a centred ``detector_shape`` in ``shape`` (all: None)."""
    if detector_shape is None:
        return slice(None), slice(None)
    (Y, X), (Yd, Xd) = shape, (int(detector_shape[0]), int(detector_shape[1]))
    if not (0 < Yd <= Y and 0 < Xd <= X) or (Y - Yd) % 2 or (X - Xd) % 2:
        raise ValueError(f"detector_shape {Yd}x{Xd} must fit centred in the simulated field "
                         f"{Y}x{X} (y, x) with an even margin on each axis")
    return slice((Y - Yd) // 2, (Y + Yd) // 2), slice((X - Xd) // 2, (X + Xd) // 2)


def simulate_tilt_series(potential_V: Tensor, voxel_size_A: float, imaging: Imaging,
                         generator: torch.Generator | None = None, *, bin_factor: int = 1,
                         noise: bool = True, progress: bool = False,
                         detector_shape: Sequence[int] | None = None,
                         field_margin_px: int | None = None) -> TiltSeries:
    """Image a scene's potential as a noisy, CTF-modulated tilt series.

    Parameters
    ----------
    potential_V : torch.Tensor
        `(Z, Y, X)` potential relative to vitreous ice (V), z-y-x, on the compute device.
    voxel_size_A : float
        Its voxel edge (Å) = the detector's physical pixel.
    imaging : Imaging
        Acquisition parameters (``imaging.propagation`` chooses the image formation).
    generator : torch.Generator or None
        CPU generator (defocus errors, noise): same seed, same series.
    bin_factor : int
        Fourier binning from the detector pixel to the output pixel.
    noise : bool
        False gives the expected (noise-free) images: no structural and no detector noise.
    progress : bool
        Show a progress bar over tilts (on a terminal only).
    detector_shape : sequence of int or None
        `(Yd, Xd)` pixels recorded at the centre of the simulated `(Y, X)` field (the margin
        keeps the wrap-around of periodic FFTs off the record; even margins); None: the whole
        field.
    field_margin_px : int or None
        With ``detector_shape``: simulate only the recorded field plus this margin on each side
        (the volume's central ``Yd + 2 margin`` rows, projected onto ``Xd + 2 margin`` columns
        whose rays still cross the whole width X). None: the simulated field is the volume's
        ``(Y, X)``.

    Returns
    -------
    TiltSeries
        Images `(T, Yd / bin, Xd / bin)` of contrast (``intensity − 1``).

    Raises
    ------
    ValueError
        If ``field_margin_px`` is negative or given without ``detector_shape``, the detector
        does not fit centred in the field with even margins, or ``bin_factor`` does not divide
        the detector size.
    """
    dev = potential_V.device
    fld = _field(potential_V, detector_shape, field_margin_px, bin_factor)
    Y, X, rows, width, cy, cx = fld.Y, fld.X, fld.rows, fld.width, fld.cy, fld.cx
    Yd, Xd = fld.Yd, fld.Xd
    tilts = imaging.tilts_deg
    T = len(tilts)
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    dz = imaging.defocus_um + imaging.defocus_tilt_sd_um * torch.randn(
        T, generator=g, dtype=torch.float64).numpy()
    rank = dose_symmetric_order(tilts)
    dose_tilt = imaging.total_dose_e_A2 / T
    dose_before = rank * dose_tilt
    th = np.deg2rad(tilts)
    transmitted = np.exp(-imaging.ice_thickness_A / (np.cos(th) * imaging.inelastic_mfp_A))
    electrons = dose_tilt * voxel_size_A ** 2 * transmitted
    sigma = interaction_constant(imaging.voltage_kv)
    gdev = _device_generator(g, dev)
    kmag = optics.frequency_magnitude((Y, X), voxel_size_A, dev, rfft=True)
    kmag_d = optics.frequency_magnitude((Yd, Xd), voxel_size_A, dev, rfft=True)
    mtf = optics.mtf(kmag_d / (0.5 / voxel_size_A))
    multislice = imaging.propagation == "multislice"
    out = torch.empty(T, Yd // bin_factor, Xd // bin_factor, device=dev, dtype=torch.float32)
    for i in progress_bar(range(T), desc="tilt series", show=progress, leave=False):
        vol = potential_V[:, rows]
        if noise and imaging.structural_noise_sd_V > 0:
            vol = vol + imaging.structural_noise_sd_V * torch.randn(
                vol.shape, generator=gdev, device=dev, dtype=vol.dtype)
        slabs, heights = project_slabs(vol, tilts[i:i + 1], voxel_size_A,
                                       imaging.slab_thickness_A, width=width)
        b_i = imaging.bfactor_per_dose_A2 * float(dose_before[i]) + imaging.bfactor_A2
        if multislice:
            wave = multislice_exit_wave(slabs, heights, voxel_size_A, imaging.voltage_kv,
                                        imaging.amplitude_contrast)
            intensity = image_intensity(wave, voxel_size_A, float(dz[i]), imaging.cs_mm,
                                        imaging.voltage_kv, b_i)[0]
        else:
            intensity = _weak_phase_intensity(slabs[0], heights, dz[i], b_i, imaging, kmag,
                                              sigma, (Y, X))
        intensity = intensity[cy, cx]
        img = _record(intensity, imaging, noise, float(dz[i]), b_i, float(electrons[i]),
                      voxel_size_A, gdev)
        if imaging.detector_mtf:
            img = torch.fft.irfft2(torch.fft.rfft2(img) * mtf, s=(Yd, Xd))     # detector
        out[i] = fourier_bin(img, bin_factor)
    return TiltSeries(images=out, tilts_deg=tilts, defocus_um=dz, dose_before_e_A2=dose_before,
                      electrons_per_pixel=electrons, pixel_size_A=voxel_size_A * bin_factor)


@dataclass(frozen=True)
class _Field:
    """The simulated field, the rows of the volume it covers and the recorded detector part."""

    Y: int
    X: int
    rows: slice
    width: int | None
    cy: slice
    cx: slice
    Yd: int
    Xd: int


def _field(potential_V: Tensor, detector_shape: Sequence[int] | None,
           field_margin_px: int | None, bin_factor: int) -> _Field:
    """Lay out the simulated field and the detector (see :func:`simulate_tilt_series`)."""
    Y, X = potential_V.shape[1:]
    rows, width = slice(None), None
    if field_margin_px is not None:
        if detector_shape is None or int(field_margin_px) < 0:
            raise ValueError("field_margin_px needs a detector_shape and must be >= 0")
        Y = int(detector_shape[0]) + 2 * int(field_margin_px)
        width = X = int(detector_shape[1]) + 2 * int(field_margin_px)
        rows = _crop_centre((int(potential_V.shape[1]), int(potential_V.shape[2])),
                            (Y, int(potential_V.shape[2])))[0]
    cy, cx = _crop_centre((Y, X), detector_shape)
    Yd, Xd = len(range(Y)[cy]), len(range(X)[cx])
    if Yd % bin_factor or Xd % bin_factor:
        raise ValueError(f"detector size {Yd}x{Xd} (y, x) is not divisible by bin_factor "
                         f"{bin_factor}")
    return _Field(int(Y), int(X), rows, width, cy, cx, Yd, Xd)


def _weak_phase_intensity(slabs: Tensor, heights: Tensor, dz_um: float, b_A2: float,
                          imaging: Imaging, kmag: Tensor, sigma: float,
                          shape: tuple[int, int]) -> Tensor:
    """Image the `(K, Y, X)` slab integrals of one tilt as a weak phase object, per-slab defocus."""
    dev = slabs.device
    keep = slabs.abs().amax(dim=(1, 2)) > 0                                  # non-empty slabs
    if not bool(keep.any()):
        keep[0] = True
    phase = slabs[keep] * sigma                                              # (K', Y, X) rad
    Phi = torch.fft.rfft2(phase)
    Phi[:, 0, 0] = 0  # a uniform phase shift has no contrast (ice slab: attenuation below)
    # defocus of each slab: the tilt's defocus plus the slab's height (module docstring)
    sign = -1.0 if imaging.legacy_signs else 1.0
    dz_k = (torch.as_tensor(dz_um, dtype=torch.float32, device=dev)
            + sign * heights[keep] * 1e-4)
    b = torch.full_like(dz_k, b_A2)
    c = optics._ctf(kmag, dz_k, imaging.cs_mm, voltage_kv=imaging.voltage_kv,
                    amplitude_contrast=imaging.amplitude_contrast, bfactor_A2=b,
                    cs_sign=sign)
    contrast = torch.fft.irfft2(2 * (c * Phi).sum(0), s=shape)               # weak phase
    return (1 + contrast).clamp_min(0)


def _record(intensity: Tensor, imaging: Imaging, noise: bool, dz_um: float, b_A2: float,
            electrons: float, voxel_size_A: float, gdev: torch.Generator) -> Tensor:
    """Turn a recorded intensity into contrast: counted electrons, SNR noise or none."""
    if noise and imaging.noise_model == "snr":
        Yd, Xd = intensity.shape
        c_full = optics.ctf(optics.frequency_magnitude((Yd, Xd), voxel_size_A, intensity.device),
                            dz_um, imaging.cs_mm, voltage_kv=imaging.voltage_kv,
                            amplitude_contrast=imaging.amplitude_contrast, bfactor_A2=b_A2)
        img = intensity - 1
        return img + snr_noise(img, float(imaging.snr or 0.0), c_full, gdev)
    if noise:
        counts = torch.poisson(intensity * electrons, generator=gdev)
        return counts / electrons - 1
    return intensity - 1


def reconstruct(series: TiltSeries, thickness: int) -> Tensor:
    """Reconstruct a tilt series by weighted back-projection at its pixel size.

    The images are contrast (dimensionless); the tomogram is their R-weighted back-projection
    with the projections taken per voxel (pixel units), so a feature's value scales with its
    contrast per voxel of path.

    Parameters
    ----------
    series : TiltSeries
        The series.
    thickness : int
        Voxels along the beam of the tomogram.

    Returns
    -------
    Tensor
        `(thickness, Y, U)` float32 tomogram.
    """
    return wbp(series.images, series.tilts_deg, thickness)


def write_tilt_series(path: str | os.PathLike, series: TiltSeries) -> list[Path]:
    """Write a tilt series as tomography software reads it: an MRC image stack and its angles.

    Parameters
    ----------
    path : str or os.PathLike
        The stack, ``NAME.mrc``; the angles go to ``NAME.tlt`` and ``NAME.rawtlt``.
    series : TiltSeries
        The series (images in the order of ``tilts_deg``).

    Returns
    -------
    list of Path
        The three files: the stack (MRC image stack, ``ispg`` 0, mode 2, ``nz`` = number of
        tilts, pixel size ``series.pixel_size_A``) and the IMOD angle files, one tilt angle in
        degrees per line in the order of the stack's sections (``.rawtlt``: as acquired;
        ``.tlt``: after alignment, the same here since the geometry is known exactly).

    Raises
    ------
    ValueError
        If the images are not `(T, Y, X)` with one image per tilt angle.
    MrcError
        If the images hold NaN/inf or the pixel size is not > 0.
    """
    from cryo_companion._io import write_text
    from cryo_companion.mrc import write_mrc

    path = Path(path)
    images = series.images.detach().cpu().numpy() if isinstance(series.images, Tensor) \
        else np.asarray(series.images)
    if images.ndim != 3 or images.shape[0] != len(series.tilts_deg):
        raise ValueError(f"tilt series images {images.shape} do not match its "
                         f"{len(series.tilts_deg)} tilt angles")
    angles = "".join(f"{float(t):.2f}\n" for t in series.tilts_deg)
    out = [write_mrc(path, images, series.pixel_size_A, image_stack=True)]
    for suffix in (".tlt", ".rawtlt"):
        out.append(write_text(path.with_suffix(suffix), angles))
    return out
