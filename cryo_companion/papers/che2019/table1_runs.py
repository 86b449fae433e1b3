"""The runs of Table I: which are exported, their evaluation, and what the result keeps of them.

Table I's runs are trained at paper scale by the GPU jobs (:mod:`cryo_companion.papers.che2019.
jobs`) and exported (:mod:`cryo_companion.papers.che2019.weights`: float16 weights in
``results/weights/``, training records with provenance in ``results/training/``).
:func:`exported_runs` finds them (a run not trained yet is None, and shows as missing),
:func:`evaluate_table1` evaluates every run on both frozen test domains under both test
protocols and summarises over seeds; :func:`headline` picks Table I's own setting (domain A, the
paper's protocol) from it; :func:`training_lengths` says how long every arm trained.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from cryo_companion.papers.che2019.evaluate import (
    PAPER_THRESHOLDS,
    SWEEP_THRESHOLDS,
    evaluate,
    summarize_runs,
)
from cryo_companion.papers.che2019.ladder_eval import PROTOCOLS, Protocol
from cryo_companion.papers.che2019.table1 import (
    PAPER_ITERS,
    TABLE1_ARMS,
    TABLE1_SEEDS,
    smoke_noted,
)
from cryo_companion.papers.che2019.train import base_arm

__all__ = ["evaluate_table1", "exported_runs", "first_runs", "headline", "missing_runs",
           "training_lengths", "training_record_summary"]


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
    return smoke_noted({"scale": scale}, "\n".join(lines))


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
