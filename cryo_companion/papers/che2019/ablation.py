"""One factor at a time (issue #14, item 5): how much each randomized factor contributes.

Beyond the paper. Starting from the fully randomized training preset (``randomized+context``
once that preset exists, else the paper's ``randomized``), each ablation fixes ONE randomized
factor at the value the baseline arm uses (:data:`ABLATIONS`) and leaves every other factor
randomized: SNR, missing wedge, defocus, Cs, the intensity augmentation, and context (the
neighbours in the box; an empty slot until :class:`~cryo_companion.simulate.randomization.Preset`
has context fields, see :func:`context_fields`). The drop of each ablation against the
reference, on both frozen test domains, says how much that factor's randomization contributes.

Choices the issue leaves open, stated:

* "fixed at its baseline value" takes the value from the baseline preset
  (:func:`cryo_companion.papers.che2019.presets.baseline`: the SNR measured on the first test
  domain where recorded, wedge 30°, Dz −6 µm, Cs 2.7 mm; no context);
* the intensity augmentation is random in the baseline arm too (the paper: "the only 'random'
  input for the baseline is the data augmentation"), so fixing it means switching it off
  (gain 1, offset 0);
* every ablation is evaluated with the randomized arm's mask threshold (0.5, V).

Training the ablations needs the GPU: seven configurations × seeds, trained as the arms
``ablation:NAME`` of :class:`~cryo_companion.papers.che2019.train.TrainConfig` by the jobs of
:mod:`cryo_companion.papers.che2019.jobs` (fewer iterations than Table I's 15,000: the chapter
says how many where the numbers appear) and exported to ``results/weights/ablation_NAME_seedS.pt``.
This module holds their definitions (:func:`ablation_preset`, :func:`training_plan`), the
evaluation of trained weights on both domains (:func:`evaluate_ablation`) and its tables
(:func:`ablation_sections`, :func:`drop_verdicts`).
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cryo_companion.metrics import difference_ci, mean_std
from cryo_companion.models.dsrf3d import load_weights
from cryo_companion.papers.che2019.evaluate import PAPER_THRESHOLDS, evaluate
from cryo_companion.papers.che2019.ladder_eval import PROTOCOLS, Protocol
from cryo_companion.papers.che2019.presets import get_preset
from cryo_companion.papers.che2019.test_domain import DOMAIN_FILES, domain_record, ensure_testset
from cryo_companion.papers.che2019.train import ABLATION_ARM_PREFIX
from cryo_companion.simulate.randomization import Preset

__all__ = ["ABLATIONS", "ABLATION_ARMS", "ABLATION_ITERS", "ABLATION_METRICS", "ABLATION_SEEDS",
           "REFERENCE", "Ablation", "ablation_preset", "ablation_sections", "ablation_table",
           "ablation_weights", "available", "base_preset", "configurations_table", "context_fields",
           "drop_verdicts", "evaluate_ablation", "evaluate_ablations", "training_plan",
           "weights_by_ablation"]

#: Name of the reference configuration (every factor randomized).
REFERENCE = "all_randomized"
#: Metrics summarised per ablation (classification, segmentation), and their names in tables.
ABLATION_METRICS: tuple[str, ...] = ("accuracy", "pixel_accuracy", "miou")
_LABELS = {"accuracy": "accuracy", "pixel_accuracy": "pixel accuracy", "miou": "mIoU"}


@dataclass(frozen=True)
class Ablation:
    """One training configuration of the one-factor-at-a-time study.

    Attributes
    ----------
    name : str
        Short name.
    factor : str
        The factor fixed (empty for the reference).
    fields : tuple of str
        The :class:`~cryo_companion.simulate.randomization.Preset` fields it sets ("context":
        every context field of the Preset, :func:`context_fields`).
    values : Mapping or None
        The values they take; None: the baseline preset's values of those fields.
    """

    name: str
    factor: str
    fields: tuple[str, ...]
    values: Mapping[str, Any] | None = None


#: The reference and one ablation per randomized factor, in the issue's order.
ABLATIONS: tuple[Ablation, ...] = (
    Ablation(REFERENCE, "", ()),
    Ablation("fixed_snr", "SNR", ("snr",)),
    Ablation("fixed_wedge", "missing wedge", ("wedge_deg",)),
    Ablation("fixed_defocus", "defocus", ("defocus_um",)),
    Ablation("fixed_cs", "spherical aberration", ("cs_mm",)),
    Ablation("no_intensity_augmentation", "intensity augmentation",
             ("intensity_scale", "intensity_offset"),
             {"intensity_scale": (1.0, 1.0), "intensity_offset": (0.0, 0.0)}),
    Ablation("no_context", "context", ("context",)),
)


def context_fields() -> tuple[str, ...]:
    """Return the context fields of ``Preset`` (names starting with ``context``), if any.

    Returns
    -------
    tuple of str
        Field names.
    """
    return tuple(f.name for f in dataclasses.fields(Preset) if f.name.startswith("context"))


def base_preset() -> Preset:
    """Return the reference: ``randomized+context`` if that preset exists, else ``randomized``.

    Returns
    -------
    Preset
        The fully randomized training preset.
    """
    try:
        return get_preset("randomized+context")
    except ValueError:
        return get_preset("randomized")


def _ablation(name: str) -> Ablation:
    for a in ABLATIONS:
        if a.name == name:
            return a
    raise ValueError(f"unknown ablation {name!r}; valid: {', '.join(a.name for a in ABLATIONS)}")


def available() -> list[str]:
    """List the ablations that can be built now (``no_context`` only once context exists).

    Returns
    -------
    list of str
        Names of :data:`ABLATIONS`.
    """
    has_context = bool(context_fields())
    return [a.name for a in ABLATIONS if a.fields != ("context",) or has_context]


def ablation_preset(name: str) -> Preset:
    """Build the training preset of an ablation: the reference with one factor fixed.

    Parameters
    ----------
    name : str
        A name of :data:`ABLATIONS`.

    Returns
    -------
    Preset
        Named ``ablation:NAME``, its ``source`` saying what was fixed and to what.

    Raises
    ------
    ValueError
        An unknown name, or ``no_context`` before ``Preset`` has context fields.
    """
    a = _ablation(name)
    base = base_preset()
    if not a.fields:
        return base.replace(name=f"ablation:{name}", source=f"{base.source}; every factor "
                            "randomized (reference)")
    fields = context_fields() if a.fields == ("context",) else a.fields
    if not fields:
        raise ValueError(f"ablation {name!r} needs context fields in Preset; none exist yet "
                         "(the context factor is being added to the randomization sampler)")
    ref = get_preset("baseline")
    values = dict(a.values) if a.values is not None else {f: getattr(ref, f) for f in fields}
    said = ", ".join(f"{k}={v}" for k, v in values.items())
    return base.replace(name=f"ablation:{name}", source=f"{base.source}; {a.factor} fixed: "
                        f"{said}", **values)


#: The study at paper scale (the GPU jobs of :mod:`cryo_companion.papers.che2019.jobs`): the
#: training arm of every available ablation (reference first), its seeds, and its training
#: length, a third of Table I's 15,000 (said wherever the numbers appear).
ABLATION_ARMS: tuple[str, ...] = tuple(ABLATION_ARM_PREFIX + n for n in available())
ABLATION_SEEDS: tuple[int, ...] = (0, 1, 2)
ABLATION_ITERS = 5_000


def training_plan(iterations: int = 15_000, seeds: Sequence[int] = (0, 1, 2)
                  ) -> list[dict[str, Any]]:
    """List the training runs of the study, as data (the GPU trains them, not this function).

    Parameters
    ----------
    iterations : int
        SGD iterations per run (the paper's 15,000; fewer must be said where reported).
    seeds : sequence of int
        Seeds per configuration.

    Returns
    -------
    list of dict
        One run each: ``ablation``, ``factor``, ``seed``, ``iters``, ``preset`` (the Preset's
        :meth:`~cryo_companion.simulate.randomization.Preset.as_dict`), for every
        :func:`available` ablation.
    """
    if iterations < 1 or not seeds:
        raise ValueError(f"need iterations >= 1 and at least one seed, got {iterations}, "
                         f"{list(seeds)}")
    plan = []
    for name in available():
        p = ablation_preset(name)
        for s in seeds:
            plan.append({"ablation": name, "factor": _ablation(name).factor, "seed": int(s),
                         "iters": int(iterations), "preset": p.as_dict()})
    return plan


def evaluate_ablation(weights: Mapping[str, Sequence[str | os.PathLike]], *, scale: str,
                      device: torch.device | str = "cpu",
                      domains: Sequence[str] = tuple(DOMAIN_FILES),
                      folder: str | os.PathLike | None = None, sigma_vox: float = 1.0,
                      level: float = 0.95) -> dict[str, Any]:
    """Evaluate trained weights of every ablation on both frozen test domains.

    Parameters
    ----------
    weights : Mapping
        ``{ablation name: [weight files, one per seed]}``; must include :data:`REFERENCE`.
    scale : str
        Test-set scale of the domains (``"smoke"`` or ``"paper"``).
    device : torch.device or str
        Where the networks run.
    domains : sequence of str
        Frozen domains (default both).
    folder : str, os.PathLike or None
        Cache root of the test sets (:func:`~cryo_companion.papers.che2019.test_domain.
        ensure_testset`).
    sigma_vox : float
        Test-time Gaussian filter (1: the paper's protocol, 0: matches training).
    level : float
        Confidence level of the drop's interval.

    Returns
    -------
    dict
        ``{"domains": {domain: {"test_domain": {name, hash, version}, "n": subtomograms,
        "ablations": {name: {"seeds": n, metric: {mean, std, n, values}, "drop": {metric:
        reference − ablation with Welch t interval, or None with fewer than 2 seeds}}}}},
        "threshold": ..., "sigma_vox": ..., "scale": scale}``.
    """
    if REFERENCE not in weights:
        raise ValueError(f"the weights must include the reference {REFERENCE!r}")
    for name, files in weights.items():
        _ablation(name)
        if not files:
            raise ValueError(f"ablation {name!r} has no weight files")
    thr = PAPER_THRESHOLDS["randomized"]
    models = {name: [load_weights(p, map_location=device)[0] for p in files]
              for name, files in weights.items()}
    out: dict[str, Any] = {"domains": {}, "threshold": thr, "sigma_vox": float(sigma_vox),
                           "scale": scale}
    for d in domains:
        test = ensure_testset(folder, scale, device, domain=d)
        per: dict[str, Any] = {}
        for name, ms in models.items():
            vals = [evaluate(m, test, threshold=thr, sigma_vox=sigma_vox, sweep=()).metrics
                    for m in ms]
            per[name] = {"seeds": len(vals),
                         **{k: {**mean_std([v[k] for v in vals]), "values": [v[k] for v in vals]}
                            for k in ABLATION_METRICS}}
        ref = per[REFERENCE]
        for name, cell in per.items():
            cell["drop"] = {k: (difference_ci(ref[k]["values"], cell[k]["values"], level=level)
                                if name != REFERENCE and ref[k]["n"] >= 2 and cell[k]["n"] >= 2
                                else None) for k in ABLATION_METRICS}
        out["domains"][d] = {"test_domain": domain_record(test), "n": len(test),
                             "ablations": per}
    return out


def evaluate_ablations(weights: Mapping[str, Sequence[str | os.PathLike]], *, scale: str,
                       device: torch.device | str = "cpu",
                       protocols: Sequence[Protocol] = PROTOCOLS,
                       domains: Sequence[str] = tuple(DOMAIN_FILES),
                       folder: str | os.PathLike | None = None,
                       level: float = 0.95) -> dict[str, dict[str, Any]]:
    """Evaluate the ablations under every test protocol (:func:`evaluate_ablation` each).

    Parameters
    ----------
    weights : Mapping
        ``{ablation name: [weight files, one per seed]}``; must include :data:`REFERENCE`.
    scale : str
        Test-set scale of the domains (``"smoke"`` or ``"paper"``).
    device : torch.device or str
        Where the networks run.
    protocols : sequence of Protocol
        Test-time preprocessings (default both of
        :data:`~cryo_companion.papers.che2019.ladder_eval.PROTOCOLS`: the paper's Gaussian
        filter, and none).
    domains : sequence of str
        Frozen domains (default both).
    folder : str, os.PathLike or None
        Cache root of the test sets.
    level : float
        Confidence level of the drops' intervals.

    Returns
    -------
    dict
        ``{protocol name: evaluate_ablation result}``, what :func:`ablation_sections` shows.

    Raises
    ------
    ValueError
        No protocol, or what :func:`evaluate_ablation` refuses.
    """
    if not protocols:
        raise ValueError("no test protocols to evaluate under")
    return {p.name: evaluate_ablation(weights, scale=scale, device=device, domains=domains,
                                      folder=folder, sigma_vox=p.sigma_vox, level=level)
            for p in protocols}


def ablation_weights(records: Mapping[tuple[str, int], Mapping[str, Any] | None],
                     scale: str = "paper") -> dict[str, list[Path]]:
    """Find the weight files of the exported ablation runs, per ablation.

    Parameters
    ----------
    records : mapping
        ``{(arm, seed): training record or None}`` with arms ``ablation:NAME``
        (:func:`~cryo_companion.papers.che2019.table1_runs.exported_runs`); a None (not trained
        yet) and an arm that is not an ablation are skipped.
    scale : str
        ``"paper"`` (``results/weights/``) or ``"smoke"`` (``results/smoke/weights/``).

    Returns
    -------
    dict
        ``{ablation name: [weight files in seed order]}`` in :data:`ABLATIONS` order, for the
        ablations with any run.
    """
    from cryo_companion.papers.che2019.weights import weights_dir

    found: dict[str, list[tuple[int, Path]]] = {}
    for (arm, seed), rec in records.items():
        if rec is None or not arm.startswith(ABLATION_ARM_PREFIX):
            continue
        name = arm[len(ABLATION_ARM_PREFIX):]
        found.setdefault(name, []).append((seed, weights_dir(scale) / rec["data"]["weights"]))
    return {a.name: [p for _, p in sorted(found[a.name])] for a in ABLATIONS if a.name in found}


def _value(v: Any) -> str:
    """Write a fixed preset value, a range of one value as that value (``0.0414``, ``30``)."""
    if isinstance(v, tuple) and len(v) == 2 and v[0] == v[1]:
        v = v[0]
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def configurations_table() -> str:
    """Tabulate the study's configurations: what each fixes, and to what (Markdown).

    Returns
    -------
    str
        One row per :func:`available` ablation: the factor fixed and the preset fields it sets
        with their values (the reference: every factor randomized, as its preset).
    """
    from cryo_companion.tables import format_table

    rows: dict[str, dict[str, object]] = {}
    base = base_preset()
    for name in available():
        a = _ablation(name)
        p = ablation_preset(name)
        fields = context_fields() if a.fields == ("context",) else a.fields
        fixed = ", ".join(f"{f} = {_value(getattr(p, f))}" for f in fields)
        rows[name] = {"factor fixed": a.factor or "none (reference)",
                      "fixed to": fixed or f"every factor randomized ({base.name})"}
    return format_table(rows, ["factor fixed", "fixed to"], first="ablation", style="markdown")


def weights_by_ablation(folder: str | os.PathLike, pattern: str = "ablation_{name}_seed*.pt"
                        ) -> dict[str, list[Path]]:
    """Weight files of the study found in ``folder`` (``ablation_NAME_seedS.pt``).

    Parameters
    ----------
    folder : str or os.PathLike
        Where the trained weights are.
    pattern : str
        File-name pattern with ``{name}``.

    Returns
    -------
    dict
        ``{ablation name: sorted files}`` for the ablations that have any.
    """
    d = Path(folder)
    out = {}
    for a in ABLATIONS:
        files = sorted(d.glob(pattern.format(name=a.name)))
        if files:
            out[a.name] = files
    return out


def _cell(m: Mapping[str, Any] | None) -> str:
    if m is None:
        return "-"
    sd = f" ± {m['std']:.3f}" if m.get("std") is not None else ""
    return f"{m['mean']:.3f}{sd}"


def _drop(d: Mapping[str, Any] | None) -> str:
    return "n/a" if d is None else f"{d['diff']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"


def ablation_table(result: Mapping[str, Any], domain: str,
                   metrics: Sequence[str] = ("accuracy", "miou")) -> str:
    """One domain's ablations as a Markdown table: the metrics and the drop of each.

    Parameters
    ----------
    result : mapping
        :func:`evaluate_ablation`'s result.
    domain : str
        One of its domains.
    metrics : sequence of str
        Metrics of :data:`ABLATION_METRICS` to show.

    Returns
    -------
    str
        One row per ablation present (in :data:`ABLATIONS` order): the factor fixed, the seeds,
        mean ± std of each metric, and its drop (reference − ablation) with the 95 % Welch-t
        interval ("n/a" with fewer than 2 seeds; the reference has none).
    """
    from cryo_companion.tables import format_table

    per = result["domains"][domain]["ablations"]
    rows: dict[str, dict[str, object]] = {}
    for a in ABLATIONS:
        if a.name not in per:
            continue
        cell = per[a.name]
        row: dict[str, object] = {"factor fixed": a.factor or "none (reference)",
                                  "seeds": cell["seeds"]}
        for k in metrics:
            row[_LABELS[k]] = _cell(cell.get(k))
            row[f"drop in {_LABELS[k]} (95 % CI)"] = ("reference" if a.name == REFERENCE
                                                     else _drop(cell["drop"].get(k)))
        rows[a.name] = row
    cols = ["factor fixed", "seeds",
            *[c for k in metrics for c in (_LABELS[k], f"drop in {_LABELS[k]} (95 % CI)")]]
    return format_table(rows, cols, first="ablation", style="markdown")


def drop_verdicts(result: Mapping[str, Any], domain: str, metric: str = "accuracy") -> list[str]:
    """Say, per factor, whether fixing it lowers ``metric`` beyond its interval.

    Parameters
    ----------
    result : mapping
        :func:`evaluate_ablation`'s result.
    domain : str
        One of its domains.
    metric : str
        A metric of :data:`ABLATION_METRICS`.

    Returns
    -------
    list of str
        "FACTOR: drop D [L, H]: its randomization helps" (interval above 0), "fixing it helps"
        (below 0), "no significant difference", or "too few seeds for an interval".
    """
    per = result["domains"][domain]["ablations"]
    lines = []
    for a in ABLATIONS:
        if a.name == REFERENCE or a.name not in per:
            continue
        d = per[a.name]["drop"].get(metric)
        if d is None:
            lines.append(f"{a.factor}: too few seeds for an interval.")
            continue
        word = ("its randomization helps" if d["low"] > 0 else
                "fixing it helps" if d["high"] < 0 else "no significant difference")
        lines.append(f"{a.factor}: drop in {_LABELS[metric]} {_drop(d)}: {word}.")
    return lines


def ablation_sections(results: Mapping[str, Mapping[str, Any]]) -> str:
    """Every domain under every protocol: a title saying which, the table and the verdicts.

    Parameters
    ----------
    results : mapping
        ``{protocol name: evaluate_ablation result}`` (``"paper"``: the Gaussian filter of
        IV-B; ``"matched"``: none).

    Returns
    -------
    str
        Markdown: per domain and protocol, a bold title (domain letter and name, number of
        subtomograms, the protocol and its filter), :func:`ablation_table` and
        :func:`drop_verdicts` on accuracy and mIoU; after the smoke-scale note
        (:data:`~cryo_companion.papers.che2019.table1.SMOKE_NOTE`) when any result is at smoke
        scale.
    """
    from cryo_companion.papers.che2019.table1 import SMOKE_NOTE

    out = [SMOKE_NOTE] if any(r.get("scale") == "smoke" for r in results.values()) else []
    names = list(DOMAIN_FILES)
    for proto, res in results.items():
        which = ("the paper's protocol (Gaussian filter, sigma "
                 f"{res['sigma_vox']:g} voxel)" if proto == "paper" else
                 f"the protocol that matches training (sigma {res['sigma_vox']:g}: no filter)")
        for d, dom in res["domains"].items():
            letter = "AB"[names.index(d)] if d in names[:2] else "?"
            verdicts = drop_verdicts(res, d, "accuracy") + drop_verdicts(res, d, "miou")
            out.append(f"**Domain {letter} ({d}, {dom['n']:,} subtomograms); {which}; mask "
                       f"threshold {res['threshold']:g}**\n\n{ablation_table(res, d)}\n\n"
                       + "\n".join(f"- {v}" for v in verdicts))
    return "\n\n".join(out)
