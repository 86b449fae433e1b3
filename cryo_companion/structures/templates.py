"""Template banks: every class of a set as density volumes, ready for the simulators.

A :class:`TemplateBank` stacks one volume per structure class (several for procedural classes:
``n_membrane`` random membrane patches) with the class label of each, so a simulator draws a
template, rotates it and images it. Volumes come from
:func:`~cryo_companion.structures.density.load_density` (disk-cached) and
:func:`~cryo_companion.structures.membrane.membrane_patch` (seeded).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cryo_companion._progress import progress as progress_bar
from cryo_companion.structures.catalogue import class_set
from cryo_companion.structures.density import load_density
from cryo_companion.structures.membrane import membrane_patch

__all__ = [
    "PAPER_BOX",
    "PAPER_VOXEL_SIZE_A",
    "TemplateBank",
    "paper_resolution_A",
    "template_bank",
]

#: Voxel sizes the papers use (Å): Che et al. 2019 Sec. III-A 1.368 nm; DSM-Net Sec. 4
#: (tomograms binned to 1.368 nm, also used here for SSN3D's 22 classes); SHREC 2020 1 nm.
PAPER_VOXEL_SIZE_A: dict[str, float] = {"che2019": 13.68, "liu22": 13.68, "shrec2020": 10.0}
#: Subtomogram edges (voxels): 40³ in Che et al. and SSN3D/DSM-Net; SHREC 2020 particles are
#: picked from 512² x 200 tomograms, 40³ at 1 nm holds its largest class too.
PAPER_BOX: dict[str, int] = {"che2019": 40, "liu22": 40, "shrec2020": 40}


def paper_resolution_A(set_name: str, voxel_size_A: float) -> float | None:
    """Return the resolution of the paper's maps.

    Che et al. made PDB2VOL maps "with a resolution and voxel spacing of 1.368 nm" (R = voxel
    size); the other papers state none.

    Parameters
    ----------
    set_name : str
        The class set (``"che2019"``, ``"shrec2020"``, ``"liu22"``).
    voxel_size_A : float
        Voxel edge in Å.

    Returns
    -------
    float or None
        ``voxel_size_A`` for che2019, else None (``load_density``'s default, twice the voxel
        size).
    """
    return float(voxel_size_A) if set_name == "che2019" else None


@dataclass(frozen=True)
class TemplateBank:
    """Template volumes of a class set.

    Attributes
    ----------
    volumes : np.ndarray
        `(K, box, box, box)` float32, z-y-x, Da/Å³, each centred on voxel ``box // 2``.
    labels : np.ndarray
        `(K,)` int64 class index of each volume in the set's order.
    class_names : list of str
        Names of the classes (index = label).
    entries : list of str
        What each volume was made from (structure entry, or ``membrane:SEED:i``).
    set_name : str
        The class set (:func:`~cryo_companion.structures.catalogue.class_set`).
    voxel_size_A : float
        Voxel edge in Å.
    resolution_A : float or None
        The PDB2VOL resolution in Å asked for (None: ``load_density``'s default).
    """

    volumes: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    entries: list[str]
    set_name: str
    voxel_size_A: float
    resolution_A: float | None

    def __len__(self) -> int:
        """Return the number of volumes."""
        return int(self.labels.shape[0])

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    def of_class(self, label: int) -> np.ndarray:
        """Return the volumes of class ``label``.

        Parameters
        ----------
        label : int
            Class index.

        Returns
        -------
        np.ndarray
            `(k, box, box, box)` float32 volumes (k = 0 for an unknown label).
        """
        return self.volumes[self.labels == label]


def template_bank(set_name: str, voxel_size_A: float, box: int, *,
                  resolution_A: float | None = None, n_membrane: int = 16, seed: int = 0,
                  membrane_protein_fraction: float = 0.25, use_cache: bool = True,
                  progress: bool = True) -> TemplateBank:
    """Make every class of ``set_name`` a density volume at ``voxel_size_A`` in a ``box``³.

    Parameters
    ----------
    set_name : str
        ``"che2019"``, ``"shrec2020"`` or ``"liu22"`` (:func:`class_set`).
    voxel_size_A : float
        Voxel edge (Å); the papers': :data:`PAPER_VOXEL_SIZE_A`.
    box : int
        Edge (voxels); 40 in the papers.
    resolution_A : float or None, optional
        PDB2VOL resolution (Å); default: :func:`paper_resolution_A` (the voxel size for
        che2019, as the paper states; otherwise twice the voxel size).
    n_membrane : int, optional
        Number of random patches for a procedural membrane class.
    seed : int, optional
        Seed of the membrane patches (same seed, same bank).
    membrane_protein_fraction : float, optional
        Fraction of the patches with an embedded ``mb_*`` protein.
    use_cache : bool, optional
        Read/write the disk cache of computed volumes (``load_density``).
    progress : bool, optional
        Show a progress bar (on a terminal only).

    Returns
    -------
    TemplateBank
        One volume per structure class, ``n_membrane`` per procedural class, in label order.

    Raises
    ------
    KeyError
        For an unknown set name.
    ValueError
        If ``n_membrane`` is not an integer >= 1 or ``membrane_protein_fraction`` is outside
        [0, 1].
    BoxTooSmallError
        A structure of the set does not fit in ``box`` at ``voxel_size_A`` (the message says
        which and the box it needs).
    """
    cs = class_set(set_name)
    if not (isinstance(n_membrane, (int, np.integer)) and n_membrane >= 1):
        raise ValueError(f"n_membrane {n_membrane!r} must be an integer >= 1")
    if not 0.0 <= membrane_protein_fraction <= 1.0:
        raise ValueError(f"membrane_protein_fraction {membrane_protein_fraction} not in [0, 1]")
    res = paper_resolution_A(cs.name, voxel_size_A) if resolution_A is None else resolution_A
    rng = np.random.default_rng(seed)
    vols: list[np.ndarray] = []
    labels: list[int] = []
    entries: list[str] = []
    for label, c in enumerate(progress_bar(cs.classes, desc=f"templates {cs.name}", show=progress,
                                   leave=False)):
        if c.source == "procedural":
            n_prot = round(membrane_protein_fraction * n_membrane)
            for i in range(n_membrane):
                v = membrane_patch(box, voxel_size_A, rng, protein="random" if i < n_prot else None,
                                   resolution_A=res)
                vols.append(v)
                labels.append(label)
                entries.append(f"membrane:{seed}:{i}")
        else:
            v = load_density(c.entry, voxel_size_A, box, res, source=c.source,
                             use_cache=use_cache)
            vols.append(v)
            labels.append(label)
            entries.append(c.entry)
    return TemplateBank(np.stack(vols).astype(np.float32), np.asarray(labels, dtype=np.int64),
                        cs.class_names, entries, cs.name, float(voxel_size_A), res)
