"""Table I's target (issue 14), decided from the numbers, and what is left, rung by rung.

The target: the arm with domain randomization *and* the context randomized
(:data:`TARGET_ARM`) reaches the paper's 0.818 classification accuracy and 0.300 mIoU on both
frozen test domains, with the 95 % Welch-t interval of its difference to the paper's baseline
above zero (:func:`target_verdict`, said plainly by :func:`target_lines`). What is left is read,
not copied, from the reality-gap chapter's recorded verdicts (``results/reality_gap.json``,
:func:`reality_gap_lines`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cryo_companion.papers.che2019.evaluate import comparison_name
from cryo_companion.papers.che2019.table1 import (
    ARM_ROWS,
    domain_letter,
    paper_values,
    smoke_noted,
    summary_differences,
)

__all__ = ["TARGET_ARM", "reality_gap_lines", "reality_gap_markdown", "target_lines",
           "target_markdown", "target_verdict"]

#: The arm the target is about (issue 14): domain randomization with the context randomized.
TARGET_ARM = "randomized+context"


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
        :func:`~cryo_companion.papers.che2019.table1_runs.evaluate_table1`'s result.
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
        diffs = summary_differences(summ).get(name, {})
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
    return smoke_noted({"scale": "smoke" if smoke else "paper"}, "\n\n".join(blocks))


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
