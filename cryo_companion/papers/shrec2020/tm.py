"""SHREC 2020's template matching (Gubins et al. 2020, 3.7) on a tomogram, class by class.

For each of the twelve complexes: the template is the complex's density at the tomogram's voxel
size (:func:`~cryo_companion.papers.shrec2020.dataset.templates_for`) filtered by the CTF at
3 µm underfocus with every frequency past the first zero removed
(:func:`~cryo_companion.detect.template_matching.ctf_template`); the mask a sphere of the
thresholded density's radius with a Gaussian edge; the angular step the Crowther step of the
complex at the resolution of that first zero (``(1 / k₀) / diameter`` radians: 8° for TRiC,
24° for the smallest complexes at 1 nm per voxel), optionally capped by a number of rotations
(a stated budget: the step is then coarser, and recorded). The score map's top
:data:`~.methods.N_CANDIDATES` peaks, each blanking a ball of the class's radius, are the
class's candidates; :func:`~.methods.select_tm` makes TM-T and TM-F of them.

Every number of a search (steps, rotations, time per class) is returned for the record.

**A budget.** :func:`rotation_cap` turns a time budget for the twelve classes and a measured
time per rotation (``cryo-companion bench template-matching --save`` on the device) into the one
cap of rotations per class that fits: the classes whose Crowther set is smaller keep it, the
larger ones are searched more coarsely, and the record says so.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from cryo_companion import optics
from cryo_companion.detect import template_matching as tm
from cryo_companion.detect.detections import Detections
from cryo_companion.detect.peaks import find_peaks
from cryo_companion.papers.shrec2020.methods import (
    N_CANDIDATES,
    N_PER_CLASS,
    RADIUS_KINDS,
    class_label,
    class_radius_vox,
    select_tm,
)
from cryo_companion.papers.shrec2020.metrics import CLASS_ORDER

__all__ = ["BENCH_RECORD", "PreparedTemplate", "TMSearch", "TMSettings", "crowther_rotations",
           "measured_ms_per_rotation", "prepare_template", "rotation_cap", "search",
           "tm_lists"]

#: The benchmark's record (``results/NAME.json``, ``cryo-companion bench template-matching
#: --save``): milliseconds per rotation by device kind.
BENCH_RECORD = "bench_template_matching"


@dataclass(frozen=True)
class TMSettings:
    """Parameters of the search (defaults: the paper's, at 1 nm per voxel).

    Attributes
    ----------
    voxel_size_A : float
        Voxel edge of the tomogram and templates (Å).
    defocus_um, cs_mm, voltage_kv, amplitude_contrast : float
        The CTF of the templates (−3 µm: underfocus; the data set's 2.7 mm, 300 kV, 8 %).
    bfactor_A2 : float
        B-factor of an envelope applied to the templates besides the CTF (Å²; 0, the paper's
        "standard CTF curve": none). The data set's Gaussian decay is B = 10,000 Å² at 1 nm
        (:attr:`~.dataset.ShrecRecipe.bfactor_A2`); using it makes the template the data's
        matched filter, a deviation from the paper to be stated where used.
    mask_sigma_vox : float
        Sd of the mask's Gaussian edge (voxels).
    angular_step_deg : float or None
        One step for every class; None: each class's Crowther step.
    max_rotations : int or None
        At most this many rotations per class (a budget; the step is coarsened to fit).
    n_candidates : int
        Peaks kept per class (2,000).
    radius_kind : str
        Radius of the candidate exclusion and of TM-F (:func:`~.methods.class_radius_vox`).
    batch_size : int
        Rotations per FFT batch.
    """

    voxel_size_A: float = 10.0
    defocus_um: float = -3.0
    cs_mm: float = 2.7
    voltage_kv: float = 300.0
    amplitude_contrast: float = 0.08
    bfactor_A2: float = 0.0
    mask_sigma_vox: float = 1.0
    angular_step_deg: float | None = None
    max_rotations: int | None = None
    n_candidates: int = N_CANDIDATES
    radius_kind: str = "equal_volume"
    batch_size: int = 4

    def __post_init__(self) -> None:
        """Validate the parameters."""
        if not self.voxel_size_A > 0 or self.mask_sigma_vox < 0 or self.bfactor_A2 < 0:
            raise ValueError("voxel_size_A must be > 0, mask_sigma_vox and bfactor_A2 >= 0")
        if self.angular_step_deg is not None and not 0 < self.angular_step_deg <= 180:
            raise ValueError(f"angular_step_deg {self.angular_step_deg} is outside (0, 180]")
        if self.max_rotations is not None and self.max_rotations < 1:
            raise ValueError(f"max_rotations must be >= 1, got {self.max_rotations}")
        if self.n_candidates < 1 or self.batch_size < 1:
            raise ValueError("n_candidates and batch_size must be >= 1")
        if self.radius_kind not in RADIUS_KINDS:
            raise ValueError(f"radius_kind {self.radius_kind!r}; valid: {', '.join(RADIUS_KINDS)}")

    def resolution_vox(self) -> float:
        """Period at the CTF's first zero, in voxels (the resolution of the templates)."""
        k0 = optics.ctf_first_zero_per_nm(self.defocus_um, self.cs_mm,
                                          voltage_kv=self.voltage_kv,
                                          amplitude_contrast=self.amplitude_contrast)
        return 10.0 / k0 / self.voxel_size_A

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


@dataclass(frozen=True)
class PreparedTemplate:
    """A class's template, mask and rotation set, ready for the search.

    Attributes
    ----------
    pdb_id : str
        The class.
    template : torch.Tensor
        `(N, N, N)` CTF-filtered template (physical sign), N odd.
    mask : torch.Tensor
        `(N, N, N)` spherical mask.
    mask_radius_vox : float
        Radius of the mask's flat part: the bounding sphere of the thresholded density.
    step_deg : float
        Angular step searched.
    n_rotations : int
        Rotations searched.
    step_rule : str
        How the step was chosen.
    """

    pdb_id: str
    template: Tensor
    mask: Tensor
    mask_radius_vox: float
    step_deg: float
    n_rotations: int
    step_rule: str

    def summary(self) -> dict[str, Any]:
        """JSON-able numbers (no tensors)."""
        return {"pdb_id": self.pdb_id, "box": int(self.template.shape[0]),
                "mask_radius_vox": self.mask_radius_vox, "step_deg": self.step_deg,
                "n_rotations": self.n_rotations, "step_rule": self.step_rule}


def _step(diameter_vox: float, s: TMSettings) -> tuple[float, int, str]:
    if s.angular_step_deg is not None:
        step, rule = float(s.angular_step_deg), "given"
    else:
        step = tm.crowther_step_deg(diameter_vox, s.resolution_vox())
        rule = (f"Crowther: resolution {s.resolution_vox():.2f} vox (first CTF zero) / "
                f"diameter {diameter_vox:.1f} vox")
    n = tm.n_rotations_for_step(step)
    if s.max_rotations is not None and n > s.max_rotations:
        n = int(s.max_rotations)
        coarse = math.degrees((8 * math.pi ** 2 / n) ** (1 / 3))
        rule += f"; capped at {n} rotations (step {step:.2f} -> {coarse:.2f} deg)"
        step = coarse
    return step, n, rule


def prepare_template(pdb_id: str, density: Tensor, radius_vox: float, s: TMSettings
                     ) -> PreparedTemplate:
    """Filter a class's density by the CTF, make its mask and choose its rotations.

    Parameters
    ----------
    pdb_id : str
        The class (Table 1).
    density : torch.Tensor
        `(N, N, N)` density (mass positive, centre at the middle voxel, N odd), e.g.
        ``Template.density`` of :func:`~cryo_companion.papers.shrec2020.dataset.templates_for`.
    radius_vox : float
        Radius of the thresholded density's bounding sphere (``Template.radius_vox``).
    s : TMSettings
        The search's parameters.

    Returns
    -------
    PreparedTemplate
    """
    class_label(pdb_id)
    if density.ndim != 3 or len(set(density.shape)) != 1 or density.shape[0] % 2 == 0:
        raise ValueError(f"{pdb_id}: density must be an odd cube, got {tuple(density.shape)}")
    half = math.ceil(radius_vox + 3 * s.mask_sigma_vox) + 2
    pad = max(half - density.shape[0] // 2, 0)
    d = F.pad(density.float(), [pad] * 6)
    c = d.shape[0] // 2
    d = d[c - half:c + half + 1, c - half:c + half + 1, c - half:c + half + 1]
    filtered = tm.ctf_template(d, s.voxel_size_A, defocus_um=s.defocus_um, cs_mm=s.cs_mm,
                               voltage_kv=s.voltage_kv,
                               amplitude_contrast=s.amplitude_contrast, bfactor_A2=s.bfactor_A2)
    mask = tm.spherical_mask(2 * half + 1, radius_vox, s.mask_sigma_vox)
    step, n, rule = _step(2.0 * radius_vox, s)
    return PreparedTemplate(pdb_id, filtered, mask, float(radius_vox), step, n, rule)


@dataclass(frozen=True)
class TMSearch:
    """Candidates of every class and the record of the search.

    Attributes
    ----------
    candidates : dict of str to Detections
        PDB ID -> its top candidates, best first (labels: :func:`~.methods.class_label`).
    orientations : dict of str to torch.Tensor
        PDB ID -> `(K, 3, 3)` best rotation (x-y-z, active on the template) at each candidate.
    record : dict
        Per class: the template's summary, time of the correlation and of the peaks (s);
        totals; the settings; the device.
    """

    candidates: dict[str, Detections]
    orientations: dict[str, Tensor]
    record: dict[str, Any]


def search(volume: Tensor, templates: Mapping[str, Any], s: TMSettings | None = None, *,
           classes: Sequence[str] = CLASS_ORDER, progress: bool = False) -> TMSearch:
    """Template matching of every class on one tomogram.

    Parameters
    ----------
    volume : torch.Tensor
        `(D, H, W)` tomogram, z-y-x, physical contrast (mass dark); the search runs on its
        device.
    templates : mapping
        PDB ID -> an object with ``density`` `(N, N, N)` and ``radius_vox``
        (:class:`~cryo_companion.simulate.scene.Template`).
    s : TMSettings or None
        Parameters (default: the paper's).
    classes : sequence of str
        Classes searched (default: the twelve).
    progress : bool
        Progress bars (on a terminal only).

    Returns
    -------
    TMSearch
    """
    s = s or TMSettings()
    missing = [c for c in classes if c not in templates]
    if missing:
        raise ValueError(f"no template for classes {missing}")
    t_all = time.perf_counter()
    out: dict[str, Detections] = {}
    turns: dict[str, Tensor] = {}
    per_class: dict[str, Any] = {}
    for c in classes:
        t = templates[c]
        prep = prepare_template(c, torch.as_tensor(t.density), float(t.radius_vox), s)
        R = tm.rotation_set(prep.n_rotations, device=volume.device)
        res = tm.match_template(volume, prep.template.to(volume.device),
                                prep.mask.to(volume.device), R, batch_size=s.batch_size,
                                progress=progress)
        t0 = time.perf_counter()
        radius = class_radius_vox(c, s.voxel_size_A, s.radius_kind)
        out[c] = find_peaks(res.score, radius, max_peaks=s.n_candidates, label=class_label(c))
        at = torch.as_tensor(out[c].zyx, dtype=torch.int64, device=res.rotation_index.device)
        turns[c] = res.rotations[res.rotation_index[at[:, 0], at[:, 1], at[:, 2]].cpu()]
        per_class[c] = {**prep.summary(), "exclusion_radius_vox": radius,
                        "correlation_s": res.time_s, "peaks_s": time.perf_counter() - t0,
                        "n_candidates": len(out[c])}
        per_class[c]["total_s"] = per_class[c]["correlation_s"] + per_class[c]["peaks_s"]
        del res
    record = {"settings": s.to_dict(), "device": str(volume.device),
              "volume_shape_zyx": list(volume.shape), "per_class": per_class,
              "total_s": time.perf_counter() - t_all,
              "rotations_total": sum(v["n_rotations"] for v in per_class.values())}
    return TMSearch(out, turns, record)


def tm_lists(found: TMSearch, *, n_per_class: int = N_PER_CLASS,
             radius_kind: str | None = None) -> dict[str, Detections]:
    """TM-T and TM-F of a search (:func:`~.methods.select_tm`).

    Parameters
    ----------
    found : TMSearch
        The candidates.
    n_per_class : int
        Particles per class (217).
    radius_kind : str or None
        Radii of TM-F (default: the search's).

    Returns
    -------
    dict
        ``{"TM-T": Detections, "TM-F": Detections}``, heaviest class first.
    """
    kind = radius_kind or found.record["settings"]["radius_kind"]
    vs = float(found.record["settings"]["voxel_size_A"])
    order = [c for c in reversed(CLASS_ORDER) if c in found.candidates]
    radii = {c: class_radius_vox(c, vs, kind) for c in order}
    return {"TM-T": select_tm(found.candidates, filtered=False, n_per_class=n_per_class,
                              order=order),
            "TM-F": select_tm(found.candidates, filtered=True, n_per_class=n_per_class,
                              order=order, radius_vox=radii)}


def crowther_rotations(templates: Mapping[str, Any], s: TMSettings | None = None, *,
                       classes: Sequence[str] = CLASS_ORDER) -> dict[str, int]:
    """Rotations of each class's Crowther step (no cap), as :func:`search` would take them.

    Parameters
    ----------
    templates : mapping
        PDB ID -> an object with ``radius_vox`` (:func:`~.dataset.templates_for`).
    s : TMSettings or None
        Parameters (the step's resolution; an ``angular_step_deg`` overrides the rule).
    classes : sequence of str
        The classes.

    Returns
    -------
    dict of str to int
    """
    s = dataclasses.replace(s or TMSettings(), max_rotations=None)
    return {c: _step(2.0 * float(templates[c].radius_vox), s)[1] for c in classes}


def rotation_cap(budget_s: float, ms_per_rotation: float, rotations: Mapping[str, int]
                 ) -> int | None:
    """Return the largest cap of rotations per class whose search fits a time budget.

    Parameters
    ----------
    budget_s : float
        Seconds for the correlations of all classes (> 0).
    ms_per_rotation : float
        Measured milliseconds per rotation on the tomogram's size and device (> 0).
    rotations : mapping of str to int
        Each class's rotations without a cap (:func:`crowther_rotations`).

    Returns
    -------
    int or None
        None when every class fits uncapped; else the largest ``c >= 1`` with
        ``Σ min(n_class, c) × ms <= budget`` (1 when even that does not fit).
    """
    if not budget_s > 0 or not ms_per_rotation > 0:
        raise ValueError(f"budget_s ({budget_s}) and ms_per_rotation ({ms_per_rotation}) must "
                         "be > 0")
    n = [int(v) for v in rotations.values()]
    allowed = budget_s * 1000.0 / ms_per_rotation
    if sum(n) <= allowed:
        return None
    lo, hi = 1, max(n)
    while lo < hi:                       # the largest c with cost(c) <= allowed
        mid = (lo + hi + 1) // 2
        if sum(min(k, mid) for k in n) <= allowed:
            lo = mid
        else:
            hi = mid - 1
    return lo


def measured_ms_per_rotation(record: dict[str, Any] | None, device_type: str = "cuda",
                             shape: tuple[int, int, int] | None = None
                             ) -> tuple[float, int, str] | None:
    """Return the recorded best time per rotation of a device kind, if measured on ``shape``.

    Parameters
    ----------
    record : dict or None
        The saved ``results/bench_template_matching.json`` (None: not recorded).
    device_type : str
        ``"cuda"`` or ``"cpu"``.
    shape : tuple of int or None
        The volume the figure must have been measured on (None: any).

    Returns
    -------
    tuple or None
        ``(ms per rotation, batch size, description of the source)``, or None.
    """
    try:
        e = record["data"][device_type]  # type: ignore[index]
        if shape is not None and tuple(e["shape"]) != tuple(shape):
            return None
        return (float(e["best"]["ms_per_rotation"]), int(e["best"]["batch_size"]),
                f"results/{BENCH_RECORD}.json: {e['best']['ms_per_rotation']:.2f} ms per rotation "
                f"on {e['device_name']} ({e['shape'][0]} x {e['shape'][1]} x {e['shape'][2]}, "
                f"batch {e['best']['batch_size']}, commit {str(e.get('commit'))[:7]})")
    except (KeyError, TypeError, ValueError):
        return None
