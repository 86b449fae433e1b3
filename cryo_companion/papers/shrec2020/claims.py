"""SHREC 2020's headline numbers (Tables 3 and 6), with where ours will be in ``results/``."""
from __future__ import annotations

from cryo_companion.papers.claim import NOT_YET, Claim
from cryo_companion.papers.shrec2020.paper_tables import TABLE3, TABLE6

__all__ = ["CLAIMS"]

_SHREC = "Gubins et al. 2020 (SHREC 2020)"


def _shrec_claims() -> tuple[Claim, ...]:
    """SHREC 2020 headline numbers, taken from the cited tables in :mod:`.paper_tables`."""
    out = []
    for method in ("DeepFinder", "3D MS-D"):
        key = method.lower().replace(" ", "_").replace("-", "_")
        out.append(Claim(f"shrec2020/table3/{key}/f1", _SHREC, "Table 3", method,
                         "localisation F1", TABLE3[method]["F1 Score"], "shrec2020_methods",
                         f"{key}.localisation.f1", NOT_YET))
        out.append(Claim(f"shrec2020/table6/{key}/small", _SHREC, "Table 6", method,
                         "classification F1, small complexes (< 200 kDa)",
                         TABLE6[method]["Small"], "shrec2020_methods",
                         f"{key}.classification.group_f1.small", NOT_YET))
    return tuple(out)


CLAIMS: tuple[Claim, ...] = _shrec_claims()
