"""SHREC 2020's headline numbers (Tables 3 and 6) for the methods this companion runs.

Ours are read from ``results/shrec_methods.json`` at ``methods.KEY.summary.headline``
(:mod:`.comparison`): the mean over seeds, with its spread shown on the landing page.
"""
from __future__ import annotations

from cryo_companion.papers.claim import NOT_YET, Claim
from cryo_companion.papers.shrec2020.comparison import METHOD_KEYS
from cryo_companion.papers.shrec2020.paper_tables import TABLE3, TABLE6

__all__ = ["CLAIMS", "RESULT"]

_SHREC = "Gubins et al. 2020 (SHREC 2020)"
#: The result file of the methods' chapter.
RESULT = "shrec_methods"


def _cited(v: float | None) -> float:
    if v is None:
        raise AssertionError("a claim's cited cell is blank in the paper")
    return float(v)


def _shrec_claims() -> tuple[Claim, ...]:
    """Localisation F1 (Table 3) and small-complex F1 (Table 6) of each method we run."""
    out = []
    for key, method in METHOD_KEYS.items():
        head = f"methods.{key}.summary.headline"
        out.append(Claim(f"shrec2020/table3/{key}/f1", _SHREC, "Table 3", method,
                         "localisation F1", _cited(TABLE3[method]["F1 Score"]), RESULT,
                         f"{head}.localisation_f1.mean", NOT_YET))
        out.append(Claim(f"shrec2020/table6/{key}/small", _SHREC, "Table 6", method,
                         "classification F1, small complexes (< 200 kDa)",
                         _cited(TABLE6[method]["Small"]), RESULT, f"{head}.small_f1.mean",
                         NOT_YET))
    return tuple(out)


CLAIMS: tuple[Claim, ...] = _shrec_claims()
