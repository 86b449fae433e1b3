"""Every Table I weight file on every rung of the reality-gap ladder, and what it says.

Issue #14, item 4. :func:`evaluate_ladder` runs :func:`~cryo_companion.papers.che2019.evaluate.
evaluate` (the paper's test protocol: global standardisation, mask of the predicted class at the
arm's threshold) for every weight file, rung and test protocol (:data:`PROTOCOLS`: the paper's
Gaussian filter at test time, and no filter, which matches training). Besides the metrics over
the whole set, each row has the headline numbers restricted to the three particle classes
(membrane targets exist only on the last rung) and the share of subtomograms called
"membrane" (the collapse seen in Table I).

:func:`summarize_ladder` averages over the seeds of each arm; :func:`where_gap_opens` finds, per
arm, where the gap opens for good (the first step after which every later rung stays more than
two standard errors below the best rung before it), the largest drop and the first step whose
drop exceeds two standard errors; :func:`finding_d` answers the issue's finding (d): of the
accuracy isolated particles lose, how much goes with projection + back-projection, with the CTF,
with the shot noise and with the other target copies in the box. The standard error of a
rung's value is the test set's own sampling error (binomial for accuracies, the standard
deviation of the per-subtomogram IoU over √n for mIoU), averaged over the seeds of the arm; a
step's is that of the two rungs combined as if independent (conservative for rungs 1-4, which
share their targets).
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cryo_companion.metrics import mean_std, segmentation_counts
from cryo_companion.models.dsrf3d import load_weights
from cryo_companion.papers.che2019.evaluate import PAPER_THRESHOLDS, evaluate
from cryo_companion.papers.che2019.ladder import RUNGS, rung

__all__ = ["LADDER_METRICS", "PROTOCOLS", "Protocol", "evaluate_ladder", "finding_d",
           "rung_metrics", "summarize_ladder", "table1_reference", "verdict_lines",
           "weight_files", "where_gap_opens"]


@dataclass(frozen=True)
class Protocol:
    """A test-time preprocessing.

    Attributes
    ----------
    name : str
        Short name.
    sigma_vox : float
        Gaussian filter sigma in voxels after the global standardisation (0: none).
    description : str
        What it is.
    """

    name: str
    sigma_vox: float
    description: str


#: The two test protocols: the paper's (IV-B, as in Table I) and the one that matches training.
PROTOCOLS: tuple[Protocol, ...] = (
    Protocol("paper", 1.0, "the paper's (IV-B): global standardisation, then a Gaussian filter "
                           "of sigma 1 voxel, as in Table I"),
    Protocol("matched", 0.0, "global standardisation only, as the training batches were "
                             "prepared (no filter)"),
)

#: Per-rung metrics summarised over seeds: name -> what it is.
LADDER_METRICS: dict[str, str] = {
    "particle_accuracy": "classification accuracy on the three particle classes",
    "miou_particles": "mIoU (target IoU, mean over subtomograms) on the particle classes",
    "membrane_called": "share of subtomograms called 'membrane'",
    "accuracy": "classification accuracy on every class present",
    "miou": "mIoU on every class present",
}


def weight_files(folder: str | Path | None = None, pattern: str = "table1_*.pt") -> list[Path]:
    """List the committed Table I weight files.

    Parameters
    ----------
    folder : str, Path or None
        Where they are (default ``results/weights`` of the repository).
    pattern : str
        File-name pattern.

    Returns
    -------
    list of Path
        Sorted paths; a missing folder or no file raises ``FileNotFoundError``.
    """
    from cryo_companion._io import repo_root

    d = Path(folder) if folder is not None else repo_root() / "results" / "weights"
    files = sorted(d.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no weight files {pattern} in {d}")
    return files


def rung_metrics(metrics: Mapping[str, Any], pred: torch.Tensor, masks_pred: torch.Tensor,
                 data: Any) -> dict[str, Any]:
    """Compute the ladder's numbers of one evaluation: all classes and the particle classes.

    Parameters
    ----------
    metrics : Mapping
        ``Evaluation.metrics`` of :func:`~cryo_companion.papers.che2019.evaluate.evaluate`.
    pred : torch.Tensor
        `(N,)` predicted classes.
    masks_pred : torch.Tensor
        `(N, D, D, D)` bool masks of the predicted class at the evaluation's threshold.
    data : SubtomogramSet
        The evaluated set (labels, target masks, class names).

    Returns
    -------
    dict
        ``accuracy``, ``miou`` (all classes present), ``particle_accuracy``,
        ``miou_particles`` (particle classes), ``membrane_called``, each value's standard error
        (``NAME_se``), ``n``, ``n_particles``, ``per_class_accuracy``, ``confusion_matrix``.
    """
    names = list(data.class_names)
    k_mem = names.index("membrane")
    labels = torch.as_tensor(np.asarray(data.labels))
    part = labels != k_mem
    p = pred.cpu()
    true = torch.from_numpy(np.asarray(data.masks, dtype=bool))
    c = segmentation_counts(masks_pred.cpu(), true)
    union = c["tp"] + c["fp"] + c["fn"]
    iou = torch.where(union > 0, c["tp"] / union.clamp(min=1), torch.ones_like(union))
    n, n_p = len(labels), int(part.sum())

    def prop(v: float, m: int) -> float:
        return math.sqrt(max(v * (1 - v), 0.0) / m) if m else float("nan")

    acc = float((p == labels).double().mean())
    acc_p = float((p[part] == labels[part]).double().mean()) if n_p else float("nan")
    called = float((p == k_mem).double().mean())
    out = {
        "n": n, "n_particles": n_p,
        "accuracy": acc, "accuracy_se": prop(acc, n),
        "particle_accuracy": acc_p, "particle_accuracy_se": prop(acc_p, n_p),
        "membrane_called": called, "membrane_called_se": prop(called, n),
        "miou": float(iou.mean()), "miou_se": float(iou.std() / math.sqrt(n)) if n > 1 else 0.0,
        "miou_particles": float(iou[part].mean()) if n_p else float("nan"),
        "miou_particles_se": (float(iou[part].std() / math.sqrt(n_p)) if n_p > 1 else 0.0),
        "per_class_accuracy": dict(metrics["per_class_accuracy"]),
        "confusion_matrix": metrics["confusion_matrix"],
    }
    return out


def evaluate_ladder(weights: Sequence[str | Path], sets: Mapping[str, Any], *,
                    device: torch.device | str = "cpu",
                    protocols: Sequence[Protocol] = PROTOCOLS, batch_size: int = 32,
                    progress: bool = False) -> list[dict[str, Any]]:
    """Evaluate every weight file on every rung with every protocol.

    Parameters
    ----------
    weights : sequence of str or Path
        Weight files of :func:`~cryo_companion.models.dsrf3d.save_weights` whose metadata name
        the arm (``training.arm``) and seed.
    sets : Mapping
        ``{rung name: SubtomogramSet}`` (:func:`~cryo_companion.papers.che2019.ladder.
        ensure_ladder`).
    device : torch.device or str
        Where the networks run.
    protocols : sequence of Protocol
        Test protocols (default both of :data:`PROTOCOLS`).
    batch_size : int
        Subtomograms per forward pass.
    progress : bool
        Progress bars (on a terminal only).

    Returns
    -------
    list of dict
        One row per (weight file, rung, protocol): ``weights``, ``arm``, ``seed``,
        ``iterations``, ``rung``, ``protocol``, ``sigma_vox``, ``threshold``, ``test_domain``
        and the numbers of :func:`rung_metrics`.
    """
    for name in sets:
        rung(name)  # unknown rung names refused before any work
    if not protocols:
        raise ValueError("no test protocol given")
    rows = []
    for path in weights:
        model, meta = load_weights(path, map_location=device)
        tr = meta.get("training") or {}
        arm = tr.get("arm")
        if arm not in PAPER_THRESHOLDS:
            raise ValueError(f"{path}: metadata names arm {arm!r}; expected one of "
                             f"{', '.join(PAPER_THRESHOLDS)}")
        thr = PAPER_THRESHOLDS[arm]
        for name, data in sets.items():
            for prot in protocols:
                ev = evaluate(model, data, threshold=thr, sigma_vox=prot.sigma_vox, sweep=(),
                              batch_size=batch_size, progress=progress)
                m = rung_metrics(ev.metrics, ev.prediction.pred, ev.prediction.masks(thr), data)
                rows.append({"weights": Path(path).name, "arm": arm, "seed": tr.get("seed"),
                             "iterations": tr.get("iters"), "rung": name,
                             "protocol": prot.name, "sigma_vox": prot.sigma_vox,
                             "threshold": thr, "test_domain": ev.metrics["test_domain"], **m})
    return rows


def summarize_ladder(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean ± std over the seeds of each arm, per protocol and rung.

    Parameters
    ----------
    rows : sequence of Mapping
        Rows of :func:`evaluate_ladder`.

    Returns
    -------
    dict
        ``{"rungs": [names in ladder order], "arms": {arm: {protocol: {rung: {metric:
        {"mean", "std", "n", "values", "se"}, "per_class_accuracy": {class: mean},
        "n": subtomograms, "n_particles": ...}}}}}`` for the metrics of :data:`LADDER_METRICS`.
    """
    order = [r.name for r in RUNGS if any(row["rung"] == r.name for row in rows)]
    arms: dict[str, Any] = {}
    for arm in sorted({r["arm"] for r in rows}):
        arms[arm] = {}
        for prot in [p.name for p in PROTOCOLS if any(r["protocol"] == p.name for r in rows)]:
            arms[arm][prot] = {}
            for name in order:
                rs = [r for r in rows if (r["arm"], r["protocol"], r["rung"]) == (arm, prot, name)]
                if not rs:
                    continue
                cell: dict[str, Any] = {"n": rs[0]["n"], "n_particles": rs[0]["n_particles"],
                                        "seeds": [r["seed"] for r in rs]}
                for k in LADDER_METRICS:
                    vals = [float(r[k]) for r in rs]
                    cell[k] = {**mean_std(vals), "values": vals,
                               "se": float(np.mean([r[f"{k}_se"] for r in rs]))}
                names = list(rs[0]["per_class_accuracy"])
                cell["per_class_accuracy"] = {
                    n: (float(np.mean(v)) if (v := [r["per_class_accuracy"][n] for r in rs
                                                    if r["per_class_accuracy"][n] is not None])
                        else None) for n in names}
                arms[arm][prot][name] = cell
    return {"rungs": order, "arms": arms}


def _steps(cells: Mapping[str, Any], order: Sequence[str], metric: str) -> list[dict[str, Any]]:
    out = []
    for a, b in itertools.pairwise(order):
        if a not in cells or b not in cells:
            continue
        va, vb = cells[a][metric]["mean"], cells[b][metric]["mean"]
        se = math.hypot(cells[a][metric]["se"], cells[b][metric]["se"])
        d = vb - va
        out.append({"from": a, "to": b, "adds": rung(b).adds, "change": d, "se": se,
                    "significant_drop": bool(d < -2 * se)})
    return out


def _opens(cells: Mapping[str, Any], order: Sequence[str], metric: str
           ) -> dict[str, Any] | None:
    """Find where the gap opens for good, or None.

    That is the first step after which every later rung stays more than two standard errors
    below the best rung before it (a drop that does not recover).
    """
    names = [r for r in order if r in cells]
    v = [cells[r][metric]["mean"] for r in names]
    se = [cells[r][metric]["se"] for r in names]
    for i in range(1, len(names)):
        b = max(range(i), key=lambda j: v[j])
        if all(v[j] < v[b] - 2 * math.hypot(se[b], se[j]) for j in range(i, len(names))):
            return {"from": names[i - 1], "to": names[i], "adds": rung(names[i]).adds,
                    "best_before": names[b], "best_value": v[b], "value": v[i],
                    "change": v[i] - v[i - 1], "se": math.hypot(se[i - 1], se[i])}
    return None


def where_gap_opens(summary: Mapping[str, Any], *, protocol: str = "paper",
                    metric: str = "particle_accuracy") -> dict[str, Any]:
    """Per arm: where the gap opens for good, every rung step's change and the largest drop.

    The gap *opens* at the first step after which every later rung stays more than two standard
    errors below the best rung before it: a drop that the following rungs do not recover (a
    rung outside the training distribution that a later one recovers from does not count).

    Parameters
    ----------
    summary : Mapping
        :func:`summarize_ladder`.
    protocol : str
        A protocol of :data:`PROTOCOLS`.
    metric : str
        A metric of :data:`LADDER_METRICS`.

    Returns
    -------
    dict
        ``{arm: {"opens": {"from", "to", "adds", "best_before", "best_value", "value",
        "change", "se"} or None, "steps": [{"from", "to", "adds", "change", "se",
        "significant_drop"}], "largest_drop": step or None, "first_significant_drop": step or
        None, "first": value on the first rung, "last": value on the last rung}}``.
    """
    if metric not in LADDER_METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(LADDER_METRICS)}")
    order = summary["rungs"]
    out = {}
    for arm, by_prot in summary["arms"].items():
        if protocol not in by_prot:
            raise ValueError(f"protocol {protocol!r} not evaluated; have {', '.join(by_prot)}")
        cells = by_prot[protocol]
        steps = _steps(cells, order, metric)
        drops = [s for s in steps if s["change"] < 0]
        out[arm] = {
            "opens": _opens(cells, order, metric),
            "steps": steps,
            "largest_drop": min(drops, key=lambda s: s["change"]) if drops else None,
            "first_significant_drop": next((s for s in steps if s["significant_drop"]), None),
            "first": cells[order[0]][metric]["mean"], "last": cells[order[-1]][metric]["mean"]}
    return out


#: The steps of finding (d): isolated particles, imaging added factor by factor, then the copies.
_FINDING_D = ("ideal", "projection", "ctf", "shot_noise", "copies")


def finding_d(summary: Mapping[str, Any], *, protocol: str = "paper",
              metric: str = "particle_accuracy") -> dict[str, Any]:
    """Issue #14 finding (d): projection + back-projection, or the remaining target copies.

    Parameters
    ----------
    summary : Mapping
        :func:`summarize_ladder` with at least the rungs ideal, projection, ctf, shot_noise and
        copies.
    protocol : str
        A protocol of :data:`PROTOCOLS`.
    metric : str
        A metric of :data:`LADDER_METRICS`.

    Returns
    -------
    dict
        ``{arm: {"values": {rung: mean}, "steps": {rung: step}, "imaging_change": shot_noise
        − ideal, "copies_change": copies − shot_noise, "cause": the rung whose step drops
        most among the significant drops (None if none), "copies_significant": bool}}``.
    """
    missing = [r for r in _FINDING_D if r not in summary["rungs"]]
    if missing:
        raise ValueError(f"finding (d) needs the rungs {', '.join(_FINDING_D)}; missing "
                         f"{', '.join(missing)}")
    out = {}
    for arm, by_prot in summary["arms"].items():
        cells = by_prot[protocol]
        vals = {r: cells[r][metric]["mean"] for r in _FINDING_D}
        steps = {s["to"]: s for s in _steps(cells, _FINDING_D, metric)}
        sig = [s for s in steps.values() if s["significant_drop"]]
        out[arm] = {"values": vals, "steps": steps,
                    "imaging_change": vals["shot_noise"] - vals["ideal"],
                    "copies_change": vals["copies"] - vals["shot_noise"],
                    "cause": min(sig, key=lambda s: s["change"])["to"] if sig else None,
                    "copies_significant": steps["copies"]["significant_drop"]}
    return out


def _fmt(step: Mapping[str, Any] | None) -> str:
    if step is None:
        return "none (no step lowers it)"
    return f"{step['from']} → {step['to']} ({step['change']:+.2f} ± {step['se']:.2f})"


def verdict_lines(summary: Mapping[str, Any], *, protocol: str = "paper",
                  metric: str = "particle_accuracy") -> list[str]:
    """Sentences computed from the ladder: where the gap opens per arm, and finding (d).

    Parameters
    ----------
    summary : Mapping
        :func:`summarize_ladder`.
    protocol : str
        A protocol of :data:`PROTOCOLS`.
    metric : str
        A metric of :data:`LADDER_METRICS`.

    Returns
    -------
    list of str
        One Markdown sentence per arm on where the gap opens, then one per arm on finding (d)
        (if its rungs were evaluated).
    """
    label = LADDER_METRICS[metric]
    gaps = where_gap_opens(summary, protocol=protocol, metric=metric)
    lines = []
    for arm, g in gaps.items():
        o = g["opens"]
        opens = ("the gap does not open: no rung stays two standard errors below an earlier "
                 "one" if o is None else
                 f"the gap opens at **{o['from']} → {o['to']}** ({o['to']}: {o['value']:.2f}): "
                 f"from there on every rung stays more than two standard errors below the best "
                 f"rung before it ({o['best_before']}, {o['best_value']:.2f})")
        lines.append(
            f"**{arm}** ({label}, {protocol} protocol): {g['first']:.2f} on the first rung, "
            f"{g['last']:.2f} on the full domain; {opens}. The largest single drop is "
            f"{_fmt(g['largest_drop'])}.")
    if all(r in summary["rungs"] for r in _FINDING_D):
        for arm, f in finding_d(summary, protocol=protocol, metric=metric).items():
            v, st = f["values"], f["steps"]
            parts = ", ".join(f"{name} {st[name]['change']:+.2f}" for name in _FINDING_D[1:4])
            cause = (f"the step that costs most is **{f['cause']}** "
                     f"({rung(f['cause']).adds})" if f["cause"] else
                     "no step of the imaging or the copies lowers it beyond two standard errors")
            copies = ("significantly" if f["copies_significant"] else
                      "not beyond two standard errors")
            lines.append(
                f"Finding (d), **{arm}**: isolated particles go from {v['ideal']:.2f} (ideal "
                f"imaging) to {v['shot_noise']:.2f} with the domain's full imaging ({parts}); "
                f"the other target copies in the box then change it by "
                f"{f['copies_change']:+.2f}, {copies}; {cause}.")
    return lines


def table1_reference(result: Mapping[str, Any] | None) -> dict[str, dict[str, float]] | None:
    """Table I's evaluation on the frozen domain at paper scale, in the ladder's terms.

    Parameters
    ----------
    result : Mapping or None
        ``results/table1.json`` as read by :func:`~cryo_companion.runs.results.load_result`.

    Returns
    -------
    dict or None
        ``{arm: {"accuracy", "particle_accuracy", "membrane_called", "n", "seeds"}}`` from the
        confusion matrices summed over seeds (None without a result).
    """
    if result is None:
        return None
    data = result["data"]
    names = data["runs"][0]["class_names"]
    k_mem = names.index("membrane")
    out = {}
    for arm, a in data["arms"].items():
        cm = np.asarray(a["confusion_matrix"], dtype=float)
        part = [i for i in range(len(names)) if i != k_mem]
        out[arm] = {"accuracy": float(a["accuracy"]["mean"]),
                    "particle_accuracy": float(cm[part, part].sum() / cm[part].sum()),
                    "membrane_called": float(cm[:, k_mem].sum() / cm.sum()),
                    "n": int(cm.sum() / len(a["seeds"])), "seeds": len(a["seeds"])}
    return out
