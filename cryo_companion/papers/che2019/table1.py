"""Table I of Che et al. 2019 assembled from our runs: four arms, two domains, two protocols.

Everything here is computed from a summary of runs
(:func:`cryo_companion.papers.che2019.evaluate.summarize_runs`) and the paper's cited values
(:mod:`cryo_companion.papers.che2019.claims`); the chapter only shows the results.

What Table I reports here (issue 14, beyond the paper where said):

* **four arms** (:data:`TABLE1_ARMS`): the paper's two (domain randomization and the fixed
  baseline) and both again with the context randomized (neighbours packed in the box, ours);
* on **both frozen test domains** (:data:`~cryo_companion.papers.che2019.test_domain.
  DOMAIN_FILES`: Table I's, and the second one, frozen before any context arm was evaluated);
* under **both test protocols** (:data:`~cryo_companion.papers.che2019.ladder_eval.PROTOCOLS`):
  the paper's (the Gaussian filter at test time, IV-B) and one that matches training (no
  filter);
* the differences of :data:`~cryo_companion.papers.che2019.evaluate.COMPARISONS` with 95 %
  Welch-t intervals (each context arm minus its paper arm, randomized minus baseline, and the
  randomized context arm minus the paper's baseline);
* the **target** (:func:`~cryo_companion.papers.che2019.table1_target.target_verdict`): does
  the randomized context arm reach the paper's 0.818 accuracy and 0.300 mIoU on both domains,
  with the interval of its difference to the baseline above zero? Computed, and said plainly
  either way.

The paper-scale runs are trained by the GPU jobs (:mod:`cryo_companion.papers.che2019.jobs`) and
exported (:mod:`cryo_companion.papers.che2019.weights`);
:mod:`cryo_companion.papers.che2019.table1_runs` finds and evaluates them, and
:mod:`cryo_companion.papers.che2019.table1_target` decides the target and reads what the
reality-gap chapter recorded.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cryo_companion.models.dsrf3d import DSRF3DConfig
from cryo_companion.papers.che2019.evaluate import COMPARISONS, comparison_name
from cryo_companion.papers.che2019.ladder_eval import PROTOCOLS, Protocol
from cryo_companion.papers.che2019.train import ARMS
from cryo_companion.papers.claims import claims, compare, verdict
from cryo_companion.tables import format_table

__all__ = [
    "ARM_ROWS",
    "LABELS",
    "MISSING",
    "PAPER_ITERS",
    "SMOKE_NOTE",
    "SMOKE_TRAINING",
    "TABLE1_ARMS",
    "TABLE1_SEEDS",
    "best_sweep_line",
    "bullets",
    "claim_verdicts",
    "difference_reasons",
    "difference_verdicts",
    "domain_letter",
    "first_evaluation_summary",
    "paper_values",
    "per_class_sections",
    "per_class_table",
    "predicted_share",
    "protocol_title",
    "runs_table",
    "smoke_noted",
    "summary_differences",
    "table1_markdown",
    "table1_sections",
    "test_sets_lines",
    "timing_table",
    "training_time_summary",
]

#: Our metric keys and how the table names them.
LABELS: dict[str, str] = {"accuracy": "classification accuracy", "pixel_accuracy": "pixel accuracy",
                          "miou": "mIoU (target IoU, mean)", "iou_pooled": "target IoU, pooled",
                          "miou_fg_bg": "mean IoU target + background"}
#: The arms of Table I in the order shown: the paper's two, then the context arms (ours).
TABLE1_ARMS: tuple[str, ...] = ARMS
#: Seeds of every arm at paper scale, and the paper's training length (IV-A).
TABLE1_SEEDS: tuple[int, ...] = (0, 1, 2)
PAPER_ITERS = 15_000
#: Our arms and the row names of the table (the paper's names for the paper's arms, Table I).
ARM_ROWS: dict[str, str] = {"baseline": "w/o domain randomization",
                            "randomized": "w/ domain randomization",
                            "baseline+context": "w/o domain randomization, context randomized "
                                                "(ours)",
                            "randomized+context": "w/ domain randomization and context "
                                                  "randomized (ours)"}
#: What a cell shows for a run or arm that has no result yet.
MISSING = "missing (not trained yet)"
#: What every smoke-scale table and verdict says first.
SMOKE_NOTE = ("*Smoke scale: two iterations of narrow networks, tested on 9 subtomograms per "
              "domain; these numbers only show that the code runs and mean nothing.*")
#: The smoke-scale runs' settings (a few iterations of tiny batches, narrow channels: they only
#: check that everything runs; none of their numbers means anything).
SMOKE_TRAINING: dict[str, Any] = {"iters": 2, "batch_size": 2, "checkpoint_every": 0,
                                  "val_every": 2, "val_size": 2,
                                  "model": DSRF3DConfig(enc_widths=(4, 8, 8, 16, 16),
                                                        fc_widths=(16, 16))}


def paper_values() -> dict[tuple[str, str], float]:
    """Collect the paper's Table I values, keyed ``(paper row, metric key)``.

    Returns
    -------
    dict
        ``{("w/ domain randomization", "accuracy"): 0.818, ...}``.
    """
    return {(c.row, c.key.split(".")[2]): c.value for c in claims(result="table1")}


def summary_differences(summary: Mapping[str, Any]) -> dict[str, Any]:
    """Return the differences of arms of a summary, also of an older one.

    Parameters
    ----------
    summary : mapping
        ``summarize_runs`` of the runs.

    Returns
    -------
    dict
        ``summary["differences"]``, or ``{"randomized − baseline": summary["difference"]}`` for
        a summary from before the context arms (empty when it has none).
    """
    if "differences" in summary:
        return dict(summary["differences"])
    d = summary.get("difference") or {}
    return {comparison_name("randomized", "baseline"): d} if d else {}


def table1_markdown(summary: Mapping[str, Any], arms: Sequence[str] = ("randomized", "baseline"),
                    comparisons: Sequence[tuple[str, str]] | None = None) -> str:
    """Our Table I beside the paper's: mean ± std over seeds, and the differences of arms.

    Parameters
    ----------
    summary : mapping
        ``summarize_runs`` of the runs.
    arms : sequence of str
        The arms to show, in order (an arm without runs shows as :data:`MISSING`).
    comparisons : sequence of (str, str) or None
        The differences to show (first minus second); default those of
        :data:`~cryo_companion.papers.che2019.evaluate.COMPARISONS` between shown arms.

    Returns
    -------
    str
        A Markdown table: one row per arm (with the paper's value in parentheses where it gives
        one), then one row per difference with its 95 % Welch-t interval ("n/a" with fewer
        than two seeds in an arm).
    """
    paper = paper_values()
    if comparisons is None:
        comparisons = [c for c in COMPARISONS if c[0] in arms and c[1] in arms]
    rows: dict[str, dict[str, object]] = {}
    for arm in arms:
        row = ARM_ROWS[arm]
        a = summary["arms"].get(arm)
        if a is None:
            rows[f"{row} (missing)"] = dict.fromkeys(LABELS.values(), MISSING)
            continue
        cells: dict[str, object] = {}
        for k, label in LABELS.items():
            s = a.get(k)
            p = paper.get((row, k))
            ps = f" (paper {p:.3f})" if p is not None else ""
            if s is None:
                cells[label] = "-" + ps
                continue
            sd = f" ± {s['std']:.3f}" if s["std"] is not None else ""
            cells[label] = f"{s['mean']:.3f}{sd}" + ps
        rows[f"{row} (t = {a['threshold']}, {a['accuracy']['n']} seeds)"] = cells
    diffs = summary_differences(summary)
    for first, second in comparisons:
        name = comparison_name(first, second)
        diff: dict[str, object] = {}
        for k, label in LABELS.items():
            d = diffs.get(name, {}).get(k, {}).get("t")
            diff[label] = f"{d['diff']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]" if d else "n/a"
        rows[f"{name} (95 % CI, Welch t)"] = diff
    return format_table(rows, list(LABELS.values()), first="arm", style="markdown")


def protocol_title(domain: Mapping[str, Any], protocol: Protocol | str) -> str:
    """Say which test domain and which test protocol a table is on.

    Parameters
    ----------
    domain : mapping
        The domain's record (``{"name", "hash", ...}`` of
        :func:`~cryo_companion.papers.che2019.test_domain.domain_record`) with its ``n``.
    protocol : Protocol or str
        A protocol of :data:`~cryo_companion.papers.che2019.ladder_eval.PROTOCOLS` or its name.

    Returns
    -------
    str
        ``"Domain A (che2019_test_domain, Table I's), N subtomograms; the paper's protocol
        (...)"``.
    """
    p = _protocol(protocol)
    name = domain.get("name")
    letter = domain_letter(name)
    role = ("Table I's test domain" if letter == "A" else
            "the second domain, frozen before any context arm was evaluated" if letter == "B"
            else "not a frozen domain")
    which = "the paper's protocol" if p.name == "paper" else "the protocol that matches training"
    n = f", {domain['n']:,} subtomograms" if domain.get("n") is not None else ""
    return f"Domain {letter} ({name}: {role}{n}); {which}: {p.description}"


def _protocol(protocol: Protocol | str) -> Protocol:
    if isinstance(protocol, Protocol):
        return protocol
    for p in PROTOCOLS:
        if p.name == protocol:
            return p
    raise ValueError(f"unknown protocol {protocol!r}; valid: "
                     f"{', '.join(q.name for q in PROTOCOLS)}")


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
        over seeds ("ours not produced yet" for an arm without runs).
    """
    out = []
    for c in claims(result="table1"):
        _, arm, key = c.key.split(".")[:3]
        cell = summary["arms"].get(arm, {}).get(key)
        out.append(verdict(compare(c, dict(summary)), std=None if cell is None else cell["std"]))
    return out


def difference_verdicts(summary: Mapping[str, Any],
                        metrics: Sequence[str] = ("accuracy", "pixel_accuracy", "miou"),
                        comparisons: Sequence[tuple[str, str]] = (("randomized", "baseline"),)
                        ) -> list[str]:
    """Say, per difference of arms and metric, whether its interval lies above or below zero.

    Parameters
    ----------
    summary : mapping
        ``summarize_runs`` of the runs.
    metrics : sequence of str
        Metric keys of :data:`LABELS`.
    comparisons : sequence of (str, str)
        The differences (first minus second); default the paper's, randomized − baseline.

    Returns
    -------
    list of str
        For randomized − baseline: "METRIC: randomized − baseline = D (95 % CI [L, H]):
        VERDICT; DIRECTION the paper's P", VERDICT "randomization helps" (interval above 0),
        "randomization hurts" (below) or "no significant difference", DIRECTION comparing the
        sign of D with the paper's difference. For the others: "METRIC: A − B = D (95 % CI
        [L, H]): above zero | below zero | no significant difference". "too few seeds for an
        interval" without one.
    """
    paper = paper_values()
    diffs = summary_differences(summary)
    lines = []
    for first, second in comparisons:
        name = comparison_name(first, second)
        paper_pair = (first, second) == ("randomized", "baseline")
        for k in metrics:
            g = diffs.get(name, {}).get(k, {}).get("t")
            if g is None:
                lines.append(f"{LABELS[k]}: {name}: too few seeds for an interval."
                             if not paper_pair else
                             f"{LABELS[k]}: too few seeds for an interval.")
                continue
            head = (f"{LABELS[k]}: {name} = {g['diff']:+.3f} (95 % CI [{g['low']:+.3f}, "
                    f"{g['high']:+.3f}])")
            if not paper_pair:
                word = ("above zero" if g["low"] > 0 else "below zero" if g["high"] < 0 else
                        "no significant difference")
                lines.append(f"{head}: {word}.")
                continue
            pr = paper[(ARM_ROWS["randomized"], k)] - paper[(ARM_ROWS["baseline"], k)]
            sign = ("randomization helps" if g["low"] > 0 else
                    "randomization hurts" if g["high"] < 0 else "no significant difference")
            same = ("no change, unlike" if g["diff"] == 0 else
                    "the same direction as" if (g["diff"] > 0) == (pr > 0) else
                    "the opposite direction to")
            lines.append(f"{head}: {sign}; {same} the paper's {pr:+.3f}.")
    return lines


def domain_letter(name: str | None) -> str:
    """Return a frozen domain's letter here: A (Table I's), B (the second), else ``?``.

    Parameters
    ----------
    name : str or None
        A name of :data:`~cryo_companion.papers.che2019.test_domain.DOMAIN_FILES`.

    Returns
    -------
    str
        ``"A"``, ``"B"`` or ``"?"``.
    """
    from cryo_companion.papers.che2019.test_domain import DOMAIN_FILES

    names = list(DOMAIN_FILES)
    return "AB"[names.index(name)] if name in names[:2] else "?"


def table1_sections(evaluation: Mapping[str, Any], arms: Sequence[str] = TABLE1_ARMS) -> str:
    """Table I on every domain under every protocol, each table saying which it is (Markdown).

    Parameters
    ----------
    evaluation : mapping
        :func:`~cryo_companion.papers.che2019.table1_runs.evaluate_table1`'s result.
    arms : sequence of str
        The arms to show (missing ones show as missing).

    Returns
    -------
    str
        Per domain and protocol: a bold title (:func:`protocol_title`), the table
        (:func:`table1_markdown` with every difference of
        :data:`~cryo_companion.papers.che2019.evaluate.COMPARISONS`) and the verdicts of the
        differences on accuracy and mIoU (:func:`difference_verdicts`).
    """
    out = []
    for dom in evaluation["domains"].values():
        for pname, pr in dom["protocols"].items():
            summ = pr["summary"]
            title = protocol_title({**dom["test_domain"], "n": dom["n"]}, pname)
            verdicts = difference_verdicts(summ, ("accuracy", "miou"), COMPARISONS)
            out.append(f"**{title}**\n\n{table1_markdown(summ, arms)}\n\n"
                       + "\n".join(f"- {v}" for v in verdicts))
    return smoke_noted(evaluation, "\n\n".join(out))


def smoke_noted(evaluation: Mapping[str, Any] | None, text: str) -> str:
    """Put :data:`SMOKE_NOTE` before ``text`` when the evaluation is at smoke scale.

    Parameters
    ----------
    evaluation : mapping or None
        Anything with a ``"scale"`` (an evaluation, a target verdict, ``{"scale": ...}``).
    text : str
        Markdown.

    Returns
    -------
    str
        ``text``, after the note at smoke scale.
    """
    if evaluation is not None and evaluation.get("scale") == "smoke":
        return f"{SMOKE_NOTE}\n\n{text}"
    return text


def bullets(lines: Sequence[str], scale: str = "paper", *, numbered: bool = False) -> str:
    """Sentences as a Markdown list, after :data:`SMOKE_NOTE` at smoke scale.

    Parameters
    ----------
    lines : sequence of str
        The sentences.
    scale : str
        ``"smoke"`` or ``"paper"``.
    numbered : bool
        A numbered list instead of bullets.

    Returns
    -------
    str
        Markdown.
    """
    text = "\n".join(f"{i + 1}. {x}" if numbered else f"- {x}" for i, x in enumerate(lines))
    return smoke_noted({"scale": scale}, text)


def per_class_sections(evaluation: Mapping[str, Any]) -> str:
    """Tabulate every arm's per-class accuracy on every domain under every protocol.

    Parameters
    ----------
    evaluation : mapping
        :func:`~cryo_companion.papers.che2019.table1_runs.evaluate_table1`'s result.

    Returns
    -------
    str
        Per domain and protocol, a title line and :func:`per_class_table`.
    """
    out = []
    for dom in evaluation["domains"].values():
        for pname, pr in dom["protocols"].items():
            letter = domain_letter(dom["test_domain"].get("name"))
            which = "paper's protocol" if pname == "paper" else "matched protocol (no filter)"
            out.append(f"*Domain {letter}, {which}:*\n\n{per_class_table(pr['summary'])}")
    return smoke_noted(evaluation, "\n\n".join(out))


def test_sets_lines(evaluation: Mapping[str, Any]) -> str:
    """List the test sets evaluated on: domain, role, size, classes and hash (Markdown).

    Parameters
    ----------
    evaluation : mapping
        :func:`~cryo_companion.papers.che2019.table1_runs.evaluate_table1`'s result.

    Returns
    -------
    str
        One bullet per domain.
    """
    out = []
    for ev in evaluation["domains"].values():
        rec = ev["test_domain"]
        role = protocol_title({**rec, "n": ev["n"]}, "paper").split(";")[0]
        counts = ", ".join(f"{k} {v}" for k, v in ev["counts"].items())
        out.append(f"- {role}: {counts}; hash `{str(rec['hash'])[:12]}…`")
    return smoke_noted(evaluation, "\n".join(out))


def best_sweep_line(summary: Mapping[str, Any]) -> str:
    """Say each arm's best mean mIoU over the threshold sweep.

    Parameters
    ----------
    summary : mapping
        ``summarize_runs`` of the runs (each arm's ``sweep``).

    Returns
    -------
    str
        "Best mean mIoU over the sweep: ARM V (at threshold T), ...".
    """
    parts = []
    for arm in [a for a in TABLE1_ARMS if a in summary["arms"]]:
        sw = summary["arms"][arm].get("sweep")
        if sw is None:
            continue
        mu = sw["miou"]["mean"]
        i = int(np.argmax(mu))
        parts.append(f"{arm} {mu[i]:.3f} (at threshold {sw['threshold'][i]:g})")
    return "Best mean mIoU over the sweep: " + ", ".join(parts) + "." if parts else ""


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
        One row per arm (in :data:`TABLE1_ARMS` order), one column per class (``-`` for a class
        absent from the test set).
    """
    order = [a for a in TABLE1_ARMS if a in summary["arms"]]
    order += sorted(set(summary["arms"]) - set(order))
    rows = {arm: dict(summary["arms"][arm]["per_class_accuracy"]) for arm in order}
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
    called = "; ".join(f"{arm} {100 * v:.0f} %" for arm, v in sorted(
        pred.items(), key=lambda kv: TABLE1_ARMS.index(kv[0]) if kv[0] in TABLE1_ARMS else 99))
    noise = (f"*Noise.* The test domain measures SNR {test_domain_snr:.3f} (Frank & Al-Ali, "
             f"aligned pairs); the randomized preset draws SNR from [{snr_range[0]:g}, "
             f"{snr_range[1]:g}] and the paper measured ≈ 0.1 on its real data."
             if test_domain_snr is not None else "*Noise.* The test domain's SNR is not recorded.")
    context = (
        f"*Context in the box* (measured, issue 14 and the reality-gap chapter). Our test "
        f"subtomograms are cut from crowded tomograms with vesicles and membrane sheets, so a "
        f"{box}³ box ({box * voxel_size_A / 10:.0f} nm) holds dense neighbours or a piece of "
        f"bilayer beside its target, while the paper's training simulator shows one complex "
        f"alone; the context arms pack neighbours around the target in training. Share of the "
        f"test subtomograms called \"membrane\": {called}, against a true share of "
        f"{100 * share:.0f} %.")
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
