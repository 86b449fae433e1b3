"""What each network trains on, cut from the data set's models (Gubins et al. 2020, 3.2-3.6).

A training model (``model_0`` ... ``model_8``) is read once (:func:`read_model_volumes`): the
reconstruction's slices that hold the ground truth (the mask's frame, z + 156 at paper scale),
the class mask, the occupancy map, the noise-free grand model and the particle list. From them:

* :func:`deepfinder_batch` - DeepFinder's sampler (its published ``Train``): a random particle
  of a random model, its centre moved by a random shift of up to 13 voxels per axis and the
  patch kept inside the volume; each patch standardised on its own; with probability 1/2 the
  patch and its labels turned by 180° about the tilt axis y (z and x reversed).
* :func:`yopo_boxes` - YOPO's boxes: a 24³ box at every particle (its class) and background
  boxes centred on voxels of no particle (class 0), cut from the standardised tomogram, so
  that the dense prediction over a tomogram sees exactly what training saw.
* :func:`umc_corners` and :func:`umc_batch` - UMC's 64³ patches on a grid with 75 % overlap
  (stride 16), with random flips along x and y (the "horizontal" axes); the targets are the
  standardised noise-free grand model (denoising) and the class mask.

Every random choice takes a ``torch.Generator``: same seed, same samples.
"""
from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from cryo_companion.detect.tiling import extract_boxes, tile_starts
from cryo_companion.mrc import read_mrc
from cryo_companion.papers.shrec2020.layout import read_truth
from cryo_companion.papers.shrec2020.methods import class_label
from cryo_companion.papers.shrec2020.pipelines import standardise

__all__ = ["ModelVolumes", "deepfinder_batch", "read_model_volumes", "umc_batch",
           "umc_corners", "yopo_boxes"]


@dataclass(frozen=True)
class ModelVolumes:
    """One model's volumes on the ground truth's grid (all `(Z, Y, X)`, z-y-x).

    Attributes
    ----------
    tomogram : torch.Tensor
        float32 reconstruction slices of the ground truth (raw values).
    class_mask : torch.Tensor
        int64 labels, 0 background, 1-12 Table 1 by weight.
    occupancy : torch.Tensor
        int64 particle index (1-based line of the list), 0 background.
    grandmodel : torch.Tensor
        float32 noise-free grand model (the denoising target, raw values).
    centres_zyx : np.ndarray
        `(N, 3)` particle centres ``(z, y, x)``, voxels.
    labels : np.ndarray
        `(N,)` int64 class labels of the particles.
    voxel_size_A : float
        Voxel edge (Å).
    """

    tomogram: Tensor
    class_mask: Tensor
    occupancy: Tensor
    grandmodel: Tensor
    centres_zyx: np.ndarray
    labels: np.ndarray
    voxel_size_A: float


def read_model_volumes(folder: str | os.PathLike) -> ModelVolumes:
    """Read a model folder of the benchmark's layout, cropped to the ground truth's slices.

    Parameters
    ----------
    folder : str or os.PathLike
        ``DIR/model_K`` (:mod:`.layout`).

    Returns
    -------
    ModelVolumes
        The reconstruction's middle slices (``(512 − 200) / 2 = 156`` onwards at paper scale)
        beside the 200 slices of the masks.
    """
    d = Path(folder)
    truth, occ, cm, _meta = read_truth(d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = read_mrc(d / "reconstruction.mrc")
        gm = read_mrc(d / "grandmodel_noisefree.mrc").data
    z = occ.shape[0]
    extra = rec.data.shape[0] - z
    if extra < 0 or extra % 2 or rec.data.shape[1:] != occ.shape[1:] or gm.shape != occ.shape:
        raise ValueError(f"{d}: reconstruction {rec.data.shape}, grand model {gm.shape} and "
                         f"masks {occ.shape} do not form the benchmark's layout (the masks in "
                         "the reconstruction's middle slices)")
    off = extra // 2
    return ModelVolumes(
        tomogram=torch.from_numpy(np.ascontiguousarray(rec.data[off:off + z])),
        class_mask=torch.from_numpy(cm.astype(np.int64)),
        occupancy=torch.from_numpy(occ.astype(np.int64)),
        grandmodel=torch.from_numpy(np.ascontiguousarray(gm)),
        centres_zyx=np.ascontiguousarray(truth.zyx),
        labels=np.array([class_label(c) for c in truth.classes], dtype=np.int64),
        voxel_size_A=rec.voxel_size_A)


def _randint(n: int, g: torch.Generator) -> int:
    return int(torch.randint(n, (1,), generator=g))


def deepfinder_batch(models: Sequence[ModelVolumes], batch_size: int, generator: torch.Generator,
                     *, patch: int = 56, shift_vox: int = 13) -> tuple[Tensor, Tensor]:
    """Draw a batch of DeepFinder's training patches (see the module docstring).

    Parameters
    ----------
    models : sequence of ModelVolumes
        The training models.
    batch_size : int
        Patches (25).
    generator : torch.Generator
        CPU generator of every choice.
    patch : int
        Patch edge (56).
    shift_vox : int
        Largest random shift of the centre per axis (13).

    Returns
    -------
    tuple of torch.Tensor
        `(B, 1, P, P, P)` float32 standardised patches and `(B, P, P, P)` int64 labels.
    """
    pools = [(m, i) for m in models for i in range(len(m.labels))]
    if not pools:
        raise ValueError("the training models hold no particles")
    small = [tuple(m.tomogram.shape) for m in models if min(m.tomogram.shape) < patch]
    if small:
        raise ValueError(f"volumes {small} are smaller than a {patch}^3 patch")
    xs, ys = [], []
    for _ in range(batch_size):
        m, i = pools[_randint(len(pools), generator)]
        shift = torch.randint(-shift_vox, shift_vox + 1, (3,), generator=generator).numpy()
        c = np.rint(m.centres_zyx[i]).astype(np.int64) + shift
        lo = np.clip(c - patch // 2, 0, np.array(m.tomogram.shape) - patch)
        sl = tuple(slice(int(a), int(a) + patch) for a in lo)
        x, y = m.tomogram[sl].float(), m.class_mask[sl]
        x = (x - x.mean()) / x.std().clamp_min(1e-12)
        if bool(torch.rand(1, generator=generator) < 0.5):
            x, y = x.flip(0, 2), y.flip(0, 2)         # 180 deg about y
        xs.append(x)
        ys.append(y)
    return torch.stack(xs)[:, None], torch.stack(ys)


def yopo_boxes(models: Sequence[ModelVolumes], n_background: int, generator: torch.Generator,
               *, box: int = 24) -> tuple[Tensor, Tensor]:
    """Cut YOPO's training set: a box at every particle and ``n_background`` background boxes.

    Parameters
    ----------
    models : sequence of ModelVolumes
        The training models.
    n_background : int
        Background boxes over all models (20,000), centred on voxels of occupancy 0, drawn
        uniformly over those voxels.
    generator : torch.Generator
        CPU generator.
    box : int
        Box edge (24).

    Returns
    -------
    tuple of torch.Tensor
        `(N, 1, box, box, box)` float32 boxes of the standardised tomograms (zeros beyond a
        face) and `(N,)` int64 classes (0 background), particles first, model by model.
    """
    xs, ys = [], []
    std = [standardise(m.tomogram) for m in models]
    for m, v in zip(models, std):
        xs.append(extract_boxes(v, m.centres_zyx, box))
        ys.append(torch.as_tensor(m.labels, dtype=torch.int64))
    free = [torch.nonzero(m.occupancy.reshape(-1) == 0)[:, 0] for m in models]
    sizes = torch.tensor([len(f) for f in free], dtype=torch.float64)
    if n_background and not float(sizes.sum()) > 0:
        raise ValueError("the training models have no background voxel")
    pick = torch.multinomial(sizes / sizes.sum(), n_background, replacement=True,
                             generator=generator) if n_background else torch.zeros(0).long()
    for k, (m, v) in enumerate(zip(models, std)):
        n = int((pick == k).sum())
        if not n:
            continue
        flat = free[k][torch.randint(len(free[k]), (n,), generator=generator)]
        zyx = np.stack(np.unravel_index(flat.numpy(), tuple(m.occupancy.shape)), 1)
        xs.append(extract_boxes(v, zyx, box))
        ys.append(torch.zeros(n, dtype=torch.int64))
    return torch.cat(xs)[:, None], torch.cat(ys)


def umc_corners(shape_zyx: Sequence[int], *, patch: int = 64, stride: int = 16
                ) -> list[tuple[int, int, int]]:
    """List the corners of UMC's patches on one model: a grid with ``1 − stride / patch`` overlap.

    Parameters
    ----------
    shape_zyx : sequence of int
        The model's shape.
    patch : int
        Patch edge (64).
    stride : int
        Grid step (16: 75 % overlap); the last patch of each axis ends at the face.

    Returns
    -------
    list of tuple of int
    """
    z, y, x = (tile_starts(int(n), patch, stride) for n in shape_zyx)
    return list(itertools.product(z, y, x))


def umc_batch(models: Sequence[ModelVolumes], items: Sequence[tuple[int, tuple[int, int, int]]],
              generator: torch.Generator, *, patch: int = 64) -> tuple[Tensor, Tensor, Tensor]:
    """Cut UMC's inputs and targets for some (model, corner) pairs, randomly flipped.

    Parameters
    ----------
    models : sequence of ModelVolumes
        The training models.
    items : sequence of (int, tuple)
        (model index, patch corner) pairs, e.g. a shuffled batch of all
        :func:`umc_corners` of every model.
    generator : torch.Generator
        CPU generator of the flips (x and y, each with probability 1/2).
    patch : int
        Patch edge (64).

    Returns
    -------
    tuple of torch.Tensor
        `(B, 1, P, P, P)` standardised tomogram patches (each model standardised once),
        `(B, 1, P, P, P)` standardised grand-model patches and `(B, P, P, P)` int64 labels.
    """
    if not items:
        raise ValueError("no patches requested")
    cache: dict[int, tuple[Tensor, Tensor]] = {}
    xs, ds, ys = [], [], []
    for k, (z, y, x) in items:
        if k not in cache:
            cache[k] = (standardise(models[k].tomogram), standardise(models[k].grandmodel))
        tomo, gm = cache[k]
        sl = (slice(z, z + patch), slice(y, y + patch), slice(x, x + patch))
        a, b, c = tomo[sl], gm[sl], models[k].class_mask[sl]
        if a.shape != (patch,) * 3:
            raise ValueError(f"patch at {(z, y, x)} leaves model {k} {tuple(tomo.shape)}")
        dims = [d for d in (2, 1) if bool(torch.rand(1, generator=generator) < 0.5)]  # x, y
        if dims:
            a, b, c = a.flip(dims), b.flip(dims), c.flip(dims)
        xs.append(a)
        ds.append(b)
        ys.append(c)
    return torch.stack(xs)[:, None], torch.stack(ds)[:, None], torch.stack(ys)
