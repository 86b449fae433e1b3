"""The book's view of the recorded benchmarks (``results/bench_*.json``): tables and verdicts.

Every sentence here is decided from a recorded result; a benchmark that has not been recorded
reads "not yet measured" with the command that measures it, never a number.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cryo_companion.tables import format_table

__all__ = [
    "SPEEDUP_TARGET",
    "simulate_rows",
    "simulate_stage_profiles",
    "simulate_stage_summary",
    "simulate_table",
    "simulate_verdicts",
    "tomogram_summary",
]

#: The simulator's speed target against the per-sample NumPy/SciPy reference on the same CPU.
SPEEDUP_TARGET = 10.0


def simulate_rows(result: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Return one row per device and output set of a ``bench simulate`` result.

    Parameters
    ----------
    result : mapping or None
        ``load_result("bench_simulate")`` (None when not recorded).

    Returns
    -------
    list of dict
        ``device``, ``outputs`` (``"noisy + clean + mask"`` or ``"noisy + mask"``), ``best``
        (subtomograms/s), ``per_batch``, ``rounds``, ``reference`` (NumPy reference /s or None),
        ``speedup`` and ``range`` (or None), ``commit`` (10 characters, or ``"not recorded"``)
        and ``stages`` (ms per subtomogram by stage, possibly empty).
    """
    rows: list[dict[str, Any]] = []
    for key, val in ((result or {}).get("data") or {}).items():
        if not isinstance(val, dict) or not isinstance(val.get("best_subtomograms_per_s"),
                                                       (int, float)):
            continue
        rows.append({
            "device": val.get("device_name", key),
            "outputs": "noisy + clean + mask" if val.get("need_clean", True) else "noisy + mask",
            "best": float(val["best_subtomograms_per_s"]),
            "per_batch": dict(val.get("subtomograms_per_s") or {}),
            "rounds": val.get("rounds"),
            "reference": val.get("numpy_reference_subtomograms_per_s"),
            "speedup": val.get("speedup_vs_numpy_reference"),
            "range": val.get("speedup_range"),
            "commit": str(val["commit"])[:10] if val.get("commit") else "not recorded",
            "stages": dict(val.get("stages_ms_per_subtomogram") or {})})
    return rows


def simulate_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Tabulate :func:`simulate_rows` (Markdown).

    Parameters
    ----------
    rows : sequence of mapping
        The benchmark rows.

    Returns
    -------
    str
        One line per device and output set: best rate, rate by batch size, the reference's
        rate, the median speedup with its range over rounds, the rounds and the commit.
    """
    recs = []
    for r in rows:
        sp = (f"**{r['speedup']:.2f}×** ({r['range'][0]:.1f}–{r['range'][1]:.1f}×)"
              if r["speedup"] and r["range"] else None)
        per_batch = ", ".join(f"{b}: {v:,.0f}" for b, v in r["per_batch"].items())
        recs.append({"device": r["device"], "outputs": r["outputs"],
                     "best subtomograms/s": f"**{r['best']:,.0f}**",
                     "by batch size": per_batch,
                     "NumPy reference /s": r["reference"], "speedup (median, range)": sp,
                     "rounds": r["rounds"], "commit": r["commit"]})
    return format_table(recs, ["device", "outputs", "best subtomograms/s", "by batch size",
                               "NumPy reference /s", "speedup (median, range)", "rounds",
                               "commit"], style="markdown", formats={"NumPy reference /s": "g"})


def simulate_verdicts(rows: Sequence[Mapping[str, Any]],
                      target: float = SPEEDUP_TARGET) -> list[str]:
    """Say in sentences whether each row with a speedup meets the speed target; flag stale rows.

    Parameters
    ----------
    rows : sequence of mapping
        The benchmark rows (:func:`simulate_rows`).
    target : float
        The speedup target against the NumPy reference.

    Returns
    -------
    list of str
        "DEVICE, OUTPUTS: median S× — target T× **met** (and met in every round)" (or **not
        met**, or the slowest round's speedup), and one line for rows measured before the
        benchmark recorded its commit (an earlier version of the simulator).
    """
    out = []
    for r in rows:
        if not (r["speedup"] and r["range"]):
            continue
        met = "**met**" if r["speedup"] >= target else "**not met**"
        rounds = (" (and met in every round)" if r["range"][0] >= target
                  else f" ({r['range'][0]:.1f}× in the slowest round)")
        out.append(f"{r['device']}, {r['outputs']}: median {r['speedup']:.2f}× — target "
                   f"{target:g}× {met}{rounds}")
    stale = [f"{r['device']} ({r['outputs']})" for r in rows if r["commit"] == "not recorded"]
    if stale:
        out.append(f"{', '.join(stale)}: measured before the benchmark recorded its commit, on an "
                   "earlier version of the simulator; not re-measured since (it needs that "
                   "device).")
    return out


def simulate_stage_profiles(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Collect the stage profiles of the rows that have one, keyed by device and outputs.

    Parameters
    ----------
    rows : sequence of mapping
        The benchmark rows (:func:`simulate_rows`).

    Returns
    -------
    dict
        ``{label: {stage: ms per subtomogram}}`` for ``plot_stacked_bars``.
    """
    return {f"{r['device']}\n{r['outputs']}": dict(r["stages"]) for r in rows if r["stages"]}


def tomogram_summary(result: Mapping[str, Any] | None) -> str:
    """Summarise the SHREC-sized tomogram benchmark in one sentence, decided from its result.

    Parameters
    ----------
    result : mapping or None
        ``load_result("bench_tomogram")``.

    Returns
    -------
    str
        The shape, particles and tilts with the time of each stage and the device, or "not yet
        measured" with the command that measures it.
    """
    data = (result or {}).get("data")
    if not data:
        return ("SHREC-sized tomogram benchmark: **not yet measured** (run "
                "`cryo-companion bench tomogram`).")
    t = data["timing_s"]
    shape = " × ".join(str(s) for s in data["shape_zyx"])
    device = (result or {}).get("provenance", {}).get("device", "an unrecorded device")
    return (f"SHREC-sized tomogram ({shape} voxels, z-y-x, at {data['voxel_size_A']:g} Å) with "
            f"{data['particles_requested']:,} particles and {data['tilts']} tilts on {device}: "
            f"scene {t['scene']:.1f} s, tilt series and weighted back-projection "
            f"{t['tilt_series_and_wbp']:.1f} s, total **{t['total']:.1f} s**.")


def simulate_stage_summary(rows: Sequence[Mapping[str, Any]], top: int = 3) -> str:
    """Summarise the stage profiles: the total per subtomogram and the largest stages.

    Parameters
    ----------
    rows : sequence of mapping
        The benchmark rows (:func:`simulate_rows`).
    top : int
        How many of the largest stages to name.

    Returns
    -------
    str
        A Markdown list, one item per profiled row, then the rows without a profile (or "not
        yet measured" when no row has one).
    """
    items = []
    for r in rows:
        st = r["stages"]
        if not st:
            continue
        total = sum(st.values())
        largest = sorted(st.items(), key=lambda kv: -kv[1])[:top]
        items.append(f"* {r['device']}, {r['outputs']}: {total:.3f} ms per subtomogram; "
                     + ", ".join(f"{k} {100 * v / total:.0f} %" for k, v in largest))
    missing = [f"{r['device']} ({r['outputs']})" for r in rows if not r["stages"]]
    if not items:
        return "Stage profile: **not yet measured** (`cryo-companion bench simulate --save`)."
    if missing:
        items.append("* stage profile not recorded for: " + ", ".join(missing))
    return "\n".join(items)
