"""The benchmark's file layout: one folder per model, as the SHREC 2020 data set is distributed.

``DIR/model_K/`` holds

* ``reconstruction.mrc`` — the tomogram, `(512, 512, 512)` float32 at 1 nm, z-y-x; the ground
  truth sits in its slices 156-355;
* ``grandmodel.mrc``, ``grandmodel_noisefree.mrc`` — the specimen's potential (V), `(200, 512,
  512)` float32, with and without the solvent's random variation;
* ``class_mask.mrc`` — int16 (MRC mode 1): 0 background, ``k`` = the ``k``-th class of Table 1
  by molecular weight (1s3x = 1 ... 4d8q = 12);
* ``occupancy_mask.mrc`` — int16 (mode 1; int32 data would need more than 32,767 particles and
  is refused): 0 background, ``i`` = the ``i``-th line of the particle list;
* ``particle_locations.txt`` — ``pdb x y z rot_Z1 rot_X rot_Z2`` per line: whole 0-based voxel
  indices in the mask's frame (z 0-199), ZXZ Euler angles in degrees
  (:func:`~cryo_companion.papers.shrec2020.dataset.zyz_to_zxz_deg`);
* ``meta.json`` — this package's record of how the model was made (not in the benchmark).

Every file is written atomically; :func:`existing_outputs` lets a command refuse to overwrite.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import mrcfile
import numpy as np

from cryo_companion._io import atomic_path, write_json
from cryo_companion._progress import progress as progress_bar
from cryo_companion.mrc import read_mrc, write_mrc
from cryo_companion.papers.shrec2020.dataset import (
    ShrecModel,
    ShrecRecipe,
    make_model,
    templates_for,
)
from cryo_companion.papers.shrec2020.particles import (
    ParticleList,
    read_particle_list,
    write_particle_list,
)

__all__ = ["CONVENTIONS", "MODEL_FILES", "ensure_models", "existing_outputs", "is_current",
           "model_dir", "read_truth", "write_label_mrc", "write_model"]

#: What meta.json states about the files' conventions.
CONVENTIONS = {
    "axes": "volumes z-y-x; particle_locations.txt x y z (0-based whole voxels, mask frame)",
    "frame": "ground truth 200 slices = slices 156-355 of reconstruction.mrc (z + 156)",
    "angles": "rot_Z1 rot_X rot_Z2: R = Rz(rot_Z1) Rx(rot_X) Rz(rot_Z2), active on the "
              "template's x, y, z about its centre voxel, degrees",
    "class_mask": "int16, 0 background, k = k-th class of Table 1 by molecular weight "
                  "(1s3x = 1 ... 4d8q = 12)",
    "occupancy_mask": "int16, 0 background, i = i-th line of particle_locations.txt",
    "grandmodel": "potential (V) with ice 4.5 V; _noisefree without the solvent's variation",
    "reconstruction": "weighted back-projection, physical contrast (mass dark)",
}

#: Files of a model folder, in the benchmark's names (plus this package's meta.json).
MODEL_FILES: tuple[str, ...] = ("reconstruction.mrc", "grandmodel.mrc",
                                "grandmodel_noisefree.mrc", "class_mask.mrc",
                                "occupancy_mask.mrc", "particle_locations.txt", "meta.json")


def model_dir(root: str | os.PathLike, index: int) -> Path:
    """``root/model_INDEX``."""
    return Path(root) / f"model_{int(index)}"


def existing_outputs(root: str | os.PathLike, models: list[int]) -> list[Path]:
    """List the files of :data:`MODEL_FILES` that exist already for these models."""
    return [model_dir(root, k) / f for k in models for f in MODEL_FILES
            if (model_dir(root, k) / f).exists()]


def write_label_mrc(path: str | os.PathLike, labels: np.ndarray, voxel_size_A: float) -> Path:
    """Write integer labels as an int16 MRC (mode 1), atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination.
    labels : np.ndarray
        `(z, y, x)` non-negative integer labels, at most 32,767.
    voxel_size_A : float
        Voxel edge (Å).

    Returns
    -------
    Path
    """
    arr = np.asarray(labels)
    if arr.ndim != 3 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"labels must be a 3-D integer array, got {arr.dtype} {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() > np.iinfo(np.int16).max):
        raise ValueError(f"labels {arr.min()}..{arr.max()} do not fit MRC mode 1 (int16, "
                         "0..32767)")
    if not voxel_size_A > 0:
        raise ValueError(f"voxel size {voxel_size_A} Å must be > 0")
    with atomic_path(path, suffix=".mrc") as tmp, mrcfile.new(tmp, overwrite=True) as m:
        m.set_data(arr.astype(np.int16))
        m.voxel_size = float(voxel_size_A)
    return Path(path)


def write_model(root: str | os.PathLike, model: ShrecModel, voxel_size_A: float,
                meta: dict[str, Any]) -> Path:
    """Write one model in the benchmark's layout under ``root/model_K`` (atomic files).

    Parameters
    ----------
    root : str or os.PathLike
        The data set's folder.
    model : ShrecModel
        The model (:func:`~cryo_companion.papers.shrec2020.dataset.make_model`).
    voxel_size_A : float
        Voxel edge (Å) written in the MRC headers.
    meta : dict
        What ``meta.json`` records (recipe, seeds, provenance); ``model.stats`` is added.

    Returns
    -------
    Path
        The model folder.
    """
    d = model_dir(root, model.index)
    d.mkdir(parents=True, exist_ok=True)
    write_mrc(d / "reconstruction.mrc", model.reconstruction, voxel_size_A)
    write_mrc(d / "grandmodel.mrc", model.grandmodel, voxel_size_A)
    write_mrc(d / "grandmodel_noisefree.mrc", model.grandmodel_noisefree, voxel_size_A)
    write_label_mrc(d / "class_mask.mrc", model.class_mask, voxel_size_A)
    write_label_mrc(d / "occupancy_mask.mrc", model.occupancy, voxel_size_A)
    pl = ParticleList(classes=tuple(p["pdb"] for p in model.particles),
                      xyz=np.array([p["xyz"] for p in model.particles], dtype=np.float64
                                   ).reshape(-1, 3),
                      angles_deg=np.array([p["zxz_deg"] for p in model.particles],
                                          dtype=np.float64).reshape(-1, 3))
    write_particle_list(d / "particle_locations.txt", pl, fmt="text")
    write_json(d / "meta.json", {**meta, "model": model.index, "stats": model.stats})
    return d


def read_truth(folder: str | os.PathLike) -> tuple[ParticleList, np.ndarray, np.ndarray, dict]:
    """Read the ground truth of a model folder: particle list, occupancy, class mask, meta.

    Parameters
    ----------
    folder : str or os.PathLike
        A ``model_K`` folder written by :func:`write_model` (or the benchmark's own).

    Returns
    -------
    tuple
        ``(particles, occupancy (z, y, x) int, class_mask (z, y, x) int, meta dict or {})``.
    """
    d = Path(folder)
    truth = read_particle_list(d / "particle_locations.txt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        occ = np.rint(read_mrc(d / "occupancy_mask.mrc").data).astype(np.int32)
        cm = np.rint(read_mrc(d / "class_mask.mrc").data).astype(np.int32)
    meta = json.loads((d / "meta.json").read_text()) if (d / "meta.json").is_file() else {}
    return truth, occ, cm, meta


def is_current(folder: str | os.PathLike, r: ShrecRecipe, seed: int) -> bool:
    """Whether a model folder is complete and was made with this recipe and data-set seed."""
    d = Path(folder)
    if not all((d / f).is_file() for f in MODEL_FILES):
        return False
    try:
        meta = json.loads((d / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    return meta.get("recipe") == r.to_dict() and meta.get("dataset_seed") == int(seed)


def ensure_models(root: str | os.PathLike, models: list[int], r: ShrecRecipe, seed: int,
                  device: Any = None, *, meta: dict[str, Any] | None = None,
                  regenerate: bool = False, snr: bool = True,
                  progress: bool = False) -> list[dict[str, Any]]:
    """Make (and write) the models of ``models`` that ``root`` does not hold already.

    Parameters
    ----------
    root : str or os.PathLike
        The data set's folder (``root/model_K``).
    models : list of int
        Model numbers (the benchmark's: 0-9; 9 is the test model).
    r : ShrecRecipe
        The recipe.
    seed : int
        The data set's seed (each model's is derived from it and its number).
    device : torch.device or str or None
        Where to simulate.
    meta : dict or None
        Extra records for each meta.json (provenance).
    regenerate : bool
        Make every model anew, even one that is current (:func:`is_current`).
    snr : bool
        Measure the SNR (a second, noise-free imaging pass).
    progress : bool
        Progress bars (on a terminal only).

    Returns
    -------
    list of dict
        Each model's ``stats`` (read back from meta.json for the models kept).
    """
    out: list[dict[str, Any]] = []
    templates = None
    for k in progress_bar(models, desc="models", show=progress):
        d = model_dir(root, k)
        if not regenerate and is_current(d, r, seed):
            out.append(json.loads((d / "meta.json").read_text())["stats"])
            continue
        if templates is None:
            templates = templates_for(r)
        model = make_model(r, k, seed, device, templates=templates, snr=snr, progress=progress)
        write_model(root, model, r.voxel_size_A,
                    {"recipe": r.to_dict(), "dataset_seed": int(seed),
                     "conventions": CONVENTIONS, **(meta or {})})
        out.append(model.stats)
    return out
