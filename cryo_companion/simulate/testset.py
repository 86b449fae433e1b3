"""The held-out test domain: the stand-in for the 1,051 real subtomograms of Che et al. 2019.

Issue #5, items 3 and 4. Che et al. (IV-B) test on 1,051 subtomograms picked by template search
from a rat-neuron tomogram (80 ribosome, 460 mitochondrial membrane, 125 TRiC, 386
single-capped proteasome; tilt range −50° to +70°; SNR about 0.1 measured on those data). They
are not reachable from here, so this module makes data that the training simulator has never
seen, by a different and physically richer path (:mod:`.scene` + :mod:`.tiltseries`): crowded
tomograms are simulated and reconstructed, and 40³ subtomograms at 13.68 Å are cut around
targets of the four classes, neighbours included as they fall, each with the segmentation
ground truth of its target only.

Pre-registration: every generator parameter lives in the committed package file
``cryo_companion/data/test_domain.json`` (:data:`TEST_DOMAIN_CONFIG`); :func:`test_domain_hash`
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
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import rotation, snr
from ..dataset import SubtomogramSet, load_subtomograms, save_subtomograms
from ..runtime import resolve_device
from .scene import Scene, SceneSpec, Template, make_scene, make_template
from .tiltseries import Imaging, reconstruct, simulate_tilt_series

__all__ = [
    "TEST_DOMAIN_CONFIG",
    "baseline_preset",
    "check_config",
    "class_entries",
    "ensure_testset",
    "extract_targets",
    "load_config",
    "load_templates",
    "make_testset",
    "measure_snr",
    "scale_config",
    "scene_to_tomogram_vox",
    "simulate_tomogram",
    "test_domain_hash",
]


def scene_to_tomogram_vox(c, bin_factor: int):
    """Voxel coordinates on the (oversampled) scene grid -> on the tomogram grid (voxel centres
    at whole numbers on both grids; works on floats and numpy arrays)."""
    return (c + 0.5) / bin_factor - 0.5


def check_config(cfg: Mapping[str, Any]) -> None:
    """Values the frozen file states twice must agree: the ice thickness is both the scene's slab
    (where particles sit) and the imaging's path length (zero-loss attenuation)."""
    scene_ice, imaging_ice = cfg["scene"]["ice_thickness_A"], cfg["imaging"]["ice_thickness_A"]
    if scene_ice != imaging_ice:
        raise ValueError(f"test-domain config: scene ice_thickness_A {scene_ice} Å differs from "
                         f"imaging ice_thickness_A {imaging_ice} Å; they must be equal")


def load_config() -> dict[str, Any]:
    """The frozen test-domain parameters (a fresh copy of the committed JSON, checked)."""
    text = resources.files("cryo_companion").joinpath("data/test_domain.json").read_text()
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
        from ..structures.catalogue import class_set  # type: ignore[import-not-found]
    except ImportError:
        return out
    cs = class_set(cfg["class_set"])
    for c in cs.classes:
        if c.name in out:
            out[c.name] = None if c.name == "membrane" else c.entry
    return out


def load_templates(names_entries: Mapping[str, str], voxel_size_A: float) -> dict[str, Template]:
    """Templates at ``voxel_size_A`` for {name: entry} (entries located by the structures layer).

    Raises KeyError naming the entry when a structure cannot be found.
    """
    from ..structures.density import load_density

    out = {}
    for name, entry in names_entries.items():
        box = int(2 * math.ceil(400.0 / voxel_size_A) + 1)  # 80 nm holds every complex used
        try:
            d = load_density(entry, voxel_size_A, box, grow_box=True)
        except FileNotFoundError as exc:
            raise KeyError(f"structure {entry!r} for class {name!r} not found ({exc})") from exc
        out[name] = make_template(name, d, voxel_size_A)
    return out


def simulate_tomogram(scene: Scene, imaging: Imaging, bin_factor: int,
                      generator: torch.Generator, *, progress: bool = False):
    """Tilt series and WBP tomogram of a scene; returns (TiltSeries, tomogram (Z/b, Y/b, X/b))."""
    series = simulate_tilt_series(scene.potential_V, scene.voxel_size_A, imaging, generator,
                                  bin_factor=bin_factor, progress=progress)
    Z = scene.potential_V.shape[0]
    if Z % bin_factor:
        raise ValueError(f"scene height {Z} is not divisible by bin_factor {bin_factor}")
    tomo = reconstruct(series, Z // bin_factor)
    return series, tomo


def _membrane_targets(scene: Scene, box: int, bin_factor: int, n: int, spacing_vox: float,
                      generator: torch.Generator) -> list[tuple[int, tuple[float, float, float]]]:
    """Points on membrane mid-planes (scene voxels, x-y-z) at least ``spacing_vox`` apart."""
    occ = scene.occupancy
    Z, Y, X = occ.shape
    mids = [i for i, p in enumerate(scene.particles) if p["kind"] in ("vesicle", "sheet")]
    cands = []
    m = box * bin_factor // 2 + bin_factor
    for i in mids:
        pts = torch.nonzero(occ[:, m:Y - m, m:X - m] == i + 1)
        if len(pts):
            pts[:, 1:] += m
            cands.append((i, pts))
    chosen: list[tuple[int, tuple[float, float, float]]] = []
    if not cands:
        return chosen
    allp = torch.cat([p for _, p in cands]).cpu()
    owner = torch.cat([torch.full((len(p),), i) for i, p in cands])
    keep = (allp[:, 0] >= m) & (allp[:, 0] < Z - m)
    allp, owner = allp[keep], owner[keep]
    perm = torch.randperm(len(allp), generator=generator)[: 50 * max(n, 1)]
    taken = torch.empty(0, 3)
    for j in perm.tolist():
        p = allp[j].float()
        if len(taken) and bool((((taken - p) ** 2).sum(1) < spacing_vox ** 2).any()):
            continue
        taken = torch.cat([taken, p[None]])
        chosen.append((int(owner[j]), (float(p[2]), float(p[1]), float(p[0]))))
        if len(chosen) >= n:
            break
    return chosen


def extract_targets(scene: Scene, tomogram: torch.Tensor, targets, box: int, bin_factor: int):
    """Cut ``box``³ subtomograms of the tomogram around targets, with their targets' masks.

    Parameters
    ----------
    targets : list of (particle index, centre (x, y, z) in scene voxels).

    Returns
    -------
    vols (N, box, box, box) float32, masks (N, box, box, box) bool, offsets (N, 3) x-y-z: the
    target centre minus the box's centre voxel ``box // 2`` (tomogram voxels).
    """
    occ = scene.occupancy
    vols, masks, offs = [], [], []
    h = box // 2
    for pid, (cx, cy, cz) in targets:
        c = np.array([cz, cy, cx])
        ct = scene_to_tomogram_vox(c, bin_factor)          # centre on the tomogram grid
        s = np.round(ct).astype(int) - h
        sl = tuple(slice(a, a + box) for a in s)
        vols.append(tomogram[sl])
        ss = tuple(slice(a * bin_factor, (a + box) * bin_factor) for a in s)
        mk = (occ[ss] == pid + 1).float()[None, None]
        masks.append(F.avg_pool3d(mk, bin_factor)[0, 0] >= 0.5 if bin_factor > 1 else mk[0, 0] > 0)
        offs.append((ct - (s + h))[::-1].copy())
    return torch.stack(vols), torch.stack(masks), np.array(offs, dtype=np.float64)


def measure_snr(vols: torch.Tensor, labels: np.ndarray, eulers_deg: np.ndarray,
                offsets: np.ndarray, class_names: list[str], pairs_per_class: int,
                generator: torch.Generator) -> dict[str, Any]:
    """SNR the way one measures it on real data (Che et al.'s baseline "measured the testing data").

    Pairs of same-class subtomograms are aligned with their (here: known) poses — each is
    rotated back by its rotation and shifted by its sub-voxel offset — and the Frank & Al-Ali
    estimate ρ/(1−ρ) of the pair's correlation over the whole box is taken
    (:func:`cryo_companion.snr.snr_from_correlation`). Membranes have no pose and are left out.
    Returns the median over all pairs and the per-class medians.
    """
    out: dict[str, Any] = {"per_class": {}, "pairs": 0}
    allv = []
    for k, name in enumerate(class_names):
        idx = np.flatnonzero(labels == k)
        if name == "membrane" or len(idx) < 2:
            continue
        perm = idx[torch.randperm(len(idx), generator=generator).numpy()]
        npair = min(pairs_per_class, len(perm) // 2)
        a_i, b_i = perm[:npair], perm[npair:2 * npair]
        sel = np.concatenate([a_i, b_i])
        e = torch.as_tensor(np.deg2rad(eulers_deg[sel]))
        R = rotation.euler_zyz_to_matrix(e[:, 0], e[:, 1], e[:, 2]).to(torch.float32)
        D = vols.shape[-1]
        # target centre relative to rotate_volumes' centre (D − 1)/2: offset + (D//2 − (D−1)/2)
        delta = torch.as_tensor(offsets[sel], dtype=torch.float32) + (D // 2 - (D - 1) / 2)
        t = -(R.transpose(1, 2) @ delta[:, :, None])[:, :, 0]
        v = vols[torch.as_tensor(sel)].float()
        al = rotation.rotate_volumes(v, R.transpose(1, 2).to(v.device), t.to(v.device))
        s = snr.snr_from_correlation(al[:npair], al[npair:]).cpu().numpy()
        out["per_class"][name] = float(np.median(s))
        allv.append(s)
        out["pairs"] += int(npair)
    allv_ = np.concatenate(allv) if allv else np.array([np.nan])
    out["median"] = float(np.median(allv_)) if allv else None
    out["mean"] = float(np.mean(allv_)) if allv else None
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
    progress : tqdm bars.
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
    bar = tqdm(total=n_tomo, desc="tomograms", disable=not progress)
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
            targets += _membrane_targets(scene, box, os_, per["membrane"],
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


def default_data_dir() -> Path:
    """Where generated data are cached: ``$CRYO_COMPANION_DATA`` or ``data/`` at the repository
    root (ignored by git), whatever the working directory."""
    from ..results import repo_root

    return Path(os.environ.get("CRYO_COMPANION_DATA", repo_root() / "data"))


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
