"""SHREC 2020's methods as data, and template matching's selection rules (TM-T, TM-F).

Gubins et al. 2020, Section 3: what each compared method did (the paper's facts, and the
published code where there is one), and this package's settings where the paper is silent.
:data:`RECIPES` holds them as data (networks' training and inference, template matching's
search); the training loop that consumes a recipe is generic (``cryo_companion.learn``).

Labels: a network's output channel ``k`` and a :class:`~cryo_companion.detect.Detections`
label ``k`` (1-12) is the ``k``-th class of :data:`~.metrics.CLASS_ORDER` (Table 1 by molecular
weight: 1s3x = 1 ... 4d8q = 12), channel 0 the background, exactly as in ``class_mask.mrc``.

Template matching (3.7): the top 2,000 candidates of each class's score map, then

* **TM-T** ("thresholded"): the top N = 217 of each class, taken class by class "from the
  biggest class to the smallest"; the list is written in that order, which matters to the
  evaluation: a particle hit by several classes gets the class of the first detection on it.
* **TM-F** ("filtered"): the same walk, but a candidate closer to an already accepted particle
  (of any class) than the sum of their radii is skipped, and the walk goes on down the class's
  list until N are accepted (the paper's TM-F reports RR = 2,604 = 12 x 217, as TM-T).

"Biggest" is read as the heaviest (Table 1 order, reversed); "radius" as the radius of the
sphere of the complex's Table 1 volume (:func:`class_radius_vox`; Table 1's "effective radius"
3V/A is a shape measure, well below the extent of an elongated complex, and is available as
``kind="effective"``).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cryo_companion.detect.detections import Detections
from cryo_companion.papers.shrec2020.classes import SHREC2020_CLASSES
from cryo_companion.papers.shrec2020.metrics import CLASS_ORDER
from cryo_companion.papers.shrec2020.paper_tables import TABLE1_EFFECTIVE_RADIUS_NM
from cryo_companion.papers.shrec2020.particles import ParticleList

__all__ = [
    "BIGGEST_FIRST",
    "DEV_SPLIT",
    "N_CANDIDATES",
    "N_PER_CLASS",
    "RADIUS_KINDS",
    "RECIPES",
    "TEST_MODEL",
    "TRAIN_MODELS",
    "MethodRecipe",
    "class_label",
    "class_radius_vox",
    "select_tm",
    "to_particle_list",
]

#: Sections 2 and 3: models 0-8 carry ground truth for training, model 9 is the test model;
#: YOPO and UMC developed on 0-7 with 8 for validation (UMC's final model trained on all nine).
TRAIN_MODELS: tuple[int, ...] = tuple(range(9))
TEST_MODEL = 9
DEV_SPLIT: dict[str, tuple[int, ...]] = {"train": tuple(range(8)), "validation": (8,)}
#: Section 3.7: the top 2,000 candidates per class; N = 217 ~ 2,600 particles / 12 classes.
N_CANDIDATES = 2000
N_PER_CLASS = 217
#: The classes from the heaviest to the lightest (Table 1 reversed).
BIGGEST_FIRST: tuple[str, ...] = tuple(reversed(CLASS_ORDER))
RADIUS_KINDS = ("equal_volume", "effective")


def class_label(pdb_id: str) -> int:
    """Label (1-12) of a Table 1 class: its 1-based position in :data:`CLASS_ORDER`."""
    try:
        return CLASS_ORDER.index(pdb_id) + 1
    except ValueError:
        raise ValueError(f"unknown class {pdb_id!r}; valid: {', '.join(CLASS_ORDER)}") from None


def class_radius_vox(pdb_id: str, voxel_size_A: float = 10.0, kind: str = "equal_volume"
                     ) -> float:
    """Radius of a Table 1 complex in voxels.

    Parameters
    ----------
    pdb_id : str
        PDB ID of Table 1.
    voxel_size_A : float
        Voxel edge (Å): 10 for the benchmark.
    kind : str
        ``"equal_volume"``: the sphere of the Table 1 volume, ``(3V / 4π)^(1/3)``;
        ``"effective"``: Table 1's effective radius ``3V / A``.

    Returns
    -------
    float
    """
    if kind not in RADIUS_KINDS:
        raise ValueError(f"unknown radius kind {kind!r}; valid: {', '.join(RADIUS_KINDS)}")
    if not voxel_size_A > 0:
        raise ValueError(f"voxel_size_A must be > 0, got {voxel_size_A}")
    c = next((c for c in SHREC2020_CLASSES if c.pdb_id == pdb_id), None)
    if c is None:
        raise ValueError(f"unknown class {pdb_id!r}; valid: {', '.join(CLASS_ORDER)}")
    r_nm = ((3 * c.volume_nm3 / (4 * math.pi)) ** (1 / 3) if kind == "equal_volume"
            else TABLE1_EFFECTIVE_RADIUS_NM[pdb_id])
    return r_nm * 10.0 / voxel_size_A


def to_particle_list(det: Detections, *, z_offset: float = 0.0) -> ParticleList:
    """Turn detections with labels 1-12 into a SHREC particle list (x, y, z; PDB IDs).

    Parameters
    ----------
    det : Detections
        Detections, labels in 1..12 (:func:`class_label`), centres ``(z, y, x)``.
    z_offset : float
        Added to every z (e.g. the first slice of a sub-volume that was searched).

    Returns
    -------
    ParticleList
        In the detections' order, 0-based voxel coordinates, no angles.
    """
    if len(det) and (det.label.min() < 1 or det.label.max() > len(CLASS_ORDER)):
        raise ValueError(f"labels {det.label.min()}..{det.label.max()} are outside 1.."
                         f"{len(CLASS_ORDER)} (the classes of Table 1)")
    xyz = det.zyx[:, ::-1] + np.array([0.0, 0.0, float(z_offset)])
    return ParticleList(classes=tuple(CLASS_ORDER[int(k) - 1] for k in det.label),
                        xyz=np.ascontiguousarray(xyz))


def select_tm(candidates: Mapping[str, Detections], *, filtered: bool,
              n_per_class: int = N_PER_CLASS, order: Sequence[str] = BIGGEST_FIRST,
              radius_vox: Mapping[str, float] | None = None) -> Detections:
    """TM-T (``filtered=False``) or TM-F (``filtered=True``) from per-class candidate lists.

    Parameters
    ----------
    candidates : mapping of str to Detections
        PDB ID -> that class's candidates, best first (e.g. :func:`~cryo_companion.detect.
        find_peaks` of its score map).
    filtered : bool
        Skip candidates closer to an accepted particle than the sum of their radii (TM-F).
    n_per_class : int
        Particles accepted per class (217).
    order : sequence of str
        Classes in the order they are taken (default: heaviest first).
    radius_vox : mapping of str to float or None
        Radius of each class (voxels) for TM-F (default: :func:`class_radius_vox` at 10 Å).

    Returns
    -------
    Detections
        The accepted particles, class by class in ``order``, each class best first; labels
        are :func:`class_label` of the class.
    """
    if n_per_class < 0:
        raise ValueError(f"n_per_class must be >= 0, got {n_per_class}")
    missing = [c for c in order if c not in candidates]
    if missing:
        raise ValueError(f"no candidates for classes {missing}; candidates given for "
                         f"{sorted(candidates)}")
    if not filtered:
        return Detections.concat([candidates[c].take(np.arange(min(n_per_class,
                                                                   len(candidates[c]))))
                                  .relabel(class_label(c)) for c in order])
    radii = {c: (radius_vox[c] if radius_vox is not None else class_radius_vox(c))
             for c in order}
    acc_x: list[np.ndarray] = []
    acc_r: list[float] = []
    parts = []
    for c in order:
        cand, r = candidates[c], float(radii[c])
        keep: list[int] = []
        for i in range(len(cand)):
            if len(keep) == n_per_class:
                break
            if acc_x:
                d = np.sqrt(((np.asarray(acc_x) - cand.zyx[i]) ** 2).sum(1))
                if (d < np.asarray(acc_r) + r).any():
                    continue
            keep.append(i)
            acc_x.append(cand.zyx[i])
            acc_r.append(r)
        parts.append(cand.take(np.asarray(keep, dtype=np.int64)).relabel(class_label(c)))
    return Detections.concat(parts)


@dataclass(frozen=True)
class MethodRecipe:
    """One compared method: what the paper reports and what this package does.

    Attributes
    ----------
    key : str
        Short name (``deepfinder``, ``yopo``, ``umc``, ``tm``).
    row : str
        The method's row in the paper's tables (TM: ``"TM-T"`` and ``"TM-F"`` share one
        recipe).
    section : str
        Section of Gubins et al. 2020.
    network : str or None
        Module of ``cryo_companion.models`` that builds the network (None: no training).
    paper : dict
        The paper's (and published code's) facts, cited.
    training : dict
        This package's training recipe (inputs, loss, optimiser, sampling), JSON-able.
    inference : dict
        This package's inference and post-processing, JSON-able.
    choices : tuple of (str, str)
        Where the paper is silent or ambiguous: (topic, the choice made).
    """

    key: str
    row: str
    section: str
    network: str | None
    paper: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    inference: dict[str, Any] = field(default_factory=dict)
    choices: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"key": self.key, "row": self.row, "section": self.section,
                "network": self.network, "paper": self.paper, "training": self.training,
                "inference": self.inference, "choices": [list(c) for c in self.choices]}


_N_CLASSES = len(CLASS_ORDER) + 1

RECIPES: dict[str, MethodRecipe] = {
    "deepfinder": MethodRecipe(
        key="deepfinder", row="DeepFinder", section="3.2", network="deepfinder",
        paper={"loss": "Dice (Tversky alpha = beta = 0.5)", "optimizer": "Adam lr 1e-4, "
               "beta 0.9 / 0.999", "training": "50 h on an Nvidia M40 (22 h for large and "
               "medium complexes)", "inference": "20 min for a 512 x 512 x 200 tomogram",
               "clustering": "mean shift on the segmentation"},
        training={"input": "reconstruction slices of the ground truth (mask frame)",
                  "target": "class_mask", "n_classes": _N_CLASSES, "patch": 56,
                  "batch_size": 25, "optimizer": {"name": "adam", "lr": 1e-4,
                                                  "betas": [0.9, 0.999]},
                  "loss": {"name": "tversky", "alpha": 0.5, "beta": 0.5},
                  "sampling": {"centres": "a random particle of the training models",
                               "shift_vox": 13, "standardise": "per patch",
                               "augment": "180 deg about the tilt axis (y), p = 0.5"}},
        inference={"standardise": "whole tomogram", "tile": 192, "crop": 25,
                   "bin": 2, "clustering": "mean_shift", "bandwidth_vox_binned": 5,
                   "size_threshold": "per class, from the training models (phase B)"},
        choices=(("patch sampling", ("DeepFinder's code: a random object, a random shift up "
                  "to 13 voxels, per-patch standardisation, a 180 deg turn about y")),
                 ("inference tiles", ("the code's 192^3 tiles with 25 voxels cropped at each "
                  "face (pcrop); cores abut (the code overlaps them by 5 voxels)")),
                 ("binned coordinates", ("binned voxel i maps back to 2 i + 0.5 (the code: "
                  "2 i)")))),
    "yopo": MethodRecipe(
        key="yopo", row="YOPO", section="3.4", network="yopo",
        paper={"input": "24^3 subtomograms at the particle locations + 20,000 background "
               "subtomograms", "split": "models 0-7 train, 8 validation",
               "training": "8 h on one Titan X", "inference": "about 40 min",
               "detection": "probability > 0.99, detections more than 14 voxels apart"},
        training={"input": "reconstruction slices of the ground truth (mask frame)",
                  "target": "class of the box's centre particle (0: background)",
                  "n_classes": _N_CLASSES, "box": 24, "n_background": 20000,
                  "loss": {"name": "cross_entropy"},
                  "optimizer": {"name": "adam", "lr": 1e-3},
                  "sampling": {"particles": "every particle of the training models",
                               "background": "uniform over voxels of occupancy 0",
                               "standardise": "per box"}},
        inference={"standardise": "per box equivalent: whole tomogram", "dense": True,
                   "tile": 88, "threshold": 0.99, "min_distance_vox": 14},
        choices=(("widths", "64, 80, ..., 208 (steps of 16)"),
                 ("loss and optimiser", ("cross-entropy, Adam lr 1e-3 (the paper does not "
                  "say)")),
                 ("background boxes", "centred on background voxels (occupancy 0)"),
                 ("standardisation", ("the tomogram is standardised once; training boxes "
                  "each")))),
    "umc": MethodRecipe(
        key="umc", row="UMC", section="3.6", network="umc",
        paper={"architecture": "U-Net cascade, depth 5, 16-256 filters, 8.82 M parameters",
               "loss": "MSE to the grand model + Tversky (alpha 0.7, beta 0.3) on the class "
               "mask", "patches": "64^3 with 75 % overlap, random horizontal flips",
               "optimizer": "Adam lr 1e-3, batches of 24, 25 epochs",
               "training": "16 h on a Tesla P100", "inference": "40 min (Table 7: 42 m)",
               "post-processing": "connected components, < 10 voxels or centroids < 5 voxels "
               "from another dropped, the most common class"},
        training={"input": "reconstruction slices of the ground truth (mask frame)",
                  "targets": ["grandmodel_noisefree (standardised)", "class_mask"],
                  "n_classes": _N_CLASSES, "patch": 64, "stride": 16, "batch_size": 24,
                  "epochs": 25, "optimizer": {"name": "adam", "lr": 1e-3},
                  "loss": {"name": "mse + tversky", "alpha": 0.7, "beta": 0.3},
                  "augment": "flips along x and y, p = 0.5 each"},
        inference={"standardise": "whole tomogram", "tile": 128, "crop": 16,
                   "postprocess": "connected_components", "min_size": 10,
                   "min_separation_vox": 5},
        choices=(("denoising target", ("the noise-free grand model, standardised (the paper: "
                  "the grand model)")),
                 ("close components", ("of two components with centroids < 5 voxels apart the "
                  "larger is kept (the paper's words drop both)")),
                 ("up-sampling", ("nearest, no parameters (the only reading that gives "
                  "8.82 M)")))),
    "tm": MethodRecipe(
        key="tm", row="TM-T / TM-F", section="3.7", network=None,
        paper={"templates": "the twelve density maps, CTF at 3 um defocus, zero beyond the "
               "first CTF zero", "mask": "spherical, Gaussian-smoothed edge, from the "
               "thresholded density", "candidates": N_CANDIDATES, "n_per_class": N_PER_CLASS,
               "time": "2 h 17 min per class on 16 CPU cores, 6 min 12 s on a GTX 1080 Ti"},
        training={},
        inference={"defocus_um": -3.0, "cs_mm": 2.7, "voltage_kv": 300.0,
                   "amplitude_contrast": 0.08, "angular_step": "Crowther: (1 / k_first_zero) "
                   "/ diameter, capped by max_rotations", "mask_sigma_vox": 1.0,
                   "candidates": N_CANDIDATES, "n_per_class": N_PER_CLASS,
                   "order": "heaviest first", "radius": "equal_volume"},
        choices=(("angular step", ("the Crowther step of each complex at the resolution of "
                  "the CTF's first zero (the paper does not say)")),
                 ("rotation set", ("super-Fibonacci spiral of ceil(8 pi^2 / step^3) "
                  "rotations")),
                 ("candidate exclusion", "each peak blanks a ball of the class's radius"),
                 ("biggest class", "the heaviest (Table 1)"),
                 ("radii (TM-F)", "the sphere of the Table 1 volume"))),
}
