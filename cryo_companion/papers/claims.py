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
    """List the claims, optionally only those of a paper or of one result file.

    Parameters
    ----------
    paper : str or None
        Keep the claims whose citation contains this (case-insensitive), e.g. ``"Che"``.
    result : str or None
        Keep the claims read from ``results/<result>.json``.

    Returns
    -------
    list of Claim
        In the order of :data:`CLAIMS`.
    """
    return [c for c in CLAIMS if (paper is None or paper.lower() in c.paper.lower())
            and (result is None or c.result == result)]


def get_claim(claim_id: str) -> Claim:
    """Return the claim with this id.

    Parameters
    ----------
    claim_id : str
        ``paper/table/row/metric``.

    Returns
    -------
    Claim
        The claim.

    Raises
    ------
    KeyError
        For an unknown id (the message lists the valid ones).
    """
    for c in CLAIMS:
        if c.id == claim_id:
            return c
    raise KeyError(f"unknown claim {claim_id!r}; valid: {', '.join(c.id for c in CLAIMS)}")


def lookup(data: dict[str, Any], key: str) -> Any:
    """Return the value at a dotted ``key`` in a nested dict.

    Parameters
    ----------
    data : dict
        Nested JSON-like dicts (a result's ``"data"``).
    key : str
        Dotted path, e.g. ``"table1.accuracy"``.

    Returns
    -------
    object
        The value, or None when a part of the path is absent.
    """
    cur: Any = data
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def compare(claim: Claim, data: dict[str, Any] | None) -> dict[str, Any]:
    """Put our value beside a claim.

    Parameters
    ----------
    claim : Claim
        The paper's number.
    data : dict or None
        A result's ``"data"`` (None: not produced).

    Returns
    -------
    dict
        The claim's fields, ``ours`` (None when absent) and ``difference`` (ours − paper, None
        unless ours is a number).
    """
    ours = lookup(data, claim.key) if data is not None else None
    return {**asdict(claim), "ours": ours,
            "difference": (ours - claim.value) if isinstance(ours, (int, float)) else None}


def claims_table(scale: str = "paper", paper: str | None = None) -> list[dict[str, Any]]:
    """Put every claim beside our value read from ``results/``.

    Parameters
    ----------
    scale : str
        ``"paper"`` (``results/``) or ``"smoke"`` (``results/smoke/``).
    paper : str or None
        Only the claims of this paper (see :func:`claims`).

    Returns
    -------
    list of dict
        One :func:`compare` row per claim (``ours`` None when not produced).
    """
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
    """Write one sentence comparing our value with the paper's, computed from the numbers.

    Parameters
    ----------
    row : dict
        A :func:`compare` row.
    std : float or None, optional
        Our standard deviation over seeds (widens the "agrees" band to 2 std).
    tol : float, optional
        Absolute difference below which we call the values in agreement.

    Returns
    -------
    str
        "ours ... agrees with / is higher than / is lower than the paper's ...", or that ours is
        not produced yet.
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
