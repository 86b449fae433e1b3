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
* the **target** (:func:`target_verdict`): does the randomized context arm reach the paper's
  0.818 accuracy and 0.300 mIoU on both domains, with the interval of its difference to the
  baseline above zero? Computed, and said plainly either way.

The paper-scale runs are trained by the GPU jobs (:mod:`cryo_companion.papers.che2019.jobs`) and
exported (:mod:`cryo_companion.papers.che2019.weights`); :func:`exported_runs` finds them and
:func:`evaluate_table1` evaluates them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cryo_companion.models.dsrf3d import DSRF3DConfig
from cryo_companion.papers.che2019.evaluate import (
    COMPARISONS,
    PAPER_THRESHOLDS,
    SWEEP_THRESHOLDS,
    comparison_name,
    evaluate,
    summarize_runs,
)
from cryo_companion.papers.che2019.ladder_eval import PROTOCOLS, Protocol
from cryo_companion.papers.che2019.train import ARMS, base_arm
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
    "TARGET_ARM",
    "best_sweep_line",
    "bullets",
    "claim_verdicts",
    "difference_reasons",
    "difference_verdicts",
    "domain_letter",
    "evaluate_table1",
    "exported_runs",
    "first_evaluation_summary",
    "first_runs",
    "headline",
    "missing_runs",
    "paper_values",
    "per_class_sections",
    "per_class_table",
    "predicted_share",
    "protocol_title",
    "reality_gap_lines",
    "reality_gap_markdown",
    "runs_table",
    "table1_markdown",
    "table1_sections",
    "target_lines",
    "target_markdown",
    "target_verdict",
    "test_sets_lines",
    "timing_table",
    "training_lengths",
    "training_record_summary",
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
#: The arm the target is about (issue 14): domain randomization with the context randomized.
TARGET_ARM = "randomized+context"
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


def _differences(summary: Mapping[str, Any]) -> dict[str, Any]:
    """``summary["differences"]``, or the randomized − baseline one of an older summary."""
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
    diffs = _differences(summary)
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
    diffs = _differences(summary)
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


def target_verdict(evaluation: Mapping[str, Any], protocol: str = "paper", *,
                   arm: str = TARGET_ARM, against: str = "baseline") -> dict[str, Any]:
    """Decide the issue's target on every domain under one test protocol.

    The target: the randomized context arm reaches the paper's accuracy (0.818) and mIoU
    (0.300) of the randomized arm (mean over seeds at least the paper's value) on every frozen
    test domain, and the 95 % Welch-t interval of its difference to the baseline lies above zero
    for both metrics.

    Parameters
    ----------
    evaluation : mapping
        :func:`evaluate_table1`'s result.
    protocol : str
        The test protocol (``"paper"`` or ``"matched"``).
    arm : str
        The arm tested (:data:`TARGET_ARM`).
    against : str
        The arm its difference is taken to (the paper's baseline).

    Returns
    -------
    dict
        ``{"met": bool, "protocol", "arm", "against", "scale", "targets": {metric: paper value},
        "domains": {domain: {"met": bool, "missing": str or None, metric: {"mean", "std", "n",
        "target", "reached", "difference": {"diff", "low", "high"} or None, "above_zero"}}}}``.
        A domain without the arm's runs, or with fewer than 2 seeds for an interval, is not met
        and says why in ``missing``.
    """
    paper = paper_values()
    targets = {k: paper[(ARM_ROWS["randomized"], k)] for k in ("accuracy", "miou")}
    out: dict[str, Any] = {"protocol": protocol, "arm": arm, "against": against,
                           "targets": targets, "scale": evaluation.get("scale", "paper"),
                           "domains": {}}
    name = comparison_name(arm, against)
    for d, dom in evaluation["domains"].items():
        summ = dom["protocols"][protocol]["summary"]
        a = summ["arms"].get(arm)
        cell: dict[str, Any] = {"met": False, "missing": None}
        if a is None:
            cell["missing"] = f"no runs of {arm}"
            out["domains"][d] = cell
            continue
        diffs = _differences(summ).get(name, {})
        ok = True
        for k, target in targets.items():
            g = diffs.get(k, {}).get("t")
            reached = bool(a[k]["mean"] >= target)
            above = bool(g is not None and g["low"] > 0)
            cell[k] = {"mean": a[k]["mean"], "std": a[k]["std"], "n": a[k]["n"],
                       "target": target, "reached": reached,
                       "difference": None if g is None else
                       {x: g[x] for x in ("diff", "low", "high")}, "above_zero": above}
            if g is None and cell["missing"] is None:
                cell["missing"] = (f"no interval for {name} (fewer than 2 seeds, or no runs of "
                                   f"{against})")
            ok = ok and reached and above
        cell["met"] = ok
        out["domains"][d] = cell
    out["met"] = bool(out["domains"]) and all(c["met"] for c in out["domains"].values())
    return out


def target_lines(target: Mapping[str, Any]) -> list[str]:
    """Say the target's verdict plainly, domain by domain (Markdown).

    Parameters
    ----------
    target : mapping
        :func:`target_verdict`'s result.

    Returns
    -------
    list of str
        A first line saying whether the target is met under the protocol, then one per domain
        with both metrics against the paper's values and the intervals of the difference.
    """
    t = target["targets"]
    arm, against, proto = target["arm"], target["against"], target["protocol"]
    head = (f"**Target {'met' if target['met'] else 'not met'}** ({proto} protocol): {arm} "
            f"{'reaches' if target['met'] else 'does not reach'} the paper's accuracy "
            f"{t['accuracy']:.3f} and mIoU {t['miou']:.3f} on every frozen domain with the 95 % "
            f"interval of its difference to {against} above zero.")
    lines = [head]
    for d, c in target["domains"].items():
        letter = domain_letter(d)
        if c.get("accuracy") is None:
            lines.append(f"Domain {letter}: {c['missing']}.")
            continue
        parts = []
        for k, label in (("accuracy", "accuracy"), ("miou", "mIoU")):
            m = c[k]
            sd = f" ± {m['std']:.3f}" if m["std"] is not None else ""
            g = m["difference"]
            ci = ("no interval" if g is None else
                  f"{comparison_name(arm, against)} {g['diff']:+.3f} [{g['low']:+.3f}, "
                  f"{g['high']:+.3f}], {'above zero' if m['above_zero'] else 'not above zero'}")
            parts.append(f"{label} {m['mean']:.3f}{sd} ({'reaches' if m['reached'] else 'below'}"
                         f" {m['target']:.3f}; {ci})")
        lines.append(f"Domain {letter}: " + "; ".join(parts) + (" — met." if c["met"] else
                                                                " — not met."))
    return lines


def reality_gap_lines(result: Mapping[str, Any] | None, protocol: str = "paper") -> list[str]:
    """Read what is left, rung by rung: the reality-gap chapter's recorded verdicts.

    Parameters
    ----------
    result : mapping or None
        ``load_result("reality_gap")`` (``results/reality_gap.json``).
    protocol : str
        The test protocol whose verdicts are read.

    Returns
    -------
    list of str
        A line saying where the numbers come from (commit, scale, the weights evaluated), then
        the chapter's verdicts under ``protocol``; one line saying it is missing without it.
    """
    if not result:
        return ["The reality-gap ladder has no recorded result yet (results/reality_gap.json)."]
    data, prov = result["data"], result["provenance"]
    arms = sorted({w.split("_seed")[0].removeprefix("table1_") for w in data.get("weights", [])})
    scale = data.get("scale", {})
    head = (f"From results/reality_gap.json (commit {str(prov.get('commit'))[:7]}, "
            f"{'reduced' if scale.get('reduced') else 'full'} ladder scale, "
            f"{len(data.get('weights', []))} weight files of the arms {', '.join(arms)}; "
            f"{protocol} protocol):")
    return [head, *data["verdicts"][protocol]]


def exported_runs(arms: Sequence[str] = TABLE1_ARMS, seeds: Sequence[int] = TABLE1_SEEDS,
                  scale: str = "paper") -> dict[tuple[str, int], dict[str, Any] | None]:
    """Find the exported run of every arm and seed (:mod:`cryo_companion.papers.che2019.weights`).

    Parameters
    ----------
    arms : sequence of str
        The arms.
    seeds : sequence of int
        The seeds.
    scale : str
        ``"paper"`` (``results/``) or ``"smoke"`` (``results/smoke/``).

    Returns
    -------
    dict
        ``{(arm, seed): training record or None}``; a record whose weights file is missing or
        altered (its SHA-256) counts as None.
    """
    from cryo_companion.papers.che2019.weights import load_record, weights_dir
    from cryo_companion.runs.sources import file_sha256

    out: dict[tuple[str, int], dict[str, Any] | None] = {}
    for a in arms:
        for s in seeds:
            rec = load_record(a, s, scale)
            if rec is not None:
                w = weights_dir(scale) / rec["data"]["weights"]
                if not w.is_file() or file_sha256(w) != rec["data"]["weights_sha256"]:
                    rec = None
            out[(a, s)] = rec
    return out


def missing_runs(records: Mapping[tuple[str, int], Any]) -> list[str]:
    """Name the runs that have no exported result.

    Parameters
    ----------
    records : mapping
        :func:`exported_runs`'s result.

    Returns
    -------
    list of str
        ``"ARM seed S"`` for every None.
    """
    return [f"{a} seed {s}" for (a, s), r in records.items() if r is None]


def evaluate_table1(weights: Mapping[tuple[str, int], str | Path], sets: Mapping[str, Any], *,
                    device: torch.device | str = "cpu",
                    protocols: Sequence[Protocol] = PROTOCOLS,
                    sweep: Sequence[float] = SWEEP_THRESHOLDS, batch_size: int = 64,
                    level: float = 0.95, scale: str = "paper") -> dict[str, Any]:
    """Evaluate every run on every test set under every protocol, and summarise over seeds.

    Parameters
    ----------
    weights : mapping
        ``{(arm, seed): weights file}``.
    sets : mapping
        ``{domain name: SubtomogramSet}`` (the frozen domains' test sets).
    device : torch.device or str
        Where the networks run.
    protocols : sequence of Protocol
        Test-time preprocessings (default both: the paper's filter, and none).
    sweep : sequence of float
        Mask thresholds of the sweep.
    batch_size : int
        Subtomograms per forward pass.
    level : float
        Confidence level of the differences.
    scale : str
        The scale of the runs and sets (``"smoke"``: every table made from the result says
        so, :data:`SMOKE_NOTE`).

    Returns
    -------
    dict
        ``{"scale", "domains": {domain: {"test_domain": {name, hash, version}, "n", "counts",
        "protocols": {protocol: {"sigma_vox", "description", "runs": [{"arm", "seed",
        "metrics"}], "summary": summarize_runs(...)}}}}}``; each arm at the paper's mask
        threshold of the arm it is built on (V).
    """
    from cryo_companion.models.dsrf3d import load_weights
    from cryo_companion.papers.che2019.test_domain import domain_record

    if not weights:
        raise ValueError("no weights to evaluate")
    if not sets:
        raise ValueError("no test sets to evaluate on")
    models = {key: load_weights(path, map_location=device)[0]
              for key, path in sorted(weights.items())}
    out: dict[str, Any] = {"scale": scale, "domains": {}}
    for d, test in sets.items():
        dom: dict[str, Any] = {"test_domain": domain_record(test), "n": len(test),
                               "counts": dict(test.counts), "protocols": {}}
        for p in protocols:
            runs = []
            for (arm, seed), model in models.items():
                ev = evaluate(model, test, threshold=PAPER_THRESHOLDS[base_arm(arm)],
                              sigma_vox=p.sigma_vox, sweep=sweep, batch_size=batch_size)
                runs.append({"arm": arm, "seed": seed, "metrics": ev.metrics})
            dom["protocols"][p.name] = {"sigma_vox": p.sigma_vox, "description": p.description,
                                        "runs": runs,
                                        "summary": summarize_runs(runs, level=level)}
        out["domains"][d] = dom
    return out


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
        :func:`evaluate_table1`'s result.
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
    return _noted(evaluation, "\n\n".join(out))


def _noted(evaluation: Mapping[str, Any] | None, text: str) -> str:
    """``text`` after :data:`SMOKE_NOTE` when the evaluation is at smoke scale."""
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
    return _noted({"scale": scale}, text)


def per_class_sections(evaluation: Mapping[str, Any]) -> str:
    """Tabulate every arm's per-class accuracy on every domain under every protocol.

    Parameters
    ----------
    evaluation : mapping
        :func:`evaluate_table1`'s result.

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
    return _noted(evaluation, "\n\n".join(out))


def headline(evaluation: Mapping[str, Any], domain: str | None = None,
             protocol: str = "paper") -> dict[str, Any]:
    """Table I's own setting: the summary on the first domain under the paper's protocol.

    Parameters
    ----------
    evaluation : mapping
        :func:`evaluate_table1`'s result.
    domain : str or None
        The domain (default the first frozen one, Table I's).
    protocol : str
        The protocol (default the paper's).

    Returns
    -------
    dict
        ``summarize_runs`` keys (``arms``, ``differences``, ``difference``) and ``runs``: one
        flat record per run (``arm``, ``seed`` and its metrics), as ``results/table1.json`` has
        kept them at its top level (the claims and the reality-gap chapter read them).
    """
    from cryo_companion.papers.che2019.test_domain import DEFAULT_DOMAIN

    pr = evaluation["domains"][domain or DEFAULT_DOMAIN]["protocols"][protocol]
    return {**pr["summary"],
            "runs": [{"arm": r["arm"], "seed": r["seed"], **r["metrics"]} for r in pr["runs"]]}


def training_lengths(records: Mapping[tuple[str, int], Mapping[str, Any] | None],
                     paper_iters: int = PAPER_ITERS, scale: str = "paper") -> str:
    """Say how long every arm's runs trained, and plainly when that is not the paper's length.

    Parameters
    ----------
    records : mapping
        ``{(arm, seed): training record or None}`` (:func:`exported_runs`).
    paper_iters : int
        The paper's iterations (15,000, IV-A).
    scale : str
        ``"smoke"`` puts :data:`SMOKE_NOTE` first.

    Returns
    -------
    str
        One Markdown bullet per arm: its seeds and iterations, "**reduced**" when fewer than
        the paper's, and the runs that are missing.
    """
    by_arm: dict[str, list[tuple[int, int | None]]] = {}
    for (arm, seed), rec in records.items():
        it = None if rec is None else int(rec["data"]["config"]["iters"])
        by_arm.setdefault(arm, []).append((seed, it))
    lines = []
    for arm, runs in by_arm.items():
        done = [(s, i) for s, i in runs if i is not None]
        missing = [s for s, i in runs if i is None]
        iters = sorted({i for _, i in done})
        text = f"- {arm}: "
        if done:
            text += (f"{len(done)} seed{'s' if len(done) > 1 else ''} "
                     f"({', '.join(str(s) for s, _ in done)}), "
                     f"{' / '.join(f'{i:,}' for i in iters)} iterations each")
            if min(iters) < paper_iters:
                text += f" (**reduced**: the paper trained {paper_iters:,})"
        else:
            text += "no run yet"
        if missing:
            text += f"; missing: seed{'s' if len(missing) > 1 else ''} " + ", ".join(
                map(str, missing))
        lines.append(text)
    return _noted({"scale": scale}, "\n".join(lines))


def test_sets_lines(evaluation: Mapping[str, Any]) -> str:
    """List the test sets evaluated on: domain, role, size, classes and hash (Markdown).

    Parameters
    ----------
    evaluation : mapping
        :func:`evaluate_table1`'s result.

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
    return _noted(evaluation, "\n".join(out))


def target_markdown(targets: Mapping[str, Mapping[str, Any]]) -> str:
    """Write the target's verdict under every protocol (:func:`target_lines`) as Markdown.

    Parameters
    ----------
    targets : mapping
        ``{protocol: target_verdict(...)}``.

    Returns
    -------
    str
        Per protocol, the verdict line and one bullet per domain; a sentence when there is none.
    """
    if not targets:
        return "No runs to test the target on."
    blocks = []
    smoke = False
    for t in targets.values():
        first, *rest = target_lines(t)
        smoke = smoke or t.get("scale") == "smoke"
        blocks.append("\n".join([first, *(f"- {line}" for line in rest)]))
    return _noted({"scale": "smoke" if smoke else "paper"}, "\n\n".join(blocks))


def reality_gap_markdown(result: Mapping[str, Any] | None,
                         protocols: Sequence[str] = ("paper", "matched")) -> str:
    """Write the reality-gap chapter's recorded verdicts under every protocol (Markdown).

    Parameters
    ----------
    result : mapping or None
        ``load_result("reality_gap")``.
    protocols : sequence of str
        The protocols to read.

    Returns
    -------
    str
        Per protocol, :func:`reality_gap_lines`'s source line and its verdicts as bullets.
    """
    if not result:
        return reality_gap_lines(None)[0]
    blocks = []
    for p in protocols:
        first, *rest = reality_gap_lines(result, p)
        blocks.append("\n".join([first, *(f"- {line}" for line in rest)]))
    return "\n\n".join(blocks)


def first_runs(weights: Mapping[tuple[str, int], Any]) -> dict[str, Any]:
    """Pick each arm's run of lowest seed (the one Fig. 5 shows), in :data:`TABLE1_ARMS` order.

    Parameters
    ----------
    weights : mapping
        ``{(arm, seed): anything}`` (weights files, records).

    Returns
    -------
    dict
        ``{arm: the value of its lowest seed}``.
    """
    out = {}
    for arm in [*TABLE1_ARMS, *sorted({a for a, _ in weights} - set(TABLE1_ARMS))]:
        seeds = sorted(s for a, s in weights if a == arm)
        if seeds:
            out[arm] = weights[(arm, seeds[0])]
    return out


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


def training_record_summary(records: Mapping[tuple[str, int], Mapping[str, Any] | None]
                            ) -> dict[str, Any]:
    """Keep, for the result, what matters of every run's training record.

    Parameters
    ----------
    records : mapping
        ``{(arm, seed): training record or None}``.

    Returns
    -------
    dict
        ``{"runs": {"ARM seed S": {config, device, weights, weights_sha256, state_dtype,
        commit} or None}, "missing": [...]}``.
    """
    runs: dict[str, Any] = {}
    for (a, s), r in records.items():
        runs[f"{a} seed {s}"] = None if r is None else {
            **{k: r["data"][k] for k in ("config", "device", "weights", "weights_sha256",
                                         "state_dtype")},
            "commit": r["provenance"]["commit"]}
    return {"runs": runs, "missing": missing_runs(records)}


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
