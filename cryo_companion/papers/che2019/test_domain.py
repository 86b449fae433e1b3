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
``cryo_companion/papers/che2019/test_domain.json`` (:data:`TEST_DOMAIN_CONFIG`);
:func:`test_domain_hash` is the sha256 of its canonical JSON and every result that uses the
test set records it.

Two frozen domains (issue #14, item 3): ``che2019_test_domain`` (the one above, whose failure
mode has been studied) and ``che2019_test_domain_b`` (``test_domain_b.json``), a second held-out
domain of the same family frozen before any context-randomized arm was evaluated: other
tomograms (new seed), other defocus, dose, ice thickness and crowding, the same classes and box.
:data:`FROZEN_HASHES` records the sha256 of each file when it was frozen and :func:`load_config`
refuses a file that no longer matches. Every set carries its domain's name and hash in
``meta["test_domain"]`` and ``meta["test_domain_hash"]`` (:func:`domain_record`).

One parameterised generator (:func:`generate_sets`) makes the test sets: a
:class:`SceneRealism` (which objects a scene holds) and imaging modes
(:data:`~cryo_companion.simulate.tomogram.IMAGING_MODES`) switch realism off one factor at a time;
all switches on (:data:`FULL_REALISM`, mode ``"full"``) is the domain itself, drawn exactly as
:func:`make_testset` has always drawn it (the reality-gap ladder,
:mod:`cryo_companion.papers.che2019.ladder`, is built on it).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
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
from cryo_companion.simulate.scene import Scene, SceneSpec, make_scene
from cryo_companion.simulate.tiltseries import Imaging
from cryo_companion.simulate.tomogram import (
    IMAGING_MODES,
    MODE_CONTRAST,
    extract_targets,
    image_scene,
    load_templates,
    measure_snr,
    membrane_targets,
    scene_to_tomogram_vox,
    simulate_tomogram,
)

__all__ = [
    "DEFAULT_DOMAIN",
    "DOMAIN_FILES",
    "FROZEN_HASHES",
    "LEGACY_IMAGING_HASHES",
    "FULL_REALISM",
    "ISOLATED",
    "TEST_DOMAIN_CONFIG",
    "SceneRealism",
    "baseline_preset",
    "check_config",
    "class_entries",
    "default_data_dir",
    "domain_config",
    "domain_hash",
    "domain_record",
    "ensure_testset",
    "generate_sets",
    "isolated_snr",
    "load_config",
    "make_testset",
    "scale_config",
    "test_domain_hash",
]

# re-exported for the command line (``cryo-companion tomogram``)
_REEXPORTED = (load_templates, scene_to_tomogram_vox, simulate_tomogram)

#: The frozen domains: name -> the package data file holding its parameters.
DOMAIN_FILES: dict[str, str] = {"che2019_test_domain": "test_domain.json",
                                "che2019_test_domain_b": "test_domain_b.json"}
#: The domain of Table I (the first one frozen).
DEFAULT_DOMAIN = "che2019_test_domain"
#: sha256 of each domain's canonical JSON (:func:`test_domain_hash`), recorded when the domain
#: was frozen (the first: 2026-11-23, as in ``results/test_domain.json``; the second:
#: 2026-12-02, before any context arm was evaluated). Never edit one without bumping the
#: file's ``version`` and saying why in its ``changes``.
#: Domains frozen with the image formation of before 2026-12-02 (per-slab defocus Δf − t and the
#: Cs term with an underfocus's sign, both since corrected): they are generated with
#: ``Imaging(legacy_signs=True)``, so that the frozen domain stays the data it was (the
#: committed results were measured on it). Every domain frozen later uses the corrected physics.
LEGACY_IMAGING_HASHES: frozenset[str] = frozenset(
    {"0a302048c2687c68f9ca3b057807896a29c91ebd4efc3021f6474fd7355c6ad7"})
FROZEN_HASHES: dict[str, str] = {
    "che2019_test_domain": "0a302048c2687c68f9ca3b057807896a29c91ebd4efc3021f6474fd7355c6ad7",
    "che2019_test_domain_b": "7939b04cbc4c6f7edb557f2a51197a2e3218c17fbd852e5ce967bc638a9cb7ff",
}


def check_config(cfg: Mapping[str, Any]) -> None:
    """Check that the values the frozen file states twice agree.

    The ice thickness is both the scene's slab (where particles sit) and the imaging's path
    length (zero-loss attenuation).

    Parameters
    ----------
    cfg : mapping
        A test-domain configuration (the committed JSON's layout).

    Raises
    ------
    ValueError
        If the scene's and the imaging's ``ice_thickness_A`` differ.
    """
    scene_ice, imaging_ice = cfg["scene"]["ice_thickness_A"], cfg["imaging"]["ice_thickness_A"]
    if scene_ice != imaging_ice:
        raise ValueError(f"test-domain config: scene ice_thickness_A {scene_ice} Å differs from "
                         f"imaging ice_thickness_A {imaging_ice} Å; they must be equal")


def load_config(domain: str = DEFAULT_DOMAIN) -> dict[str, Any]:
    """Return the frozen parameters of a test domain (a fresh copy of its JSON, checked).

    Parameters
    ----------
    domain : str
        A name of :data:`DOMAIN_FILES`.

    Returns
    -------
    dict
        The parsed file.

    Raises
    ------
    ValueError
        For an unknown domain, a file whose ``name`` is not the domain's, values that disagree
        (:func:`check_config`), or a file whose hash is not the one recorded when it was frozen
        (:data:`FROZEN_HASHES`).
    """
    if domain not in DOMAIN_FILES:
        raise ValueError(f"unknown test domain {domain!r}; valid: {', '.join(DOMAIN_FILES)}")
    text = resources.files("cryo_companion.papers.che2019").joinpath(DOMAIN_FILES[domain]
                                                                     ).read_text()
    cfg = json.loads(text)
    if cfg.get("name") != domain:
        raise ValueError(f"{DOMAIN_FILES[domain]}: name {cfg.get('name')!r} is not {domain!r}")
    check_config(cfg)
    h = test_domain_hash(cfg)
    if h != FROZEN_HASHES[domain]:
        raise ValueError(f"{DOMAIN_FILES[domain]} has changed since it was frozen (sha256 {h}, "
                         f"recorded {FROZEN_HASHES[domain]}): a frozen test domain is never "
                         "edited; bump its version, record the new hash and say why")
    return cfg


def test_domain_hash(config: Mapping[str, Any] | None = None) -> str:
    """sha256 (hex) of the canonical JSON (sorted keys, no spaces) of a test-domain config.

    Parameters
    ----------
    config : Mapping or None
        The parameters; None: the default domain's (:data:`TEST_DOMAIN_CONFIG`).

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    cfg = TEST_DOMAIN_CONFIG if config is None else config
    canon = json.dumps(cfg, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canon.encode()).hexdigest()


test_domain_hash.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported

#: The frozen, committed generator parameters of the default domain (do not mutate).
TEST_DOMAIN_CONFIG: Mapping[str, Any] = load_config()
_CONFIGS: dict[str, Mapping[str, Any]] = {DEFAULT_DOMAIN: TEST_DOMAIN_CONFIG}


def domain_config(domain: str = DEFAULT_DOMAIN) -> Mapping[str, Any]:
    """Return the frozen parameters of ``domain`` (read once, checked; do not mutate).

    Parameters
    ----------
    domain : str
        A name of :data:`DOMAIN_FILES`.

    Returns
    -------
    Mapping
        The domain's parameters.
    """
    if domain not in _CONFIGS:
        _CONFIGS[domain] = load_config(domain)
    return _CONFIGS[domain]


def domain_hash(domain: str = DEFAULT_DOMAIN) -> str:
    """sha256 of the frozen parameters of ``domain`` (:func:`test_domain_hash`).

    Parameters
    ----------
    domain : str
        A name of :data:`DOMAIN_FILES`.

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    return test_domain_hash(domain_config(domain))


def domain_record(data_or_meta: Any) -> dict[str, Any]:
    """Which frozen domain a set comes from: ``{"name", "hash", "version"}``.

    Parameters
    ----------
    data_or_meta : SubtomogramSet or Mapping
        A set made by this module (or its ``meta``). Sets written before domains had names carry
        only the hash; the name is then looked up from :data:`FROZEN_HASHES`.

    Returns
    -------
    dict
        ``name`` (None if the hash is not a frozen domain's), ``hash``, ``version``.
    """
    meta = getattr(data_or_meta, "meta", data_or_meta) or {}
    h = meta.get("test_domain_hash")
    name = meta.get("test_domain") or next((n for n, v in FROZEN_HASHES.items() if v == h), None)
    return {"name": name, "hash": h, "version": meta.get("config_version")}


def scale_config(scale: str, config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the size parameters of ``scale`` ("smoke" or "paper")."""
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
    """Return the paper's baseline preset (IV-A) from the test domain.

    SNR measured, wedge from the tilt range, Dz and Cs of the acquisition. The wedge of
    −50..+70 is 90 − (70 + 50)/2 = 30°.

    Parameters
    ----------
    snr_value : float or None
        The measured SNR of the domain (None: not measured).
    config : mapping, optional
        A test-domain configuration (default: domain A's, :data:`TEST_DOMAIN_CONFIG`).

    Returns
    -------
    dict
        A simulator preset (``snr``, ``wedge_deg``, ``defocus_um``, ...).
    """
    cfg = TEST_DOMAIN_CONFIG if config is None else config
    im = cfg["imaging"]
    half_range = (im["tilt_max_deg"] - im["tilt_min_deg"]) / 2
    return {"snr": snr_value, "wedge_deg": 90.0 - half_range, "defocus_um": im["defocus_um"],
            "cs_mm": im["cs_mm"]}


@dataclass(frozen=True)
class SceneRealism:
    """Which objects the scenes of :func:`generate_sets` hold (the full domain: all of them).

    Attributes
    ----------
    isolated : bool
        One target per box: only copies of the target classes, as many as are needed, placed so
        that the cube of the subtomogram's half-width (+ 1 voxel) around each holds no other
        macromolecule (``SceneSpec.isolation_half_width_A``). Excludes the three others.
    crowders : bool
        Non-target complexes filling the domain's crowder volume fraction of the ice.
    contact : bool
        Placements in contact with a neighbour at the domain's ``contact_fraction`` (else all
        random, without overlap).
    membranes : bool
        The domain's vesicles and sheets, and membrane targets.
    """

    isolated: bool = False
    crowders: bool = True
    contact: bool = True
    membranes: bool = True

    def __post_init__(self) -> None:
        """Refuse contradictory switches."""
        if self.isolated and (self.crowders or self.contact or self.membranes):
            raise ValueError("an isolated scene holds only the targets: crowders, contact and "
                             f"membranes must be False, got {self}")

    def to_dict(self) -> dict[str, bool]:
        """Return the switches as a JSON-able dict."""
        return asdict(self)


#: All realism on: the test domain itself.
FULL_REALISM = SceneRealism()
#: Isolated targets, nothing else in the scene.
ISOLATED = SceneRealism(isolated=True, crowders=False, contact=False, membranes=False)


def _check_modes(modes: Sequence[str]) -> tuple[str, ...]:
    out = tuple(modes)
    if not out or len(set(out)) != len(out) or any(m not in IMAGING_MODES for m in out):
        raise ValueError(f"imaging modes {list(out)} must be distinct values of "
                         f"{', '.join(IMAGING_MODES)} (at least one)")
    return out


def _clone(generator: torch.Generator) -> torch.Generator:
    g = torch.Generator()
    g.set_state(generator.get_state())
    return g


def generate_sets(config: Mapping[str, Any], sizes: Mapping[str, Any], *,
                  seed: int | None = None, device: torch.device | str | None = None,
                  realism: SceneRealism = FULL_REALISM, modes: Sequence[str] = ("full",),
                  scale: str = "custom", progress: bool = True, return_tomograms: bool = False,
                  max_tomograms: int | None = None) -> Any:
    """Test sets of a domain's physics with realism switched off where asked (one generator).

    Crowded scenes (:mod:`cryo_companion.simulate.scene`) are imaged as tilt series and
    reconstructed (:mod:`cryo_companion.simulate.tomogram`); 40³ boxes are cut around targets of
    the four classes with the masks of their targets only. Tomograms are made until every class
    has its count (at most ``max_tomograms``). With several imaging ``modes`` every mode images
    the *same* scenes with the same defocus errors and the boxes are cut at the same places, so
    the sets differ only in imaging. With ``realism`` :data:`FULL_REALISM` and ``modes``
    ``("full",)`` the random stream is the one :func:`make_testset` has always used.

    Parameters
    ----------
    config : Mapping
        A domain's frozen parameters (:func:`domain_config`).
    sizes : Mapping
        Size parameters like a ``scales`` entry of the config: ``tomograms``, ``tomogram_xy``,
        ``oversample``, ``counts`` (per class), ``snr_pairs_per_class``, optionally
        ``tilt_step_deg``, ``crowder_volume_fraction``, ``vesicles``, ``sheets``.
    seed : int or None
        Base seed (default: the domain's pre-registered seed).
    device : torch.device, str or None
        Where scenes are built and imaged (default: auto).
    realism : SceneRealism
        Which objects the scenes hold (``membranes`` False also sets the membrane count to 0).
    modes : sequence of str
        Imaging modes (:data:`~cryo_companion.simulate.tomogram.IMAGING_MODES`).
    scale : str
        Name of the sizes, recorded in ``meta["scale"]``.
    progress : bool
        Progress bars (on a terminal only).
    return_tomograms : bool
        Also return, per mode, a list of ``(Scene, TiltSeries or None, tomogram)``.
    max_tomograms : int or None
        Most tomograms to make (default: three times ``sizes["tomograms"]``).

    Returns
    -------
    dict or tuple
        ``{mode: SubtomogramSet}`` (40³ volumes at 13.68 Å, labels in the class order, target
        masks, ``meta`` with the domain's name and hash, the measured SNR, the realism and the
        mode); with ``return_tomograms``, ``(sets, {mode: [(scene, series, tomogram), ...]})``.

    Raises
    ------
    ValueError
        Bad sizes, modes or seed (before any work).
    RuntimeError
        The scenes held too few extractable targets of some class.
    """
    cfg = config
    sc: dict[str, Any] = dict(sizes)
    modes = _check_modes(modes)
    dev = device if isinstance(device, torch.device) else resolve_device(device or "auto")
    seed = int(cfg["seed"] if seed is None else seed)         # the pre-registered seed
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    g = torch.Generator().manual_seed(seed)
    plan = _plan_sets(cfg, sc, realism, max_tomograms)
    acc = _Collected(modes, plan.names)
    n_tomo, max_tomo = plan.n_tomo, plan.max_tomo
    dz_g = torch.randn(n_tomo, generator=g, dtype=torch.float64).numpy()
    # tomograms until every class has its count (extra ones when too few targets fell where
    # a whole box fits; at most max_tomograms)
    bar = progress_bar(total=n_tomo, desc="tomograms", show=progress)
    dz_g = np.concatenate([dz_g, torch.randn(max(2 * n_tomo, max_tomo - n_tomo), generator=g,
                                             dtype=torch.float64).numpy()])
    for it in range(max_tomo):
        need = {n: plan.counts_total[n] - acc.got[n] for n in plan.names}
        if not any(v > 0 for v in need.values()):
            break
        _one_tomogram(cfg, plan, acc, need, it, float(dz_g[it]), g, dev, modes, progress,
                      return_tomograms)
        bar.update(1)
    bar.close()
    sets = _assemble_sets(cfg, sc, plan, acc, g, modes, realism, scale, seed)
    return (sets, acc.tomos) if return_tomograms else sets


@dataclass
class _SetsPlan:
    """What :func:`generate_sets` derives from a domain's config and sizes before any draw."""

    names: list[str]
    mol: dict[str, str]
    crowd: dict[str, str]
    templates: dict[str, Any]
    counts_total: dict[str, int]
    n_tomo: int
    max_tomo: int
    shape: tuple[int, int, int]
    voxel_size_A: float
    oversample: int
    box: int
    ice_A: float
    n_crowd: int
    factor: float
    vesicles: int
    sheets: int
    scene_kw: dict[str, Any]
    im_kw: dict[str, Any]


def _plan_sets(cfg: Mapping[str, Any], sc: Mapping[str, Any], realism: SceneRealism,
               max_tomograms: int | None) -> _SetsPlan:
    """Check the sizes and derive the scenes' and the imaging's parameters (no random draws)."""
    os_ = int(sc["oversample"])
    vs_t = float(cfg["voxel_size_A"])
    vs = vs_t / os_
    box = int(cfg["subtomogram_box"])
    names = list(cfg["class_names"])
    scn: dict[str, Any] = dict(cfg["scene"])
    im_kw: dict[str, Any] = dict(cfg["imaging"])
    im_kw["tilt_step_deg"] = float(sc.get("tilt_step_deg", im_kw["tilt_step_deg"]))
    im_kw["legacy_signs"] = test_domain_hash(cfg) in LEGACY_IMAGING_HASHES
    Imaging(**im_kw)  # validate before any work
    entries = class_entries(cfg)
    mol = {n: e for n, e in entries.items() if e is not None}
    crowd = {f"crowder_{e}": e for e in cfg["crowders"]}
    templates = load_templates({**mol, **crowd}, vs)
    counts_total = {n: int(sc["counts"].get(n, 0)) for n in names}
    if not realism.membranes and "membrane" in counts_total:
        counts_total["membrane"] = 0
    n_tomo = int(sc["tomograms"])
    max_tomo = 3 * n_tomo if max_tomograms is None else int(max_tomograms)
    if n_tomo < 1 or max_tomo < n_tomo:
        raise ValueError(f"tomograms {n_tomo} must be >= 1 and max_tomograms {max_tomo} >= it")
    xy = int(sc["tomogram_xy"]) * os_
    ice_A = float(scn["ice_thickness_A"])
    Z_t = math.ceil(ice_A / vs_t) + box + 2
    Z_t += Z_t % 2
    ice_vol = ice_A * (xy * vs) ** 2
    frac = float(sc.get("crowder_volume_fraction", scn["crowder_volume_fraction"]))
    frac = frac if realism.crowders else 0.0
    mean_crowd = float(np.mean([templates[k].volume_A3 for k in crowd]))
    # copies of each target class: enough that the wanted number falls where a whole box fits
    area = ((xy / os_ - box) / (xy / os_)) ** 2
    if area <= 0:
        raise ValueError(f"tomogram_xy {xy // os_} must exceed the subtomogram box {box}")
    copies = 1.0 if realism.isolated else float(scn["target_copies_factor"])
    return _SetsPlan(
        names=names, mol=mol, crowd=crowd, templates=templates, counts_total=counts_total,
        n_tomo=n_tomo, max_tomo=max_tomo, shape=(Z_t * os_, xy, xy), voxel_size_A=vs,
        oversample=os_, box=box, ice_A=ice_A,
        n_crowd=int(frac * ice_vol / mean_crowd), factor=copies / area,
        vesicles=int(sc.get("vesicles", scn["vesicles"])) if realism.membranes else 0,
        sheets=int(sc.get("sheets", scn["sheets"])) if realism.membranes else 0,
        scene_kw={"contact_fraction": scn["contact_fraction"] if realism.contact else 0.0,
                  "isolation_half_width_A": (box // 2 + 1) * vs_t if realism.isolated else 0.0,
                  "skip_unplaceable": realism.isolated},
        im_kw=im_kw)


class _Collected:
    """The boxes, labels, poses and tomograms gathered tomogram by tomogram."""

    def __init__(self, modes: tuple[str, ...], names: list[str]) -> None:
        """Start empty for ``modes`` and the class ``names``."""
        self.per_mode: dict[str, dict[str, list]] = {m: {"vols": [], "masks": []}
                                                     for m in modes}
        self.labels: list[int] = []
        self.eulers: list[Any] = []
        self.offsets: list[Any] = []
        self.tomos: dict[str, list] = {m: [] for m in modes}
        self.got = {n: 0 for n in names}
        self.n_done = 0


def _one_tomogram(cfg: Mapping[str, Any], plan: _SetsPlan, acc: _Collected,
                  need: Mapping[str, int], it: int, dz: float, g: torch.Generator,
                  dev: torch.device, modes: tuple[str, ...], progress: bool,
                  return_tomograms: bool) -> None:
    """Make, image and cut one tomogram's scene, adding its boxes to ``acc``."""
    names, scn = plan.names, cfg["scene"]
    left = max(1, plan.n_tomo - it)
    per = {n: max(0, math.ceil(need[n] / left)) for n in names}
    cnt = {n: math.ceil(per[n] * plan.factor) + (1 if per[n] else 0) for n in plan.mol}
    cr_names = list(plan.crowd)
    cr_idx = torch.randint(len(cr_names), (plan.n_crowd,), generator=g).tolist()
    for j in cr_idx:
        cnt[cr_names[j]] = cnt.get(cr_names[j], 0) + 1
    spec = SceneSpec(shape=plan.shape, voxel_size_A=plan.voxel_size_A, ice_thickness_A=plan.ice_A,
                     counts=cnt, vesicles=plan.vesicles, sheets=plan.sheets,
                     vesicle_radius_A=tuple(scn["vesicle_radius_A"]),
                     sheet_radius_A=tuple(scn["sheet_radius_A"]),
                     phi_protein_V=scn["phi_protein_V"], phi_ice_V=scn["phi_ice_V"],
                     ice_sd_V=scn["ice_sd_V"], **plan.scene_kw)
    scene = make_scene(spec, plan.templates, names + cr_names, g, dev, progress=progress)
    im_kw = plan.im_kw
    imaging = Imaging(**{**im_kw, "defocus_um": im_kw["defocus_um"]
                         + cfg["defocus_tomogram_sd_um"] * dz})
    os_, box = plan.oversample, plan.box
    images = _image_modes(scene, imaging, os_, g, modes, progress)
    targets = _particle_targets(scene, images[modes[0]][1].shape, names, per, box, os_)
    if per.get("membrane"):
        targets += membrane_targets(scene, box, os_, per["membrane"],
                                     scn["membrane_target_spacing_A"] / plan.voxel_size_A, g)
    if targets:
        for m in modes:
            v, mk, off = extract_targets(scene, images[m][1], targets, box, os_)
            acc.per_mode[m]["vols"].append(v.cpu())
            acc.per_mode[m]["masks"].append(mk.cpu())
        acc.offsets.append(off)
        for pid, _ in targets:
            p = scene.particles[pid]
            acc.labels.append(p["class_index"])
            acc.eulers.append(p["euler_zyz_deg"])
            acc.got[p["class_name"]] += 1
    if return_tomograms:
        for m in modes:
            acc.tomos[m].append((scene, images[m][0], images[m][1].cpu()))
    acc.n_done += 1


def _assemble_sets(cfg: Mapping[str, Any], sc: Mapping[str, Any], plan: _SetsPlan,
                   acc: _Collected, g: torch.Generator, modes: tuple[str, ...],
                   realism: SceneRealism, scale: str, seed: int) -> dict[str, SubtomogramSet]:
    """Check every class has its count, measure the SNR per mode and build the sets."""
    names = plan.names
    short = {n: plan.counts_total[n] - acc.got[n] for n in names
             if acc.got[n] < plan.counts_total[n]}
    if short:
        raise RuntimeError(f"test set short of targets {short} after {acc.n_done} tomograms: "
                           "the scenes held too few extractable copies (raise "
                           "target_copies_factor or allow more tomograms)")
    labels = np.asarray(acc.labels, dtype=np.int64)
    eulers = np.asarray(acc.eulers, dtype=np.float64)
    offsets = np.concatenate(acc.offsets)
    sets = {}
    g_snr = g.get_state()
    for m in modes:
        vols = torch.cat(acc.per_mode[m]["vols"])
        g_m = torch.Generator()
        g_m.set_state(g_snr)  # every mode measures the same pairs
        snr_meas = measure_snr(vols, labels, eulers, offsets, names,
                               int(sc["snr_pairs_per_class"]), g_m)
        meta = {"contrast": MODE_CONTRAST[m],  # raw reconstructions of the tilt series: dark
                "test_domain": cfg["name"], "test_domain_hash": test_domain_hash(cfg),
                "config_version": cfg["version"], "scale": scale, "seed": seed, "snr": snr_meas,
                "baseline_preset": baseline_preset(snr_meas["median"], cfg),
                "tilt_step_deg": plan.im_kw["tilt_step_deg"], "tomograms": acc.n_done,
                "realism": realism.to_dict(), "imaging_mode": m, "sizes": dict(sc)}
        sets[m] = SubtomogramSet(vols.numpy(), labels,
                                 torch.cat(acc.per_mode[m]["masks"]).numpy(), names,
                                 float(cfg["voxel_size_A"]), meta)
    return sets


def _image_modes(scene: Scene, imaging: Imaging, bin_factor: int, generator: torch.Generator,
                 modes: tuple[str, ...], progress: bool) -> dict[str, tuple]:
    """Image one scene in every mode from the same generator state (same defocus errors).

    The generator then stands where one tilt-series imaging leaves it (as if only that ran).
    """
    out, end = {}, None
    for m in modes:
        g_m = _clone(generator)
        out[m] = image_scene(scene, imaging, bin_factor, g_m, m, progress=progress)
        if out[m][0] is not None and end is None:
            end = g_m
    if end is not None:
        generator.set_state(end.get_state())
    return out


def _particle_targets(scene: Scene, tomo_shape: Sequence[int], names: list[str],
                      per: dict[str, int], box: int, bin_factor: int
                      ) -> list[tuple[int, tuple[float, float, float]]]:
    """Targets: the first ``per[class]`` macromolecules of each class whose box fits.

    Returns (particle index, centre x-y-z in scene voxels) for boxes wholly in the tomogram.
    """
    h = box // 2
    lim = np.array([tomo_shape[2], tomo_shape[1], tomo_shape[0]])
    targets: list[tuple[int, tuple[float, float, float]]] = []
    for n in names:
        if n == "membrane" or per[n] == 0:
            continue
        k = names.index(n)
        ok = []
        for i, p in enumerate(scene.particles):
            if p["class_index"] != k:
                continue
            ci = np.round(scene_to_tomogram_vox(np.array(p["centre_xyz_vox"]), bin_factor)
                          ).astype(int)
            if np.all(ci - h >= 0) and np.all(ci - h + box <= lim):
                ok.append(i)
        for i in ok[:max(per[n], 0)]:
            x, y, z = scene.particles[i]["centre_xyz_vox"]
            targets.append((i, (x, y, z)))
    return targets


def make_testset(scale: str, device: torch.device | str | None = None, seed: int | None = None,
                 *, domain: str = DEFAULT_DOMAIN, progress: bool = True,
                 return_tomograms: bool = False) -> Any:
    """Simulate the test set of a frozen domain at ``scale`` (paper: 80/460/125/386).

    Parameters
    ----------
    scale : str
        ``"smoke"`` or ``"paper"``.
    device : torch.device, str or None
        Torch device or ``"auto"``/``"cpu"``/``"cuda"`` (default: auto).
    seed : int or None
        Base seed (default: the domain's pre-registered seed).
    domain : str
        A frozen domain (:data:`DOMAIN_FILES`).
    progress : bool
        Progress bars (on a terminal only).
    return_tomograms : bool
        Also return a list of ``(Scene, TiltSeries, tomogram)`` (for the chapter).

    Returns
    -------
    SubtomogramSet or tuple
        40³ volumes at 13.68 Å, labels in the che2019 class order, target masks, and ``meta``
        holding the domain's name and hash, the measured SNR and the baseline preset; with
        ``return_tomograms``, ``(set, tomograms)``.
    """
    cfg = domain_config(domain)
    out = generate_sets(cfg, scale_config(scale, cfg), seed=seed, device=device, scale=scale,
                        progress=progress, return_tomograms=return_tomograms)
    if return_tomograms:
        sets, tomos = out
        return sets["full"], tomos["full"]
    return out["full"]


def isolated_snr(scale: str, device: torch.device | str | None = None, seed: int | None = None,
                 *, domain: str = DEFAULT_DOMAIN, progress: bool = False) -> dict[str, Any]:
    """Measure the domain's SNR on isolated particles (no crowders, membranes or contact).

    The same Frank & Al-Ali measurement as the crowded one in ``meta["snr"]``
    (:func:`~cryo_companion.simulate.tomogram.measure_snr`: same-class pairs aligned with their
    true poses, ``ρ / (1 − ρ)`` of each pair) on test sets of the domain's imaging whose scenes
    hold only isolated copies of the target classes (:data:`ISOLATED`): what the imaging alone
    leaves of the signal. The sizes are the scale's, with ``2 × snr_pairs_per_class`` particles
    per class (so the same number of pairs as the crowded measurement) and up to ten times the
    scale's tomograms (isolated particles pack sparsely).

    Parameters
    ----------
    scale : str
        ``"smoke"`` or ``"paper"``.
    device : torch.device, str or None
        Where to simulate (default: auto).
    seed : int or None
        Base seed (default: the domain's pre-registered seed).
    domain : str
        A frozen domain (:data:`DOMAIN_FILES`).
    progress : bool
        Progress bars (on a terminal only).

    Returns
    -------
    dict
        The measurement (``median``, ``mean``, ``per_class``, ``pairs``) with ``counts``,
        ``tomograms``, ``test_domain`` and ``test_domain_hash``.
    """
    cfg = domain_config(domain)
    sc = scale_config(scale, cfg)
    pairs = int(sc["snr_pairs_per_class"])
    sc["counts"] = {n: 0 if n == "membrane" else 2 * pairs for n in cfg["class_names"]}
    data = generate_sets(cfg, sc, seed=seed, device=device, realism=ISOLATED, scale=scale,
                         progress=progress, max_tomograms=10 * int(sc["tomograms"]))["full"]
    return {**data.meta["snr"], "counts": data.counts, "tomograms": data.meta["tomograms"],
            "test_domain": data.meta["test_domain"],
            "test_domain_hash": data.meta["test_domain_hash"]}

def ensure_testset(folder: str | os.PathLike | None, scale: str,
                   device: torch.device | str | None = None, seed: int | None = None, *,
                   domain: str = DEFAULT_DOMAIN) -> SubtomogramSet:
    """Return the test set of ``domain`` at ``scale``, from its cache or generated and cached.

    The cache is used if it was made with the current config (same hash, seed and scale).

    Parameters
    ----------
    folder : str, os.PathLike or None
        Cache root (None: :func:`default_data_dir`); the set lives in ``test_domain_SCALE``
        (the default domain) or ``DOMAIN_SCALE``.
    scale : str
        ``"smoke"`` or ``"paper"``.
    device : torch.device, str or None
        Where to simulate when the cache does not match.
    seed : int or None
        Base seed (default: the domain's pre-registered seed).
    domain : str
        A frozen domain (:data:`DOMAIN_FILES`).

    Returns
    -------
    SubtomogramSet
        The set, ``meta`` naming its domain and hash.
    """
    cfg = domain_config(domain)
    scale_config(scale, cfg)
    root = Path(folder) if folder is not None else default_data_dir()
    dest = root / (f"test_domain_{scale}" if domain == DEFAULT_DOMAIN else f"{domain}_{scale}")
    seed_ = int(cfg["seed"] if seed is None else seed)
    if (dest / "meta.json").is_file():
        try:
            data = load_subtomograms(dest)
            if (data.meta.get("test_domain_hash") == test_domain_hash(cfg)
                    and data.meta.get("seed") == seed_ and data.meta.get("scale") == scale):
                return data
        except (ValueError, OSError, KeyError):
            pass  # unreadable or stale: regenerate
    data = make_testset(scale, device, seed_, domain=domain)
    save_subtomograms(dest, data)
    return data
