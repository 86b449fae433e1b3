"""Numbers cited from the DSM-Net paper: Tables 1-4, the training recipe and the unseen GroEL.

These are the paper's published values, typed from the paper (its extracted text carries no
author list) for reference and labelled as such wherever shown; they are never results of this
companion. Percentages as printed. A cell "-" (incompatible task) is ``None``; a cell "*" (the
model "fails to converge") is :data:`FAILED`.

Readings the tables support (each tested):

* **The test sets hold 320 subtomograms.** Every object accuracy printed for data sets A and B
  (93.75, 84.37, 82.81, 81.87, 81.56, 76.24, 53.12, 43.75) is ``k / 320`` truncated to two
  decimals (76.25 prints as 76.24, 84.375 as 84.37), and 320 is the smallest test size that
  gives all of them (:func:`consistent_test_sizes`); 320 = ⌊0.1 × 3,205⌋, so "split into
  training, validation, and testing set at the ratio of 0.1 respectively" is read as 10 % of
  the set for testing and 10 % for validation, rounded down, and the rest (2,565) for training.
* **Table 2's two-task rows are Table 4's 1:10 rows.** Table 4's "Cls+Rec 1:10" (81.87) and
  "Cls+Seg 1:10" (99.22 / 88.70 / 84.37) repeat Table 2's Cls+Rec and Cls+Seg cells, so those
  were trained with the loss ratio classification : other = 1 : 10.
* **"5.0" is a resolution, not a correlation.** An FSC lies in [-1, 1]; the paper reports "a
  decent score 5.0" for the recovered GroEL, and Fig. 3 labels it "1KP8 (5.0)". At 13.68 Å per
  voxel the finest resolution a 40³ box can show is 2.74 nm (Nyquist), so 5.0 is most likely the
  resolution in nm (50 Å) at which the FSC between the true and recovered structures falls below
  a threshold; the paper does not say which (0.5 is the usual one for a map against a model).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "FAILED",
    "FSC_SCORE",
    "RECIPE",
    "SOURCE",
    "SPLIT_FRACTIONS",
    "TABLE1_IDS",
    "TABLE2",
    "TABLE3",
    "TABLE4",
    "TEST_SIZE_FROM_ACCURACIES",
    "PaperRow",
    "consistent_test_sizes",
    "paper_row",
]

SOURCE = ("DSM-Net: a multi-task 3D CNN for simultaneous classification, segmentation and "
          "coarse structure recovery of subtomograms (the extracted text carries no author list)")

#: The cell "*": the model fails to converge.
FAILED = "failed to converge"

#: Table 1: the 22 PDB IDs in the paper's order (its 1KPB row is "GroEL", 1KP8 in 3.5).
TABLE1_IDS = ("1A1S", "1BXR", "1EQR", "1F1B", "1FNT", "1GYT", "1KPB", "1LB3", "1QO1", "1VPX",
              "1VRG", "1W6T", "1YG6", "2AWB", "2BO9", "2BYU", "2GHO", "2GLS", "2H12", "2IDB",
              "2REC", "3DY4")

#: 3.2: "Adam ... learning rate to 10−3 with the batch size of 64 and exponential decay rates to
#: β1 = 0.9 and β2 = 0.99 ... no more than 100 epochs ... early stopping ... if the validation
#: dataset did not improve for 15 consecutive epochs"; 3.3: DSM-Net's loss weights 1 : 10 : 1.
RECIPE: dict[str, Any] = {
    "optimizer": "adam", "lr": 1e-3, "betas": (0.9, 0.99), "batch_size": 64, "max_epochs": 100,
    "patience": 15, "loss_weights": {"cls": 1.0, "seg": 10.0, "rec": 1.0}}
#: 3.3: validation and test fractions ("at the ratio of 0.1 respectively").
SPLIT_FRACTIONS = {"validation": 0.1, "test": 0.1}
#: 3.5 and Fig. 3: the FSC "score" of the recovered GroEL (read as a resolution in nm).
FSC_SCORE = 5.0


@dataclass(frozen=True)
class PaperRow:
    """One row of the paper's Tables 2-4.

    Attributes
    ----------
    method : str
        The row's name as printed.
    key : str
        Our key of the row (results and models: ``"dsmnet"``, ``"cls+seg_1:100"``, ...).
    backbone : str or None
        "3D VGG-8" or "3D ResNet-9" (Table 2), None where the table has no such column.
    pixel_accuracy, miou, object_accuracy : float or str or None
        Percent as printed; None for "-", :data:`FAILED` for "*".
    """

    method: str
    key: str
    backbone: str | None
    pixel_accuracy: float | str | None
    miou: float | str | None
    object_accuracy: float | str | None

    def value(self, metric: str) -> float | str | None:
        """Return the cell of ``metric`` (``pixel_accuracy``, ``miou``, ``object_accuracy``)."""
        if metric not in ("pixel_accuracy", "miou", "object_accuracy"):
            raise ValueError(f"unknown metric {metric!r}; valid: pixel_accuracy, miou, "
                             "object_accuracy")
        v: float | str | None = getattr(self, metric)
        return v


_VGG, _RES = "3D VGG-8", "3D ResNet-9"
#: Table 2: data set A (SNR 0.06).
TABLE2: tuple[PaperRow, ...] = (
    PaperRow("DSRF3D-v2", "dsrf3d_v2", _VGG, None, None, FAILED),
    PaperRow("Cls Subnet", "cls", _RES, None, None, 76.24),
    PaperRow("SSN3D-ED", "ssn3d_ed", _VGG, 98.99, 84.68, None),
    PaperRow("Seg Subnet", "seg", _RES, 99.03, 87.07, None),
    PaperRow("Cls+Rec Subnet", "cls+rec", _RES, None, None, 81.87),
    PaperRow("Cls+Seg Subnet", "cls+seg", _RES, 99.22, 88.70, 84.37),
    PaperRow("DSM-Net", "dsmnet", _RES, 99.21, 89.00, 93.75),
)
#: Table 3: data set B (simulated, SNR 0.01) and C (experimental), by data set.
TABLE3: dict[str, tuple[PaperRow, ...]] = {
    "B": (PaperRow("Cls Subnet", "cls", None, None, None, 43.75),
          PaperRow("Seg Subnet", "seg", None, 98.37, 79.70, None),
          PaperRow("DSM-Net", "dsmnet", None, 98.59, 81.40, 53.12)),
    "C": (PaperRow("Cls Subnet", "cls", None, None, None, FAILED),
          PaperRow("Seg Subnet", "seg", None, 96.01, 60.38, None),
          PaperRow("DSM-Net", "dsmnet", None, 95.80, 61.26, 100.00)),
}
#: Table 4: loss ratios on data set A (classification : the other task).
TABLE4: tuple[PaperRow, ...] = (
    PaperRow("Cls+Rec 1:1", "cls+rec_1:1", None, None, None, 81.56),
    PaperRow("Cls+Rec 1:10", "cls+rec_1:10", None, None, None, 81.87),
    PaperRow("Cls+Seg 1:10", "cls+seg_1:10", None, 99.22, 88.70, 84.37),
    PaperRow("Cls+Seg 1:100", "cls+seg_1:100", None, 99.23, 88.63, 82.81),
)


def paper_row(table: str, key: str, dataset: str | None = None) -> PaperRow:
    """Return the paper's row ``key`` of ``table`` (``"table2"``, ``"table3"``, ``"table4"``).

    Parameters
    ----------
    table : str
        ``"table2"``, ``"table3"`` or ``"table4"``.
    key : str
        The row's key (:attr:`PaperRow.key`).
    dataset : str or None
        ``"B"`` or ``"C"`` for Table 3.

    Returns
    -------
    PaperRow
    """
    rows = {"table2": TABLE2, "table4": TABLE4}.get(table)
    if table == "table3":
        if dataset not in TABLE3:
            raise ValueError(f"Table 3 has data sets {', '.join(TABLE3)}; got {dataset!r}")
        rows = TABLE3[dataset]
    if rows is None:
        raise ValueError(f"unknown table {table!r}; valid: table2, table3, table4")
    for r in rows:
        if r.key == key:
            return r
    raise KeyError(f"{table} has no row {key!r}; rows: {', '.join(r.key for r in rows)}")


def _accuracies(tables: Iterable[PaperRow]) -> list[float]:
    return [float(r.object_accuracy) for r in tables if isinstance(r.object_accuracy, float)]


def _printed(k: int, n: int) -> tuple[float, float]:
    """``100 k / n`` rounded to two decimals, and truncated after a float32 accuracy."""
    exact = round(100 * k / n, 2)
    f32 = float(np.float32(k / n))                # Keras computes its metrics in float32
    return exact, math.floor(f32 * 10_000) / 100


def consistent_test_sizes(values_percent: Sequence[float], sizes: Iterable[int]) -> list[int]:
    """Test-set sizes ``n`` for which every value is ``k / n`` as printed to two decimals.

    A value counts as ``k / n`` when, for some integer ``k``, ``100 k / n`` rounded to two
    decimals prints it, or the float32 accuracy ``k / n`` (Keras' metrics are float32)
    truncated to two decimals of a percent does (``244 / 320`` is 0.76249999 in float32 and
    prints as 76.24).

    Parameters
    ----------
    values_percent : sequence of float
        Accuracies in percent as printed (two decimals).
    sizes : iterable of int
        Candidate test-set sizes.

    Returns
    -------
    list of int
        The candidates that explain every value, in the order given.
    """
    def fits(v: float, n: int) -> bool:
        k = round(v * n / 100)
        return any(abs(p - v) < 1e-9 for kk in (k - 1, k, k + 1) if 0 <= kk <= n
                   for p in _printed(kk, n))

    vals = [float(v) for v in values_percent]
    return [int(n) for n in sizes if n >= 1 and all(fits(v, int(n)) for v in vals)]


#: The accuracies of data sets A and B (Tables 2-4), which fix the test set's size.
TEST_SIZE_FROM_ACCURACIES = tuple(_accuracies(TABLE2 + TABLE3["B"] + TABLE4))
