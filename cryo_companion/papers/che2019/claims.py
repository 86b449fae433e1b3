"""Che et al. 2019's cited numbers (Table I), with where ours are in ``results/table1.json``."""
from __future__ import annotations

from cryo_companion.papers.claim import Claim

__all__ = ["CLAIMS"]

_CHE = "Che et al. 2019 (domain randomization)"
_T1_NOTE = ("paper: one run on 1,051 real subtomograms (rat neuron); ours: mean over seeds on the "
            "simulated held-out test domain")

CLAIMS: tuple[Claim, ...] = (
    Claim("che2019/table1/baseline/accuracy", _CHE, "Table I", "w/o domain randomization",
          "classification accuracy", 0.605, "table1", "arms.baseline.accuracy.mean", _T1_NOTE),
    Claim("che2019/table1/baseline/pixel_accuracy", _CHE, "Table I", "w/o domain randomization",
          "pixel accuracy (threshold 0.2)", 0.923, "table1",
          "arms.baseline.pixel_accuracy.mean", _T1_NOTE),
    Claim("che2019/table1/baseline/miou", _CHE, "Table I", "w/o domain randomization",
          "mIoU (threshold 0.2; ours: IoU of the target region, mean over subtomograms)", 0.205,
          "table1", "arms.baseline.miou.mean", _T1_NOTE),
    Claim("che2019/table1/randomized/accuracy", _CHE, "Table I", "w/ domain randomization",
          "classification accuracy", 0.818, "table1", "arms.randomized.accuracy.mean", _T1_NOTE),
    Claim("che2019/table1/randomized/pixel_accuracy", _CHE, "Table I", "w/ domain randomization",
          "pixel accuracy (threshold 0.5)", 0.940, "table1",
          "arms.randomized.pixel_accuracy.mean", _T1_NOTE),
    Claim("che2019/table1/randomized/miou", _CHE, "Table I", "w/ domain randomization",
          "mIoU (threshold 0.5; ours: IoU of the target region, mean over subtomograms)", 0.300,
          "table1", "arms.randomized.miou.mean", _T1_NOTE),
)
