"""DSM-Net's cited numbers (Tables 2 and 3, 3.5), with where ours are in ``results/dsmnet.json``.

Accuracies as fractions; keys follow :mod:`cryo_companion.papers.dsmnet.tables` (``table2.ROW.
METRIC.mean``) and :mod:`cryo_companion.papers.dsmnet.unseen` (``unseen.fsc.resolution...``).
"""
from __future__ import annotations

from cryo_companion.papers.claim import Claim

__all__ = ["CLAIMS"]

_DSM = "Liu et al. (DSM-Net)"
_A = "DSM-Net, Dataset A (SNR 0.06)"
_B = "DSM-Net, Dataset B (SNR 0.01)"
_C = "DSM-Net, Dataset C (experimental; ours: its simulated stand-in)"
_NOTE = ("paper: one run per row; ours: the mean over 3 seeds on our simulated data sets "
         "(the DSM-Net chapter)")
_FSC_NOTE = ("the paper's FSC 'score' 5.0 names neither unit nor threshold; read as nm at FSC "
             "0.5 (ours at 0.143 is in the chapter too)")

CLAIMS: tuple[Claim, ...] = (
    Claim("dsmnet/table2/dsmnet/pixel_accuracy", _DSM, "Table 2", _A, "pixel accuracy", 0.9921,
          "dsmnet", "table2.dsmnet.pixel_accuracy.mean", _NOTE),
    Claim("dsmnet/table2/dsmnet/miou", _DSM, "Table 2", _A, "mIoU", 0.8900, "dsmnet",
          "table2.dsmnet.miou.mean", _NOTE),
    Claim("dsmnet/table2/dsmnet/accuracy", _DSM, "Table 2", _A, "classification accuracy",
          0.9375, "dsmnet", "table2.dsmnet.object_accuracy.mean", _NOTE),
    Claim("dsmnet/table3/B/dsmnet/miou", _DSM, "Table 3", _B, "mIoU", 0.8140, "dsmnet",
          "table3.B.dsmnet.miou.mean", _NOTE),
    Claim("dsmnet/table3/B/dsmnet/accuracy", _DSM, "Table 3", _B, "classification accuracy",
          0.5312, "dsmnet", "table3.B.dsmnet.object_accuracy.mean", _NOTE),
    Claim("dsmnet/table3/C/dsmnet/miou", _DSM, "Table 3", _C, "mIoU", 0.6126, "dsmnet",
          "table3.C.dsmnet.miou.mean", _NOTE),
    Claim("dsmnet/table3/C/dsmnet/accuracy", _DSM, "Table 3", _C, "classification accuracy",
          1.0, "dsmnet", "table3.C.dsmnet.object_accuracy.mean", _NOTE),
    Claim("dsmnet/unseen/fsc", _DSM, "3.5, Fig. 3", "GroEL, never trained on",
          "FSC 'score' of the recovered structure (read as the resolution in nm at FSC 0.5)",
          5.0, "dsmnet", "unseen.fsc.resolution.fsc_0_5.resolution_nm", _FSC_NOTE),
)
