"""The held-out test domain: the stand-in for the 1,051 real subtomograms of Che et al. 2019.

Che et al. (IV-B) test on 1,051 subtomograms picked by template search
from a rat-neuron tomogram (80 ribosome, 460 mitochondrial membrane, 125 TRiC, 386
single-capped proteasome; tilt range −50° to +70°; SNR about 0.1 measured on those data). They
are not reachable from here, so this module makes data that the training simulator has never
seen, by a different and physically richer path (:mod:`.scene` + :mod:`.tiltseries`): crowded
tomograms are simulated and reconstructed, and 40³ subtomograms at 13.68 Å are cut around
targets of the four classes, neighbours included as they fall, each with the segmentation
ground truth of its target only.

Pre-registration: every generator parameter lives in the committed package file
``cryo_companion/papers/che2019/test_domain.json`` (:data:`TEST_DOMAIN_CONFIG`); :func:`test_domain_hash`
is the sha256 of its canonical JSON and every result that uses the test set records it.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cryo_companion._progress import progress as progress_bar
from cryo_companion.dataset import (
    SubtomogramSet,
    default_data_dir,
    load_subtomograms,
    save_subtomograms,
)
from cryo_companion.devices import resolve_device
from cryo_companion.simulate.scene import SceneSpec, make_scene
from cryo_companion.simulate.tiltseries import Imaging
from cryo_companion.simulate.tomogram import (
    extract_targets,
    load_templates,
    measure_snr,
    membrane_targets,
    scene_to_tomogram_vox,
    simulate_tomogram,
)

__all__ = [
    "TEST_DOMAIN_CONFIG",
    "baseline_preset",
    "check_config",
    "class_entries",
    "default_data_dir",
    "ensure_testset",
    "load_config",
    "make_testset",
    "scale_config",
    "test_domain_hash",
]


def check_config(cfg: Mapping[str, Any]) -> None:
    """Values the frozen file states twice must agree: the ice thickness is both the scene's slab
    (where particles sit) and the imaging's path length (zero-loss attenuation)."""
    scene_ice, imaging_ice = cfg["scene"]["ice_thickness_A"], cfg["imaging"]["ice_thickness_A"]
    if scene_ice != imaging_ice:
        raise ValueError(f"test-domain config: scene ice_thickness_A {scene_ice} Å differs from "
                         f"imaging ice_thickness_A {imaging_ice} Å; they must be equal")


def load_config() -> dict[str, Any]:
    """The frozen test-domain parameters (a fresh copy of the committed JSON, checked)."""
    text = resources.files("cryo_companion.papers.che2019").joinpath("test_domain.json").read_text()
    cfg = json.loads(text)
    check_config(cfg)
    return cfg


#: The frozen, committed generator parameters (do not mutate).
TEST_DOMAIN_CONFIG: Mapping[str, Any] = load_config()


def test_domain_hash(config: Mapping[str, Any] | None = None) -> str:
    """sha256 (hex) of the canonical JSON (sorted keys, no spaces) of the test-domain config."""
    cfg = TEST_DOMAIN_CONFIG if config is None else config
    canon = json.dumps(cfg, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canon.encode()).hexdigest()


test_domain_hash.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported


def scale_config(scale: str, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The size parameters of ``scale`` ("smoke" or "paper")."""
    cfg = TEST_DOMAIN_CONFIG if config is None else config
    if scale not in cfg["scales"]:
        raise ValueError(f"unknown scale {scale!r}; valid values: {', '.join(cfg['scales'])}")
    return dict(cfg["scales"][scale])


def class_entries(config: Mapping[str, Any] | None = None) -> dict[str, str | None]:
    """{class name: structure entry} of the class set (None for the procedural membrane).

    Taken from :func:`cryo_companion.structures.catalogue.class_set` when that is available,
    so the test domain uses the same structures as the training simulator; the config's
    ``entries`` otherwise.
    """
    cfg = TEST_DOMAIN_CONFIG if config is None else config
    out: dict[str, str | None] = {n: cfg["entries"].get(n) for n in cfg["class_names"]}
    try:
        from cryo_companion.structures.catalogue import class_set  # type: ignore[import-not-found]
    except ImportError:
        return out
    cs = class_set(cfg["class_set"])
    for c in cs.classes:
        if c.name in out:
            out[c.name] = None if c.name == "membrane" else c.entry
    return out


def baseline_preset(snr_value: float | None, config: Mapping[str, Any] | None = None) -> dict:
    """The paper's baseline preset (IV-A) from the test domain: SNR measured, wedge from the
    tilt range, Dz and Cs of the acquisition. The wedge of −50..+70 is 90 − (70 + 50)/2 = 30°."""
    cfg = TEST_DOMAIN_CONFIG if config is None else config
    im = cfg["imaging"]
    half_range = (im["tilt_max_deg"] - im["tilt_min_deg"]) / 2
    return {"snr": snr_value, "wedge_deg": 90.0 - half_range, "defocus_um": im["defocus_um"],
            "cs_mm": im["cs_mm"]}


def make_testset(scale: str, device: torch.device | str | None = None, seed: int | None = None,
                 *, progress: bool = True, return_tomograms: bool = False):
    """Simulate the test set of ``scale`` ("paper": 80/460/125/386; "smoke": a few per class).

    Parameters
    ----------
    scale : "smoke" or "paper".
    device : torch device or "auto"/"cpu"/"cuda" (default: auto).
    seed : base seed (default: the config's pre-registered seed, 2019).
    progress : progress bars (on a terminal only).
    return_tomograms : also return a list of (Scene, TiltSeries, tomogram) (for the chapter).

    Returns
    -------
    SubtomogramSet with 40³ volumes at 13.68 Å, labels in the che2019 class order, target masks,
    and ``meta`` holding the config hash, the measured SNR and the baseline preset.
    """
    cfg = TEST_DOMAIN_CONFIG
    sc = scale_config(scale)
    if isinstance(device, torch.device):
        dev = device
    else:
        dev = resolve_device(device or "auto")
    seed = int(cfg["seed"] if seed is None else seed)         # the pre-registered seed
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    g = torch.Generator().manual_seed(seed)
    os_ = int(sc["oversample"])
    vs_t = float(cfg["voxel_size_A"])
    vs = vs_t / os_
    box = int(cfg["subtomogram_box"])
    names = list(cfg["class_names"])
    scn = dict(cfg["scene"])
    im_kw = dict(cfg["imaging"])
    im_kw["tilt_step_deg"] = float(sc.get("tilt_step_deg", im_kw["tilt_step_deg"]))
    Imaging(**im_kw)  # validate before any work
    entries = class_entries(cfg)
    mol = {n: e for n, e in entries.items() if e is not None}
    crowd = {f"crowder_{e}": e for e in cfg["crowders"]}
    templates = load_templates({**mol, **crowd}, vs)
    counts_total = dict(sc["counts"])
    n_tomo = int(sc["tomograms"])
    xy = int(sc["tomogram_xy"]) * os_
    ice_A = float(scn["ice_thickness_A"])
    Z_t = int(math.ceil(ice_A / vs_t)) + box + 2
    Z_t += Z_t % 2
    shape = (Z_t * os_, xy, xy)
    ice_vol = ice_A * (xy * vs) ** 2
    frac = float(sc.get("crowder_volume_fraction", scn["crowder_volume_fraction"]))
    mean_crowd = float(np.mean([templates[k].volume_A3 for k in crowd]))
    n_crowd = int(frac * ice_vol / mean_crowd)
    # copies of each target class: enough that the wanted number falls where a whole box fits
    area = ((xy / os_ - box) / (xy / os_)) ** 2
    if area <= 0:
        raise ValueError(f"tomogram_xy {xy // os_} must exceed the subtomogram box {box}")
    factor = float(scn["target_copies_factor"]) / area
    vols_all, masks_all, labels_all, eul_all, off_all = [], [], [], [], []
    tomos = []
    got = {n: 0 for n in names}
    dz_g = torch.randn(n_tomo, generator=g, dtype=torch.float64).numpy()
    # tomograms until every class has its count (extra ones when too few targets fell where
    # a whole box fits; at most three times the planned number)
    bar = progress_bar(total=n_tomo, desc="tomograms", show=progress)
    dz_g = np.concatenate([dz_g, torch.randn(2 * n_tomo, generator=g,
                                             dtype=torch.float64).numpy()])
    n_done = 0
    for it in range(3 * n_tomo):
        need = {n: counts_total[n] - got[n] for n in names}
        if not any(v > 0 for v in need.values()):
            break
        left = max(1, n_tomo - it)
        per = {n: max(0, int(math.ceil(need[n] / left))) for n in names}
        cnt = {n: int(math.ceil(per[n] * factor)) + (1 if per[n] else 0) for n in mol}
        cr_names = list(crowd)
        cr_idx = torch.randint(len(cr_names), (n_crowd,), generator=g).tolist()
        for j in cr_idx:
            cnt[cr_names[j]] = cnt.get(cr_names[j], 0) + 1
        spec = SceneSpec(shape=shape, voxel_size_A=vs, ice_thickness_A=ice_A, counts=cnt,
                         vesicles=int(sc.get("vesicles", scn["vesicles"])),
                         sheets=int(sc.get("sheets", scn["sheets"])),
                         vesicle_radius_A=tuple(scn["vesicle_radius_A"]),
                         sheet_radius_A=tuple(scn["sheet_radius_A"]),
                         phi_protein_V=scn["phi_protein_V"], phi_ice_V=scn["phi_ice_V"],
                         ice_sd_V=scn["ice_sd_V"], contact_fraction=scn["contact_fraction"])
        scene = make_scene(spec, templates, names + list(crowd), g, dev, progress=progress)
        imaging = Imaging(**{**im_kw, "defocus_um": im_kw["defocus_um"]
                             + cfg["defocus_tomogram_sd_um"] * float(dz_g[it])})
        series, tomo = simulate_tomogram(scene, imaging, os_, g, progress=progress)
        # targets: whole boxes inside the tomogram
        h = box // 2
        targets = []
        for n in names:
            if n == "membrane" or per[n] == 0:
                continue
            k = names.index(n)
            ok = []
            for i, p in enumerate(scene.particles):
                if p["class_index"] != k:
                    continue
                c = scene_to_tomogram_vox(np.array(p["centre_xyz_vox"]), os_)
                ci = np.round(c).astype(int)
                lim = np.array([tomo.shape[2], tomo.shape[1], tomo.shape[0]])
                if np.all(ci - h >= 0) and np.all(ci - h + box <= lim):
                    ok.append(i)
            for i in ok[:max(per[n], 0)]:
                targets.append((i, tuple(scene.particles[i]["centre_xyz_vox"])))
        if per["membrane"]:
            targets += membrane_targets(scene, box, os_, per["membrane"],
                                         scn["membrane_target_spacing_A"] / vs, g)
        if targets:
            v, m, off = extract_targets(scene, tomo, targets, box, os_)
            vols_all.append(v.cpu())
            masks_all.append(m.cpu())
            off_all.append(off)
            for pid, _ in targets:
                p = scene.particles[pid]
                labels_all.append(p["class_index"])
                eul_all.append(p["euler_zyz_deg"])
                got[p["class_name"]] += 1
        if return_tomograms:
            tomos.append((scene, series, tomo.cpu()))
        n_done += 1
        bar.update(1)
    bar.close()
    short = {n: counts_total[n] - got[n] for n in names if got[n] < counts_total[n]}
    if short:
        raise RuntimeError(f"test set short of targets {short}: the scenes held too few "
                           "extractable copies (raise target_copies_factor)")
    vols = torch.cat(vols_all)
    labels = np.asarray(labels_all, dtype=np.int64)
    snr_meas = measure_snr(vols, labels, np.asarray(eul_all, dtype=np.float64),
                           np.concatenate(off_all), names, int(sc["snr_pairs_per_class"]), g)
    meta = {"contrast": "dark",  # physical sign of a raw reconstruction: mass is dark
            "test_domain_hash": test_domain_hash(), "config_version": cfg["version"],
            "scale": scale, "seed": seed, "snr": snr_meas,
            "baseline_preset": baseline_preset(snr_meas["median"]),
            "tilt_step_deg": im_kw["tilt_step_deg"], "tomograms": n_done}
    data = SubtomogramSet(vols.numpy(), labels, torch.cat(masks_all).numpy(), names, vs_t, meta)
    return (data, tomos) if return_tomograms else data


def ensure_testset(folder: str | os.PathLike | None, scale: str,
                   device: torch.device | str | None = None, seed: int | None = None
                   ) -> SubtomogramSet:
    """The test set of ``scale`` from ``folder/test_domain_SCALE`` if it was made with the
    current config (same hash and seed), else generate and save it there first.

    ``folder`` None uses :func:`default_data_dir`.
    """
    scale_config(scale)
    root = Path(folder) if folder is not None else default_data_dir()
    dest = root / f"test_domain_{scale}"
    seed_ = int(TEST_DOMAIN_CONFIG["seed"] if seed is None else seed)
    if (dest / "meta.json").is_file():
        try:
            data = load_subtomograms(dest)
            if (data.meta.get("test_domain_hash") == test_domain_hash()
                    and data.meta.get("seed") == seed_ and data.meta.get("scale") == scale):
                return data
        except (ValueError, OSError, KeyError):
            pass  # unreadable or stale: regenerate
    data = make_testset(scale, device, seed_)
    save_subtomograms(dest, data)
    return data
