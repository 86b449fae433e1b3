"""The papers' cited numbers, each with where it is in the paper and where ours is in results/.

Every number here is typed from the paper (it is the paper's claim, not ours); our value is read
from ``results/<result>.json`` at the dotted ``key`` under ``"data"``. The landing page lists the
claims with :func:`claims_table`; chapters put theirs side by side with :func:`compare`.
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from cryo_companion.papers.che2019 import claims as _che2019
from cryo_companion.papers.claim import Claim
from cryo_companion.papers.dsmnet import claims as _dsmnet
from cryo_companion.papers.shrec2020 import claims as _shrec2020
from cryo_companion.papers.ssn3d import claims as _ssn3d

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


#: Every cited number of the four papers, paper by paper.
CLAIMS: tuple[Claim, ...] = _che2019.CLAIMS + _ssn3d.CLAIMS + _dsmnet.CLAIMS + _shrec2020.CLAIMS


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
    from cryo_companion.runs.results import load_result

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
    row : dict[str, Any]
        A :func:`compare` row.
    std : float | None, optional
        Our standard deviation over seeds (widens the "agrees" band to 2 std).
    tol : float, optional
        Absolute difference below which we call the values in agreement.
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
