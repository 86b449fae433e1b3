"""The papers' cited numbers, each with where it is in the paper and where ours is in results/.

Every number here is typed from the paper (it is the paper's claim, not ours); our value is read
from ``results/<result>.json`` at the dotted ``key`` under ``"data"``. The landing page lists the
claims with :func:`claims_table`; chapters put theirs side by side with :func:`compare`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "CLAIMS",
    "Claim",
    "claims",
    "claims_table",
    "compare",
    "get_claim",
    "lookup",
    "verdict",
]


@dataclass(frozen=True)
class Claim:
    """One number cited from a paper.

    Attributes
    ----------
    id : unique identifier (``paper/table/row/metric``).
    paper : short citation.
    where : table or figure of the paper.
    row : the row / condition (e.g. ``"w/ domain randomization"``).
    metric : what is measured.
    value : the paper's value.
    result : our result file (``results/<result>.json``).
    key : dotted path to our value under the file's ``"data"``.
    note : how to read the comparison.
    """

    id: str
    paper: str
    where: str
    row: str
    metric: str
    value: float
    result: str
    key: str
    note: str = ""


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


_SSN3D = "Liu et al. 2018 (SSN3D, ICIP)"
_DSM = "Liu et al. (DSM-Net)"
_SHREC = "Gubins et al. 2020 (SHREC 2020)"
_NOT_YET = "no chapter of this companion reproduces this table yet"


def _shrec_claims() -> tuple[Claim, ...]:
    """SHREC 2020 headline numbers, taken from the cited tables in ``shrec.paper_tables``."""
    from .shrec.paper_tables import TABLE3, TABLE6

    out = []
    for method in ("DeepFinder", "3D MS-D"):
        key = method.lower().replace(" ", "_").replace("-", "_")
        out.append(Claim(f"shrec2020/table3/{key}/f1", _SHREC, "Table 3", method,
                         "localisation F1", TABLE3[method]["F1 Score"], "shrec2020_methods",
                         f"{key}.localisation.f1", _NOT_YET))
        out.append(Claim(f"shrec2020/table6/{key}/small", _SHREC, "Table 6", method,
                         "classification F1, small complexes (< 200 kDa)",
                         TABLE6[method]["Small"], "shrec2020_methods",
                         f"{key}.classification.group_f1.small", _NOT_YET))
    return tuple(out)


CLAIMS += (
    # Liu et al. 2018, Table 2 (SNR 0.5; pixel accuracy and mIoU in %, here as fractions)
    Claim("ssn3d/table2/ssn3d_ed/pixel_accuracy", _SSN3D, "Table 2", "SSN3D-ED, SNR 0.5",
          "pixel accuracy", 0.9935, "ssn3d", "ssn3d_ed.snr0.5.pixel_accuracy.mean", _NOT_YET),
    Claim("ssn3d/table2/ssn3d_ed/miou", _SSN3D, "Table 2", "SSN3D-ED, SNR 0.5", "mIoU", 0.864,
          "ssn3d", "ssn3d_ed.snr0.5.miou.mean", _NOT_YET),
    # DSM-Net, Table 2 (Dataset A, SNR 0.06)
    Claim("dsmnet/table2/dsmnet/miou", _DSM, "Table 2", "DSM-Net, Dataset A (SNR 0.06)", "mIoU",
          0.89, "dsmnet", "dsmnet.dataset_a.miou.mean", _NOT_YET),
    Claim("dsmnet/table2/dsmnet/accuracy", _DSM, "Table 2", "DSM-Net, Dataset A (SNR 0.06)",
          "classification accuracy", 0.9375, "dsmnet", "dsmnet.dataset_a.accuracy.mean",
          _NOT_YET),
) + _shrec_claims()


def claims(paper: str | None = None, result: str | None = None) -> list[Claim]:
    """The claims, optionally only those of a paper (substring match) or of one result file."""
    return [c for c in CLAIMS if (paper is None or paper.lower() in c.paper.lower())
            and (result is None or c.result == result)]


def get_claim(claim_id: str) -> Claim:
    """The claim with this id (``KeyError`` listing the valid ids otherwise)."""
    for c in CLAIMS:
        if c.id == claim_id:
            return c
    raise KeyError(f"unknown claim {claim_id!r}; valid: {', '.join(c.id for c in CLAIMS)}")


def lookup(data: dict[str, Any], key: str) -> Any:
    """Value at dotted ``key`` in nested dict ``data`` (None when absent)."""
    cur: Any = data
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def compare(claim: Claim, data: dict[str, Any] | None) -> dict[str, Any]:
    """The claim with our value (from ``data``, a result's ``"data"``) and the difference."""
    ours = lookup(data, claim.key) if data is not None else None
    return {**asdict(claim), "ours": ours,
            "difference": (ours - claim.value) if isinstance(ours, (int, float)) else None}


def claims_table(scale: str = "paper", paper: str | None = None) -> list[dict[str, Any]]:
    """Every claim beside our value read from ``results/`` (``ours`` None when not produced)."""
    from .results import load_result

    cache: dict[str, Any] = {}
    rows = []
    for c in claims(paper):
        if c.result not in cache:
            r = load_result(c.result, scale)
            cache[c.result] = r["data"] if r else None
        rows.append(compare(c, cache[c.result]))
    return rows


def verdict(row: dict[str, Any], std: float | None = None, tol: float = 0.02) -> str:
    """One sentence comparing our value with the paper's, computed from the numbers.

    Parameters
    ----------
    row : a :func:`compare` row.
    std : our standard deviation over seeds (widens the "agrees" band to 2 std).
    tol : absolute difference below which we call the values in agreement.
    """
    ours = row["ours"]
    if ours is None:
        return f"{row['row']}, {row['metric']}: paper {row['value']:.3f}; ours not produced yet."
    band = max(tol, 2 * std) if std is not None else tol
    d = ours - row["value"]
    word = ("agrees with" if abs(d) <= band else
            "is higher than" if d > 0 else "is lower than")
    sd = f" ± {std:.3f}" if std is not None else ""
    return (f"{row['row']}, {row['metric']}: ours {ours:.3f}{sd} {word} the paper's "
            f"{row['value']:.3f} (difference {d:+.3f}).")
