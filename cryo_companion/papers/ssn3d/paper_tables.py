"""Numbers cited from Liu et al. 2018 (SSN3D, ICIP), Tables 2 and 3.

These are the paper's published values, typed from the paper for reference and labelled as
such wherever shown; they are never results of this companion. Percentages as printed; a blank
cell of the paper is ``None``.

Two readings of the tables matter when ours are put beside them:

* Table 3 lists ``1KP8`` where Table 1 lists ``1KPB`` ("PKCI-1-APO"); DSM-Net's Table 1 calls
  the same row "1KPB GroEL" and its section 3.5 "GroEL (PDB ID: 1KP8)". 1KP8 is GroEL (the
  paper's SNR reference), so Table 1's ID is a typo and the class is GroEL
  (:data:`TABLE3_ID_OF_TABLE1`).
* The Xu row of Table 2 cannot be an mIoU as the authors' code computes it (the mean of the
  background and target IoU): at 91.87 % pixel accuracy the background IoU alone is at least
  about 0.9 (:func:`min_two_class_miou`), so that mean
  would be at least about 45 %, not 27.40 %. The value is more likely the target IoU.
"""
from __future__ import annotations

__all__ = ["SOURCE", "TABLE1_IDS", "TABLE2", "TABLE2_COLUMNS", "TABLE3", "TABLE3_COLUMNS",
           "TABLE3_ID_OF_TABLE1", "min_two_class_miou"]

SOURCE = ("Liu, Zeng, Lin, Liang, Freyberg, Xing, Xu 2018, Deep learning based supervised "
          "semantic segmentation of electron cryo-subtomograms, IEEE ICIP")

#: Table 1: the 22 PDB IDs in the paper's order (as printed, with its 1KPB).
TABLE1_IDS = ("1A1S", "1BXR", "1EQR", "1F1B", "1FNT", "1GYT", "1KPB", "1LB3", "1QO1", "1VPX",
              "1VRG", "1W6T", "1YG6", "2AWB", "2BO9", "2BYU", "2GHO", "2GLS", "2H12", "2IDB",
              "2REC", "3DY4")
#: Table 3's name for a Table 1 ID where the two differ.
TABLE3_ID_OF_TABLE1 = {"1KPB": "1KP8"}

TABLE2_COLUMNS = ("method", "pixel_accuracy", "miou", "capacity", "snr")
#: Table 2: (method, pixel accuracy %, mIoU %, capacity or None, SNR) in the paper's order.
TABLE2: tuple[tuple[str, float, float, int | None, float], ...] = (
    ("Xu[20]", 91.87, 27.40, None, 0.5),
    ("SSN3D-v1", 98.28, 70.10, 2_042_158, 0.5),
    ("SSN3D-v2", 99.30, 85.30, 2_042_342, 0.5),
    ("SSN3D-ED", 99.35, 86.40, 895_746, 0.5),
    ("SSN3D-ED", 98.84, 83.04, None, 0.06),
    ("SSN3D-ED", 97.94, 73.78, None, 0.01),
)

TABLE3_COLUMNS = ("pixel_accuracy", "miou")
#: Table 3: held-out PDB ID (as printed) -> (pixel accuracy %, mIoU %), SSN3D-ED at SNR 0.5.
TABLE3: dict[str, tuple[float, float]] = {
    "2AWB": (96.57, 81.47), "1FNT": (98.11, 87.59), "1GYT": (98.51, 86.95),
    "1BXR": (97.45, 77.02), "1QO1": (98.45, 75.23), "1KP8": (98.38, 88.85),
    "3DY4": (98.65, 88.08), "1VPX": (98.99, 88.15), "1EQR": (99.20, 83.29),
    "2GLS": (98.83, 88.12), "2GHO": (99.22, 86.45), "1VRG": (99.23, 86.89),
    "2H12": (99.26, 86.45), "1YG6": (99.22, 85.83), "2REC": (98.97, 72.43),
    "2BO9": (99.60, 86.16), "2BYU": (99.44, 86.72), "2IDB": (99.43, 85.07),
    "1F1B": (99.46, 81.71), "1W6T": (99.67, 85.46), "1A1S": (99.74, 80.66),
    "1LB3": (99.78, 79.61),
}


def min_two_class_miou(pixel_accuracy: float, max_target_fraction: float) -> float:
    """Smallest mean of background and target IoU that a pixel accuracy allows.

    Per subtomogram of ``N`` voxels with ``E`` wrong and ``TP`` true target voxels, the
    background IoU is ``TN / (TN + FP + FN) = 1 − E / (N − TP)``; with the target at most a
    fraction ``f`` of the box, ``TP <= f N``, so it is at least ``1 − (1 − acc) / (1 − f)``
    (the bound is linear in the error, so it holds for the average over subtomograms too),
    and the target IoU is at least 0.

    Parameters
    ----------
    pixel_accuracy : float
        Fraction of voxels right, in [0, 1].
    max_target_fraction : float
        Largest fraction of a box the target can fill, in [0, 1).

    Returns
    -------
    float
        The bound (0 when the accuracy does not constrain it).
    """
    if not 0 <= pixel_accuracy <= 1 or not 0 <= max_target_fraction < 1:
        raise ValueError(f"need pixel_accuracy in [0, 1] and max_target_fraction in [0, 1), "
                         f"got {pixel_accuracy}, {max_target_fraction}")
    return max(0.0, 1 - (1 - pixel_accuracy) / (1 - max_target_fraction)) / 2
