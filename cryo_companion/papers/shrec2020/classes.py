"""The twelve classes of SHREC 2020 (Gubins et al. 2020, Table 1), sorted by molecular weight."""
from __future__ import annotations

from dataclasses import dataclass

from cryo_companion.structures.catalogue import class_set

__all__ = ["ShrecClass", "SHREC2020_CLASSES", "size_group"]


@dataclass(frozen=True)
class ShrecClass:
    """One benchmark class (Gubins et al. 2020, Table 1).

    Attributes
    ----------
    pdb_id : str
        The PDB ID.
    name : str
        The paper's name of the complex.
    mw_kda : float
        Molecular weight in kDa.
    volume_nm3 : float
        Volume in nm³.
    sphericity : float
        Sphericity (1 for a sphere).
    """

    pdb_id: str
    name: str
    mw_kda: float
    volume_nm3: float
    sphericity: float


# Gubins et al. 2020, Table 1 (cited values, not results of ours): volume (nm³) and sphericity;
# the PDB IDs, names and molecular weights are the class set "shrec2020" of the catalogue.
_VOLUME_SPHERICITY: dict[str, tuple[float, float]] = {
    "1s3x": (104.1, 0.877), "3qm1": (139.1, 0.896), "3gl1": (207.0, 0.835),
    "3h84": (375.3, 0.631), "2cg9": (394.2, 0.683), "3d2f": (521.9, 0.630),
    "1u6g": (498.5, 0.623), "3cf3": (1123.0, 0.648), "1bxn": (978.9, 0.776),
    "1qvr": (1255.0, 0.485), "4cr2": (3085.0, 0.520), "4d8q": (2152.0, 0.606),
}

SHREC2020_CLASSES: tuple[ShrecClass, ...] = tuple(
    ShrecClass(str(c.paper_id), c.name, float(c.mw_kda or 0.0),
               *_VOLUME_SPHERICITY[str(c.paper_id)])
    for c in class_set("shrec2020").classes)


def size_group(mw_kda: float) -> str:
    """Return the SHREC 2020 Table 5 size group of a molecular weight.

    Parameters
    ----------
    mw_kda : float
        Molecular weight in kDa.

    Returns
    -------
    str
        ``"small"`` (< 200 kDa), ``"medium"`` (200-600) or ``"large"`` (> 600).
    """
    if mw_kda < 200:
        return "small"
    return "medium" if mw_kda <= 600 else "large"
