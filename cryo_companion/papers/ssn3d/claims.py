"""SSN3D's cited numbers (Table 2), with where ours are in ``results/ssn3d.json``.

Ours are the means over seeds of :func:`cryo_companion.papers.ssn3d.tables.table2`, which the
chapter saves under ``"table2"`` (pixel accuracy and mIoU as fractions).
"""
from __future__ import annotations

from cryo_companion.papers.claim import Claim
from cryo_companion.papers.ssn3d.paper_tables import TABLE2
from cryo_companion.papers.ssn3d.tables import ROWS

__all__ = ["CLAIMS"]

_SSN3D = "Liu et al. 2018 (SSN3D, ICIP)"
_NOTE = ("paper: one run per row on its simulated data; ours: mean over seeds on our "
         "simulated data sets (chapter SSN3D)")
_XU_NOTE = ("the paper's Xu mIoU (27.40 %) cannot be the two-class mIoU of its code at 91.87 % "
            "pixel accuracy; ours here is the target IoU, the two-class mIoU is in the chapter")


def _claims() -> tuple[Claim, ...]:
    out = []
    paper = {(m, snr): (acc, miou) for m, acc, miou, _, snr in TABLE2}
    for key, method, variant, _, snr in ROWS:
        acc, miou = paper[(method, snr)]
        row = f"{method}, SNR {snr:g}"
        out.append(Claim(f"ssn3d/table2/{key}/pixel_accuracy", _SSN3D, "Table 2", row,
                         "pixel accuracy", round(acc / 100, 6), "ssn3d",
                         f"table2.{key}.pixel_accuracy.mean", _NOTE))
        metric, our_key, note = (("mIoU (ours: target IoU)", "target_iou", _XU_NOTE)
                                 if variant is None else ("mIoU", "miou", _NOTE))
        out.append(Claim(f"ssn3d/table2/{key}/miou", _SSN3D, "Table 2", row, metric,
                         round(miou / 100, 6), "ssn3d", f"table2.{key}.{our_key}.mean", note))
    return tuple(out)


#: Liu et al. 2018, Table 2: every row's pixel accuracy and mIoU (as fractions).
CLAIMS: tuple[Claim, ...] = _claims()
