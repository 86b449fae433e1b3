"""Tables as text: aligned plain text for the command line and reports."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = ["format_table"]


def _cell(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)



def format_table(rows: Mapping[str, Mapping[str, object]], columns: Sequence[str],
                 first: str = "Submission") -> str:
    """Aligned text table: one line per row name, floats to 3 decimals, missing as ``-``."""
    body = [[first, *columns]] + [[name, *(_cell(r.get(c)) for c in columns)]
                                  for name, r in rows.items()]
    widths = [max(len(line[i]) for line in body) for i in range(len(body[0]))]
    return "\n".join("  ".join(s.rjust(w) if i else s.ljust(w)
                               for i, (s, w) in enumerate(zip(line, widths))) for line in body)
