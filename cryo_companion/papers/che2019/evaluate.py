"""Evaluating the classifier + segmenter on a set of subtomograms (Che et al. 2019, IV-B and V).

Test-time preprocessing (IV-B): the whole set is standardised with **one global** mean and
standard deviation (over all voxels of all subtomograms, as the training batches are, IV), then
smoothed with a 3-D Gaussian filter of standard deviation ``sigma_vox`` voxels (default 1 voxel =
13.68 Å; the paper does not give its sigma). Each subtomogram is classified; the mask of the
**predicted** class (III-C-2) is turned into probabilities with a sigmoid and thresholded at ``t``
(the paper: 0.5 for the randomized arm, 0.2 for the baseline, V). Metrics are those of
:mod:`cryo_companion.metrics` (headline mIoU = per-subtomogram IoU of the target region, averaged).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from cryo_companion.filters import gaussian_filter3d
from cryo_companion.metrics import (
    _metrics_from_counts,
    accuracy,
    confusion_matrix,
    per_class_accuracy,
    segmentation_counts,
)
from cryo_companion.models.dsrf3d import DSRF3DSegNet

__all__ = [
    "COMPARISONS",
    "PAPER_THRESHOLDS",
    "SWEEP_THRESHOLDS",
    "TABLE1_METRICS",
    "Evaluation",
    "Prediction",
    "comparison_name",
    "evaluate",
    "predict",
    "preprocess",
    "summarize_runs",
]

#: Thresholds of the sweep reported for both arms.
SWEEP_THRESHOLDS: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
#: Mask thresholds of the paper (V): 0.5 with domain randomization, 0.2 for the baseline.
PAPER_THRESHOLDS: dict[str, float] = {"randomized": 0.5, "baseline": 0.2}


#: Contrast of the training simulator's subtomograms: mass density is bright (positive), as in
#: the AITom simulator of Che et al. (``Simulator(invert_contrast=True)``).
TRAINING_CONTRAST = "bright"
CONTRASTS = ("dark", "bright")


def needs_inversion(data_contrast: str, model_contrast: str = TRAINING_CONTRAST) -> bool:
    """Say whether data whose mass appears ``data_contrast`` must be negated for the model.

    Raw cryo-ET reconstructions show mass *dark* (the physical sign of phase contrast in
    underfocus); the networks are trained on mass-bright subtomograms, so such data are inverted
    before standardisation, as subtomogram-analysis pipelines customarily do.

    Parameters
    ----------
    data_contrast : str
        How mass appears in the data, ``"dark"`` or ``"bright"``.
    model_contrast : str
        How mass appeared in the training data (:data:`TRAINING_CONTRAST`).

    Returns
    -------
    bool
        True when the two differ.

    Raises
    ------
    ValueError
        An unknown contrast.
    """
    for c in (data_contrast, model_contrast):
        if c not in CONTRASTS:
            raise ValueError(f"unknown contrast {c!r}; valid: {', '.join(CONTRASTS)}")
    return data_contrast != model_contrast


def preprocess(volumes: Tensor, sigma_vox: float = 1.0, *, invert: bool = False) -> Tensor:
    """Prepare test volumes as the paper does: global standardisation, then a Gaussian filter.

    Parameters
    ----------
    volumes : torch.Tensor
        `(N, D, D, D)` subtomograms, z-y-x.
    sigma_vox : float
        Gaussian filter sigma in voxels after the standardisation (IV-B; 0: none).
    invert : bool
        Negate the volumes first (mass-dark data for the mass-bright networks).

    Returns
    -------
    torch.Tensor
        `(N, D, D, D)` float32, standardised with one mean and standard deviation over the
        whole set, then filtered.

    Raises
    ------
    ValueError
        Constant or non-finite volumes.
    """
    x = -volumes.float() if invert else volumes.float()
    std = x.std()
    if not torch.isfinite(std) or float(std) == 0:
        raise ValueError("cannot standardise: the volumes are constant or not finite")
    return gaussian_filter3d((x - x.mean()) / std, sigma_vox)


@dataclass
class Prediction:
    """Model outputs on a set.

    Attributes
    ----------
    pred : (N,) int64 predicted classes.
    prob : (N, K) class probabilities.
    mask_prob : (N, D, D, D) float32 sigmoid of the predicted class's mask (on the CPU).
    """

    pred: Tensor
    prob: Tensor
    mask_prob: Tensor

    def masks(self, threshold: float) -> Tensor:
        """(N, D, D, D) bool masks of the predicted class at ``threshold``."""
        return self.mask_prob > threshold


def _predicted_class(out: Any, chunk: slice) -> tuple[Tensor, Tensor, Tensor]:
    """Per chunk: predicted class, class probabilities, sigmoid of the predicted class's mask."""
    p = out.log_probs.argmax(1)
    idx = torch.arange(p.shape[0], device=p.device)
    return p, out.log_probs.exp(), torch.sigmoid(out.mask_logits[idx, p].float())


def predict(model: DSRF3DSegNet, x: Tensor, *, batch_size: int = 64,
            progress: bool = False) -> Prediction:
    """Run ``model`` on preprocessed volumes ``x`` (N, D, D, D), in chunks on the model's device."""
    from cryo_companion.learn.predict import predict as predict_chunks

    pred, prob, mask = predict_chunks(model, x, batch_size=batch_size, reduce=_predicted_class,
                                      progress=progress)
    return Prediction(pred=pred, prob=prob, mask_prob=mask)


@dataclass
class Evaluation:
    """Metrics of one model on one set (``metrics`` is JSON-able) and its raw prediction."""

    metrics: dict[str, Any]
    prediction: Prediction = field(repr=False)


def evaluate(model: DSRF3DSegNet, dataset: Any, *, threshold: float = 0.5,
             sigma_vox: float = 1.0, sweep: Sequence[float] = SWEEP_THRESHOLDS,
             batch_size: int = 64, progress: bool = False,
             contrast: str | None = None) -> Evaluation:
    """Classification and segmentation metrics of ``model`` on a ``SubtomogramSet``.

    Parameters
    ----------
    model : DSRF3DSegNet
        The network (its device is used).
    dataset : SubtomogramSet
        ``cryo_companion.dataset.SubtomogramSet``: volumes `(N, D, D, D)`, labels `(N,)`, masks
        `(N, D, D, D)` or None, class_names; D must equal the model's box.
    threshold : float
        Mask probability threshold for the headline segmentation metrics, in (0, 1).
    sigma_vox : float
        Gaussian filter sigma in voxels (IV-B; 0: none).
    sweep : sequence of float
        Thresholds of the sweep.
    batch_size : int
        Subtomograms per forward pass.
    progress : bool
        Show a progress bar.
    contrast : str or None
        How mass appears in the data, ``"dark"`` or ``"bright"``; default: the set's
        ``meta["contrast"]``, else ``"dark"`` (raw reconstructions). Dark data are inverted to
        the training simulator's bright convention (:func:`needs_inversion`).

    Returns
    -------
    Evaluation
        With ``metrics``: ``accuracy``, ``per_class_accuracy`` (by name), ``confusion_matrix``
        (rows true, columns predicted), ``class_names``, ``n``, ``test_domain`` (name, hash and
        version of the frozen domain the set comes from, from its ``meta``; None for other
        data), and when masks exist ``pixel_accuracy``, ``miou``, ``iou_pooled``,
        ``miou_fg_bg`` at ``threshold`` and ``sweep`` (lists per threshold).

    Raises
    ------
    ValueError
        Volumes of another box or not finite, class names that differ from the model's, a
        threshold outside (0, 1), an unknown contrast.
    """
    vols = np.asarray(dataset.volumes)
    box = model.cfg.box
    if vols.ndim != 4 or vols.shape[1:] != (box, box, box):
        raise ValueError(f"volumes {vols.shape} do not match the model's box ({box}^3); "
                         "resample them first")
    if not np.isfinite(vols).all():
        raise ValueError("volumes contain NaN/inf values")
    names = list(dataset.class_names)
    if names != list(model.class_names):
        raise ValueError(f"class names of the set {names} differ from the model's "
                         f"{list(model.class_names)}")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
    k = model.cfg.n_classes
    data_contrast = contrast or (getattr(dataset, "meta", None) or {}).get("contrast", "dark")
    invert = needs_inversion(data_contrast)
    x = preprocess(torch.from_numpy(vols), sigma_vox, invert=invert)
    pr = predict(model, x, batch_size=batch_size, progress=progress)
    labels = torch.from_numpy(np.asarray(dataset.labels))
    m: dict[str, Any] = {
        "n": len(labels), "class_names": names, "threshold": float(threshold),
        "sigma_vox": float(sigma_vox), "contrast": data_contrast, "inverted": invert,
        "accuracy": accuracy(pr.pred, labels),
        "per_class_accuracy": dict(zip(names, per_class_accuracy(pr.pred, labels, k))),
        "confusion_matrix": confusion_matrix(pr.pred, labels, k),
        "test_domain": _domain_of(dataset),
    }
    if dataset.masks is not None:
        true = torch.from_numpy(np.asarray(dataset.masks, dtype=bool))
        ths = sorted({float(threshold), *map(float, sweep)})
        sw: dict[str, list] = {"threshold": ths}
        for th in ths:
            mm = _metrics_from_counts(segmentation_counts(pr.masks(th), true))
            for key, v in mm.items():
                sw.setdefault(key, []).append(v)
            if th == float(threshold):
                m.update(mm)
        m["sweep"] = sw
    return Evaluation(metrics=m, prediction=pr)


def _domain_of(dataset: Any) -> dict[str, Any] | None:
    """Return the frozen test domain a set comes from (its meta), or None for other data."""
    from cryo_companion.papers.che2019.test_domain import domain_record

    rec = domain_record(getattr(dataset, "meta", None) or {})
    return rec if rec["hash"] else None


#: Metrics summarised over seeds in Table I (classification, then segmentation).
TABLE1_METRICS: tuple[str, ...] = ("accuracy", "pixel_accuracy", "miou", "iou_pooled",
                                   "miou_fg_bg")


#: The differences of arms reported in Table I (first minus second): the paper's (randomized −
#: baseline), each context arm against the paper's arm it is built on, and the target's
#: comparison, the randomized context arm against the paper's baseline (issue 14).
COMPARISONS: tuple[tuple[str, str], ...] = (
    ("randomized", "baseline"),
    ("randomized+context", "randomized"),
    ("baseline+context", "baseline"),
    ("randomized+context", "baseline"),
)


def comparison_name(a: str, b: str) -> str:
    """Name of a difference of two arms, ``"A − B"`` (a minus sign, U+2212).

    Parameters
    ----------
    a, b : str
        The arms (first minus second).

    Returns
    -------
    str
        ``f"{a} − {b}"``.
    """
    return f"{a} \u2212 {b}"


def summarize_runs(runs: Sequence[dict[str, Any]], *, level: float = 0.95,
                   comparisons: Sequence[tuple[str, str]] = COMPARISONS) -> dict[str, Any]:
    """Mean ± std per arm over seeds and the differences of arms with confidence intervals.

    Parameters
    ----------
    runs : sequence of dict
        One per run: ``{"arm", "seed", "metrics": Evaluation.metrics}`` (any arms).
    level : float
        Confidence level of the intervals.
    comparisons : sequence of (str, str)
        Pairs of arms whose difference (first minus second) is reported when both are present
        with at least 2 seeds each (default :data:`COMPARISONS`).

    Returns
    -------
    dict
        ``{"arms": {arm: {metric: {"mean", "std", "n", "values"}, "seeds", "threshold",
        "per_class_accuracy": {name: mean}, "confusion_matrix": summed over seeds,
        "sweep": {"threshold": [...], metric: {"mean": [...], "std": [...]}}}},
        "differences": {"A − B": {metric: {"t": {...}, "bootstrap": {...}}}},
        "difference": the randomized − baseline entry (empty without it)}``; a difference
        lists only the metrics with at least 2 seeds in both arms.
    """
    from cryo_companion.metrics import difference_ci, mean_std

    arms: dict[str, Any] = {}
    for arm in sorted({r["arm"] for r in runs}):
        rs = [r for r in runs if r["arm"] == arm]
        ms = [r["metrics"] for r in rs]
        a: dict[str, Any] = {"seeds": [r["seed"] for r in rs], "threshold": ms[0]["threshold"]}
        for k in TABLE1_METRICS:
            if all(k in m for m in ms):
                a[k] = {**mean_std([m[k] for m in ms]), "values": [m[k] for m in ms]}
        names = ms[0]["class_names"]
        a["per_class_accuracy"] = {
            n: (float(np.mean(v)) if (v := [m["per_class_accuracy"][n] for m in ms
                                            if m["per_class_accuracy"][n] is not None]) else None)
            for n in names}
        a["confusion_matrix"] = np.sum([m["confusion_matrix"] for m in ms], axis=0).tolist()
        if all("sweep" in m for m in ms):
            sw: dict[str, Any] = {"threshold": ms[0]["sweep"]["threshold"]}
            for k in ("pixel_accuracy", "miou", "iou_pooled", "miou_fg_bg"):
                arr = np.array([m["sweep"][k] for m in ms])
                sw[k] = {"mean": arr.mean(0).tolist(),
                         "std": (arr.std(0, ddof=1) if len(ms) > 1 else np.zeros(arr.shape[1]))
                         .tolist()}
            a["sweep"] = sw
        arms[arm] = a
    diffs: dict[str, Any] = {}
    for first, second in comparisons:
        if first not in arms or second not in arms:
            continue
        r, b = arms[first], arms[second]
        diffs[comparison_name(first, second)] = {
            k: {m: difference_ci(r[k]["values"], b[k]["values"], level=level, method=m)
                for m in ("t", "bootstrap")}
            for k in TABLE1_METRICS
            if k in r and k in b and r[k]["n"] >= 2 and b[k]["n"] >= 2}
    return {"arms": arms, "differences": diffs,
            "difference": diffs.get(comparison_name("randomized", "baseline"), {})}
