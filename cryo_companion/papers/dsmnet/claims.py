"""DSM-Net's cited numbers (Table 2), with where ours will be in ``results/dsmnet.json``."""
from __future__ import annotations

from cryo_companion.papers.claim import NOT_YET, Claim

__all__ = ["CLAIMS"]

_DSM = "Liu et al. (DSM-Net)"

# DSM-Net, Table 2 (Dataset A, SNR 0.06)
CLAIMS: tuple[Claim, ...] = (
    Claim("dsmnet/table2/dsmnet/miou", _DSM, "Table 2", "DSM-Net, Dataset A (SNR 0.06)", "mIoU",
          0.89, "dsmnet", "dsmnet.dataset_a.miou.mean", NOT_YET),
    Claim("dsmnet/table2/dsmnet/accuracy", _DSM, "Table 2", "DSM-Net, Dataset A (SNR 0.06)",
          "classification accuracy", 0.9375, "dsmnet", "dsmnet.dataset_a.accuracy.mean",
          NOT_YET),
)
