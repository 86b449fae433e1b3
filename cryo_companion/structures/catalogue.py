"""Named class sets of the chapters, with the entry that stands for each paper class.

- ``"che2019"``: the four classes of the domain randomization paper (Che et al. 2019, Sec. III-A
  and IV: ribosome, membrane, TRiC, single-capped proteasome), in the label order 0 ribosome,
  1 membrane, 2 TRiC, 3 proteasome.
- ``"shrec2020"``: SHREC 2020's twelve (Gubins et al. 2020, Table 1: IDs, names and molecular
  weights; the table's other columns are in :mod:`cryo_companion.papers.shrec2020.classes`),
  sorted by molecular weight.
- ``"liu22"``: the 22 complexes of SSN3D (Liu et al. 2018, Table 1) and DSM-Net, in the paper's
  order. None of them is in the offline mirror ``shared/structures``; each is replaced by a
  distinct available complex, and the paper's ID, the substitute and the reason are kept.

Every class keeps the paper's ID (``paper_id``) next to the entry we use (``entry``), and a
``substitute_reason`` where they differ; the structures chapter prints these tables.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["CLASS_SETS", "ClassEntry", "ClassSet", "class_set", "substitution_table"]

SOURCES = ("atoms", "map", "procedural")


@dataclass(frozen=True)
class ClassEntry:
    """One class of a set.

    Attributes
    ----------
    name : str
        Human-readable class name (the paper's).
    paper_id : str or None
        The PDB ID the paper used (None for procedural classes such as membrane).
    entry : str
        What :func:`~cryo_companion.structures.density.load_density` loads: an ID of
        ``shared/structures`` (``"4v94"``, ``"mb_5gjv"``) or ``"membrane"`` (procedural).
    source : str
        ``"atoms"`` (PDB2VOL from the atomic model), ``"map"`` (the 10 Å map resampled) or
        ``"procedural"`` (:func:`~cryo_companion.structures.membrane.membrane_patch`).
    substitute_reason : str or None, optional
        Why ``entry`` differs from ``paper_id`` (None when it does not).
    mw_kda : float or None, optional
        Molecular weight (kDa) as cited by the paper (SHREC 2020 Table 1), else None.

    Raises
    ------
    ValueError
        On construction, for a ``source`` that is not one of :data:`SOURCES`.
    """

    name: str
    paper_id: str | None
    entry: str
    source: str
    substitute_reason: str | None = None
    mw_kda: float | None = None

    def __post_init__(self) -> None:
        """Check ``source``."""
        if self.source not in SOURCES:
            raise ValueError(f"source {self.source!r} of {self.name!r}; valid: {SOURCES}")

    @property
    def substituted(self) -> bool:
        """True when the entry is a stand-in for the paper's structure."""
        return self.substitute_reason is not None


@dataclass(frozen=True)
class ClassSet:
    """A named, ordered list of classes (label ``i`` is ``classes[i]``).

    Attributes
    ----------
    name : str
        The set's name (a key of :data:`CLASS_SETS`).
    classes : list of ClassEntry
        The classes in label order.
    description : str
        One line on where the set comes from.
    """

    name: str
    classes: list[ClassEntry] = field(default_factory=list)
    description: str = ""

    @property
    def class_names(self) -> list[str]:
        """Names in label order."""
        return [c.name for c in self.classes]

    def __len__(self) -> int:
        """Return the number of classes."""
        return len(self.classes)

    def __iter__(self) -> Iterator[ClassEntry]:
        """Iterate over the classes in label order."""
        return iter(self.classes)

    def index(self, name: str) -> int:
        """Return the label of the class called ``name`` (or whose entry / paper ID it is).

        Parameters
        ----------
        name : str
            A class name, a structure entry or a paper ID.

        Returns
        -------
        int
            The label of the first class that matches.

        Raises
        ------
        KeyError
            If no class matches (the message lists the classes).
        """
        for i, c in enumerate(self.classes):
            if name in (c.name, c.entry, c.paper_id):
                return i
        raise KeyError(f"{name!r} is not a class of {self.name!r}; classes: {self.class_names}")


# --- Che et al. 2019 -------------------------------------------------------------------
_CHE = ClassSet("che2019", [
    ClassEntry("ribosome", None, "4v7r", "map",
               "the paper simulates an 80S ribosome (its real data: rat neurons, no PDB ID given); "
               "offline stand-in: the yeast 80S ribosome map 4v7r"),
    ClassEntry("membrane", None, "membrane", "procedural",
               "no structure: procedural lipid-bilayer patches (two leaflets ~4 nm apart, random "
               "curvature, orientation and offset), see membrane_patch"),
    ClassEntry("TRiC", None, "4v94", "map",
               "the paper gives no PDB ID; yeast TRiC/CCT 4v94 (SHREC 2020 used 4d8q, also TRiC)",
               None),
    ClassEntry("proteasome", None, "4cr2", "map",
               "single-capped 26S proteasome in the paper (no PDB ID given); yeast 26S proteasome "
               "4cr2", 1309.28),
], "Che et al. 2019: 4 classes, 40³ voxels at 13.68 Å (label order 0 ribosome, 1 membrane, "
   "2 TRiC, 3 proteasome)")

# --- SHREC 2020 ------------------------------------------------------------------------
_SHREC_ENTRY = {"4d8q": ("4v94", ("4d8q is not in the offline mirror; 4v94 is the same complex "
                                 "(yeast TRiC/CCT)"))}
_SHREC_ATOMS = {"1s3x", "3qm1", "3gl1", "3h84", "2cg9", "3d2f", "1u6g", "3cf3", "1bxn", "1qvr"}
# Gubins et al. 2020, Table 1 (cited): PDB ID, name, molecular weight (kDa), by weight.
_SHREC_TABLE1 = (
    ("1s3x", "Hsp70 ATPase", 42.75), ("3qm1", "LJ0536 S106A", 62.62),
    ("3gl1", "Ssb1, Hsp70", 84.61), ("3h84", "GET3", 158.08), ("2cg9", "Hsp90-Sba1", 188.73),
    ("3d2f", "Sse1p, Hsp70", 236.11), ("1u6g", "Cand1-Cul1-Roc1", 238.82),
    ("3cf3", "P97/vcp", 541.74), ("1bxn", "Rubisco", 559.96), ("1qvr", "ClpB", 593.36),
    ("4cr2", "26S proteasome", 1309.28), ("4d8q", "TRiC/CCT", 1952.74),
)
_SHREC = ClassSet("shrec2020", [
    ClassEntry(name, pdb_id, _SHREC_ENTRY.get(pdb_id, (pdb_id, None))[0],
               "atoms" if pdb_id in _SHREC_ATOMS else "map",
               _SHREC_ENTRY.get(pdb_id, (pdb_id, None))[1], mw)
    for pdb_id, name, mw in _SHREC_TABLE1
], "SHREC 2020 (Gubins et al. 2020, Table 1): 12 classes at 10 Å per voxel, by molecular weight")

# --- SSN3D / DSM-Net 22 ----------------------------------------------------------------
# Liu et al. 2018 Table 1 (and DSM-Net's list): paper ID, name. Substitutes: functional
# analogues first (proteasomes, ribosome, Clp, rotary/hexameric ATPases), then the remaining
# available complexes, distinct from each other, assigned so that small paper complexes get
# small stand-ins and large ones large stand-ins.
_GENERIC = ("not in the offline mirror; stand-in: a distinct available complex of broadly "
            "similar size rank, so the set keeps 22 different shapes from small to large")
_LIU = [
    ("1A1S", "Ornithine carbamoyltransferase", "4cr2", "map", _GENERIC),
    ("1BXR", "Carbamoyl phosphate synthetase", "8tux", "map", _GENERIC),
    ("1EQR", "Aspartyl-tRNA synthetase", "3h84", "atoms", _GENERIC),
    ("1F1B", "E. coli aspartate transcarbamoylase P268A", "1bxn", "atoms",
     "not in the offline mirror; stand-in: Rubisco, another symmetric multi-subunit enzyme"),
    ("1FNT", "Yeast 20S proteasome", "6utj", "map",
     ("not in the offline mirror; stand-in: archaeal singly-capped proteasome (20S core with "
     "a cap, as 1FNT is the 20S with an activator)")),
    ("1GYT", "E. coli aminopeptidase A", "1f4a", "map", _GENERIC),
    ("1KPB", "GroEL", "4v94", "map",
     ("GroEL (1KP8): SSN3D's Table 1 prints 1KPB \"PKCI-1-APO\", but its Table 3 prints 1KP8 in "
      "that row and DSM-Net names the row \"1KPB GroEL\" (\"GroEL (PDB ID: 1KP8)\" in its 3.5); "
      "not in the offline mirror; stand-in: TRiC/CCT, the other double-ring chaperonin cage")),
    ("1LB3", "Mouse L chain ferritin", "6pxm", "map",
     ("not in the offline mirror; stand-in: a hollow spherical shell of about 14 nm (ferritin: "
      "a 12 nm cage)")),
    ("1QO1", "Rotary motor in ATP synthase", "3cf3", "atoms",
     "not in the offline mirror; stand-in: p97/VCP, a hexameric ring ATPase"),
    ("1VPX", "Transaldolase", "3d2f", "atoms", _GENERIC),
    ("1VRG", "Propionyl-CoA carboxylase", "3qm1", "atoms",
     ("not in the offline mirror; stand-in: the last available distinct complex, much smaller "
      "than 1VRG (the closer-sized ones stand in for complexes they resemble more)")),
    ("1W6T", "Octameric enolase", "4v4r_30S", "atoms", _GENERIC),
    ("1YG6", "ClpP", "1qvr", "atoms",
     "not in the offline mirror; stand-in: ClpB, the Clp family's ring chaperone"),
    ("2AWB", "Bacterial ribosome", "4v4r_50S", "map",
     ("not in the offline mirror; stand-in: the 50S subunit of the bacterial 70S ribosome 4v4r "
     "(2AWB is the 50S of an E. coli 70S)")),
    ("2BO9", "Human carboxypeptidase A4", "1s3x", "atoms",
     "not in the offline mirror; stand-in: a small single-chain protein (Hsp70 ATPase domain)"),
    ("2BYU", "M. tuberculosis Acr1 (Hsp16.3)", "2cg9", "atoms",
     "not in the offline mirror; stand-in: another chaperone complex (Hsp90-Sba1)"),
    ("2GHO", "Thermus aquaticus RNA polymerase", "3ipm", "map", _GENERIC),
    ("2GLS", "Glutamine synthetase", "2uv8", "map",
     ("not in the offline mirror; stand-in: fatty-acid synthase, like 2GLS a large "
     "double-layered symmetric enzyme")),
    ("2H12", "Acetobacter aceti citrate synthase", "1u6g", "atoms", _GENERIC),
    ("2IDB", "3-octaprenyl-4-hydroxybenzoate decarboxylase", "7n4y", "map", _GENERIC),
    ("2REC", "RecA hexamer", "3gl1", "atoms", _GENERIC),
    ("3DY4", "Yeast 20S proteasome", "3j9i", "atoms",
     "not in the offline mirror; stand-in: archaeal 20S proteasome (same four-ring fold)"),
]
_LIU22 = ClassSet("liu22", [ClassEntry(f"{pid} {name}", pid, entry, src, why)
                            for pid, name, entry, src, why in _LIU],
                  "SSN3D (Liu et al. 2018, Table 1) and DSM-Net: 22 complexes, 40³ subvolumes; "
                  "all substituted from the offline mirror")

CLASS_SETS: dict[str, ClassSet] = {s.name: s for s in (_CHE, _SHREC, _LIU22)}


def class_set(name: str) -> ClassSet:
    """Return the class set called ``name``.

    Parameters
    ----------
    name : str
        ``"che2019"``, ``"shrec2020"`` or ``"liu22"`` (case-insensitive).

    Returns
    -------
    ClassSet
        The set.

    Raises
    ------
    KeyError
        For an unknown name (the message lists the valid names).
    """
    key = str(name).lower()
    if key not in CLASS_SETS:
        raise KeyError(f"unknown class set {name!r}; valid names: {', '.join(CLASS_SETS)}")
    return CLASS_SETS[key]


def substitution_table(name: str) -> list[dict[str, str | None]]:
    """List the substituted classes of a set.

    Parameters
    ----------
    name : str
        The class set (:func:`class_set`).

    Returns
    -------
    list of dict
        One row per substituted class: ``class``, ``paper_id``, ``entry`` (used), ``source``,
        ``reason``.

    Raises
    ------
    KeyError
        For an unknown set name.
    """
    return [{"class": c.name, "paper_id": c.paper_id, "entry": c.entry, "source": c.source,
             "reason": c.substitute_reason} for c in class_set(name).classes if c.substituted]
