"""SHREC 2020's methods: the saved pieces assembled into the results and the chapter's tables.

:func:`assemble` merges the pieces of :mod:`.experiment` (one per method) into the data of
``results/shrec_methods.json`` in the layout :mod:`.comparison` reads (``methods.KEY``: row,
seeds, evaluations, summary, timing, curve), with the paper's Tables 3, 4, 6 and 7 beside ours,
Section 5's findings checked on our rows and F1 against molecular weight (Fig. 11). The
``*_rows`` functions give the chapter's tables of the plan, the timings and the findings.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cryo_companion.papers.shrec2020.comparison import (
    METHOD_KEYS,
    beside_paper,
    f1_vs_weight,
    findings,
    method_summary,
    summarise,
)
from cryo_companion.papers.shrec2020.experiment import HEADLINE_MODE, Plan
from cryo_companion.papers.shrec2020.train import METHODS

__all__ = ["assemble", "finding_rows", "our_rows", "plan_rows", "timing_rows"]


def _entry(row: str, seeds: Sequence[int], evaluations: Mapping[str, Sequence[Mapping]],
           timing: dict[str, Any], **extra: Any) -> dict[str, Any]:
    head = list(evaluations[HEADLINE_MODE])
    return {"row": row, "seeds": list(seeds), "evaluations": head,
            "evaluations_default": list(evaluations["default"]),
            "summary": method_summary(head),
            "summary_default": method_summary(list(evaluations["default"])),
            "timing": timing, **extra}


def assemble(p: Plan, pieces: Mapping[str, Mapping[str, Any] | None]) -> dict[str, Any]:
    """Merge the pieces into the data of ``results/shrec_methods.json``.

    Parameters
    ----------
    p : Plan
        The plan.
    pieces : mapping
        Method (:data:`PIECES`) -> its piece, or None where it is missing.

    Returns
    -------
    dict
        ``scale``, ``plan``, ``headline_mode``, ``methods`` (``KEY`` of
        :data:`~.comparison.METHOD_KEYS` -> row, seeds, ``evaluations`` (headline mode, one
        per seed), ``evaluations_default``, ``summary``, ``summary_default``, ``timing``
        (``training_s`` and ``inference_s`` per seed) and, for the networks, ``curve`` and
        ``training``), ``missing`` (keys without a piece), ``tables`` (Tables 3, 4, 6, 7
        beside the paper's), ``findings`` (Section 5, on our rows), ``f1_vs_weight``.
    """
    methods: dict[str, Any] = {}
    for key in METHODS:
        pc = pieces.get(key)
        if not pc:
            continue
        tr = pc["training"]
        runs = tr["runs"]
        timing = {"training_s": [tr["train_s_per_run"]] * len(runs),
                  "training_s_group": tr["train_s"], "runs_per_step": tr["runs_per_step"],
                  "stepper": tr["stepper"], "iterations": [r["iterations"] for r in runs],
                  "inference_s": list(pc["inference_s"]), "score_s": tr["score_s"],
                  "budget_s": tr["settings"]["budget_s"], "stopped_by": tr["stopped_by"],
                  "device": pc["device"]}
        methods[key] = _entry(METHOD_KEYS[key], tr["seeds"], pc["evaluations"], timing,
                              curve=pc["curve"], curve_view=pc["curve_view"], training=tr,
                              postprocess=pc["postprocess"])
    tm = pieces.get("tm")
    if tm:
        for name, key in (("TM-T", "tm_t"), ("TM-F", "tm_f")):
            lst = tm["lists"][name]
            timing = {"training_s": [None], "inference_s": [tm["inference_s"]],
                      "device": tm["device"]}
            methods[key] = _entry(name, [], lst["evaluations"], timing, cap=tm["cap"])
    missing = [k for k in METHOD_KEYS if k not in methods]
    tables = {t: beside_paper(t, our_rows(methods, t))
              for t in ("table3", "table4", "table6", "table7")}
    rows = {t: {m["row"]: {c: (v.get("mean") if isinstance(v, Mapping) else v)
                           for c, v in m["summary"][t].items()} for m in methods.values()}
            for t in ("table3", "table4", "table6")}
    found = [f.to_dict() for f in findings(rows["table3"], rows["table4"], rows["table6"])]
    weight = {m["row"]: f1_vs_weight(rows["table4"][m["row"]]) for m in methods.values()}
    return {"scale": p.scale, "plan": p.to_dict(), "headline_mode": HEADLINE_MODE,
            "methods": methods, "missing": missing, "tables": tables, "findings": found,
            "f1_vs_weight": weight}


def our_rows(methods: Mapping[str, Mapping[str, Any]], table: str
                   ) -> dict[str, dict[str, Any]]:
    """Our rows of a paper table (summaries over seeds), named as the paper names them.

    Parameters
    ----------
    methods : mapping
        ``data["methods"]`` of :func:`assemble`.
    table : str
        ``"table3"``, ``"table4"``, ``"table6"`` or ``"table7"`` (seconds; template matching's
        search is the row ``"TM-T/TM-F GPU"`` or ``"... CPU"`` by the device it ran on).

    Returns
    -------
    dict
        Row name -> column -> ``{"mean", "std", "n"}`` (None where missing).
    """
    if table != "table7":
        return {m["row"]: dict(m["summary"][table]) for m in methods.values()}
    out: dict[str, dict[str, Any]] = {}
    for key, m in methods.items():
        t = m["timing"]
        if key in ("tm_t", "tm_f"):
            kind = "GPU" if str(t.get("device", "")).startswith("cuda") else "CPU"
            out[f"TM-T/TM-F {kind}"] = {"Training stage": None,
                                        "Inference stage": summarise(t["inference_s"])}
        else:
            out[m["row"]] = {"Training stage": summarise(t["training_s"]),
                             "Inference stage": summarise(t["inference_s"])}
    return out


def plan_rows(p: Plan) -> dict[str, dict[str, str]]:
    """Return the chapter's table of the plan: setting -> ``{"value": text}``.

    Parameters
    ----------
    p : Plan
        The plan.

    Returns
    -------
    dict
    """
    rows = {"scale": p.scale, "training models": ", ".join(map(str, p.train_models)),
            "test model": str(p.test_model), "seeds per network": ", ".join(map(str, p.seeds))}
    for m, s in p.train.items():
        budget = (f"{s.budget_s:g} s for the {len(p.seeds)} seeds together (at most "
                  f"{s.iters:,} iterations)" if s.budget_s else f"{s.iters} iterations")
        size = s.network.get("patch", s.network.get("box"))
        rows[f"{m} training"] = (f"{budget}; batch {s.batch_size} of {size}³; Adam lr "
                                 f"{s.lr:g}; {s.points} scored points; {s.precision}")
    rows["F1 curves scored on"] = ("the whole test model" if p.curve_crop_yx is None else
                                   f"its central {p.curve_crop_yx}² in y, x")
    rows["template matching"] = (f"{p.tm_budget_s:g} s of correlations for the twelve classes"
                                 if p.tm_budget_s else
                                 f"at most {p.tm_max_rotations} rotations per class")
    return {k: {"value": v} for k, v in rows.items()}


def timing_rows(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the chapter's table of timings: method row -> column -> value.

    Parameters
    ----------
    data : mapping
        :func:`assemble`'s output.

    Returns
    -------
    dict
        ``training s per run``, ``iterations``, ``runs per step``, ``stepper``, ``stopped by``,
        ``inference s`` (mean over seeds), ``device``.
    """
    out: dict[str, dict[str, Any]] = {}
    for m in data["methods"].values():
        t = m["timing"]
        inf = [x for x in t.get("inference_s", []) if x is not None]
        tr = [x for x in t.get("training_s", []) if x is not None]
        out[m["row"]] = {"training s per run": float(np.mean(tr)) if tr else None,
                         "iterations": ", ".join(map(str, t.get("iterations", []))) or None,
                         "runs per step": t.get("runs_per_step"),
                         "stepper": t.get("stepper"), "stopped by": t.get("stopped_by"),
                         "inference s": float(np.mean(inf)) if inf else None,
                         "device": t.get("device")}
    return out


def finding_rows(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the chapter's table of Section 5's findings: key -> claim, verdict, our numbers.

    Parameters
    ----------
    data : mapping
        :func:`assemble`'s output.

    Returns
    -------
    dict
        ``claim`` (the paper's words), ``holds here`` (yes / no / not measurable), ``ours``
        (the sentence from our numbers).
    """
    verdict = {True: "yes", False: "no", None: "not measurable (numbers missing)"}
    return {f["key"]: {"claim": f["claim"], "holds here": verdict[f["holds"]],
                       "ours": f["text"]} for f in data["findings"]}
