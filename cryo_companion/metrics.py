"""Classification and segmentation metrics, and statistics over seeds (Che et al. 2019, IV-B, V).

Definitions used throughout the book (the paper does not define its mIoU; its values suggest the
IoU of the target region, so that is our headline "mIoU"):

- **classification accuracy**: fraction of subtomograms whose predicted class is the true class.
- **per-class accuracy**: for each true class, the fraction predicted as that class (recall).
- **confusion matrix**: ``C[i, j]`` = number of subtomograms of true class i predicted as j.
- **pixel accuracy**: fraction of voxels, pooled over all subtomograms, whose binary predicted
  mask equals the ground-truth target mask.
- **IoU of the target region** (headline ``miou``): per subtomogram ``|P ∩ T| / |P ∪ T|`` of the
  predicted and true target masks, then **averaged over subtomograms** (a subtomogram with both
  masks empty counts as 1). Reported alternatives: ``iou_pooled`` (intersections and unions summed
  over the whole set before dividing) and ``miou_fg_bg`` (per subtomogram, the mean of the target
  IoU and the background IoU, averaged over subtomograms).
- **Fourier shell correlation** (structure recovery, DSM-Net 3.5): the normalised
  cross-correlation of two volumes' Fourier coefficients shell by shell
  (:func:`fourier_shell_correlation`), and the resolution where it falls below a threshold
  (:func:`fsc_resolution`).

Functions take torch tensors (any device) or numpy arrays and return Python floats / lists.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from cryo_companion.devices import ArrayOrTensor

__all__ = [
    "accuracy",
    "confusion_matrix",
    "difference_ci",
    "fourier_shell_correlation",
    "fsc_resolution",
    "mean_std",
    "per_class_accuracy",
    "segmentation_counts",
    "segmentation_metrics",
    "shell_index",
    "target_masks_from_scores",
    "threshold_sweep",
    "two_class_scores",
]


def _t(x: ArrayOrTensor) -> Tensor:
    return x if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))


def _check_labels(pred: Tensor, true: Tensor) -> None:
    if pred.shape != true.shape or pred.dim() != 1:
        raise ValueError(f"pred and true must be 1-D of equal length, got {tuple(pred.shape)} and "
                         f"{tuple(true.shape)}")
    if pred.numel() == 0:
        raise ValueError("no samples: metrics of an empty set are undefined")


def accuracy(pred: ArrayOrTensor, true: ArrayOrTensor) -> float:
    """Return the classification accuracy, the mean of ``pred == true``.

    Parameters
    ----------
    pred, true : torch.Tensor or numpy.ndarray
        `(N,)` integer class labels, predicted and true, N >= 1.

    Returns
    -------
    float
        Fraction in [0, 1].

    Raises
    ------
    ValueError
        The labels are not 1-D of equal length, or there are none.
    """
    p, t = _t(pred), _t(true)
    _check_labels(p, t)
    return float((p == t.to(p.device)).double().mean())


def confusion_matrix(pred: ArrayOrTensor, true: ArrayOrTensor, n_classes: int) -> list[list[int]]:
    """Count the samples of each true class predicted as each class.

    Parameters
    ----------
    pred, true : torch.Tensor or numpy.ndarray
        `(N,)` integer class labels, predicted and true, N >= 1.
    n_classes : int
        Number of classes K; labels lie in [0, K).

    Returns
    -------
    list[list[int]]
        `(K, K)` nested list: ``C[i][j]`` = number of samples of true class i predicted as
        class j.

    Raises
    ------
    ValueError
        The labels are not 1-D of equal length, there are none, or one lies outside [0, K).
    """
    p, t = _t(pred).long().cpu(), _t(true).long().cpu()
    _check_labels(p, t)
    for name, v in (("pred", p), ("true", t)):
        if int(v.min()) < 0 or int(v.max()) >= n_classes:
            raise ValueError(f"{name} labels must lie in [0, {n_classes}), got "
                             f"[{int(v.min())}, {int(v.max())}]")
    c = torch.bincount(t * n_classes + p, minlength=n_classes * n_classes)
    return c.reshape(n_classes, n_classes).tolist()


def per_class_accuracy(pred: ArrayOrTensor, true: ArrayOrTensor,
                       n_classes: int) -> list[float | None]:
    """Return the recall of each true class (None for a class absent from ``true``).

    Parameters
    ----------
    pred, true : torch.Tensor or numpy.ndarray
        `(N,)` integer class labels, predicted and true, N >= 1.
    n_classes : int
        Number of classes K; labels lie in [0, K).

    Returns
    -------
    list[float | None]
        Length K: the fraction of each true class predicted as that class.

    Raises
    ------
    ValueError
        As :func:`confusion_matrix`.
    """
    cm = np.asarray(confusion_matrix(pred, true, n_classes))
    rows = cm.sum(axis=1)
    return [float(cm[i, i] / rows[i]) if rows[i] > 0 else None for i in range(n_classes)]


def segmentation_counts(pred_mask: Tensor, true_mask: Tensor) -> dict[str, Tensor]:
    """Count the voxels of binary masks per subtomogram.

    Parameters
    ----------
    pred_mask, true_mask : torch.Tensor
        `(N, D, D, D)` bool (or 0/1) masks, z-y-x (any trailing shape; the first axis is the
        sample); ``true_mask`` is moved to ``pred_mask``'s device.

    Returns
    -------
    dict[str, torch.Tensor]
        `(N,)` float64 tensors: ``tp``, ``fp``, ``fn``, ``tn`` and ``n`` (voxels per sample).

    Raises
    ------
    ValueError
        The masks differ in shape or have fewer than two axes.
    """
    if pred_mask.shape != true_mask.shape or pred_mask.dim() < 2:
        raise ValueError(f"masks must have equal shapes (N, ...), got {tuple(pred_mask.shape)} "
                         f"and {tuple(true_mask.shape)}")
    p = pred_mask.bool().flatten(1)
    t = true_mask.to(p.device).bool().flatten(1)
    tp = (p & t).sum(1).double()
    fp = (p & ~t).sum(1).double()
    fn = (~p & t).sum(1).double()
    n = torch.full_like(tp, float(p.shape[1]))
    return {"tp": tp, "fp": fp, "fn": fn, "tn": n - tp - fp - fn, "n": n}


def _metrics_from_counts(c: dict[str, Tensor]) -> dict[str, float]:
    tp, fp, fn, tn, n = c["tp"], c["fp"], c["fn"], c["tn"], c["n"]
    union_fg = tp + fp + fn
    union_bg = tn + fp + fn
    iou_fg = torch.where(union_fg > 0, tp / union_fg.clamp(min=1), torch.ones_like(tp))
    iou_bg = torch.where(union_bg > 0, tn / union_bg.clamp(min=1), torch.ones_like(tn))
    return {
        "pixel_accuracy": float((tp + tn).sum() / n.sum()),
        "miou": float(iou_fg.mean()),
        "iou_pooled": float(tp.sum() / union_fg.sum()) if float(union_fg.sum()) > 0 else 1.0,
        "miou_fg_bg": float(((iou_fg + iou_bg) / 2).mean()),
    }


def segmentation_metrics(pred_mask: ArrayOrTensor, true_mask: ArrayOrTensor) -> dict[str, float]:
    """Compute pixel accuracy and the IoU variants of the module docstring for binary masks.

    Parameters
    ----------
    pred_mask, true_mask : torch.Tensor or numpy.ndarray
        `(N, D, D, D)` binary masks (bool or 0/1), z-y-x.

    Returns
    -------
    dict[str, float]
        ``{"pixel_accuracy", "miou", "iou_pooled", "miou_fg_bg"}``, floats in [0, 1].

    Raises
    ------
    ValueError
        The masks differ in shape or have fewer than two axes.
    """
    return _metrics_from_counts(segmentation_counts(_t(pred_mask), _t(true_mask)))


def threshold_sweep(prob: ArrayOrTensor, true_mask: ArrayOrTensor, thresholds: Sequence[float],
                    chunk: int = 128) -> dict[str, list[float]]:
    """Compute the segmentation metrics of ``prob > t`` for each threshold ``t``.

    Parameters
    ----------
    prob : torch.Tensor or numpy.ndarray
        `(N, D, D, D)` mask probabilities in [0, 1] (the predicted class's mask), z-y-x.
    true_mask : torch.Tensor or numpy.ndarray
        `(N, D, D, D)` binary ground truth.
    thresholds : sequence of float
        Thresholds in (0, 1).
    chunk : int, optional
        Subtomograms processed at once (memory bound).

    Returns
    -------
    dict[str, list[float]]
        ``{"threshold": [...], "pixel_accuracy": [...], "miou": [...], "iou_pooled": [...],
        "miou_fg_bg": [...]}``, one entry per threshold.

    Raises
    ------
    ValueError
        ``prob`` and ``true_mask`` differ in shape, or a threshold lies outside (0, 1) or there
        is none.
    """
    p, t = _t(prob), _t(true_mask)
    if p.shape != t.shape:
        raise ValueError(f"prob {tuple(p.shape)} and true_mask {tuple(t.shape)} differ in shape")
    ths = [float(x) for x in thresholds]
    if not ths or any(not 0.0 < x < 1.0 for x in ths):
        raise ValueError(f"thresholds must be a non-empty list in (0, 1), got {ths}")
    out: dict[str, list[float]] = {"threshold": ths, "pixel_accuracy": [], "miou": [],
                                   "iou_pooled": [], "miou_fg_bg": []}
    for th in ths:
        parts: dict[str, list[Tensor]] = {}
        for i in range(0, p.shape[0], chunk):
            c = segmentation_counts(p[i:i + chunk] > th, t[i:i + chunk])
            for k, v in c.items():
                parts.setdefault(k, []).append(v)
        m = _metrics_from_counts({k: torch.cat(v) for k, v in parts.items()})
        for k, value in m.items():
            out[k].append(value)
    return out


def mean_std(values: Sequence[float]) -> dict[str, float | int | None]:
    """Return the mean and sample standard deviation of per-seed values.

    Parameters
    ----------
    values : sequence of float
        One value per seed, finite, at least one.

    Returns
    -------
    dict[str, float | int | None]
        ``mean``, ``std`` (ddof = 1; None for a single value) and ``n`` (number of values).

    Raises
    ------
    ValueError
        ``values`` is empty or holds a NaN or an infinite value.
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0 or not np.isfinite(v).all():
        raise ValueError(f"need a non-empty list of finite values, got {list(values)}")
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else None,
            "n": int(v.size)}


def difference_ci(a: Sequence[float], b: Sequence[float], *, level: float = 0.95,
                  method: str = "t", n_boot: int = 10_000, seed: int = 0) -> dict[str, Any]:
    """Compute ``mean(a) - mean(b)`` over independent seeds with a confidence interval.

    Parameters
    ----------
    a, b : sequence of float
        Per-seed values of the two arms (e.g. randomized, baseline); >= 2 each.
    level : float, optional
        Confidence level in (0, 1).
    method : {"t", "bootstrap"}, optional
        ``"t"`` (Welch's unequal-variance t interval, Welch-Satterthwaite degrees of freedom)
        or ``"bootstrap"`` (percentile interval, each arm resampled with replacement).
    n_boot : int, optional
        Bootstrap resamples.
    seed : int, optional
        Seed of the bootstrap resampling.

    Returns
    -------
    dict[str, Any]
        ``diff``, ``low``, ``high``, ``level``, ``method``, and ``df`` (``"t"``: the
        Welch-Satterthwaite degrees of freedom, None when both arms are constant) or
        ``n_boot`` (``"bootstrap"``).

    Raises
    ------
    ValueError
        An arm has fewer than 2 values, ``level`` lies outside (0, 1) or ``method`` is unknown.
    """
    from scipy import stats

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size < 2 or y.size < 2:
        raise ValueError(f"need at least 2 seeds per arm for an interval, got {x.size} and "
                         f"{y.size}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    diff = float(x.mean() - y.mean())
    if method == "t":
        vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
        se = math.sqrt(vx + vy)
        if se == 0:
            return {"diff": diff, "low": diff, "high": diff, "level": level, "method": "t",
                    "df": None}
        df = (vx + vy) ** 2 / (vx ** 2 / (x.size - 1) + vy ** 2 / (y.size - 1))
        q = float(stats.t.ppf(0.5 + level / 2, df))
        return {"diff": diff, "low": diff - q * se, "high": diff + q * se, "level": level,
                "method": "t", "df": float(df)}
    if method == "bootstrap":
        rng = np.random.default_rng(seed)
        bx = rng.choice(x, size=(n_boot, x.size)).mean(1)
        by = rng.choice(y, size=(n_boot, y.size)).mean(1)
        lo, hi = np.quantile(bx - by, [0.5 - level / 2, 0.5 + level / 2])
        return {"diff": diff, "low": float(lo), "high": float(hi), "level": level,
                "method": "bootstrap", "n_boot": n_boot}
    raise ValueError(f"unknown method {method!r}; valid: 't', 'bootstrap'")


# --- two-class (target / background) segmentation, as Liu et al. 2018 (SSN3D) score it ------
def target_masks_from_scores(scores: ArrayOrTensor) -> Tensor:
    """Return target masks from two-channel scores: the channel of the larger score, per voxel.

    Parameters
    ----------
    scores : torch.Tensor or numpy.ndarray
        `(N, 2, D, D, D)` logits or probabilities, channel 0 background, channel 1 target.

    Returns
    -------
    torch.Tensor
        `(N, D, D, D)` bool, True where channel 1 scores higher; a tie is background, as
        ``numpy.argmax`` (the first maximum) decides it in the authors' code.

    Raises
    ------
    ValueError
        ``scores`` is not `(N, 2, ...)`.
    """
    s = _t(scores)
    if s.dim() < 3 or s.shape[1] != 2:
        raise ValueError(f"scores must be (N, 2, ...) with channel 0 background and 1 target, "
                         f"got {tuple(s.shape)}")
    return s[:, 1] > s[:, 0]


def two_class_scores(pred: ArrayOrTensor, true_mask: ArrayOrTensor, *, per_subtomogram: bool = False
                     ) -> dict[str, Any]:
    """Compute pixel accuracy and mIoU of target-vs-background segmentation as SSN3D's code does.

    Liu et al. 2018 do not define their mIoU; their released code (``meanIoU`` in
    ``segmentation/FCN.py`` of xulabs/projects) takes, per subtomogram, the IoU of the
    background ``TN / (N − TP)`` and of the target ``TP / (N − TN)``, averages each over the
    subtomograms and reports the mean of the two. Its pixel accuracy is Keras' categorical
    accuracy: the fraction of all voxels whose arg-max class is right (every subtomogram has
    the same number of voxels, so pooled and per-subtomogram means agree). A subtomogram in
    which both masks have no target voxel scores a target IoU of 1 here (the authors' formula
    divides 0 by 0 there); likewise for the background.

    Parameters
    ----------
    pred : torch.Tensor or numpy.ndarray
        `(N, D, D, D)` binary predicted target masks, or `(N, 2, D, D, D)` two-channel scores
        (see :func:`target_masks_from_scores`).
    true_mask : torch.Tensor or numpy.ndarray
        `(N, D, D, D)` binary ground truth (True = voxel of the target complex).
    per_subtomogram : bool
        Also return the per-subtomogram values (lists of N floats, keys ``*_per_subtomogram``).

    Returns
    -------
    dict
        ``pixel_accuracy``, ``miou`` (the headline: mean of ``background_iou`` and
        ``target_iou``), ``target_iou``, ``background_iou``: floats in [0, 1], means over the
        subtomograms; with ``per_subtomogram`` also their per-subtomogram lists.

    Raises
    ------
    ValueError
        ``pred`` and ``true_mask`` are not both `(N, D, D, D)` masks with N >= 1 (or ``pred`` `(N,
        2, D, D, D)` scores).
    """
    p, t = _t(pred), _t(true_mask)
    if p.dim() == t.dim() + 1:
        p = target_masks_from_scores(p)
    if p.shape != t.shape or p.dim() < 2 or p.shape[0] == 0:
        raise ValueError(f"pred {tuple(p.shape)} and true_mask {tuple(t.shape)} must both be "
                         "(N, D, D, D) masks with N >= 1 (or pred (N, 2, D, D, D) scores)")
    c = segmentation_counts(p, t)
    tp, fp, fn, tn, n = c["tp"], c["fp"], c["fn"], c["tn"], c["n"]
    union_fg, union_bg = tp + fp + fn, tn + fp + fn
    iou_fg = torch.where(union_fg > 0, tp / union_fg.clamp(min=1), torch.ones_like(tp))
    iou_bg = torch.where(union_bg > 0, tn / union_bg.clamp(min=1), torch.ones_like(tn))
    acc = (tp + tn) / n
    out: dict[str, Any] = {"pixel_accuracy": float(acc.mean()),
                           "miou": float((iou_fg.mean() + iou_bg.mean()) / 2),
                           "target_iou": float(iou_fg.mean()),
                           "background_iou": float(iou_bg.mean())}
    if per_subtomogram:
        out.update({"pixel_accuracy_per_subtomogram": acc.tolist(),
                    "miou_per_subtomogram": ((iou_fg + iou_bg) / 2).tolist(),
                    "target_iou_per_subtomogram": iou_fg.tolist(),
                    "background_iou_per_subtomogram": iou_bg.tolist()})
    return out


# --- Fourier shell correlation (structure recovery, DSM-Net 3.5) ----------------------------
def _cube(x: ArrayOrTensor, name: str) -> Tensor:
    v = _t(x).double()
    if v.dim() != 3 or len(set(v.shape)) != 1 or v.shape[0] < 4:
        raise ValueError(f"{name} must be a cubic volume (D, D, D) with D >= 4, got "
                         f"{tuple(v.shape)}")
    if not bool(torch.isfinite(v).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return v


def shell_index(size: int) -> Tensor:
    """Return the Fourier shell of every coefficient of a ``size``³ FFT (``fftn`` order).

    Parameters
    ----------
    size : int
        Edge of the cubic volume.

    Returns
    -------
    torch.Tensor
        `(size, size, size)` int64: ``round(|k|)`` with ``k`` the frequency in cycles per box
        (``|k| = size · |f|``); shell ``i`` holds the coefficients with ``i − 0.5 <= |k| <
        i + 0.5``.
    """
    k = torch.fft.fftfreq(size, dtype=torch.float64) * size
    kz, ky, kx = torch.meshgrid(k, k, k, indexing="ij")
    return torch.round(torch.sqrt(kz ** 2 + ky ** 2 + kx ** 2)).long()


def fourier_shell_correlation(a: ArrayOrTensor, b: ArrayOrTensor,
                              voxel_size_A: float) -> dict[str, list[Any]]:
    """Compute the Fourier shell correlation of two volumes, shell by shell up to Nyquist.

    ``FSC(i) = Re Σ F_a F_b* / sqrt(Σ |F_a|² Σ |F_b|²)`` over the coefficients of shell ``i``
    (:func:`shell_index`), for ``i = 0 .. D // 2``; shell 0 is the mean (its FSC is the sign of
    the product of the means, or 0 when one is 0). The FSC does not change when either volume
    is scaled by a positive factor, and is 1 in every shell for identical volumes.

    Parameters
    ----------
    a, b : torch.Tensor or numpy.ndarray
        `(D, D, D)` volumes on the same grid, z-y-x.
    voxel_size_A : float
        Voxel edge in Å.

    Returns
    -------
    dict
        ``shell`` (0 .. D // 2), ``frequency_per_A`` (``i / (D · voxel_size_A)``),
        ``resolution_A`` (its inverse; infinite for shell 0), ``fsc`` and ``n_coefficients``
        (coefficients per shell), lists of ``D // 2 + 1`` values.

    Raises
    ------
    ValueError
        A volume is not a cube of edge >= 4 or holds NaN or infinite values, the two grids differ,
        or ``voxel_size_A`` is not a positive number.
    """
    x, y = _cube(a, "a"), _cube(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"a {tuple(x.shape)} and b {tuple(y.shape)} must be on the same grid")
    if not voxel_size_A > 0 or not math.isfinite(voxel_size_A):
        raise ValueError(f"voxel_size_A must be a positive number, got {voxel_size_A}")
    D = x.shape[0]
    fa, fb = torch.fft.fftn(x), torch.fft.fftn(y)
    sh = shell_index(D).flatten().to(fa.device)
    n = D // 2 + 1
    keep = sh < n
    idx = sh[keep]

    def shell_sum(v: Tensor) -> Tensor:
        return torch.zeros(n, dtype=v.dtype, device=v.device).index_add_(0, idx, v[keep])

    cross = shell_sum((fa * fb.conj()).real.flatten())
    pa = shell_sum((fa.abs() ** 2).flatten())
    pb = shell_sum((fb.abs() ** 2).flatten())
    denom = torch.sqrt(pa * pb)
    fsc = torch.where(denom > 0, cross / denom.clamp(min=1e-300), torch.zeros_like(cross))
    counts = torch.bincount(idx, minlength=n)
    shells = list(range(n))
    freq = [i / (D * voxel_size_A) for i in shells]
    return {"shell": shells, "frequency_per_A": freq,
            "resolution_A": [1 / f if f > 0 else math.inf for f in freq],
            "fsc": fsc.cpu().tolist(), "n_coefficients": counts.cpu().tolist()}


def fsc_resolution(curve: dict[str, list[Any]], threshold: float) -> dict[str, Any]:
    """Find the resolution at which an FSC curve first falls below ``threshold``.

    Searched from shell 1 outwards; the crossing frequency is interpolated linearly between
    the last shell at or above the threshold and the first below it, and the resolution is its
    inverse (Å).

    Parameters
    ----------
    curve : dict
        A :func:`fourier_shell_correlation` result.
    threshold : float
        The criterion in (0, 1): 0.5, or 0.143 (Rosenthal & Henderson 2003, for half-maps).

    Returns
    -------
    dict
        ``threshold``, ``resolution_A`` and ``resolution_nm`` (the crossing), ``crossed``:
        ``"between shells"`` (interpolated), ``"below at shell 1"`` (resolution reported as the
        box, ``D · voxel``: the curve gives no finer bound) or ``"never"`` (resolution reported
        as Nyquist, ``2 · voxel``: at least that good), and ``shell`` (the first shell below
        the threshold, or None).

    Raises
    ------
    ValueError
        ``threshold`` lies outside (0, 1), or ``curve`` holds fewer than 2 shells or lists of
        unequal length.
    """
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
    fsc, freq = curve["fsc"], curve["frequency_per_A"]
    if len(fsc) < 2 or len(freq) != len(fsc):
        raise ValueError("curve must hold matching fsc and frequency_per_A lists of >= 2 shells")
    below = next((i for i in range(1, len(fsc)) if fsc[i] < threshold), None)
    if below is None:
        f, how = freq[-1], "never"
    elif below == 1:
        f, how = freq[1], "below at shell 1"
    else:
        f0, f1, c0, c1 = freq[below - 1], freq[below], fsc[below - 1], fsc[below]
        f, how = f0 + (c0 - threshold) / (c0 - c1) * (f1 - f0), "between shells"
    res = 1.0 / f
    return {"threshold": float(threshold), "resolution_A": res, "resolution_nm": res / 10.0,
            "crossed": how, "shell": below}
