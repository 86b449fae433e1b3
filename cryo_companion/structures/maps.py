"""Density maps: background, centre of mass, and resampling to another voxel size.

Resampling is band-limited (Fourier) interpolation, done separably: along each axis the output
samples are the input's trigonometric interpolant evaluated at the new positions, i.e. one
(out x in) matrix per axis. That allows any ratio of voxel sizes (10 Å -> 13.68 Å), a sub-voxel
shift in the same step (to centre the map) and, when the new voxels are larger, an anti-alias
low-pass: a raised-cosine roll-off from 0.8 of the new Nyquist frequency to zero at it (a sharp
cut rings). Values are mass per voxel, so they are multiplied by the ratio of voxel volumes; the
interpolation alone conserves the sum to well under 1 % (tests/test_structures_maps.py), and by
default it is then renormalised to the input's exactly.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from cryo_companion.structures.density import box_centre

__all__ = ["center_of_mass", "pearson_r", "resample_volume", "subtract_background"]


def subtract_background(volume: np.ndarray | torch.Tensor, shell: int = 2,
                        clip: bool = True) -> torch.Tensor:
    """Subtract the median of the outer ``shell`` voxels and (optionally) clip at zero.

    Maps come with different baselines (0 outside the molecule, FFT ringing of +-1e-15, or a
    zero-mean normalisation); a non-negative, zero-background map has a well-defined mass.

    Parameters
    ----------
    volume : np.ndarray or torch.Tensor
        `(z, y, x)` map.
    shell : int
        Thickness of the outer shell in voxels (at most a quarter of the smallest edge).
    clip : bool
        Set negative values to zero afterwards.

    Returns
    -------
    torch.Tensor
        `(z, y, x)` float64 map, on ``volume``'s device.

    Raises
    ------
    ValueError
        If ``volume`` is not 3-D or holds NaN/inf.
    """
    v = torch.as_tensor(np.asarray(volume) if not torch.is_tensor(volume) else volume,
                        dtype=torch.float64)
    if v.ndim != 3:
        raise ValueError(f"expected a (z, y, x) volume, got shape {tuple(v.shape)}")
    if not torch.isfinite(v).all():
        raise ValueError("volume contains NaN/inf values")
    s = max(1, min(shell, min(v.shape) // 4))
    mask = torch.ones_like(v, dtype=torch.bool)
    mask[s:-s, s:-s, s:-s] = False
    v = v - v[mask].median()
    return v.clamp_min(0) if clip else v


def center_of_mass(volume: torch.Tensor) -> torch.Tensor:
    """Compute the centre of mass of a non-negative volume.

    Parameters
    ----------
    volume : torch.Tensor
        `(z, y, x)` non-negative volume.

    Returns
    -------
    torch.Tensor
        `(3,)` float64 centre (z, y, x) in voxel indices, on ``volume``'s device.

    Raises
    ------
    ValueError
        If the volume has no positive mass.
    """
    v = volume.to(torch.float64)
    total = v.sum()
    if not total > 0:
        raise ValueError("volume has no positive mass: cannot find its centre")
    out = []
    for ax in range(3):
        other = tuple(a for a in range(3) if a != ax)
        prof = v.sum(dim=other)
        idx = torch.arange(v.shape[ax], dtype=v.dtype, device=v.device)
        out.append((prof * idx).sum() / total)
    return torch.stack(out)


_TAPER_START = 0.8  # anti-alias roll-off starts at this fraction of the new Nyquist frequency


def _interp_matrix(n_in: int, positions: torch.Tensor, cutoff: float) -> torch.Tensor:
    """Make the (m, n_in) matrix evaluating the periodic band-limited interpolant at positions.

    ``positions`` are in input voxel indices. With ``cutoff`` = 0.5 cycles per input voxel all
    frequencies are kept (the Nyquist term of even ``n_in`` with half weight on each of +-N/2):
    the closed form of the Dirichlet kernel, ``sin((2K + 1) pi t / N) / sin(pi t / N)``. With a
    lower cutoff (new voxels larger than the old) frequencies roll off with a raised cosine from
    ``0.8 cutoff`` to zero at ``cutoff``: a sharp cut would ring (negative halos, and a sampled
    sum that misses the mass by a percent for the smallest particles).
    """
    t = positions[:, None] - torch.arange(n_in, dtype=torch.float64, device=positions.device)
    if cutoff >= 0.5 - 1e-12:
        k_top = (n_in - 1) // 2  # highest frequency below Nyquist
        den = torch.sin(math.pi * t / n_in)
        num = torch.sin((2 * k_top + 1) * math.pi * t / n_in)
        near = den.abs() < 1e-9
        kern = torch.where(near, torch.full_like(t, 2.0 * k_top + 1.0),
                           num / torch.where(near, torch.ones_like(den), den))
        if n_in % 2 == 0:
            kern = kern + torch.cos(math.pi * t)
        return kern / n_in
    k = torch.arange(1, n_in // 2 + 1, dtype=torch.float64, device=positions.device)
    f = k / n_in
    lo = _TAPER_START * cutoff
    w = torch.where(f <= lo, torch.ones_like(f),
                    0.5 * (1 + torch.cos(math.pi * (f - lo) / (cutoff - lo))))
    w = torch.where(f >= cutoff, torch.zeros_like(f), w)
    k, w = k[w > 0], w[w > 0]
    kern = 1.0 + 2.0 * (torch.cos(2 * math.pi * t[:, :, None] * k / n_in) * w).sum(-1)
    return kern / n_in


def resample_volume(volume: torch.Tensor | np.ndarray, voxel_size_A: float,
                    new_voxel_size_A: float, *, shape: Sequence[int] | None = None,
                    center_zyx: Sequence[float] | np.ndarray | torch.Tensor | None = None,
                    pad: int = 2, renormalize: bool = True) -> torch.Tensor:
    """Resample a (z, y, x) volume of mass per voxel to a new voxel size, conserving mass.

    Parameters
    ----------
    volume : torch.Tensor or np.ndarray
        `(z, y, x)` values (mass per voxel, zero background).
    voxel_size_A, new_voxel_size_A : float
        Voxel edges in Å, before and after.
    shape : sequence of int or None, optional
        Output shape; default: the physical extent of the input at the new voxel size.
    center_zyx : sequence of float, np.ndarray, torch.Tensor or None, optional
        Input point (voxel indices, may be fractional) placed at output voxel ``n // 2``;
        default: the input's voxel ``n // 2`` (no shift). Pass :func:`center_of_mass` to centre
        the map.
    pad : int, optional
        Zero voxels added around the input so that nothing wraps around.
    renormalize : bool, optional
        Rescale the output so its sum equals the input's exactly (the interpolation alone
        conserves it to a fraction of a percent when the output covers the molecule).

    Returns
    -------
    torch.Tensor
        float64, the resampled volume; its sum equals the input's (when the output covers it).

    Raises
    ------
    ValueError
        For a voxel size that is not a positive number, a volume that is not 3-D or holds
        NaN/inf, or a ``shape`` that is not 3 positive integers.
    """
    v = _checked_volume(volume, voxel_size_A, new_voxel_size_A)
    ratio = new_voxel_size_A / voxel_size_A  # input voxels per output voxel
    if center_zyx is None:
        center = torch.tensor([float(box_centre(n)) for n in v.shape], dtype=torch.float64)
    else:
        center = torch.as_tensor(center_zyx, dtype=torch.float64).cpu()
    if shape is None:
        shape = tuple(math.ceil(n / ratio) for n in v.shape)
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be 3 positive ints, got {shape!r}")
    # The interpolant is periodic over the padded input. Pad by at least the centring shift, then
    # evaluate on one period (every input voxel counted once, so the sum can be checked), and
    # crop or zero-pad that to ``shape``.
    max_shift = max(abs(float(center[ax]) - box_centre(v.shape[ax])) for ax in range(3))
    pad = int(pad + math.ceil(max_shift))
    if ratio > 1:  # room for the anti-alias kernel's tails (width ~ 1 / roll-off band)
        pad += math.ceil(2.0 * ratio / (1.0 - _TAPER_START))
    vp = torch.nn.functional.pad(v, (pad,) * 6) if pad else v
    cutoff = min(0.5, 0.5 / ratio)
    out = vp
    for ax in range(3):
        n_out = max(1, math.floor(vp.shape[ax] / ratio))
        pos = (torch.arange(n_out, dtype=torch.float64) - box_centre(n_out)) * ratio \
            + center[ax] + pad
        mat = _interp_matrix(vp.shape[ax], pos, cutoff).to(v.device)
        out = torch.tensordot(mat, out.movedim(ax, 0), dims=([1], [0])).movedim(0, ax)
    out = out * ratio**3  # mass per voxel scales with the voxel volume
    total_in, total_out = float(v.sum()), float(out.sum())
    if renormalize and total_in > 0 and total_out > 0:
        out = out * (total_in / total_out)  # remove the interpolation's small mass error
    return _crop_centered(out, shape)


def _checked_volume(volume: torch.Tensor | np.ndarray, voxel_size_A: float,
                    new_voxel_size_A: float) -> torch.Tensor:
    """Check the voxel sizes and the volume; return the volume as float64."""
    for nm, val in (("voxel_size_A", voxel_size_A), ("new_voxel_size_A", new_voxel_size_A)):
        if not (val > 0 and math.isfinite(val)):
            raise ValueError(f"{nm} must be a positive number, got {val!r}")
    v = torch.as_tensor(volume if torch.is_tensor(volume) else np.asarray(volume))
    v = v.to(torch.float64)
    if v.ndim != 3:
        raise ValueError(f"expected a (z, y, x) volume, got shape {tuple(v.shape)}")
    if not torch.isfinite(v).all():
        raise ValueError("volume contains NaN/inf values")
    return v


def _crop_centered(v: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Crop or zero-pad each axis so that voxel ``n // 2`` stays the centre voxel."""
    out = v
    for ax, n_out in enumerate(shape):
        n_in = out.shape[ax]
        start = box_centre(n_in) - box_centre(n_out)
        lo, hi = max(0, start), min(n_in, start + n_out)
        piece = out.narrow(ax, lo, max(0, hi - lo))
        before = lo - start
        after = n_out - before - piece.shape[ax]
        if before or after:
            widths = [0, 0] * 3
            widths[2 * (2 - ax)], widths[2 * (2 - ax) + 1] = before, after
            piece = torch.nn.functional.pad(piece, widths)
        out = piece
    return out


def pearson_r(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """Compute the Pearson correlation of two equally shaped arrays.

    Parameters
    ----------
    a, b : torch.Tensor or np.ndarray
        Arrays of one shape.

    Returns
    -------
    float
        The correlation coefficient in [-1, 1].

    Raises
    ------
    ValueError
        If the shapes differ or an array is constant.
    """
    x = torch.as_tensor(np.asarray(a) if not torch.is_tensor(a) else a, dtype=torch.float64)
    y = torch.as_tensor(np.asarray(b) if not torch.is_tensor(b) else b, dtype=torch.float64)
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    x = x.flatten() - x.mean()
    y = y.flatten().to(x.device) - y.mean()
    den = float(x.norm() * y.norm())
    if den == 0:
        raise ValueError("a constant array has no correlation")
    return float((x @ y) / den)
