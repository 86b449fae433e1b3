"""One number cited from a paper, and where our value of it is in ``results/``."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NOT_YET", "Claim"]

#: The note of a claim that no chapter reproduces yet.
NOT_YET = "no chapter of this companion reproduces this table yet"


@dataclass(frozen=True)
class Claim:
    """One number cited from a paper.

    Attributes
    ----------
    id : str
        Unique identifier (``paper/table/row/metric``).
    paper : str
        Short citation.
    where : str
        Table or figure of the paper.
    row : str
        The row / condition (e.g. ``"w/ domain randomization"``).
    metric : str
        What is measured.
    value : float
        The paper's value.
    result : str
        Our result file (``results/<result>.json``).
    key : str
        Dotted path to our value under the file's ``"data"``.
    note : str, optional
        How to read the comparison.
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
