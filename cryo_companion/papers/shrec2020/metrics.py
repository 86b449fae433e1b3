"""SHREC 2020 evaluation: localisation (Table 3) and classification (Tables 4, 6; Figs. 10-12).

Gubins et al. 2020, Section 2.2 defines precision, recall, F1 and miss rate (Eqs. 3-6); the
captions of Tables 3 and 8 define the counters; the paper leaves the hit criterion to the
benchmark's evaluation script, which this module follows (public copies of the "SHREC 2020
Cryo-ET evaluation script", ``evaluate.py``). The choices, all tested:

* **Hit.** A detection's centre is rounded to the nearest voxel (Python's ``round``, i.e. halves
  to even, as the script does; :func:`numpy.rint` is the same rule) and looked up in the
  occupancy map ``occupancy[z, y, x]``; value ``i > 0`` means a hit on the ``i``-th particle of
  the truth list (1-based: line order), ``0`` is background (a false positive).
* **TP / FN / MH.** TP = particles hit at least once; FN = particles never hit; MH = particles
  hit more than once (Table 3: "unique particles that had more than one result"), so a
  particle hit three times counts once in TP and once in MH, and its two extra detections are
  *duplicate hits*, counted in no column: RR = TP + FP + duplicates + RO.
* **RO.** A rounded centre outside the volume on any axis. Three rules (``outside=``):

  - ``"exclude"`` (default): the volume is the occupancy map as
    given; an outside detection is only RO (neither hit nor FP), so RR = TP + FP + duplicates +
    RO holds exactly.
  - ``"script"`` (:data:`BENCHMARK_SCRIPT`, CLI ``--benchmark-script``): the official SHREC 2020
    evaluation script, number for number. Its volume is the *reconstruction's* 512 slices: the
    occupancy mask (200 slices) is dilated (if ``dilate``) and then zero-padded by
    :data:`SCRIPT_Z_OFFSET` = 156 slices above and below, so the mask sits in slices 156-355
    of the reconstruction (the z + 156 convention); truth centres are read as whole numbers
    (``int``) and moved to ``z + 156``; detections are rounded and, if any rounded z is below
    156 or above 356 (the script's test, 156 + 200), *all* of them are taken to be in the
    mask's 0-199 frame and moved by +156 (the auto-shift, :func:`script_z_shift`); each is then
    clamped into the padded volume, counted RO if that changed it, and looked up where it was
    clamped to. So a detection at mask z −156…−1 or 200…355 lies in the padding: an FP, not
    RO; one beyond is RO *and* FP (or a hit on a particle at a lateral face it was clamped
    onto). A map already padded to 512 slices (empty padding) is cropped back to its 200 slices
    first, so that it is dilated before padding, as in the script (:func:`script_occupancy`).
    The script clamps x and y at 511; here at the map's own size (the same for the benchmark's
    512 x 512 maps).
  - ``"clip"``: clamped into the occupancy map as given and looked up there (RO *and* hit or
    FP): the rule of adaptations of the script that evaluate in the mask's own 200 slices.

  In the paper RO = 0 for every submission, so all three give the paper's numbers.
* **Dilation.** The 2020 script grey-dilates the occupancy map once (6-connected cross, the
  maximum label wins) "to close holes" before the lookup. ``dilate=True`` does the same
  (:func:`scipy.ndimage.grey_dilation` with that footprint, equal to
  ``skimage.morphology.dilation``'s default, tested); the default ``False`` uses the regions as
  given. :data:`BENCHMARK_SCRIPT` holds the script's settings.
* **AD.** Mean over hit particles of the Euclidean distance (voxels) from the *first* detection
  (in list order) that hit it to the particle's listed centre, using the rounded (and, with
  ``clip`` and ``script``, clamped) detection coordinates, as the script does.
* **Recall** = TP / number of particles; **precision** = TP / RR (Table 3 caption: "divided by
  RR"; RO detections are in RR); **miss rate** = FN / particles = 1 - recall; **F1** = harmonic
  mean of the two. Undefined values (precision with RR = 0, AD with TP = 0) are NaN (``None`` in
  JSON); F1 is 0 when TP = 0.
* **Classification.** Every particle of the truth list gets one predicted class: the class of
  the first detection that hit it, or *not found*. The confusion matrix counts (true class,
  predicted class or not found); per-class F1 = 2 TP_c / (2 TP_c + FP_c + FN_c) with FN_c
  including the class's particles not found (the script's pycm matrix, where missed particles
  are predicted as class "0"). ``count_missed_as_fn=False`` restricts it to hit particles.
  Duplicate hits and background detections do not enter the classification.
* **Table 6** group scores are the unweighted means of the per-class F1 in each Table 5 group,
  and the "average classification F1" of Section 5 is the unweighted mean over the 12 classes
  (both checked against the paper's own Tables 4 and 6 in the tests). The **cumulative F1
  curve** (Fig. 10) is the running sum of per-class F1 over the classes in order of molecular
  weight (its last point is 12 x the mean F1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import ndimage

from cryo_companion.papers.shrec2020.classes import SHREC2020_CLASSES, size_group
from cryo_companion.papers.shrec2020.particles import ParticleList

__all__ = [
    "BENCHMARK_SCRIPT",
    "CLASS_ORDER",
    "NOT_FOUND",
    "OUTSIDE_RULES",
    "SCRIPT_MASK_SLICES",
    "SCRIPT_Z_OFFSET",
    "TABLE3_COLUMNS",
    "ClassificationResult",
    "LocalisationResult",
    "ShrecEvaluation",
    "as_occupancy",
    "check_class_mask",
    "check_truth",
    "dilate_occupancy",
    "evaluate",
    "evaluate_classification",
    "evaluate_localisation",
    "script_occupancy",
    "script_z_shift",
]

Outside = Literal["exclude", "clip", "script"]
#: The rules for detections outside the volume (module docstring, "RO").
OUTSIDE_RULES: tuple[str, ...] = ("exclude", "clip", "script")

# The settings of the benchmark's published evaluation script (see the module docstring).
BENCHMARK_SCRIPT: dict[str, Any] = {"outside": "script", "dilate": True}
#: The script's z offset of the mask (200 slices) in the reconstruction (512 slices).
SCRIPT_Z_OFFSET = 156
#: Slices of the benchmark's ground-truth volumes (the auto-shift test is z > 156 + 200).
SCRIPT_MASK_SLICES = 200
# Table 4 / Fig. 12 order: by molecular weight (Table 1).
CLASS_ORDER: tuple[str, ...] = tuple(c.pdb_id for c in SHREC2020_CLASSES)
NOT_FOUND = "not found"
TABLE3_COLUMNS: tuple[str, ...] = ("RR", "TP", "FP", "FN", "MH", "RO", "AD", "Recall",
                                   "Precision", "Miss rate", "F1 Score")
_CROSS = ndimage.generate_binary_structure(3, 1)


def _nan_to_none(v: float) -> float | None:
    return None if isinstance(v, float) and math.isnan(v) else v


@dataclass(frozen=True)
class LocalisationResult:
    """Table 3 counters and scores, plus the per-detection outcome.

    Attributes
    ----------
    RR, TP, FP, FN, MH, RO : int
        Results reported, particles found, background detections, particles not found,
        particles hit more than once, detections outside the volume.
    duplicates : int
        Detections that hit an already-hit particle (RR = TP + FP + duplicates + RO with
        ``outside="exclude"``).
    AD : float
        Mean distance (voxels) from the first detection on a particle to its centre; NaN if TP=0.
    recall, precision, miss_rate, f1 : float
    n_particles : int
        Particles in the truth list.
    outcome : np.ndarray of str, shape (RR,)
        Per detection: ``"TP"`` (first hit of a particle), ``"MH"`` (a further hit of an
        already-hit particle), ``"FP"`` (background) or ``"RO"`` (outside, with
        ``outside="exclude"``).
    particle : np.ndarray, int64, shape (RR,)
        Per detection: the 1-based index of the particle hit, 0 for none.
    outside : np.ndarray, bool, shape (RR,)
        Per detection: rounded centre outside the volume.
    z_shift : int
        Slices added to every detection's z before the lookup: 156 when ``outside="script"``
        applied the script's auto-shift (the submission was in the mask's frame), else 0.
    """

    RR: int
    TP: int
    FP: int
    FN: int
    MH: int
    RO: int
    duplicates: int
    AD: float
    recall: float
    precision: float
    miss_rate: float
    f1: float
    n_particles: int
    outcome: np.ndarray = field(repr=False)
    particle: np.ndarray = field(repr=False)
    outside: np.ndarray = field(repr=False)
    z_shift: int = 0

    def table3_row(self) -> dict[str, float | int | None]:
        """Return the Table 3 columns (:data:`TABLE3_COLUMNS`) of this result."""
        vals = (self.RR, self.TP, self.FP, self.FN, self.MH, self.RO, self.AD, self.recall,
                self.precision, self.miss_rate, self.f1)
        return {k: _nan_to_none(v) for k, v in zip(TABLE3_COLUMNS, vals)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (NaN as None; per-detection arrays as lists)."""
        return {"RR": self.RR, "TP": self.TP, "FP": self.FP, "FN": self.FN, "MH": self.MH,
                "RO": self.RO, "duplicates": self.duplicates, "AD": _nan_to_none(self.AD),
                "recall": self.recall, "precision": _nan_to_none(self.precision),
                "miss_rate": self.miss_rate, "f1": self.f1, "n_particles": self.n_particles,
                "z_shift": self.z_shift, "outcome": self.outcome.tolist(),
                "particle": self.particle.tolist()}


@dataclass(frozen=True)
class ClassificationResult:
    """Per-class scores, Table 6 group means, confusion matrix and cumulative F1 curve.

    Attributes
    ----------
    classes : tuple of str
        Class order of every per-class array: :data:`CLASS_ORDER` (molecular weight), then
        any class of the lists outside Table 1, sorted by name.
    confusion : np.ndarray, int64, shape (K, K + 1)
        ``confusion[i, j]``: particles of true class ``classes[i]`` whose first detection said
        ``classes[j]``; the last column counts particles not found (K = 12 for Table 1 lists).
    f1, precision, recall : dict str -> float
        Per class (NaN where undefined: no true and no predicted particle of that class).
    group_f1 : dict str -> float
        ``small``/``medium``/``large`` (Table 5): mean of the defined per-class F1 in the group.
    mean_f1 : float
        Unweighted mean of the defined per-class F1 of Table 1's classes (the "average
        classification F1", Sec. 5).
    cumulative_f1 : np.ndarray, shape (12,)
        Running sum of per-class F1 in :data:`CLASS_ORDER` (undefined values add 0): Fig. 10.
    count_missed_as_fn : bool
        Whether particles not found count as false negatives of their class (the script: yes).
    """

    classes: tuple[str, ...]
    confusion: np.ndarray
    f1: dict[str, float]
    precision: dict[str, float]
    recall: dict[str, float]
    group_f1: dict[str, float]
    mean_f1: float
    cumulative_f1: np.ndarray
    count_missed_as_fn: bool = True

    def table4_row(self) -> dict[str, float | None]:
        """Per-class F1 in Table 4's column order (molecular weight)."""
        return {c: _nan_to_none(self.f1[c]) for c in self.classes}

    def table6_row(self) -> dict[str, float | None]:
        """Table 6 columns: Small, Medium, Large."""
        return {g.capitalize(): _nan_to_none(self.group_f1[g]) for g in ("small", "medium",
                                                                          "large")}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        def clean(d: dict[str, float]) -> dict[str, float | None]:
            return {k: _nan_to_none(v) for k, v in d.items()}
        return {"classes": list(self.classes),
                "confusion_columns": list(self.classes) + [NOT_FOUND],
                "confusion": self.confusion.tolist(), "f1": clean(self.f1),
                "precision": clean(self.precision), "recall": clean(self.recall),
                "group_f1": clean(self.group_f1), "mean_f1": _nan_to_none(self.mean_f1),
                "cumulative_f1": self.cumulative_f1.tolist(),
                "count_missed_as_fn": self.count_missed_as_fn}


@dataclass(frozen=True)
class ShrecEvaluation:
    """Localisation and classification of one prediction list, with the settings used."""

    localisation: LocalisationResult
    classification: ClassificationResult
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: settings, Table 3 row, Table 4 row, Table 6 row and full results."""
        return {"settings": self.settings,
                "table3": self.localisation.table3_row(),
                "table4": self.classification.table4_row(),
                "table6": self.classification.table6_row(),
                "localisation": self.localisation.to_dict(),
                "classification": self.classification.to_dict()}


def as_occupancy(occupancy: np.ndarray, *, name: str = "occupancy map") -> np.ndarray:
    """Validate an occupancy map and return it as an integer array ``(z, y, x)``.

    Integer arrays are returned as they are (no copy); float arrays (as read from MRC) must hold
    non-negative whole numbers and are converted to int32.

    Raises
    ------
    ValueError
        Not 3-D, negative or non-integral labels.
    """
    occ = np.asarray(occupancy)
    if occ.ndim != 3:
        raise ValueError(f"{name} must be a 3-D (z, y, x) array, got shape {occ.shape}")
    if occ.size == 0:
        raise ValueError(f"{name} is empty (shape {occ.shape})")
    if np.issubdtype(occ.dtype, np.integer):
        if occ.min() < 0:
            raise ValueError(f"{name} has negative labels (min {occ.min()}); labels are 0 "
                             "(background) or the 1-based index of a particle in the truth list")
        return occ
    if not np.issubdtype(occ.dtype, np.floating):
        raise ValueError(f"{name} has dtype {occ.dtype}; expected integer labels")
    if not np.isfinite(occ).all() or occ.min() < 0 or not np.array_equal(occ, np.floor(occ)):
        raise ValueError(f"{name} must hold whole non-negative labels (0 background, i = the "
                         "i-th particle of the truth list)")
    if occ.max() > np.iinfo(np.int32).max:
        raise ValueError(f"{name} labels exceed int32")
    return occ.astype(np.int32)


def check_truth(truth: ParticleList, occupancy: np.ndarray, *, min_centre_fraction: float = 0.5
                ) -> None:
    """Check that a truth list and an occupancy map describe the same tomogram.

    Checks: every truth centre lies inside the map; the largest label does not exceed the number
    of particles; and at least
    ``min_centre_fraction`` have their (rounded) centre inside their own region, which catches
    an x/z swap (lists are x, y, z; maps are z, y, x) or a shifted origin.

    Raises
    ------
    ValueError
        Naming the shapes, the particle and the line.
    """
    shape = occupancy.shape
    n = len(truth)
    max_label = int(occupancy.max())
    if max_label > n:
        raise ValueError(f"occupancy map has label {max_label} but the truth list "
                         f"{truth.source} has only {n} particles (labels are 1-based line indices)")
    if n == 0:
        return
    idx = np.rint(truth.xyz).astype(np.int64)[:, ::-1]  # (z, y, x)
    bad = np.nonzero(((idx < 0) | (idx >= np.asarray(shape))).any(axis=1))[0]
    if bad.size:
        k = int(bad[0])
        lines = truth.lines
        line = f" (line {lines[k]})" if lines is not None and lines[k] else ""
        raise ValueError(
            f"truth particle {k + 1}{line} at (x, y, z) = {tuple(truth.xyz[k])} lies outside the "
            f"occupancy map of shape (z, y, x) = {shape}, i.e. x < {shape[2]}, y < {shape[1]}, "
            f"z < {shape[0]}; {bad.size} of {n} centres are outside: wrong map, or axes swapped?")
    if min_centre_fraction > 0:
        own = occupancy[idx[:, 0], idx[:, 1], idx[:, 2]] == np.arange(1, n + 1)
        frac = float(own.mean())
        if frac < min_centre_fraction:
            raise ValueError(
                f"only {frac:.0%} of the truth centres lie in their own occupancy region "
                f"(map shape (z, y, x) = {shape}): the list's x, y, z may be swapped with "
                "the map's z, y, x, or the list is 1-based (read it with origin=1)")


def check_class_mask(class_mask: np.ndarray, occupancy: np.ndarray, truth: ParticleList
                     ) -> dict[int, str]:
    """Check a class mask against the occupancy map and truth list; return label -> PDB ID.

    The mask's numbering is inferred from the data (no numbering is assumed): each particle's
    voxels must carry one mask label, each label one class, and background must agree.

    Raises
    ------
    ValueError
        Shape mismatch, disagreeing background, or a label used for two classes.
    """
    cm = np.asarray(class_mask)
    if cm.shape != occupancy.shape:
        raise ValueError(f"class mask shape (z, y, x) = {cm.shape} differs from the occupancy "
                         f"map shape {occupancy.shape}")
    cm = as_occupancy(cm, name="class mask")
    fg = occupancy > 0
    if not np.array_equal(fg, cm > 0):
        n_bad = int((fg != (cm > 0)).sum())
        raise ValueError(f"class mask and occupancy map disagree on background at {n_bad} voxels")
    labels, particles = cm[fg], occupancy[fg]
    mapping: dict[int, str] = {}
    pairs = np.unique(np.stack([particles.astype(np.int64), labels.astype(np.int64)]), axis=1)
    for p, lab in pairs.T:
        cls = truth.classes[int(p) - 1]
        if mapping.setdefault(int(lab), cls) != cls:
            raise ValueError(f"class mask label {int(lab)} is used for both {mapping[int(lab)]} "
                             f"and {cls} (particle {int(p)})")
    return mapping


def dilate_occupancy(occupancy: np.ndarray) -> np.ndarray:
    """One grey dilation with the 6-connected cross (maximum label wins), as the 2020 script."""
    return ndimage.grey_dilation(occupancy, footprint=_CROSS)


def script_occupancy(occupancy: np.ndarray, *, z_offset: int = SCRIPT_Z_OFFSET) -> np.ndarray:
    """Return the occupancy mask in its own slices, as the script reads it (before padding).

    Parameters
    ----------
    occupancy : np.ndarray
        `(z, y, x)` labels: the benchmark's mask (200 slices), or a map already padded to
        ``2 z_offset + 200`` slices whose padding is empty (then cropped back).
    z_offset : int
        The mask's offset in the reconstruction (156).

    Returns
    -------
    np.ndarray
        The mask's slices, integer labels.

    Raises
    ------
    ValueError
        A map of the padded height with labels in its padding (the script would pad it again).
    """
    occ = as_occupancy(occupancy)
    if occ.shape[0] == 2 * z_offset + SCRIPT_MASK_SLICES:
        pad = np.concatenate([occ[:z_offset].ravel(), occ[-z_offset:].ravel()])
        if pad.any():
            raise ValueError(
                f"occupancy map has {occ.shape[0]} slices with labels in slices 0-{z_offset - 1}"
                f" or {occ.shape[0] - z_offset}-{occ.shape[0] - 1}: the benchmark script pads "
                f"the mask's {SCRIPT_MASK_SLICES} slices by {z_offset} itself; give the mask "
                "(occupancy_mask.mrc) or a map whose padding is empty")
        occ = occ[z_offset:-z_offset]
    return occ


def script_z_shift(z_rounded: np.ndarray, mask_slices: int = SCRIPT_MASK_SLICES, *,
                   z_offset: int = SCRIPT_Z_OFFSET) -> int:
    """Return the script's auto-shift: slices to add to every detection's rounded z.

    Parameters
    ----------
    z_rounded : np.ndarray
        `(N,)` rounded z of all detections (voxels).
    mask_slices : int
        Slices of the mask (200 in the benchmark).
    z_offset : int
        The mask's offset in the reconstruction (156).

    Returns
    -------
    int
        ``z_offset`` if any z is below ``z_offset`` or above ``z_offset + mask_slices`` (the
        script's "Z<156 or Z>356": the submission is taken to be in the mask's frame), else 0
        (also for an empty submission).
    """
    z = np.asarray(z_rounded)
    if z.size and (z.min() < z_offset or z.max() > z_offset + mask_slices):
        return int(z_offset)
    return 0


def _script_truth_zyx(truth: ParticleList) -> np.ndarray:
    """Truth centres as the script reads them (``int``: whole numbers only), (z, y, x)."""
    xyz = truth.xyz
    bad = np.nonzero((xyz != np.trunc(xyz)).any(axis=1))[0]
    if bad.size:
        k = int(bad[0])
        raise ValueError(
            f"benchmark mode: the script reads truth coordinates with int(), which accepts whole "
            f"numbers only; truth particle {k + 1} of {truth.source} is at (x, y, z) = "
            f"{tuple(float(v) for v in xyz[k])}")
    return truth.zyx


def _as_list(p: ParticleList) -> ParticleList:
    if not isinstance(p, ParticleList):
        raise TypeError(f"expected a ParticleList, got {type(p).__name__} "
                        "(use read_particle_list or particle_list)")
    return p


def evaluate_localisation(pred: ParticleList, truth: ParticleList, occupancy: np.ndarray, *,
                          outside: Outside = "exclude", dilate: bool = False,
                          check: bool = True) -> LocalisationResult:
    """Table 3 localisation metrics of ``pred`` against the ground truth.

    Parameters
    ----------
    pred : ParticleList
        Detections (class, 0-based x, y, z in voxels).
    truth : ParticleList
        The true particle list; particle ``i`` (1-based, list order) is label ``i``.
    occupancy : np.ndarray
        `(z, y, x)` integer labels; 0 background.
    outside : str
        ``"exclude"`` (default), ``"clip"`` or ``"script"`` (the benchmark script): see the
        module docstring.
    dilate : bool
        Grey-dilate the map once before lookup (the benchmark script; with ``"script"`` before
        the padding).
    check : bool
        Validate the truth list against the map (:func:`check_truth`).

    Returns
    -------
    LocalisationResult
    """
    pred, truth = _as_list(pred), _as_list(truth)
    if outside not in OUTSIDE_RULES:
        raise ValueError(f"outside must be one of {', '.join(OUTSIDE_RULES)}; got {outside!r}")
    occ = script_occupancy(occupancy) if outside == "script" else as_occupancy(occupancy)
    if check:
        check_truth(truth, occ)
    truth_zyx = _script_truth_zyx(truth) if outside == "script" else truth.zyx
    if dilate:
        occ = dilate_occupancy(occ)
    # Half to even, like the script's round(float(x)).
    zyx = np.rint(pred.zyx).astype(np.int64).reshape(-1, 3)
    z_shift = 0
    if outside == "script":
        z_shift = script_z_shift(zyx[:, 0], occ.shape[0])
        zyx[:, 0] += z_shift
        occ = np.pad(occ, ((SCRIPT_Z_OFFSET, SCRIPT_Z_OFFSET), (0, 0), (0, 0)))
        truth_zyx = truth_zyx + np.array([SCRIPT_Z_OFFSET, 0, 0])
    n, rr = len(truth), len(pred)
    shape = np.asarray(occ.shape, dtype=np.int64)
    is_out = ((zyx < 0) | (zyx >= shape)).any(axis=1)
    if outside in ("clip", "script"):
        zyx = np.clip(zyx, 0, shape - 1)
        looked = np.ones(rr, dtype=bool)
    else:
        looked = ~is_out
    label = np.zeros(rr, dtype=np.int64)
    sel = zyx[looked]
    label[looked] = occ[sel[:, 0], sel[:, 1], sel[:, 2]]
    hit = label > 0
    counts = np.bincount(label[hit], minlength=n + 1)[1:]
    tp = int((counts >= 1).sum())
    mh = int((counts > 1).sum())
    fp = int((looked & ~hit).sum())
    ro = int(is_out.sum())
    # First detection (list order) on each hit particle: TP outcome and AD.
    hit_idx = np.nonzero(hit)[0]
    first_labels, first_pos = np.unique(label[hit_idx], return_index=True)
    first_det = hit_idx[first_pos]
    outcome = np.full(rr, "FP", dtype="<U2")
    outcome[hit] = "MH"
    outcome[first_det] = "TP"
    if outside == "exclude":
        outcome[is_out] = "RO"
    if tp:
        centres = truth_zyx[first_labels - 1]
        ad = float(np.linalg.norm(zyx[first_det] - centres, axis=1).mean())
    else:
        ad = math.nan
    recall = tp / n if n else math.nan
    precision = tp / rr if rr else math.nan
    f1 = 2 * recall * precision / (recall + precision) if tp else 0.0
    return LocalisationResult(
        RR=rr, TP=tp, FP=fp, FN=n - tp, MH=mh, RO=ro, duplicates=int(hit.sum()) - tp, AD=ad,
        recall=recall, precision=precision, miss_rate=(n - tp) / n if n else math.nan, f1=f1,
        n_particles=n, outcome=outcome, particle=label, outside=is_out, z_shift=z_shift)


def evaluate_classification(pred: ParticleList, truth: ParticleList,
                            localisation: LocalisationResult, *,
                            count_missed_as_fn: bool = True) -> ClassificationResult:
    """Compute the Table 4/6 classification scores from a localisation result.

    Each truth particle's predicted class is that of the first detection that hit it
    (``localisation.outcome == "TP"``); particles never hit are *not found*.

    Parameters
    ----------
    pred : ParticleList
        The detections given to :func:`evaluate_localisation`.
    truth : ParticleList
        The true particle list given to it.
    localisation : LocalisationResult
        Its result.
    count_missed_as_fn : bool
        Count particles not found as false negatives of their true class (the benchmark
        script); False scores only the particles that were hit.

    Returns
    -------
    ClassificationResult
        Per-class and averaged scores with the confusion matrix (a *not found* column last).
    """
    # Table 1's classes, then any others of the lists (a simulated tomogram's membranes, say)
    order = CLASS_ORDER + tuple(sorted((set(truth.classes) | set(pred.classes))
                                       - set(CLASS_ORDER)))
    n, k = len(truth), len(order)
    code = {c: i for i, c in enumerate(order)}
    true_code = np.fromiter((code[c] for c in truth.classes), dtype=np.int64, count=n)
    pred_code_all = np.fromiter((code[c] for c in pred.classes), dtype=np.int64, count=len(pred))
    assigned = np.full(n, k, dtype=np.int64)  # k = not found
    first = np.nonzero(localisation.outcome == "TP")[0]
    assigned[localisation.particle[first] - 1] = pred_code_all[first]
    conf = np.zeros((k, k + 1), dtype=np.int64)
    np.add.at(conf, (true_code, assigned), 1)
    diag = np.diag(conf[:, :k]).astype(np.float64)
    fp = conf[:, :k].sum(axis=0) - diag
    fn = conf.sum(axis=1) - diag if count_missed_as_fn else conf[:, :k].sum(axis=1) - diag
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(2 * diag + fp + fn > 0, 2 * diag / (2 * diag + fp + fn), np.nan)
        prec = np.where(diag + fp > 0, diag / (diag + fp), np.nan)
        rec = np.where(diag + fn > 0, diag / (diag + fn), np.nan)
    f1_d = {c: float(f1[i]) for i, c in enumerate(order)}
    groups: dict[str, float] = {}
    for g in ("small", "medium", "large"):
        vals = [f1_d[c.pdb_id] for c in SHREC2020_CLASSES if size_group(c.mw_kda) == g]
        vals = [v for v in vals if not math.isnan(v)]
        groups[g] = float(np.mean(vals)) if vals else math.nan
    t1 = f1[:len(CLASS_ORDER)]  # the summaries are over Table 1's classes
    defined = t1[~np.isnan(t1)]
    return ClassificationResult(
        classes=order, confusion=conf, f1=f1_d,
        precision={c: float(prec[i]) for i, c in enumerate(order)},
        recall={c: float(rec[i]) for i, c in enumerate(order)},
        group_f1=groups, mean_f1=float(defined.mean()) if defined.size else math.nan,
        cumulative_f1=np.cumsum(np.nan_to_num(t1, nan=0.0)),
        count_missed_as_fn=count_missed_as_fn)


def evaluate(pred: ParticleList, truth: ParticleList, occupancy: np.ndarray, *,
             class_mask: np.ndarray | None = None, outside: Outside = "exclude",
             dilate: bool = False, count_missed_as_fn: bool = True) -> ShrecEvaluation:
    """Run the full SHREC 2020 evaluation: localisation then classification.

    Parameters
    ----------
    pred : ParticleList
        Detections (class, 0-based x, y, z in voxels).
    truth : ParticleList
        The true particle list; particle ``i`` (1-based, list order) is label ``i``.
    occupancy : np.ndarray
        `(z, y, x)` integer labels; 0 background.
    class_mask : np.ndarray, optional
        `(z, y, x)` class mask, checked against the map and list (:func:`check_class_mask`);
        it does not change the scores.
    outside : str
        ``"exclude"`` (default), ``"clip"`` or ``"script"``: see :func:`evaluate_localisation`.
    dilate : bool
        Grey-dilate the map once before lookup (the benchmark script).
    count_missed_as_fn : bool
        See :func:`evaluate_classification`.

    Returns
    -------
    ShrecEvaluation
        The localisation and classification results with the settings used.

    Raises
    ------
    ValueError
        If the truth list or the class mask does not fit the occupancy map.
    """
    occ = script_occupancy(occupancy) if outside == "script" else as_occupancy(occupancy)
    check_truth(truth, occ)
    mask_labels = None
    if class_mask is not None:
        cm = script_occupancy(class_mask) if outside == "script" else class_mask
        mask_labels = {str(k): v for k, v in check_class_mask(cm, occ, truth).items()}
    loc = evaluate_localisation(pred, truth, occ, outside=outside, dilate=dilate, check=False)
    cls = evaluate_classification(pred, truth, loc, count_missed_as_fn=count_missed_as_fn)
    settings: dict[str, Any] = {
        "outside": outside, "dilate": dilate, "count_missed_as_fn": count_missed_as_fn,
        "rounding": "half to even (numpy.rint, as Python round in the script)",
        "coordinates": "x, y, z, 0-based voxel indices; maps indexed [z, y, x]",
        "occupancy_shape_zyx": list(occ.shape), "n_particles": len(truth),
        "class_mask_labels": mask_labels}
    if outside == "script":
        settings["script_frame"] = {
            "z_offset": SCRIPT_Z_OFFSET, "volume_slices": occ.shape[0] + 2 * SCRIPT_Z_OFFSET,
            "mask_slices_in_volume": [SCRIPT_Z_OFFSET, SCRIPT_Z_OFFSET + occ.shape[0] - 1],
            "predictions_z_shift": loc.z_shift,
            "auto_shift_rule": f"if any rounded z < {SCRIPT_Z_OFFSET} or > "
                               f"{SCRIPT_Z_OFFSET + occ.shape[0]}, add {SCRIPT_Z_OFFSET} to all"}
    return ShrecEvaluation(localisation=loc, classification=cls, settings=settings)
