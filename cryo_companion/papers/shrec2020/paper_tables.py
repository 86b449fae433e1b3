"""Numbers cited from Gubins et al. 2020 (SHREC 2020), Tables 1 (radii), 2-4, 6-9 and Sec. 3.

These are the paper's published values, typed from the paper for reference and labelled as
such wherever shown; they are never results of this companion. A blank cell of the paper is
``None`` (Table 3, MH of 3D MS-D). Columns of Tables 4 and 9 are keyed by PDB ID (Table 9
prints them in a different order from Table 4).
"""
from __future__ import annotations

__all__ = [
    "N_TEST_PARTICLES",
    "SOURCE",
    "TABLE1_EFFECTIVE_RADIUS_NM",
    "TABLE2_COUNTS",
    "TABLE3",
    "TABLE3_COLUMNS",
    "TABLE4",
    "TABLE4_COLUMNS",
    "TABLE6",
    "TABLE6_COLUMNS",
    "TABLE7",
    "TABLE7_COLUMNS",
    "TABLE8",
    "TABLE9",
    "TM_TIME_PER_CLASS_S",
]

SOURCE = ("Gubins et al. 2020, SHREC 2020: Classification in cryo-electron tomograms, "
          "Computers & Graphics 91")

TABLE3_COLUMNS = ("RR", "TP", "FP", "FN", "MH", "RO", "AD", "Recall", "Precision", "Miss rate",
                  "F1 Score")
TABLE4_COLUMNS = ("1s3x", "3qm1", "3gl1", "3h84", "2cg9", "3d2f", "1u6g", "3cf3", "1bxn",
                  "1qvr", "4cr2", "4d8q")
TABLE6_COLUMNS = ("Small", "Medium", "Large")

# Table 1, "Eff. radius (nm)": r_eff = 3V / A (Eq. 2) of each complex.
TABLE1_EFFECTIVE_RADIUS_NM = {"1s3x": 2.56, "3qm1": 2.88, "3gl1": 3.065, "3h84": 2.822,
                              "2cg9": 3.108, "3d2f": 3.145, "1u6g": 3.065, "3cf3": 4.181,
                              "1bxn": 4.78, "1qvr": 3.248, "4cr2": 4.696, "4d8q": 4.85}

# Section 4 / Table 2: particles in the test tomogram (model 9).
N_TEST_PARTICLES = 2782
TABLE2_COUNTS = {"1s3x": 233, "3qm1": 241, "3gl1": 229, "3h84": 240, "2cg9": 228, "3d2f": 214,
                 "1u6g": 217, "3cf3": 238, "1bxn": 245, "1qvr": 226, "4cr2": 231, "4d8q": 240}


def _rows(columns: tuple[str, ...], text: str) -> dict[str, dict[str, float | int | None]]:
    """Parse ``NAME | v | v ...`` lines into ``{NAME: {column: value}}`` (a blank cell: None)."""
    out: dict[str, dict[str, float | int | None]] = {}
    for line in text.strip().splitlines():
        name, *vals = [f.strip() for f in line.split("|")]
        if len(vals) != len(columns):
            raise AssertionError(f"paper table row {name!r}: {len(vals)} values, "
                                 f"{len(columns)} columns")
        row: dict[str, float | int | None] = {}
        for c, v in zip(columns, vals):
            row[c] = None if v == "" else (int(v) if v.isdigit() else float(v))
        out[name] = row
    return out


# Table 3: localisation.
TABLE3 = _rows(TABLE3_COLUMNS, """
3D MS-D    | 2663 | 2523 | 139 | 259 |     | 0 | 2.05  | 0.906 | 0.947 | 0.094 | 0.926
DeepFinder | 2594 | 2485 | 107 | 297 | 2   | 0 | 2.166 | 0.893 | 0.957 | 0.107 | 0.924
3D ResNet  | 2864 | 1983 | 611 | 799 | 246 | 0 | 3.501 | 0.712 | 0.692 | 0.288 | 0.702
YOPO       | 2821 | 2543 | 240 | 239 | 37  | 0 | 2.104 | 0.914 | 0.901 | 0.086 | 0.907
Dn3DUnet   | 2598 | 2340 | 146 | 442 | 112 | 0 | 2.807 | 0.841 | 0.9   | 0.159 | 0.869
UMC        | 2781 | 2642 | 68  | 140 | 68  | 0 | 1.873 | 0.949 | 0.95  | 0.051 | 0.949
TM-T       | 2604 | 1898 | 20  | 884 | 412 | 0 | 1.528 | 0.682 | 0.728 | 0.318 | 0.704
TM-F       | 2604 | 2267 | 331 | 515 | 6   | 0 | 1.767 | 0.814 | 0.87  | 0.185 | 0.841
""")

# Table 4: classification F1 per class (columns by molecular weight).
TABLE4 = _rows(TABLE4_COLUMNS, """
3D MS-D    | 0.192 | 0.408 | 0.437 | 0.416 | 0.368 | 0.461 | 0.492 | 0.719 | 0.948 | 0.851 | 0.942 | 0.964
DeepFinder | 0.61  | 0.729 | 0.8   | 0.911 | 0.783 | 0.848 | 0.866 | 0.939 | 1     | 0.984 | 0.993 | 0.993
3D ResNet  | 0.193 | 0.185 | 0.405 | 0.407 | 0.334 | 0.445 | 0.491 | 0.628 | 0.906 | 0.719 | 0.868 | 0.817
YOPO       | 0.558 | 0.741 | 0.67  | 0.834 | 0.696 | 0.682 | 0.795 | 0.896 | 0.987 | 0.83  | 0.923 | 0.993
Dn3DUnet   | 0.529 | 0.577 | 0.569 | 0.674 | 0.332 | 0.523 | 0.462 | 0.676 | 0.925 | 0.684 | 0.907 | 0.974
UMC        | 0.661 | 0.827 | 0.839 | 0.947 | 0.855 | 0.873 | 0.899 | 0.981 | 0.997 | 0.98  | 1     | 0.997
TM-T       | 0.2   | 0.102 | 0.248 | 0.727 | 0.555 | 0.869 | 0.835 | 0.88  | 0.934 | 0.97  | 0.968 | 0.945
TM-F       | 0.319 | 0.219 | 0.207 | 0.66  | 0.589 | 0.808 | 0.815 | 0.945 | 0.939 | 0.966 | 0.968 | 0.945
""")  # noqa: E501 - the paper's twelve columns, one row per line as printed
for _row in TABLE4.values():  # "1" in the paper is an F1 of 1.0
    for _k, _v in _row.items():
        _row[_k] = float(_v) if _v is not None else None

# Table 6: F1 per Table 5 size group.
TABLE6 = _rows(TABLE6_COLUMNS, """
3D MS-D    | 0.364 | 0.694 | 0.953
DeepFinder | 0.767 | 0.927 | 0.993
3D ResNet  | 0.305 | 0.638 | 0.843
YOPO       | 0.7   | 0.838 | 0.958
Dn3DUnet   | 0.536 | 0.654 | 0.941
UMC        | 0.826 | 0.946 | 0.999
TM-T       | 0.366 | 0.898 | 0.957
TM-F       | 0.399 | 0.895 | 0.957
""")

# Table 8: template matching localisation on SHREC 2019 and 2020.
TABLE8 = _rows(TABLE3_COLUMNS, """
TM-T-2020 | 2604 | 1261 | 140 | 1521 | 475 | 0 | 1.934 | 0.453 | 0.484 | 0.546 | 0.468
TM-F-2020 | 2604 | 1787 | 813 | 995  | 4   | 0 | 2.433 | 0.642 | 0.686 | 0.357 | 0.663
TM-T-2019 | 2496 | 982  | 113 | 1558 | 559 | 0 | 2.975 | 0.386 | 0.393 | 0.613 | 0.389
TM-F-2019 | 1987 | 1664 | 291 | 876  | 31  | 0 | 2.9   | 0.655 | 0.837 | 0.344 | 0.735
""")

# Table 9: template matching classification F1 (the paper's column order differs from Table 4).
_TABLE9_PRINTED = ("3qm1", "1s3x", "3h84", "3gl1", "2cg9", "3d2f", "1u6g", "3cf3", "1bxn", "1qvr",
                   "4cr2", "4d8q")
TABLE9 = _rows(_TABLE9_PRINTED, """
TM-T-2020 | 0.046 | 0.128 | 0.34  | 0.064 | 0.178 | 0.429 | 0.28  | 0.579 | 0.683 | 0.583 | 0.937 | 0.94
TM-F-2020 | 0.064 | 0.169 | 0.364 | 0.053 | 0.207 | 0.492 | 0.34  | 0.653 | 0.696 | 0.611 | 0.91  | 0.945
TM-T-2019 | 0.083 | 0.038 | 0.038 | 0.075 | 0.109 | 0.251 | 0.035 | 0.234 | 0.676 | 0.107 | 0.679 | 0.82
TM-F-2019 | 0.188 | 0.07  | 0.14  | 0.158 | 0.133 | 0.426 | 0.191 | 0.21  | 0.308 | 0.149 | 0.704 | 0.668
""")  # noqa: E501 - the paper's twelve columns, one row per line as printed

# Table 7: reported training and inference times, in seconds (None: "N/A"), with the paper's
# own text. The paper labels its last two rows "GPU" (27 h 24 m) and "CPU" (1 h 24 m), but
# Section 3.7 says 27 h 24 min on a 16-core CPU and 1 h 24 min on one GTX 1080 Ti: the rows are
# keyed here by what Section 3.7 says, and the text keeps the table's printed label.
TABLE7_COLUMNS = ("Training stage", "Inference stage")
_H, _M = 3600.0, 60.0
TABLE7: dict[str, dict[str, float | str | None]] = {
    "3D MS-D": {"Training stage": 168 * _H, "Inference stage": 5 * _M, "printed": "168 h | 5 m"},
    "DeepFinder": {"Training stage": 50 * _H, "Inference stage": 20 * _M,
                   "printed": "50 h | 20 m"},
    "3D ResNet": {"Training stage": 5 * _H, "Inference stage": 2 * _H, "printed": "5 h | 2 h"},
    "YOPO": {"Training stage": 8 * _H, "Inference stage": 40 * _M, "printed": "8 h | 40 m"},
    "Dn3DUnet": {"Training stage": 15 * _H + 10 * _M, "Inference stage": 101.0,
                 "printed": "15 h 10 m | 1 m 41 s"},
    "UMC": {"Training stage": 16 * _H, "Inference stage": 42 * _M, "printed": "16 h | 42 m"},
    "TM-T/TM-F CPU": {"Training stage": None, "Inference stage": 27 * _H + 24 * _M,
                      "printed": "TM-T/TM-F GPU | N/A | 27 h 24 m (Sec. 3.7: 16-core CPU)"},
    "TM-T/TM-F GPU": {"Training stage": None, "Inference stage": 1 * _H + 24 * _M,
                      "printed": "TM-T/TM-F CPU | N/A | 1 h 24 m (Sec. 3.7: GTX 1080 Ti)"},
}

# Section 3.7: template matching time per class (seconds): 2 h 17 min on a 16-core CPU, 6 min
# 12 s on one GTX 1080 Ti.
TM_TIME_PER_CLASS_S = {"CPU (16 cores)": 2 * _H + 17 * _M, "GPU (GTX 1080 Ti)": 6 * _M + 12.0}
