"""Real-space filters of volume batches (pure functions on tensors, any device)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["gaussian_filter3d"]


def gaussian_filter3d(x: Tensor, sigma_vox: float) -> Tensor:
    """Apply a separable 3-D Gaussian filter to each volume (reflect padding, cut at 3 sigma).

    Parameters
    ----------
    x : Tensor
        `(N, D, H, W)` volumes.
    sigma_vox : float
        Standard deviation in voxels (0: no filtering).

    Returns
    -------
    Tensor
        `(N, D, H, W)` filtered volumes, the dtype and device of ``x`` (``x`` itself for 0).

    Raises
    ------
    ValueError
        If ``sigma_vox`` is negative or not finite, or its 3-sigma radius does not fit in the
        volumes.
    """
    if sigma_vox < 0 or not math.isfinite(sigma_vox):
        raise ValueError(f"sigma_vox must be a finite value >= 0, got {sigma_vox}")
    if sigma_vox == 0:
        return x
    r = max(1, math.ceil(3 * sigma_vox))
    if r >= min(x.shape[-3:]):
        raise ValueError(f"sigma_vox {sigma_vox} too large for volumes {tuple(x.shape[-3:])}")
    g = torch.arange(-r, r + 1, dtype=torch.float32, device=x.device)
    k = torch.exp(-0.5 * (g / sigma_vox) ** 2)
    k = (k / k.sum()).to(x.dtype)
    y = x.unsqueeze(1)                                       # (N, 1, D, H, W)
    for axis in range(3):
        shape = [1, 1, 1, 1, 1]
        shape[2 + axis] = 2 * r + 1
        pad = [0, 0, 0, 0, 0, 0]
        pad[2 * (2 - axis)] = pad[2 * (2 - axis) + 1] = r   # F.pad counts from the last axis
        y = F.conv3d(F.pad(y, pad, mode="reflect"), k.reshape(shape))
    return y.squeeze(1)
