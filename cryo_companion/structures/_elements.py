"""Standard atomic weights (Da) and atomic numbers of the elements met in PDB/mmCIF files.

Weights: IUPAC standard atomic weights (conventional values, rounded to 3 decimals).
"""
from __future__ import annotations

# symbol: (atomic number, mass in Da)
_TABLE: dict[str, tuple[int, float]] = {
    "H": (1, 1.008), "D": (1, 2.014), "HE": (2, 4.003), "LI": (3, 6.94), "BE": (4, 9.012),
    "B": (5, 10.81), "C": (6, 12.011), "N": (7, 14.007), "O": (8, 15.999), "F": (9, 18.998),
    "NE": (10, 20.180), "NA": (11, 22.990), "MG": (12, 24.305), "AL": (13, 26.982),
    "SI": (14, 28.085), "P": (15, 30.974), "S": (16, 32.06), "CL": (17, 35.45),
    "AR": (18, 39.948), "K": (19, 39.098), "CA": (20, 40.078), "SC": (21, 44.956),
    "TI": (22, 47.867), "V": (23, 50.942), "CR": (24, 51.996), "MN": (25, 54.938),
    "FE": (26, 55.845), "CO": (27, 58.933), "NI": (28, 58.693), "CU": (29, 63.546),
    "ZN": (30, 65.38), "GA": (31, 69.723), "GE": (32, 72.630), "AS": (33, 74.922),
    "SE": (34, 78.971), "BR": (35, 79.904), "KR": (36, 83.798), "RB": (37, 85.468),
    "SR": (38, 87.62), "Y": (39, 88.906), "ZR": (40, 91.224), "MO": (42, 95.95),
    "RU": (44, 101.07), "RH": (45, 102.906), "PD": (46, 106.42), "AG": (47, 107.868),
    "CD": (48, 112.414), "IN": (49, 114.818), "SN": (50, 118.710), "SB": (51, 121.760),
    "TE": (52, 127.60), "I": (53, 126.904), "XE": (54, 131.293), "CS": (55, 132.905),
    "BA": (56, 137.327), "LA": (57, 138.905), "CE": (58, 140.116), "SM": (62, 150.36),
    "EU": (63, 151.964), "GD": (64, 157.25), "TB": (65, 158.925), "YB": (70, 173.045),
    "LU": (71, 174.967), "HF": (72, 178.49), "TA": (73, 180.948), "W": (74, 183.84),
    "RE": (75, 186.207), "OS": (76, 190.23), "IR": (77, 192.217), "PT": (78, 195.084),
    "AU": (79, 196.967), "HG": (80, 200.592), "TL": (81, 204.38), "PB": (82, 207.2),
    "BI": (83, 208.980), "U": (92, 238.029),
}

#: Element symbol (upper case) -> mass in Da.
MASS_DA: dict[str, float] = {k: v[1] for k, v in _TABLE.items()}
#: Element symbol (upper case) -> atomic number.
ATOMIC_NUMBER: dict[str, int] = {k: v[0] for k, v in _TABLE.items()}

# Two-letter symbols that also start common atom names of organic molecules: in a PDB file
# without element columns, "CA" in a protein is C-alpha, not calcium (see ``guess_element``).
_ORGANIC = ("C", "N", "O", "S", "P", "H")


def guess_element(atom_name: str, resname: str = "") -> str:
    """Guess the element of a PDB atom from its name field, for files without columns 77-78.

    PDB convention: names of one-letter elements start in column 14 (the field's second
    character), two-letter elements in column 13; a residue named like the atom (``CA``, ``ZN``)
    is an ion.

    Parameters
    ----------
    atom_name : str
        The 4-character atom name field (columns 13-16), spaces kept.
    resname : str
        The residue name (an ion residue names its element).

    Returns
    -------
    str
        The element symbol in upper case (``""`` for an empty name).
    """
    raw = atom_name.rstrip("\n")
    stripped = raw.strip().upper()
    if not stripped:
        return ""
    if resname.strip().upper() == stripped and stripped in MASS_DA:
        return stripped  # ion residue, e.g. resname CA atom CA
    letters = "".join(ch for ch in stripped if ch.isalpha())
    if len(raw) == 4 and raw[0] not in (" ",) and not raw[0].isdigit():
        two = letters[:2]
        if two in MASS_DA and two[0] not in _ORGANIC:
            return two
    if letters[:1] in MASS_DA:
        return letters[:1]
    return letters[:2]
