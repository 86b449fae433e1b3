"""The twelve classes of SHREC 2020 (Gubins et al. 2020, Table 1), sorted by molecular weight."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ShrecClass", "SHREC2020_CLASSES", "size_group"]


@dataclass(frozen=True)
class ShrecClass:
    """One benchmark class: PDB ID, name, molecular weight (kDa), volume (nm³), sphericity."""

    pdb_id: str
    name: str
    mw_kda: float
    volume_nm3: float
    sphericity: float


# Gubins et al. 2020, Table 1 (cited values, not results of ours).
SHREC2020_CLASSES: tuple[ShrecClass, ...] = (
    ShrecClass("1s3x", "Hsp70 ATPase", 42.75, 104.1, 0.877),
    ShrecClass("3qm1", "LJ0536 S106A", 62.62, 139.1, 0.896),
    ShrecClass("3gl1", "Ssb1, Hsp70", 84.61, 207.0, 0.835),
    ShrecClass("3h84", "GET3", 158.08, 375.3, 0.631),
    ShrecClass("2cg9", "Hsp90-Sba1", 188.73, 394.2, 0.683),
    ShrecClass("3d2f", "Sse1p, Hsp70", 236.11, 521.9, 0.630),
    ShrecClass("1u6g", "Cand1-Cul1-Roc1", 238.82, 498.5, 0.623),
    ShrecClass("3cf3", "P97/vcp", 541.74, 1123.0, 0.648),
    ShrecClass("1bxn", "Rubisco", 559.96, 978.9, 0.776),
    ShrecClass("1qvr", "ClpB", 593.36, 1255.0, 0.485),
    ShrecClass("4cr2", "26S proteasome", 1309.28, 3085.0, 0.520),
    ShrecClass("4d8q", "TRiC/CCT", 1952.74, 2152.0, 0.606),
)


def size_group(mw_kda: float) -> str:
    """SHREC 2020 Table 5 size group: ``small`` < 200 kDa, ``medium`` 200-600, ``large`` > 600."""
    if mw_kda < 200:
        return "small"
    return "medium" if mw_kda <= 600 else "large"
