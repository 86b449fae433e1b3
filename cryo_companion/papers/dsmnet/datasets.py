"""DSM-Net's data sets (3.1): A and B from the crowded generator, C from the realistic simulator.

**A (SNR 0.06) and B (SNR 0.01)**: 22 classes, 3,205 subtomograms each, made exactly as SSN3D's
data sets (:mod:`cryo_companion.papers.ssn3d.datasets`: the ``liu22`` stand-ins, tomograms of
600 x 600 x 300 voxels with 10,000 complexes, tilt range ±60°, 40³ boxes at 13.68 Å around the
true centres, masks at 0.2 of the target's maximum density less its neighbours, the noise-free
density of each target, the SNR measured on the GroEL stand-in's boxes and the dose calibrated
once per data set on a pilot tomogram) with DSM-Net's sizes and SNRs:

* 3,205 subtomograms drawn from the extractable boxes (the paper's count; SSN3D's analysis of
  why 10,000 complexes leave far more whole boxes than that applies unchanged);
* **one scene for A and B** (the same count, 3,205, for both reads as one packed density imaged
  at two doses), with DSM-Net's own scene seed (:data:`SCENE_SEED`), so that its data sets are
  a realisation independent of SSN3D's; each data set has its own imaging seed.

**C**, the stand-in for the experimental set (400 ribosomes + 386 single-capped proteasomes of
rat-neuron tomograms, −50°/+70°, 13.68 Å): crowded scenes with non-target complexes, membranes
and contacts, imaged tilt by tilt (defocus-sliced CTF, shot noise, detector MTF) and
reconstructed by weighted back-projection: the physics of the che2019 test domain, which stands
in for the same rat-neuron tomograms (the paper's 386 proteasomes are Che et al.'s). Every
parameter is in the committed ``dataset_c.json`` (:data:`DATASET_C_CONFIG`, hashed by
:func:`dataset_c_hash`); its own seed, never the che2019 domain's, so that no subtomogram of the
held-out test domain is trained on. Masks and densities come from the true poses (the paper
aligned the templates 5T2C and 5MPA): the same level masks and rendered densities as A and B
(:mod:`cryo_companion.simulate.targets`). C is used for Table 3 and nothing else.

All three are :class:`~cryo_companion.simulate.crowded.CrowdedSubtomograms` (volumes, labels,
masks, densities, poses) and are cached on disk by the hash of what made them.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cryo_companion._progress import progress as progress_bar
from cryo_companion.dataset import default_data_dir
from cryo_companion.devices import resolve_device
from cryo_companion.papers.ssn3d import datasets as ssn3d_datasets
from cryo_companion.simulate.crowded import (
    CrowdedConfig,
    CrowdedSubtomograms,
    DoseCalibration,
    ensure_calibrated_crowded,
    load_crowded,
    save_crowded,
)
from cryo_companion.simulate.scene import SceneSpec, make_scene
from cryo_companion.simulate.targets import level_masks, target_densities
from cryo_companion.simulate.tiltseries import Imaging
from cryo_companion.simulate.tomogram import (
    extract_targets,
    load_templates,
    measure_snr,
    scene_to_tomogram_vox,
    simulate_tomogram,
)

__all__ = ["DATASETS", "DATASET_C_CONFIG", "NOISE_SEEDS", "PAPER_SUBTOMOGRAMS", "SCENE_SEED",
           "SIMULATED", "TARGET_SNR", "dataset_c_hash", "dataset_config", "ensure_dataset",
           "ensure_dataset_c", "load_dataset_c_config", "make_dataset_c"]

#: DSM-Net 3.1: the SNR of data sets A and B.
TARGET_SNR: dict[str, float] = {"A": 0.06, "B": 0.01}
SIMULATED = tuple(TARGET_SNR)
DATASETS = (*SIMULATED, "C")
#: DSM-Net 3.1: subtomograms of data sets A and B.
PAPER_SUBTOMOGRAMS = 3_205
#: The scene seed of A and B (any fixed value other than SSN3D's 2018) and their imaging seeds.
SCENE_SEED = 3_205
NOISE_SEEDS = {"A": 11, "B": 12}
#: SSN3D's data set at the same SNR: its recipe and first dose are DSM-Net's.
_SSN3D_NAME = {"A": "B", "B": "C"}


def _check(name: str, scale: str, valid: tuple[str, ...] = SIMULATED) -> None:
    if name not in valid:
        raise ValueError(f"unknown DSM-Net data set {name!r}; valid: {', '.join(valid)}")
    if scale not in ssn3d_datasets.SCALES:
        raise ValueError(f"unknown scale {scale!r}; valid: {', '.join(ssn3d_datasets.SCALES)}")


def dataset_config(name: str, scale: str = "paper", dose_e_A2: float | None = None
                   ) -> CrowdedConfig:
    """Return the crowded-generator configuration of data set ``name`` (A or B) at ``scale``.

    Parameters
    ----------
    name : str
        ``"A"`` or ``"B"``.
    scale : str
        ``"paper"`` (3,205 subtomograms of the paper's tomogram) or ``"smoke"`` (every box of
        one small tomogram).
    dose_e_A2 : float or None
        Total dose (e/Å²); None: the first dose the calibration tries.

    Returns
    -------
    CrowdedConfig
    """
    _check(name, scale)
    cfg = ssn3d_datasets.dataset_config(_SSN3D_NAME[name], scale, dose_e_A2)
    n = PAPER_SUBTOMOGRAMS if scale == "paper" else None
    return replace(cfg, n_subtomograms=n, seed=SCENE_SEED, noise_seed=NOISE_SEEDS[name])


def ensure_dataset(name: str, scale: str = "paper", folder: str | os.PathLike | None = None,
                   device: torch.device | str | None = None, *, progress: bool = True
                   ) -> tuple[CrowdedSubtomograms, DoseCalibration | None]:
    """Make or read data set ``name`` (A and B: after calibrating the dose, once, cached).

    Parameters
    ----------
    name : str
        ``"A"``, ``"B"`` or ``"C"``.
    scale : str
        ``"paper"`` or ``"smoke"``.
    folder : str or os.PathLike or None
        Cache root (None: :func:`~cryo_companion.dataset.default_data_dir`).
    device : torch.device or str or None
        Compute device.
    progress : bool
        Progress bars on a terminal.

    Returns
    -------
    tuple
        The data set (its ``meta["dataset"]`` names it; A and B carry the calibration in
        ``meta["calibration"]``) and the dose calibration (None for C).
    """
    _check(name, scale, DATASETS)
    if name == "C":
        return ensure_dataset_c(scale, folder, device, progress=progress), None
    return ensure_calibrated_crowded(
        dataset_config(name, scale), TARGET_SNR[name], folder,
        pilot_xy=ssn3d_datasets.SCALES[scale]["pilot_xy"], device=device, progress=progress,
        extra_meta={"dataset": name, "paper": "dsmnet", "target_snr": TARGET_SNR[name],
                    "scale": scale})


# ------------------------------------------------------------------------------ data set C
def load_dataset_c_config() -> dict[str, Any]:
    """Read the committed parameters of data set C (a fresh copy).

    Returns
    -------
    dict
        The parsed ``dataset_c.json``.
    """
    text = resources.files("cryo_companion.papers.dsmnet").joinpath("dataset_c.json").read_text()
    cfg: dict[str, Any] = json.loads(text)
    if cfg["scene"]["ice_thickness_A"] != cfg["imaging"]["ice_thickness_A"]:
        raise ValueError("dataset_c.json: the scene's and the imaging's ice thickness differ")
    return cfg


#: The committed parameters of data set C (do not mutate).
DATASET_C_CONFIG: Mapping[str, Any] = load_dataset_c_config()


def dataset_c_hash(config: Mapping[str, Any] | None = None) -> str:
    """Return the sha256 (hex) of the canonical JSON of data set C's parameters.

    Parameters
    ----------
    config : Mapping or None
        The parameters (None: :data:`DATASET_C_CONFIG`).

    Returns
    -------
    str
    """
    cfg = DATASET_C_CONFIG if config is None else config
    canon = json.dumps(cfg, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canon.encode()).hexdigest()


def _sizes(scale: str) -> dict[str, Any]:
    if scale not in DATASET_C_CONFIG["scales"]:
        raise ValueError(f"unknown scale {scale!r}; valid: "
                         f"{', '.join(DATASET_C_CONFIG['scales'])}")
    return dict(DATASET_C_CONFIG["scales"][scale])


def _whole_boxes(scene: Any, shape: tuple[int, ...], k: int, n: int, box: int, os_: int
                 ) -> list[tuple[int, tuple]]:
    """Pick the first ``n`` particles of class ``k`` whose box lies wholly in the tomogram."""
    h = box // 2
    lim = np.array([shape[2], shape[1], shape[0]])
    out: list[tuple[int, tuple]] = []
    for i, p in enumerate(scene.particles):
        if p["class_index"] != k or len(out) >= n:
            continue
        c = np.round(scene_to_tomogram_vox(np.array(p["centre_xyz_vox"]), os_)).astype(int)
        if np.all(c - h >= 0) and np.all(c - h + box <= lim):
            out.append((i, tuple(p["centre_xyz_vox"])))
    return out


def make_dataset_c(scale: str, device: torch.device | str | None = None, *,
                   progress: bool = True) -> CrowdedSubtomograms:
    """Simulate data set C at ``scale`` (paper: 400 ribosomes, 386 proteasomes).

    Tomograms are simulated until every class has its count (at most three times the planned
    number), each with as many target copies as are needed for the wanted number to fall where
    a whole box fits (``target_copies_factor``), crowders filling their volume fraction of the
    ice, vesicles and sheets, and its own defocus.

    Parameters
    ----------
    scale : str
        ``"paper"`` or ``"smoke"``.
    device : torch.device or str or None
        Where scenes are built and imaged (None: auto).
    progress : bool
        Progress bars on a terminal.

    Returns
    -------
    CrowdedSubtomograms
        40³ boxes at 13.68 Å (mass dark), labels 0 ribosome / 1 proteasome, level masks,
        rendered densities (Da/Å³), poses; ``meta`` holds the configuration hash, the scale,
        the counts, the measured SNR and the scenes' statistics.

    Raises
    ------
    RuntimeError
        The scenes held too few extractable targets of some class.
    """
    cfg = DATASET_C_CONFIG
    sc = _sizes(scale)
    dev = device if isinstance(device, torch.device) else resolve_device(device or "auto")
    g = torch.Generator().manual_seed(int(cfg["seed"]))
    os_, vs_t, box = int(sc["oversample"]), float(cfg["voxel_size_A"]), int(cfg["subtomogram_box"])
    vs = vs_t / os_
    names = list(cfg["class_names"])
    scn: dict[str, Any] = dict(cfg["scene"])
    im_kw: dict[str, Any] = dict(cfg["imaging"])
    if "tilt_step_deg" in sc:
        im_kw["tilt_step_deg"] = float(sc["tilt_step_deg"])
    Imaging(**im_kw)  # validate before any work
    crowd = {f"crowder_{e}": e for e in cfg["crowders"]}
    templates = load_templates({**{n: cfg["entries"][n] for n in names}, **crowd}, vs)
    scene_names = [*names, "membrane", *crowd]
    want = {n: int(sc["counts"][n]) for n in names}
    n_tomo, xy = int(sc["tomograms"]), int(sc["tomogram_xy"])
    ice_A = float(scn["ice_thickness_A"])
    Z_t = math.ceil(ice_A / vs_t) + box + 2
    Z_t += Z_t % 2
    area = ((xy - box) / xy) ** 2
    if area <= 0:
        raise ValueError(f"tomogram_xy {xy} must exceed the subtomogram box {box}")
    frac = float(sc["crowder_volume_fraction"] if "crowder_volume_fraction" in sc
                 else scn["crowder_volume_fraction"])
    mean_crowd = float(np.mean([templates[k].volume_A3 for k in crowd]))
    n_crowd = int(frac * ice_A * (xy * vs_t) ** 2 / mean_crowd)
    factor = float(scn["target_copies_factor"]) / area
    dz = torch.randn(3 * n_tomo, generator=g, dtype=torch.float64).numpy()
    parts: dict[str, list[Any]] = {k: [] for k in ("vols", "masks", "dens", "off", "eul",
                                                   "cent", "lab", "tomo")}
    got = {n: 0 for n in names}
    stats = []
    bar = progress_bar(total=n_tomo, desc="tomograms", show=progress)
    for it in range(3 * n_tomo):
        need = {n: want[n] - got[n] for n in names}
        if not any(v > 0 for v in need.values()):
            break
        left = max(1, n_tomo - it)
        per = {n: max(0, math.ceil(need[n] / left)) for n in names}
        cnt = {n: math.ceil(per[n] * factor) + (1 if per[n] else 0) for n in names}
        for j in torch.randint(len(crowd), (n_crowd,), generator=g).tolist():
            name = list(crowd)[j]
            cnt[name] = cnt.get(name, 0) + 1
        spec = SceneSpec(shape=(Z_t * os_, xy * os_, xy * os_), voxel_size_A=vs,
                         ice_thickness_A=ice_A, counts=cnt,
                         vesicles=int(sc["vesicles"] if "vesicles" in sc else scn["vesicles"]),
                         sheets=int(sc["sheets"] if "sheets" in sc else scn["sheets"]),
                         vesicle_radius_A=tuple(scn["vesicle_radius_A"]),
                         sheet_radius_A=tuple(scn["sheet_radius_A"]), membrane_class="membrane",
                         phi_protein_V=scn["phi_protein_V"], phi_ice_V=scn["phi_ice_V"],
                         ice_sd_V=scn["ice_sd_V"], contact_fraction=scn["contact_fraction"])
        scene = make_scene(spec, templates, scene_names, g, dev, progress=progress)
        imaging = Imaging(**{**im_kw, "defocus_um": im_kw["defocus_um"]
                             + cfg["defocus_tomogram_sd_um"] * float(dz[it])})
        _, tomo = simulate_tomogram(scene, imaging, os_, g, progress=progress)
        targets = [t for k, n in enumerate(names)
                   for t in _whole_boxes(scene, tuple(tomo.shape), k, per[n], box, os_)]
        if targets:
            v, _, off = extract_targets(scene, tomo, targets, box, os_)
            d = target_densities(scene, templates, targets, box, os_)
            parts["vols"].append(v.cpu())
            parts["dens"].append(d)
            parts["masks"].append(level_masks(scene, templates, targets, d, box, os_,
                                              float(cfg["mask_level"])))
            parts["off"].append(off)
            for pid, c in targets:
                p = scene.particles[pid]
                parts["eul"].append(p["euler_zyz_deg"])
                parts["cent"].append(scene_to_tomogram_vox(np.array(c), os_))
                parts["lab"].append(p["class_index"])
                parts["tomo"].append(it)
                got[p["class_name"]] += 1
        stats.append(dict(scene.stats))
        bar.update(1)
        del scene, tomo
    bar.close()
    short = {n: want[n] - got[n] for n in names if got[n] < want[n]}
    if short:
        raise RuntimeError(f"data set C short of targets {short} after {len(stats)} "
                           "tomograms: the scenes held too few extractable copies")
    vols = torch.cat(parts["vols"])
    labels = np.asarray(parts["lab"], dtype=np.int64)
    eul = np.asarray(parts["eul"], dtype=np.float64)
    off = np.concatenate(parts["off"])
    snr = measure_snr(vols, labels, eul, off, names, int(sc["snr_pairs_per_class"]), g)
    meta = {"dataset": "C", "paper": "dsmnet", "scale": scale, "contrast": "dark",
            "density_unit": "Da/A^3", "config": {"dataset_c": cfg["name"],
                                                 "version": cfg["version"], "scale": scale},
            "config_hash": dataset_c_hash(), "snr": snr, "tomograms": len(stats),
            "scene_stats": stats, "tilt_step_deg": im_kw["tilt_step_deg"], "device": str(dev)}
    data = CrowdedSubtomograms(
        vols.numpy(), labels, torch.cat(parts["masks"]).numpy(), names, vs_t, meta,
        density=torch.cat(parts["dens"]).numpy(), euler_zyz_deg=eul, offset_xyz_vox=off,
        centre_xyz_vox=np.asarray(parts["cent"], dtype=np.float64).reshape(-1, 3),
        tomogram_index=np.asarray(parts["tomo"], dtype=np.int64))
    data.meta["counts"] = data.counts
    return data


def ensure_dataset_c(scale: str, folder: str | os.PathLike | None = None,
                     device: torch.device | str | None = None, *, progress: bool = True
                     ) -> CrowdedSubtomograms:
    """Return data set C from its cache folder, simulating and saving it if needed.

    Parameters
    ----------
    scale : str
        ``"paper"`` or ``"smoke"``.
    folder : str or os.PathLike or None
        Cache root (None: :func:`~cryo_companion.dataset.default_data_dir`); the set lives in
        ``ROOT/dsmnet/dataset_c_SCALE_HASH16``.
    device : torch.device or str or None
        Compute device when simulating.
    progress : bool
        Progress bars on a terminal.

    Returns
    -------
    CrowdedSubtomograms
    """
    _sizes(scale)
    root = Path(folder) if folder is not None else default_data_dir()
    h = dataset_c_hash()
    dest = root / "dsmnet" / f"dataset_c_{scale}_{h[:16]}"
    if (dest / "config.json").is_file():
        try:
            data = load_crowded(dest)
            if data.meta.get("config_hash") == h and data.meta.get("scale") == scale:
                return data
        except (ValueError, OSError, KeyError):
            pass  # unreadable or stale: regenerate (the folder is this cache's own)
    data = make_dataset_c(scale, device, progress=progress)
    save_crowded(dest, data)
    return data
