"""Template matching: locally normalised FFT cross-correlation over sampled rotations.

The method of PyTom (Hrabe et al. 2012), used as SHREC 2020's baseline (Gubins et al. 2020,
3.7). For each rotation ``R`` of a set, the rotated template is correlated with the whole
tomogram by FFT; the score of a voxel is the best correlation over the rotations and the
rotation that gave it is kept.

The score is the *locally normalised* cross-correlation under a mask ``M`` (Roseman 2003):
with weights ``w = M / ΣM`` and ``t̂ = (t_R − μ_t) / σ_t`` normalised under ``w``,

    CC(x) = Σ_r w(r) t̂(r) f(x + r) / σ_f(x),    σ_f(x)² = Σ_r w(r) f(x + r)² − μ_f(x)²,

the weighted Pearson correlation of the rotated template and the tomogram under the mask
centred at ``x``; so ``−1 <= CC <= 1``, ``CC = 1`` where the tomogram is an increasing affine
function of the rotated template, and ``CC`` does not change when the tomogram is scaled or
offset. The mask must be **rotation invariant** (spherical, as in the paper: "spherical
template masks with Gaussian smoothed edges"): the local moments ``μ_f`` and ``σ_f`` are then
computed once, and each rotation costs one forward and one inverse FFT of the tomogram's size.

Conventions: volumes z-y-x; the template's box is odd and its centre voxel ``(N − 1) / 2`` is
the reference point; ``R`` acts on (x, y, z) column vectors and turns the template actively
about its centre (:mod:`cryo_companion.rotation`), so a particle equal to the template turned
by ``R`` at voxel ``p`` scores 1 at ``p`` with rotation ``R``. Correlations are circular (the
tomogram wraps around at its faces). Defocus negative = underfocus; the CTF has the physical
sign (:func:`cryo_companion.optics.ctf`: mass dark, as in a raw reconstruction).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import Tensor

from cryo_companion import optics, rotation
from cryo_companion._progress import progress as progress_bar

__all__ = [
    "TemplateMatch",
    "crowther_step_deg",
    "ctf_template",
    "match_template",
    "n_rotations_for_step",
    "rotation_set",
    "spherical_mask",
]

# Super-Fibonacci spirals (Alexa 2022): φ = √2 and ψ, the real root of ψ⁴ = ψ + 4.
_PHI = math.sqrt(2.0)
_PSI = 1.533751168755204288118041


def n_rotations_for_step(step_deg: float) -> int:
    """Rotations needed to sample SO(3) with an angular step ``Δ``: ``ceil(8π² / Δ³)``.

    ``8π²`` is the volume of SO(3) in the metric whose distance is the angle of the relative
    rotation, so a set with one rotation per ``Δ³`` cell has neighbours about ``Δ`` apart (PyTom
    names its sets this way: 7,112 rotations for 12.85°).

    Parameters
    ----------
    step_deg : float
        Angular step in degrees, in (0, 180].

    Returns
    -------
    int
    """
    if not 0 < step_deg <= 180:
        raise ValueError(f"angular step {step_deg} deg is outside (0, 180]")
    return max(1, math.ceil(8 * math.pi ** 2 / math.radians(step_deg) ** 3))


def rotation_set(n: int, *, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> Tensor:
    """``n`` rotations spread evenly over SO(3) (a super-Fibonacci spiral, deterministic).

    Parameters
    ----------
    n : int
        Number of rotations (>= 1); :func:`n_rotations_for_step` gives it for a step. The first
        rotation is not the identity; add it if needed.
    dtype : torch.dtype
        Floating dtype of the result.
    device : torch.device or str or None
        Device of the result.

    Returns
    -------
    torch.Tensor
        `(n, 3, 3)` rotation matrices acting on (x, y, z).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    s = torch.arange(n, dtype=torch.float64) + 0.5
    t = s / n
    r, big_r = torch.sqrt(t), torch.sqrt(1.0 - t)
    alpha, beta = 2 * math.pi * s / _PHI, 2 * math.pi * s / _PSI
    q = torch.stack([r * torch.sin(alpha), r * torch.cos(alpha), big_r * torch.sin(beta),
                     big_r * torch.cos(beta)], -1)
    return rotation.quaternion_to_matrix(q).to(dtype=dtype, device=device)


def crowther_step_deg(diameter_vox: float, resolution_vox: float) -> float:
    """Angular step that moves the particle's rim by one resolution element: ``d / D`` rad.

    The Crowther criterion samples ``π D / d`` views over 180° for a particle of diameter ``D``
    at resolution ``d``: a step of ``d / D`` radians, the rotation that moves a point on the
    particle's rim (radius ``D / 2``) by half a resolution period.

    Parameters
    ----------
    diameter_vox : float
        Particle diameter (voxels, > 0).
    resolution_vox : float
        Resolution (period, voxels, > 0), e.g. ``1 / k`` at the CTF's first zero.

    Returns
    -------
    float
        The step in degrees, at most 180.
    """
    if not diameter_vox > 0 or not resolution_vox > 0:
        raise ValueError(f"diameter {diameter_vox} and resolution {resolution_vox} (voxels) "
                         "must be > 0")
    return min(180.0, math.degrees(resolution_vox / diameter_vox))


def spherical_mask(box: int, radius_vox: float, sigma_vox: float = 1.0, *,
                   device: torch.device | str | None = None) -> Tensor:
    """Make a ball about the box centre with a Gaussian edge: 1 inside ``radius_vox``.

    Parameters
    ----------
    box : int
        Edge of the cubic box (odd, >= 1).
    radius_vox : float
        Radius of the flat part (voxels, > 0).
    sigma_vox : float
        Sd of the Gaussian edge beyond the radius (voxels, >= 0; 0: a hard edge); cut at 3 sd.
    device : torch.device or str or None
        Device of the result.

    Returns
    -------
    torch.Tensor
        `(box, box, box)` float32 in [0, 1].
    """
    if box < 1 or box % 2 == 0:
        raise ValueError(f"box must be odd and >= 1 (centre on a voxel), got {box}")
    if not radius_vox > 0 or sigma_vox < 0:
        raise ValueError(f"radius {radius_vox} must be > 0 and sigma {sigma_vox} >= 0 voxels")
    g = torch.arange(box, dtype=torch.float32, device=device) - (box - 1) / 2
    d = torch.sqrt(g[:, None, None] ** 2 + g[None, :, None] ** 2 + g[None, None, :] ** 2)
    m = (d <= radius_vox).float()
    if sigma_vox > 0:
        edge = (d > radius_vox) & (d <= radius_vox + 3 * sigma_vox)
        m = torch.where(edge, torch.exp(-0.5 * ((d - radius_vox) / sigma_vox) ** 2), m)
    return m


def ctf_template(density: Tensor, voxel_size_A: float, *, defocus_um: float, cs_mm: float,
                 voltage_kv: float = 300.0, amplitude_contrast: float = 0.07,
                 bfactor_A2: float = 0.0, cut_at_first_zero: bool = True) -> Tensor:
    """Filter a density by the CTF: the template as the microscope shows it.

    SHREC 2020 (3.7): "the templates were modulated in the frequency domain using a standard
    CTF curve at 3 µm defocus. Frequencies beyond the first CTF zero were set to 0."

    Parameters
    ----------
    density : torch.Tensor
        `(N, N, N)` density (mass positive), z-y-x.
    voxel_size_A : float
        Voxel edge (Å).
    defocus_um : float
        Defocus (µm, negative = underfocus).
    cs_mm : float
        Spherical aberration (mm).
    voltage_kv : float
        Accelerating voltage (kV).
    amplitude_contrast : float
        Amplitude contrast fraction.
    bfactor_A2 : float
        B-factor of an envelope (Å²; 0: none).
    cut_at_first_zero : bool
        Zero every frequency beyond the CTF's first zero.

    Returns
    -------
    torch.Tensor
        `(N, N, N)` float32 filtered template, physical sign (mass dark in underfocus: its sum
        is ``−A`` times the density's).
    """
    if density.ndim != 3:
        raise ValueError(f"density must be 3-D, got shape {tuple(density.shape)}")
    d = density.float()
    k = optics.frequency_magnitude(d.shape, voxel_size_A, d.device, rfft=True)
    c = optics.ctf(k, defocus_um, cs_mm, voltage_kv=voltage_kv,
                   amplitude_contrast=amplitude_contrast, bfactor_A2=bfactor_A2)
    if cut_at_first_zero:
        k0 = optics.ctf_first_zero_per_nm(defocus_um, cs_mm, voltage_kv=voltage_kv,
                                          amplitude_contrast=amplitude_contrast) / 10.0
        c = torch.where(k <= k0, c, torch.zeros_like(c))
    return torch.fft.irfftn(torch.fft.rfftn(d) * c, s=d.shape)


@dataclass(frozen=True)
class TemplateMatch:
    """The result of :func:`match_template`.

    Attributes
    ----------
    score : torch.Tensor
        `(D, H, W)` float32 best locally normalised correlation over the rotations, in [−1, 1].
    rotation_index : torch.Tensor
        `(D, H, W)` int64 index into ``rotations`` of the best rotation per voxel.
    rotations : torch.Tensor
        `(K, 3, 3)` the rotations searched (x-y-z, active on the template).
    time_s : float
        Wall time of the search (device-synchronised), seconds.
    """

    score: Tensor
    rotation_index: Tensor
    rotations: Tensor
    time_s: float

    def rotation_at(self, zyx: tuple[int, int, int]) -> Tensor:
        """Return the best rotation `(3, 3)` at voxel ``(z, y, x)``."""
        return self.rotations[int(self.rotation_index[zyx])]


def _wrapped_index(n: int, shape: tuple[int, int, int], device: torch.device
                   ) -> tuple[Tensor, Tensor, Tensor]:
    """Return the indices that put an `(N, N, N)` box into ``shape`` centred at voxel 0."""
    c = (n - 1) // 2
    iz, iy, ix = ((torch.arange(n, device=device) - c) % s for s in shape)
    return iz[:, None, None], iy[None, :, None], ix[None, None, :]


def _at_origin(boxes: Tensor, shape: tuple[int, int, int]) -> Tensor:
    """Zero-pad `(B, N, N, N)` boxes to ``shape`` with the box centre moved to voxel 0."""
    out = boxes.new_zeros((boxes.shape[0], *shape))
    index = (slice(None), *_wrapped_index(boxes.shape[-1], shape, boxes.device))
    out[index] = boxes
    return out


def _check_inputs(volume: Tensor, template: Tensor, mask: Tensor, rotations: Tensor) -> None:
    if volume.ndim != 3:
        raise ValueError(f"volume must be 3-D (z, y, x), got shape {tuple(volume.shape)}")
    n = template.shape[0]
    if template.ndim != 3 or len(set(template.shape)) != 1 or n % 2 == 0:
        raise ValueError(f"template must be an odd cube (N, N, N), got {tuple(template.shape)}")
    if tuple(mask.shape) != tuple(template.shape):
        raise ValueError(f"mask {tuple(mask.shape)} must have the template's shape "
                         f"{tuple(template.shape)}")
    if any(s < n for s in volume.shape):
        raise ValueError(f"volume {tuple(volume.shape)} is smaller than the template box {n}")
    if rotations.ndim != 3 or rotations.shape[1:] != (3, 3) or rotations.shape[0] < 1:
        raise ValueError(f"rotations must be (K, 3, 3) with K >= 1, got {tuple(rotations.shape)}")
    if not bool((mask >= 0).all()) or not float(mask.sum()) > 0:
        raise ValueError("mask must be non-negative with a positive sum")


def _local_sd(volume: Tensor, w_spec_conj: Tensor) -> Tensor:
    """σ_f(x) of the module docstring from the conjugate spectrum of the weights at the origin."""
    s = tuple(volume.shape)
    mean = torch.fft.irfftn(torch.fft.rfftn(volume) * w_spec_conj, s=s)
    mean2 = torch.fft.irfftn(torch.fft.rfftn(volume * volume) * w_spec_conj, s=s)
    var = mean2 - mean * mean
    floor = 1e-6 * float(var.max().clamp_min(1e-30))
    return torch.sqrt(var.clamp_min(floor))


def _normalised(boxes: Tensor, w: Tensor) -> Tensor:
    """``w t̂`` for each rotated template: zero weighted mean, unit weighted variance."""
    mu = (boxes * w).sum((1, 2, 3), keepdim=True)
    sd = torch.sqrt(((boxes - mu) ** 2 * w).sum((1, 2, 3), keepdim=True))
    if bool((sd <= 1e-12 * boxes.abs().amax()).any()):
        raise ValueError("the template is constant under the mask: nothing to correlate")
    return w * (boxes - mu) / sd


def match_template(volume: Tensor, template: Tensor, mask: Tensor, rotations: Tensor, *,
                   batch_size: int = 4, progress: bool = False) -> TemplateMatch:
    """Best locally normalised cross-correlation over rotations at every voxel.

    Parameters
    ----------
    volume : torch.Tensor
        `(D, H, W)` tomogram, z-y-x; the search runs on its device.
    template : torch.Tensor
        `(N, N, N)` template (N odd), e.g. :func:`ctf_template` of a density, with the contrast
        of the tomogram (physical: mass dark).
    mask : torch.Tensor
        `(N, N, N)` rotation-invariant weights, e.g. :func:`spherical_mask`.
    rotations : torch.Tensor
        `(K, 3, 3)` rotations (x-y-z), e.g. :func:`rotation_set`.
    batch_size : int
        Rotations correlated at once (memory: about ``3 x batch_size`` tomogram-sized arrays).
    progress : bool
        Progress bar over the rotation batches (on a terminal only).

    Returns
    -------
    TemplateMatch
        Scores, best rotation indices, the rotations and the wall time.
    """
    _check_inputs(volume, template, mask, rotations)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    dev = volume.device
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    vol = volume.float()
    # standardised first: CC is invariant to it, and E[f²] − E[f]² then loses fewer digits
    vol = (vol - vol.mean()) / vol.std().clamp_min(1e-30)
    D, H, W = (int(s) for s in vol.shape)
    shape = (D, H, W)
    w = (mask / mask.sum()).to(dev, torch.float32)
    w_conj = torch.conj(torch.fft.rfftn(_at_origin(w[None], shape)[0]))
    sd = _local_sd(vol, w_conj)
    spec = torch.fft.rfftn(vol)
    tpl = template.to(dev, torch.float32)
    R = rotations.to(dev, torch.float32)
    best = torch.full(shape, -math.inf, device=dev)
    best_idx = torch.zeros(shape, dtype=torch.int64, device=dev)
    # one tomogram-sized buffer per batch slot: only the box's voxels are written and cleared
    buf = torch.zeros((min(batch_size, R.shape[0]), *shape), device=dev)
    where = (slice(None), *_wrapped_index(tpl.shape[0], shape, dev))
    starts = range(0, R.shape[0], batch_size)
    for s in progress_bar(starts, desc="rotations", show=progress, total=len(starts)):
        r = R[s:s + batch_size]
        boxes = rotation.rotate_volumes(tpl.expand(len(r), *tpl.shape), r)
        t_hat = buf[:len(r)]
        t_hat[where] = _normalised(boxes, w)
        cc = torch.fft.irfftn(spec[None] * torch.conj(torch.fft.rfftn(t_hat,
                                                                            dim=(1, 2, 3))),
                              s=shape, dim=(1, 2, 3)) / sd
        t_hat[where] = 0.0
        value, arg = cc.max(0)
        better = value > best
        best = torch.where(better, value, best)
        best_idx = torch.where(better, arg + s, best_idx)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return TemplateMatch(score=best, rotation_index=best_idx, rotations=R.cpu(),
                         time_s=time.perf_counter() - t0)
