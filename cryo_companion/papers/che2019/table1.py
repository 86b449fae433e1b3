"""Table I of Che et al. 2019 assembled from our runs: the table, its verdicts and the reasons.

Everything here is computed from a summary of runs
(:func:`cryo_companion.papers.che2019.evaluate.summarize_runs`) and the paper's cited values
(:mod:`cryo_companion.papers.che2019.claims`); the chapter only shows the results.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cryo_companion.papers.claims import claims, compare, verdict
from cryo_companion.tables import format_table

__all__ = [
    "ARM_ROWS",
    "LABELS",
    "claim_verdicts",
    "difference_reasons",
    "difference_verdicts",
    "first_evaluation_summary",
    "paper_values",
    "per_class_table",
    "predicted_share",
    "runs_table",
    "table1_markdown",
    "timing_table",
    "training_time_summary",
]

#: Our metric keys and how the table names them.
LABELS: dict[str, str] = {"accuracy": "classification accuracy", "pixel_accuracy": "pixel accuracy",
                          "miou": "mIoU (target IoU, mean)", "iou_pooled": "target IoU, pooled",
                          "miou_fg_bg": "mean IoU target + background"}
#: Our arms and the paper's row names (Table I).
ARM_ROWS: dict[str, str] = {"baseline": "w/o domain randomization",
                            "randomized": "w/ domain randomization"}


def paper_values() -> dict[tuple[str, str], float]:
    """Collect the paper's Table I values, keyed ``(paper row, metric key)``.

    Returns
    -------
    dict
        ``{("w/ domain randomization", "accuracy"): 0.818, ...}``.
    """
    return {(c.row, c.key.split(".")[2]): c.value for c in claims(result="table1")}


def table1_markdown(summary: Mapping[str, Any]) -> str:
    """Our Table I beside the paper's: mean ± std over seeds, and the difference of the arms.

    Parameters
    ----------
    summary : mapping
        ``summarize_runs`` of the runs of both arms.

    Returns
    -------
    str
        A Markdown table: one row per arm (with the paper's value in parentheses where it gives
        one), and a last row with randomized − baseline and its 95 % Welch-t interval ("n/a" with
        fewer than two seeds per arm).
    """
    paper = paper_values()
    rows: dict[str, dict[str, object]] = {}
    for arm, row in ARM_ROWS.items():
        a = summary["arms"][arm]
        cells: dict[str, object] = {}
        for k, label in LABELS.items():
            s = a[k]
            p = paper.get((row, k))
            sd = f" ± {s['std']:.3f}" if s["std"] is not None else ""
            cells[label] = f"{s['mean']:.3f}{sd}" + (f" (paper {p:.3f})" if p is not None else "")
        rows[f"{row} (t = {a['threshold']}, {a['accuracy']['n']} seeds)"] = cells
    diff: dict[str, object] = {}
    for k, label in LABELS.items():
        d = summary.get("difference", {}).get(k, {}).get("t")
        diff[label] = f"{d['diff']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]" if d else "n/a"
    rows["randomized − baseline (95 % CI, Welch t)"] = diff
    return format_table(rows, list(LABELS.values()), first="arm", style="markdown")


def claim_verdicts(summary: Mapping[str, Any]) -> list[str]:
    """One sentence per cited Table I value: ours agrees with it, or is higher or lower.

    Parameters
    ----------
    summary : mapping
        ``summarize_runs`` of the runs.

    Returns
    -------
    list of str
        :func:`cryo_companion.papers.claims.verdict` for every Table I claim, with our spread
        over seeds.
    """
    out = []
    for c in claims(result="table1"):
        _, arm, key = c.key.split(".")[:3]
        out.append(verdict(compare(c, dict(summary)), std=summary["arms"][arm][key]["std"]))
    return out


def difference_verdicts(summary: Mapping[str, Any],
                        metrics: Sequence[str] = ("accuracy", "pixel_accuracy", "miou")
                        ) -> list[str]:
    """Say whether randomization helps here, and in the paper's direction, per metric.

    Parameters
    ----------
    summary : mapping
        ``summarize_runs`` of the runs of both arms.
    metrics : sequence of str
        Metric keys of :data:`LABELS`.

    Returns
    -------
    list of str
        "METRIC: randomized − baseline = D (95 % CI [L, H]): VERDICT; DIRECTION the paper's P",
        where VERDICT is "randomization helps" (interval above 0), "randomization hurts" (below)
        or "no significant difference", and DIRECTION compares the sign of D with the paper's
        difference; "too few seeds for an interval" without one.
    """
    paper = paper_values()
    lines = []
    for k in metrics:
        g = summary.get("difference", {}).get(k, {}).get("t")
        if g is None:
            lines.append(f"{LABELS[k]}: too few seeds for an interval.")
            continue
        pr = paper[(ARM_ROWS["randomized"], k)] - paper[(ARM_ROWS["baseline"], k)]
        sign = ("randomization helps" if g["low"] > 0 else
                "randomization hurts" if g["high"] < 0 else "no significant difference")
        same = ("no change, unlike" if g["diff"] == 0 else
                "the same direction as" if (g["diff"] > 0) == (pr > 0) else
                "the opposite direction to")
        lines.append(f"{LABELS[k]}: randomized − baseline = {g['diff']:+.3f} (95 % CI "
                     f"[{g['low']:+.3f}, {g['high']:+.3f}]): {sign}; {same} the paper's "
                     f"{pr:+.3f}.")
    return lines


def predicted_share(summary: Mapping[str, Any], class_names: Sequence[str],
                    name: str) -> dict[str, float]:
    """Compute the fraction of test subtomograms each arm assigns to class ``name``.

    Parameters
    ----------
    summary : mapping
        ``summarize_runs`` of the runs (its confusion matrices, summed over seeds).
    class_names : sequence of str
        Class names in the matrices' order.
    name : str
        The class.

    Returns
    -------
    dict
        ``{arm: fraction}``.
    """
    j = list(class_names).index(name)
    out = {}
    for arm, a in summary["arms"].items():
        cm = np.asarray(a["confusion_matrix"], dtype=float)
        out[arm] = float(cm[:, j].sum() / max(cm.sum(), 1.0))
    return out


def runs_table(results: Sequence[Mapping[str, Any]]) -> str:
    """Tabulate every run's test metrics (Markdown).

    Parameters
    ----------
    results : sequence of mapping
        ``{"arm", "seed", "metrics"}`` per run.

    Returns
    -------
    str
        One row per run: arm, seed, threshold, accuracy, pixel accuracy and mIoU.
    """
    recs = [{"arm": r["arm"], "seed": r["seed"], "threshold": r["metrics"]["threshold"],
             "accuracy": r["metrics"]["accuracy"],
             "pixel accuracy": r["metrics"]["pixel_accuracy"], "mIoU": r["metrics"]["miou"]}
            for r in results]
    return format_table(recs, ["arm", "seed", "threshold", "accuracy", "pixel accuracy", "mIoU"],
                        style="markdown", formats={"threshold": "g"})


def per_class_table(summary: Mapping[str, Any]) -> str:
    """Tabulate the per-class accuracy of each arm, averaged over seeds (Markdown).

    Parameters
    ----------
    summary : mapping
        ``summarize_runs`` of the runs.

    Returns
    -------
    str
        One row per arm, one column per class (``-`` for a class absent from the test set).
    """
    rows = {arm: dict(a["per_class_accuracy"]) for arm, a in summary["arms"].items()}
    names = list(next(iter(rows.values()))) if rows else []
    return format_table(rows, names, first="arm", style="markdown")


def timing_table(timing: Mapping[str, Mapping[str, float]]) -> str:
    """Tabulate the time per iteration of each run, split into simulation and network.

    Parameters
    ----------
    timing : mapping
        ``{run name: {"sim_ms_per_iter", "net_ms_per_iter", "sim_fraction"}}``.

    Returns
    -------
    str
        A Markdown table, one row per run.
    """
    rows = {k: {"simulation (ms/iter)": t["sim_ms_per_iter"],
                "network (ms/iter)": t["net_ms_per_iter"],
                "simulation share": f"{100 * t['sim_fraction']:.1f} %"}
            for k, t in timing.items()}
    return format_table(rows, ["simulation (ms/iter)", "network (ms/iter)", "simulation share"],
                        first="run", style="markdown",
                        formats={"simulation (ms/iter)": ".2f", "network (ms/iter)": ".2f"})


def training_time_summary(run_timings: Sequence[Mapping[str, float]], session_wall_s: float,
                          device: str) -> str:
    """Say how long the runs trained, honest about runs resumed when already done.

    Parameters
    ----------
    run_timings : sequence of mapping
        Each run's recorded ``timing`` (``sim_s`` and ``net_s`` summed over every session that
        trained it, ``sim_ms_per_iter``, ``net_ms_per_iter``).
    session_wall_s : float
        Wall clock of this session's training call, in seconds.
    device : str
        The device the runs recorded.

    Returns
    -------
    str
        The mean time per iteration (simulation and network), the recorded training time per
        run, and this session's wall clock, which is said to have only loaded finished runs when
        it is under 5 % of the recorded training time.

    Raises
    ------
    ValueError
        For no runs.
    """
    if not run_timings:
        raise ValueError("run_timings is empty")
    sim_ms = float(np.mean([t["sim_ms_per_iter"] for t in run_timings]))
    net_ms = float(np.mean([t["net_ms_per_iter"] for t in run_timings]))
    per_run = [float(t.get("sim_s", 0.0)) + float(t.get("net_s", 0.0)) for t in run_timings]
    text = (f"On {device} ({len(run_timings)} runs), an iteration took {sim_ms:.2f} ms of "
            f"simulation and {net_ms:.2f} ms of network on average "
            f"({100 * sim_ms / max(sim_ms + net_ms, 1e-12):.1f} % simulation); each run's "
            f"recorded training time (simulation + network) is {min(per_run):.0f}–"
            f"{max(per_run):.0f} s.")
    if session_wall_s < 0.05 * max(per_run):
        text += (f" The runs had finished in an earlier session: this one loaded them from their "
                 f"folders in {session_wall_s:.1f} s.")
    else:
        text += f" All runs together took {session_wall_s:.0f} s of wall clock in this session."
    return text


def first_evaluation_summary(result: Mapping[str, Any] | None) -> str | None:
    """Summarise the first evaluation, made without the contrast inversion.

    Parameters
    ----------
    result : mapping or None
        ``load_result("table1_without_contrast_inversion")``.

    Returns
    -------
    str or None
        Its accuracies beside the membrane share of the test set, or None when not recorded.
    """
    if not result:
        return None
    fa = result["data"]["arms"]
    ts = result["data"]["test_set"]
    return (f"First evaluation (commit {result['provenance']['commit']}, no inversion): accuracy "
            f"randomized {fa['randomized']['accuracy']['mean']:.3f}, baseline "
            f"{fa['baseline']['accuracy']['mean']:.3f}; membrane is "
            f"{ts['counts']['membrane'] / ts['n']:.3f} of the test set.")


def difference_reasons(summary: Mapping[str, Any], class_names: Sequence[str],
                       test_counts: Mapping[str, int], box: int, voxel_size_A: float,
                       test_domain_snr: float | None, snr_range: tuple[float, float],
                       iterations: int) -> list[str]:
    """List the known differences between this reproduction and the paper's setting.

    Parameters
    ----------
    summary : mapping
        ``summarize_runs`` of the runs.
    class_names : sequence of str
        Class names of the test set.
    test_counts : mapping of str to int
        Subtomograms per class in the test set.
    box : int
        Edge of the test subtomograms in voxels.
    voxel_size_A : float
        Their voxel size in Å.
    test_domain_snr : float or None
        The median SNR measured on the test domain (None when not recorded).
    snr_range : tuple of float
        The randomized preset's SNR range.
    iterations : int
        SGD iterations of each run.

    Returns
    -------
    list of str
        One Markdown sentence per difference (context in the box, noise, training length,
        structures, image formation).
    """
    pred = predicted_share(summary, class_names, "membrane")
    share = test_counts["membrane"] / max(sum(test_counts.values()), 1)
    noise = (f"*Noise.* The test domain measures SNR {test_domain_snr:.3f} (Frank & Al-Ali, "
             f"aligned pairs); the randomized preset draws SNR from [{snr_range[0]:g}, "
             f"{snr_range[1]:g}] and the paper measured ≈ 0.1 on its real data."
             if test_domain_snr is not None else "*Noise.* The test domain's SNR is not recorded.")
    context = (
        f"*Context in the box* (a hypothesis, not yet tested). Our test subtomograms are cut from "
        f"crowded tomograms with vesicles and membrane sheets, so a {box}³ box "
        f"({box * voxel_size_A / 10:.0f} nm) can hold a piece of bilayer or dense neighbours "
        f"beside its target, while the training simulator shows one complex alone. The networks "
        f"answer \"membrane\" for {100 * pred.get('randomized', 0.0):.0f} % (randomized) and "
        f"{100 * pred.get('baseline', 0.0):.0f} % (baseline) of the test subtomograms, against a "
        f"true share of {100 * share:.0f} %.")
    length = (f"*Training length.* These runs trained {iterations:,} iterations each; the paper "
              "trained 15,000.")
    structures = ("*Structures.* The classes are stand-ins from the offline structures (yeast 80S "
                  "ribosome, yeast 26S proteasome, yeast TRiC, procedural membranes), not the "
                  "rat-neuron complexes.")
    formation = ("*Image formation.* The test domain projects, applies a per-tilt CTF with a "
                 "defocus gradient, shot noise and weighted back-projection; the training "
                 "simulator convolves. Bridging that gap is what domain randomization is for, and "
                 "how wide the gap is decides whether it can.")
    return [context, noise, length, structures, formation]
