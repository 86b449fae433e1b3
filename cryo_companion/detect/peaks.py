"""Peaks of a score map and greedy exclusion of detections that come too close.

* :func:`find_peaks` - PyTom's candidate extraction (``extractCandidates``): take the highest
  voxel, record it, blank every voxel within ``exclusion_radius_vox`` of it, repeat until
  ``max_peaks`` are found or nothing above ``threshold`` is left. It is greedy non-maximum
  suppression over all voxels, so the next peak is always farther than the radius from every
  earlier one (YOPO's "minimum distance between two detections greater than 14 voxels" is
  ``exclusion_radius_vox=14``). Runs on the map's device (one arg-max per peak).
* :func:`greedy_exclusion` - walk a list in a given order and drop each item closer to an
  already accepted one than the sum of their radii (SHREC 2020's filtered template matching,
  TM-F).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from cryo_companion.detect.detections import Detections

__all__ = ["ball_offsets", "find_peaks", "greedy_exclusion"]


def ball_offsets(radius_vox: float) -> np.ndarray:
    """Integer offsets ``(dz, dy, dx)`` of the voxels within ``radius_vox`` of the origin.

    Parameters
    ----------
    radius_vox : float
        Radius in voxels (>= 0); a voxel at exactly this distance is included.

    Returns
    -------
    np.ndarray
        `(M, 3)` int64 offsets, the origin among them.
    """
    if not radius_vox >= 0:
        raise ValueError(f"radius_vox must be >= 0, got {radius_vox}")
    r = math.floor(radius_vox)
    g = np.arange(-r, r + 1)
    d = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
    return d[(d ** 2).sum(1) <= radius_vox ** 2 + 1e-9]


def find_peaks(score: Tensor, exclusion_radius_vox: float, *, max_peaks: int | None = None,
               threshold: float | None = None, label: int = 1) -> Detections:
    """Greedy peaks of a 3-D score map (PyTom's candidate extraction).

    Parameters
    ----------
    score : torch.Tensor
        `(D, H, W)` map, z-y-x, larger = better (any device; NaN is never a peak).
    exclusion_radius_vox : float
        Every voxel within this distance (voxels, inclusive) of a peak is removed before the
        next peak is taken.
    max_peaks : int or None
        Stop after this many peaks (None: until ``threshold`` stops it).
    threshold : float or None
        Only voxels with a score strictly above it are peaks (None: any finite score).
    label : int
        Label given to every peak (>= 1).

    Returns
    -------
    Detections
        The peaks in the order found (decreasing score): integer centres, ``score`` the map's
        value there, ``size`` 0.
    """
    if score.ndim != 3:
        raise ValueError(f"score must be a 3-D map (z, y, x), got shape {tuple(score.shape)}")
    if max_peaks is None and threshold is None:
        raise ValueError("give max_peaks, threshold or both: otherwise every voxel is a peak")
    if max_peaks is not None and max_peaks < 0:
        raise ValueError(f"max_peaks must be >= 0, got {max_peaks}")
    work = score.detach().clone().float()
    work[~torch.isfinite(work)] = -math.inf
    offsets = torch.as_tensor(ball_offsets(exclusion_radius_vox), device=work.device)
    shape = torch.tensor(work.shape, device=work.device)
    strides = torch.tensor([work.shape[1] * work.shape[2], work.shape[2], 1], device=work.device)
    flat = work.view(-1)
    found: list[tuple[int, int, int]] = []
    values: list[float] = []
    limit = math.inf if max_peaks is None else max_peaks
    while len(found) < limit:
        v, i = torch.max(flat, 0)
        value = float(v)
        if value == -math.inf or (threshold is not None and not value > threshold):
            break
        idx = int(i)
        zyx = (idx // (work.shape[1] * work.shape[2]), (idx // work.shape[2]) % work.shape[1],
               idx % work.shape[2])
        found.append(zyx)
        values.append(value)
        ball = offsets + torch.tensor(zyx, device=work.device)
        ball = ball[((ball >= 0) & (ball < shape)).all(1)]
        flat[(ball * strides).sum(1)] = -math.inf
    return Detections.make(np.asarray(found, dtype=np.float64).reshape(-1, 3),
                           np.full(len(found), int(label)), np.asarray(values))


def greedy_exclusion(zyx: np.ndarray, radius_vox: np.ndarray | Sequence[float] | float, *,
                     inclusive: bool = False) -> np.ndarray:
    """Accept items in list order unless one lies too close to an already accepted item.

    Item ``i`` is dropped when, for some accepted ``j``, ``|x_i − x_j| < r_i + r_j`` (or ``<=``
    with ``inclusive``); it does not block later items then.

    Parameters
    ----------
    zyx : np.ndarray
        `(N, 3)` centres (voxels), in the order of preference.
    radius_vox : np.ndarray or sequence of float or float
        `(N,)` radii (voxels), or one radius for all (then two items must be at least twice it
        apart).
    inclusive : bool
        Also drop items at exactly the sum of the radii.

    Returns
    -------
    np.ndarray
        `(K,)` int64 positions of the accepted items, increasing.
    """
    x = np.asarray(zyx, dtype=np.float64).reshape(-1, 3)
    r = np.broadcast_to(np.asarray(radius_vox, dtype=np.float64), (len(x),)).copy()
    if (r < 0).any() or not np.isfinite(r).all():
        raise ValueError("radii must be finite and >= 0")
    kept = np.zeros(len(x), dtype=np.int64)
    acc_x = np.empty((len(x), 3))
    acc_r = np.empty(len(x))
    k = 0
    for i in range(len(x)):
        if k:
            d = np.sqrt(((acc_x[:k] - x[i]) ** 2).sum(1))
            lim = acc_r[:k] + r[i]
            if ((d <= lim) if inclusive else (d < lim)).any():
                continue
        acc_x[k], acc_r[k], kept[k] = x[i], r[i], i
        k += 1
    return kept[:k]
