"""Tomogram-scale maps from a network that sees tiles; boxes cut at centres; binned maps.

A segmentation network (DeepFinder, UMC) or a box classifier applied densely (YOPO) sees a
tomogram through overlapping tiles. :func:`tiled_map` cuts the tiles, runs the network in
batches on the volume's device and writes each tile's *core* back: the tile's output without
``crop`` voxels at every face, where a padded convolution sees the zeros beyond the tile
(DeepFinder's ``pcrop``). Cores tile the volume exactly (``stride`` = core length) or overlap
(a smaller ``stride``), in which case the overlapping cores are averaged, as DeepFinder does.
The volume is zero-padded by ``margin + crop`` voxels so that every voxel, the faces included,
gets a value.

A network whose output is smaller than its input (unpadded convolutions: YOPO's dense form)
declares it with ``margin = (before, after)``: the output voxel ``j`` of a tile starting at
input voxel ``s`` belongs to the input voxel ``s + before + j``.

Conventions: volumes ``(z, y, x)``; maps ``(C, z, y, x)``; the network takes ``(B, 1, t, t, t)``
and returns ``(B, C, t − before − after, ...)``.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from cryo_companion._progress import progress as progress_bar

__all__ = ["bin_mean", "extract_boxes", "tile_starts", "tiled_map"]


def tile_starts(n: int, length: int, stride: int) -> list[int]:
    """Start positions of windows of ``length`` covering ``[0, n)`` with the given stride.

    The last window ends at ``n`` (it overlaps its neighbour more when ``n − length`` is not a
    multiple of the stride), as in DeepFinder's tiling.

    Parameters
    ----------
    n : int
        Length to cover (>= ``length``).
    length : int
        Window length (>= 1).
    stride : int
        Distance between window starts, 1 <= stride <= length.

    Returns
    -------
    list of int
        Sorted, distinct starts; the first is 0 and the last ``n − length``.
    """
    if length < 1 or not 1 <= stride <= length:
        raise ValueError(f"need length >= 1 and 1 <= stride <= length, got length {length}, "
                         f"stride {stride}")
    if n < length:
        raise ValueError(f"a window of {length} does not fit in {n}")
    starts = list(range(0, n - length + 1, stride))
    if starts[-1] != n - length:
        starts.append(n - length)
    return starts


def _check_tiling(volume: Tensor, tile: int, crop: int, margin: Sequence[int],
                  stride: int | None) -> tuple[int, int, int]:
    if volume.ndim != 3:
        raise ValueError(f"volume must be 3-D (z, y, x), got shape {tuple(volume.shape)}")
    before, after = (int(m) for m in margin)
    if before < 0 or after < 0 or crop < 0:
        raise ValueError(f"margin {tuple(margin)} and crop {crop} must be >= 0")
    core = tile - before - after - 2 * crop
    if core < 1:
        raise ValueError(f"tile {tile} leaves no core after margin {tuple(margin)} and crop "
                         f"{crop} on both sides; use a larger tile")
    step = core if stride is None else int(stride)
    if not 1 <= step <= core:
        raise ValueError(f"stride {stride} must lie in [1, {core}] (the core length: tile "
                         f"{tile} − margins {before} + {after} − 2 x crop {crop})")
    return before, core, step


def tiled_map(volume: Tensor, fn: Callable[[Tensor], Tensor], n_out: int, *, tile: int,
              crop: int = 0, margin: Sequence[int] = (0, 0), stride: int | None = None,
              batch_size: int = 1, out_device: torch.device | str | None = None,
              progress: bool = False) -> Tensor:
    """Apply a tile-wise network to a whole volume and stitch its outputs.

    Parameters
    ----------
    volume : torch.Tensor
        `(D, H, W)` float volume, z-y-x, on the device where ``fn`` runs (normalised by the
        caller).
    fn : callable
        `(B, 1, tile, tile, tile)` -> `(B, n_out, tile − before − after, ...)` (e.g. a model in
        eval mode under ``torch.no_grad``, returning probabilities).
    n_out : int
        Output channels of ``fn``.
    tile : int
        Edge of the cubic tiles given to ``fn`` (voxels).
    crop : int
        Output voxels dropped at every face of a tile's output before stitching.
    margin : sequence of int
        ``(before, after)``: how much smaller ``fn``'s output is than its input on each side.
    stride : int or None
        Distance between tile starts (default: the core length, cores abut); smaller strides
        average the overlapping cores.
    batch_size : int
        Tiles per call of ``fn``.
    out_device : torch.device or str or None
        Where the stitched map is accumulated (default: the volume's device).
    progress : bool
        Show a progress bar over the batches (on a terminal only).

    Returns
    -------
    torch.Tensor
        `(n_out, D, H, W)` float32 map on ``out_device``.
    """
    if n_out < 1 or batch_size < 1:
        raise ValueError(f"n_out {n_out} and batch_size {batch_size} must be >= 1")
    before, core, step = _check_tiling(volume, tile, crop, margin, stride)
    shape = tuple(int(s) for s in volume.shape)
    # pad so that cores tile [0, n) exactly, and at least one core fits per axis
    extra = [max(core - n, 0) for n in shape]
    lo = before + crop
    pads = [(lo, tile - core - lo + e) for e in extra]
    padded = F.pad(volume[None, None], [p for pr in reversed(pads) for p in pr])[0, 0]
    starts = [tile_starts(n + e, core, step) for n, e in zip(shape, extra)]
    dev = torch.device(out_device) if out_device is not None else volume.device
    full = tuple(n + e for n, e in zip(shape, extra))
    acc = torch.zeros((n_out, *full), dtype=torch.float32, device=dev)
    count = torch.zeros(full, dtype=torch.float32, device=dev)
    corners = list(itertools.product(*starts))
    batches = [corners[i:i + batch_size] for i in range(0, len(corners), batch_size)]
    for batch in progress_bar(batches, desc="tiles", show=progress):
        x = torch.stack([padded[z:z + tile, y:y + tile, w:w + tile] for z, y, w in batch])
        out = fn(x[:, None])
        expect = tile - before - int(margin[1])
        if out.ndim != 5 or out.shape[1] != n_out or tuple(out.shape[-3:]) != (expect,) * 3:
            raise ValueError(f"fn returned {tuple(out.shape)}; expected (B, {n_out}, {expect}, "
                             f"{expect}, {expect}) for tiles of {tile} and margin "
                             f"{tuple(margin)}")
        cores = out[:, :, crop:crop + core, crop:crop + core, crop:crop + core].to(
            dev, torch.float32)
        for k, (z, y, w) in enumerate(batch):
            acc[:, z:z + core, y:y + core, w:w + core] += cores[k]
            count[z:z + core, y:y + core, w:w + core] += 1.0
    out_map = acc / count
    return out_map[:, :shape[0], :shape[1], :shape[2]].contiguous()


def extract_boxes(volume: Tensor, centres_zyx: np.ndarray | Tensor, box: int) -> Tensor:
    """Cut cubic boxes at integer centres, zeros where a box leaves the volume.

    The box of centre ``c`` covers ``[c − box // 2, c − box // 2 + box)`` on each axis (for an
    even box the centre is the voxel just past the middle, as a 24³ box has its centre at 12).

    Parameters
    ----------
    volume : torch.Tensor
        `(D, H, W)` volume, z-y-x (or `(C, D, H, W)`: boxes of every channel).
    centres_zyx : np.ndarray or torch.Tensor
        `(N, 3)` centres ``(z, y, x)`` in voxels; rounded to the nearest voxel.
    box : int
        Edge of the boxes (voxels, >= 1).

    Returns
    -------
    torch.Tensor
        `(N, box, box, box)` (or `(N, C, box, box, box)`) on the volume's device.
    """
    if box < 1:
        raise ValueError(f"box must be >= 1, got {box}")
    if volume.ndim not in (3, 4):
        raise ValueError(f"volume must be (D, H, W) or (C, D, H, W), got {tuple(volume.shape)}")
    c = torch.as_tensor(np.asarray(centres_zyx, dtype=np.float64)).reshape(-1, 3)
    c = torch.round(c).to(torch.int64)
    v = volume if volume.ndim == 4 else volume[None]
    half = box // 2
    padded = F.pad(v, [box, box] * 3)
    lo = c - half + box
    boxes = [padded[:, z:z + box, y:y + box, x:x + box] for z, y, x in lo.tolist()]
    out = torch.stack(boxes) if boxes else v.new_zeros((0, v.shape[0], box, box, box))
    return out[:, 0] if volume.ndim == 3 else out


def bin_mean(maps: Tensor, factor: int = 2) -> Tensor:
    """Bin maps by averaging ``factor``³ blocks (a partial block at the end is its own mean).

    DeepFinder bins its score maps by 2 before clustering (``utils.smap.bin``). The binned voxel
    ``i`` covers the voxels ``factor·i ... factor·i + factor − 1``: its centre lies at
    ``factor·i + (factor − 1) / 2`` on the original grid.

    Parameters
    ----------
    maps : torch.Tensor
        `(C, D, H, W)` maps (or `(D, H, W)`).
    factor : int
        Bin size (>= 1).

    Returns
    -------
    torch.Tensor
        `(C, ceil(D / factor), ceil(H / factor), ceil(W / factor))` (or without ``C``).
    """
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    if maps.ndim not in (3, 4):
        raise ValueError(f"maps must be (C, D, H, W) or (D, H, W), got {tuple(maps.shape)}")
    x = maps if maps.ndim == 4 else maps[None]
    out = F.avg_pool3d(x[None].float(), factor, ceil_mode=True, count_include_pad=False)[0]
    return out if maps.ndim == 4 else out[0]
