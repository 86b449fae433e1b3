"""SSN3D's cited numbers (Table 2), with where ours will be in ``results/ssn3d.json``."""
from __future__ import annotations

from cryo_companion.papers.claim import NOT_YET, Claim

__all__ = ["CLAIMS"]

_SSN3D = "Liu et al. 2018 (SSN3D, ICIP)"

# Liu et al. 2018, Table 2 (SNR 0.5; pixel accuracy and mIoU in %, here as fractions)
CLAIMS: tuple[Claim, ...] = (
    Claim("ssn3d/table2/ssn3d_ed/pixel_accuracy", _SSN3D, "Table 2", "SSN3D-ED, SNR 0.5",
          "pixel accuracy", 0.9935, "ssn3d", "ssn3d_ed.snr0.5.pixel_accuracy.mean", NOT_YET),
    Claim("ssn3d/table2/ssn3d_ed/miou", _SSN3D, "Table 2", "SSN3D-ED, SNR 0.5", "mIoU", 0.864,
          "ssn3d", "ssn3d_ed.snr0.5.miou.mean", NOT_YET),
)
