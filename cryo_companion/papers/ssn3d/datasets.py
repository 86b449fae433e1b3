"""SSN3D's data sets A, B and C (Liu et al. 2018, 4.1) as crowded-generator configurations.

The paper: 22 complexes (Table 1); tomograms of 600 x 600 x 300 voxels, tilt range ±60°, each
with 10,000 randomly distributed and oriented complexes; 40³ subvolumes centred on the true
positions, those crossing the boundary removed: 3,380 subtomograms of 22 classes per data set;
SNR estimated from aligned GroEL subtomograms (Frank & Al-Ali): 0.5 (A), 0.06 (B), 0.01 (C).
The voxel size (13.68 Å) is that of the companion's other 40³ sets and of DSM-Net's data.

Choices (the paper leaves them open):

* **GroEL stand-in: TRiC/CCT, entry 4v94.** GroEL (1KP8) is not in the offline mirror; TRiC is
  the other chaperonin there, a double-ring barrel like GroEL (16 subunits, ~1 MDa, ~16 nm,
  against GroEL's 14 subunits, ~0.8 MDa, ~14 nm). It is the stand-in of the catalogue's
  ``liu22`` row "1KPB GroEL": SSN3D's Table 1 prints that row as "1KPB PKCI-1-APO", but its
  Table 3 prints 1KP8 in its place, DSM-Net's Table 1 names it "1KPB GroEL" and its 3.5 "GroEL
  (PDB ID: 1KP8)"; 1KPB is a typo. The SNR is measured on the boxes of the class whose
  structure is 4v94.
* **One scene for A, B and C.** The three data sets have the same count (3,380), so they are
  read as one packed density imaged at three doses: the same scene seed, their own noise seeds.
* **3,380 subtomograms drawn from the extractable boxes.** 10,000 complexes placed uniformly in
  a 600 x 600 x 300 tomogram leave about 79 % with whole 40³ boxes (:func:`count_analysis`), not
  the paper's 33.8 % (DSM-Net: 32.1 % from the same recipe). The paper's fraction implies that
  most complexes were not inside the tomogram: the Xu lab's packing (Pei et al. 2016, AITom)
  packs the complexes in a cubic container (``box`` x = y = z) and starts them in a larger
  region, reporting how many end up inside; complexes packed in a 600³ cube of which the
  tomogram holds 300 voxels of height would give 38 %. We keep the stated crowding (10,000
  complexes in the 600 x 600 x 300 tomogram) and draw 3,380 of the extractable boxes at
  random, so the data set has the paper's size and split (3,042 / 338).
* **Acquisition** (not given by the paper): 300 kV, Cs 2.7 mm, defocus −6 µm, amplitude
  contrast 0.07, 2° tilt step (61 tilts), dose-symmetric order with radiation damage; the ice
  fills the tomogram (410 nm); the dose is calibrated per data set (:func:`ensure_dataset`).
* **Ground truth: the centre complex's density above 0.2 of its maximum** (``mask_level``),
  less the envelopes of its neighbours. The paper does not say how its masks were made, but
  its Table 2 implies targets of about 2 % of the box (ED: 0.65 % of the voxels wrong with a
  target IoU near 0.73 needs about 1.8 % true-positive voxels), four times the molecular
  envelope (the volume at protein density: 0.5 % of a 40³ box for our stand-ins). 0.2 of the
  maximum is the contour the Xu lab's AITom packing code takes as a complex's extent
  (``find_bounding_sphere(mrc, 0.2)``); it gives masks of about 1.2 % of the box.
* **The pilot** of the dose calibration is 240 x 240 voxels of the same height and crowding
  (about 45 GroEL-stand-in boxes): the SNR of single boxes spreads over a factor of three,
  with their neighbours' share of the signal.
"""
from __future__ import annotations

import os
from typing import Any

import torch

from cryo_companion.simulate.crowded import (
    CrowdedConfig,
    CrowdedSubtomograms,
    DoseCalibration,
    ensure_calibrated_crowded,
    expected_extractable_fraction,
)

__all__ = ["DATASETS", "DSMNET_SUBTOMOGRAMS", "GROEL_STAND_IN", "MASK_LEVEL", "PAPER_COMPLEXES",
           "PAPER_SUBTOMOGRAMS", "SCALES", "TARGET_SNR", "count_analysis", "dataset_config",
           "ensure_dataset"]

#: Liu et al. 2018, 4.1: the SNR of each data set.
TARGET_SNR: dict[str, float] = {"A": 0.5, "B": 0.06, "C": 0.01}
DATASETS = tuple(TARGET_SNR)
#: The structure entry the SNR is measured on (see the module docstring).
GROEL_STAND_IN = "4v94"
#: Liu et al. 2018, 4.1: complexes per tomogram and subtomograms per data set.
PAPER_COMPLEXES = 10_000
PAPER_SUBTOMOGRAMS = 3_380
#: DSM-Net, 3.1: subtomograms per data set from the same recipe.
DSMNET_SUBTOMOGRAMS = 3_205
#: The scene seed shared by A, B and C, and each data set's imaging seed.
SCENE_SEED = 2018
NOISE_SEEDS = {"A": 1, "B": 2, "C": 3}
#: First doses tried by the calibration (e/Å²); the calibrated dose replaces them.
FIRST_DOSE_E_A2 = {"A": 300.0, "B": 40.0, "C": 7.0}

#: Ground truth: the target's density above this fraction of its maximum (module docstring).
MASK_LEVEL = 0.2
#: Sizes per scale. Smoke: one small tomogram with about a hundred complexes and 13 tilts (a
#: pipeline check on the CPU, about ten seconds a data set); paper: the paper's tomogram.
SCALES: dict[str, dict[str, Any]] = {
    "paper": {"tomogram_shape": (300, 600, 600), "n_complexes": PAPER_COMPLEXES,
              "tilt_step_deg": 2.0, "n_subtomograms": PAPER_SUBTOMOGRAMS, "pilot_xy": 240},
    "smoke": {"tomogram_shape": (80, 128, 128), "n_complexes": 100, "tilt_step_deg": 10.0,
              "n_subtomograms": None, "pilot_xy": 128},
}


def _check(name: str, scale: str) -> None:
    if name not in TARGET_SNR:
        raise ValueError(f"unknown SSN3D data set {name!r}; valid: {', '.join(DATASETS)}")
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; valid: {', '.join(SCALES)}")


def dataset_config(name: str, scale: str = "paper", dose_e_A2: float | None = None
                   ) -> CrowdedConfig:
    """Return the generator configuration of data set ``name`` at ``scale``.

    Parameters
    ----------
    name : str
        ``"A"``, ``"B"`` or ``"C"``.
    scale : str
        ``"paper"`` or ``"smoke"``.
    dose_e_A2 : float or None
        Total dose (e/Å²); None: the first dose the calibration tries.

    Returns
    -------
    CrowdedConfig
    """
    _check(name, scale)
    sc = SCALES[scale]
    return CrowdedConfig(
        class_set="liu22", tomogram_shape=sc["tomogram_shape"], n_complexes=sc["n_complexes"],
        voxel_size_A=13.68, box=40, tilt_min_deg=-60.0, tilt_max_deg=60.0,
        tilt_step_deg=sc["tilt_step_deg"],
        total_dose_e_A2=FIRST_DOSE_E_A2[name] if dose_e_A2 is None else float(dose_e_A2),
        snr_reference=GROEL_STAND_IN, n_subtomograms=sc["n_subtomograms"],
        mask_level=MASK_LEVEL, seed=SCENE_SEED,
        noise_seed=NOISE_SEEDS[name])


def ensure_dataset(name: str, scale: str = "paper", folder: str | os.PathLike | None = None,
                   device: torch.device | str | None = None, *, progress: bool = True
                   ) -> tuple[CrowdedSubtomograms, DoseCalibration]:
    """Calibrate the dose of data set ``name`` (once, cached), then make or read the data set.

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
        The data set (its ``meta["calibration"]`` holds the calibration) and the calibration.
    """
    _check(name, scale)
    return ensure_calibrated_crowded(
        dataset_config(name, scale), TARGET_SNR[name], folder,
        pilot_xy=SCALES[scale]["pilot_xy"], device=device, progress=progress,
        extra_meta={"dataset": name, "target_snr": TARGET_SNR[name], "scale": scale})


def count_analysis(typical_radius_vox: float = 6.0) -> dict[str, float]:
    """Explain why uniform placement does not give the paper's 3,380 boxes of 10,000 complexes.

    Parameters
    ----------
    typical_radius_vox : float
        Half-height of a typical complex's envelope (voxels; the ``liu22`` stand-ins average
        about 6 at 13.68 Å), which keeps centres that far from the top and bottom of the ice.

    Returns
    -------
    dict
        ``paper_fraction`` (3,380 / 10,000), ``dsmnet_fraction`` (3,205 / 10,000),
        ``uniform_fraction`` and ``uniform_boxes`` (centres uniform in 600 x 600 x 300),
        ``cube_fraction`` and ``cube_boxes`` (centres uniform in a 600³ cube, the tomogram
        holding 300 voxels of its height).
    """
    cfg = dataset_config("A", "paper")
    uniform = expected_extractable_fraction(cfg, typical_radius_vox)
    Z, Y, X = cfg.tomogram_shape
    b = cfg.box
    cube = (X - b + 1) / X * (Y - b + 1) / Y * (Z - b + 1) / X
    return {"paper_fraction": PAPER_SUBTOMOGRAMS / PAPER_COMPLEXES,
            "dsmnet_fraction": DSMNET_SUBTOMOGRAMS / PAPER_COMPLEXES,
            "uniform_fraction": uniform, "uniform_boxes": uniform * PAPER_COMPLEXES,
            "cube_fraction": cube, "cube_boxes": cube * PAPER_COMPLEXES}
