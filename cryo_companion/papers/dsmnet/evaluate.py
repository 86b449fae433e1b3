"""What DSM-Net's networks see and how they are scored: inputs, targets, metrics, convergence.

Choices (the paper leaves them open):

* **Inputs**: each subtomogram standardised on its own (zero mean, unit standard deviation),
  in the contrast it was reconstructed with (raw reconstructions: mass dark). Per-box
  standardisation makes a user's own subtomograms independent of their scale and offset.
* **Recovery target**: the noise-free density of the target alone (rendered from its true pose,
  :mod:`cryo_companion.simulate.targets`) divided by the mean protein density 0.81 Da/Å³, so
  that it reads as the protein fraction of each voxel (0 outside, about 1 inside). The paper
  regresses the response of an unsupervised averaging model instead (2.3, equation 1); the
  book has the truth that such a model estimates, so it regresses that.
* **Metrics**: object accuracy (fraction of test subtomograms whose predicted class is the true
  class); pixel accuracy and mIoU as the authors' SSN3D code computes them
  (:func:`cryo_companion.metrics.two_class_scores`: per subtomogram, the mean of the
  background IoU and the target IoU; DSM-Net compares its Seg Subnet with SSN3D-ED in the same
  columns), the target IoU alongside; for recovery (not in the paper's tables) the mean squared
  error and the Pearson correlation with the target's density.
* **"Fails to converge"** (Table 2's and Table 3's "*"): a run whose training loss never falls
  below 0.9 of the loss of a uniform guess, ``ln C`` for C classes (:func:`converged`).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from cryo_companion import metrics
from cryo_companion.simulate.scene import PROTEIN_DENSITY_DA_A3

__all__ = ["PREPROCESSING", "converged", "head_outputs", "prepare", "recovery_target", "score",
           "standardize"]

#: How the networks' inputs and recovery targets are made (stored with the weights).
PREPROCESSING: dict[str, Any] = {
    "standardize": "per_subtomogram", "contrast": "dark", "voxel_size_A": 13.68, "box": 40,
    "recovery_unit": "protein fraction: density / 0.81 Da/A^3"}


def standardize(volumes: Any) -> Tensor:
    """Standardise each subtomogram on its own: zero mean, unit standard deviation.

    Parameters
    ----------
    volumes : torch.Tensor or numpy.ndarray
        `(N, D, D, D)` subtomograms.

    Returns
    -------
    torch.Tensor
        `(N, D, D, D)` float32; a constant box becomes zeros.
    """
    v = torch.as_tensor(np.asarray(volumes) if not isinstance(volumes, Tensor) else volumes)
    if v.dim() != 4:
        raise ValueError(f"volumes must be (N, D, D, D), got {tuple(v.shape)}")
    v = v.float()
    flat = v.flatten(1)
    mean = flat.mean(1).reshape(-1, 1, 1, 1)
    std = flat.std(1, unbiased=False).reshape(-1, 1, 1, 1)
    return torch.where(std > 0, (v - mean) / std.clamp(min=1e-12), torch.zeros_like(v))


def recovery_target(density: Any) -> Tensor:
    """Turn targets' densities (Da/Å³) into recovery targets (protein fraction per voxel).

    Parameters
    ----------
    density : torch.Tensor or numpy.ndarray
        `(N, D, D, D)` noise-free densities of the targets alone, Da/Å³.

    Returns
    -------
    torch.Tensor
        `(N, D, D, D)` float32, ``density / 0.81``.
    """
    d = torch.as_tensor(np.asarray(density) if not isinstance(density, Tensor) else density)
    return d.float() / PROTEIN_DENSITY_DA_A3


def prepare(data: Any, index: Any | None = None, labels: Any | None = None) -> dict[str, Tensor]:
    """Build the tensors a DSM-Net (sub)network trains or is tested on.

    Parameters
    ----------
    data : CrowdedSubtomograms
        A data set of :mod:`cryo_companion.papers.dsmnet.datasets` (volumes, labels, masks,
        densities).
    index : array-like or None
        The subtomograms to take (None: all).
    labels : array-like or None
        Labels to use instead of the set's (e.g. renumbered without a held-out class,
        :func:`cryo_companion.papers.dsmnet.splits.relabel_without`), one per subtomogram of
        the whole set.

    Returns
    -------
    dict of torch.Tensor
        ``x`` `(n, D, D, D)` standardised inputs, ``labels`` `(n,)` int64, ``masks``
        `(n, D, D, D)` bool, ``density`` `(n, D, D, D)` recovery targets.
    """
    idx = np.arange(len(data)) if index is None else np.asarray(index)
    if data.masks is None or getattr(data, "density", None) is None:
        raise ValueError("the data set needs target masks and densities (a DSM-Net data set)")
    lab = np.asarray(data.labels if labels is None else labels)
    if lab.shape != (len(data),):
        raise ValueError(f"labels must have one entry per subtomogram ({len(data)}), got "
                         f"shape {lab.shape}")
    return {"x": standardize(data.volumes[idx]), "labels": torch.as_tensor(lab[idx]).long(),
            "masks": torch.as_tensor(data.masks[idx]).bool(),
            "density": recovery_target(data.density[idx])}


def head_outputs(out: Tensor | Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Name a network's outputs by head, as DSM-Net's :meth:`forward` does.

    Parameters
    ----------
    out : torch.Tensor or Mapping of str to torch.Tensor
        What a network returned: DSM-Net's and DSRF3D-v2's dicts pass through; SSN3D-ED's
        `(B, 2, D, D, D)` logits become ``{"segmentation": logits}``.

    Returns
    -------
    dict of torch.Tensor
    """
    if isinstance(out, Tensor):
        if out.dim() != 5 or out.shape[1] != 2:
            raise ValueError(f"a tensor output must be (B, 2, D, D, D) segmentation logits, "
                             f"got {tuple(out.shape)}")
        return {"segmentation": out}
    return dict(out)


def score(outputs: Mapping[str, Tensor], labels: Any | None = None, masks: Any | None = None,
          density: Any | None = None) -> dict[str, float]:
    """Score a network's outputs on a test set, for whichever heads it has.

    Parameters
    ----------
    outputs : Mapping of str to torch.Tensor
        What the network returned for the whole set (``class_logits``, ``segmentation``,
        ``recovery``; other keys are ignored).
    labels : array-like or None
        `(N,)` true classes (needed with ``class_logits``).
    masks : array-like or None
        `(N, D, D, D)` true target masks (needed with ``segmentation``).
    density : array-like or None
        `(N, D, D, D)` recovery targets (needed with ``recovery``).

    Returns
    -------
    dict
        ``object_accuracy``; ``pixel_accuracy``, ``miou``, ``target_iou``,
        ``background_iou``; ``recovery_mse``, ``recovery_correlation`` (mean over
        subtomograms of the Pearson correlation with the target's density): fractions, for the
        heads present.
    """
    out: dict[str, float] = {}
    if "class_logits" in outputs:
        if labels is None:
            raise ValueError("class_logits need the true labels")
        out["object_accuracy"] = metrics.accuracy(outputs["class_logits"].argmax(1).cpu(),
                                                  torch.as_tensor(np.asarray(labels)))
    if "segmentation" in outputs:
        if masks is None:
            raise ValueError("a segmentation needs the true masks")
        s = metrics.two_class_scores(outputs["segmentation"].cpu(), np.asarray(masks))
        out.update({k: float(s[k]) for k in ("pixel_accuracy", "miou", "target_iou",
                                             "background_iou")})
    if "recovery" in outputs:
        if density is None:
            raise ValueError("a recovery needs the recovery targets")
        r = outputs["recovery"].detach().cpu().double().flatten(1)
        t = torch.as_tensor(np.asarray(density)).double().flatten(1)
        if r.shape != t.shape:
            raise ValueError(f"recovery {tuple(r.shape)} and targets {tuple(t.shape)} differ")
        out["recovery_mse"] = float(((r - t) ** 2).mean())
        rc, tc = r - r.mean(1, keepdim=True), t - t.mean(1, keepdim=True)
        den = rc.norm(dim=1) * tc.norm(dim=1)
        out["recovery_correlation"] = float(torch.where(
            den > 0, (rc * tc).sum(1) / den.clamp(min=1e-300), torch.zeros_like(den)).mean())
    if not out:
        raise ValueError(f"no head output among {sorted(outputs)}")
    return out


def converged(train_losses: Sequence[float], n_classes: int, fraction: float = 0.9) -> bool:
    """Whether a classifier's training got anywhere (Table 2's "*" is a run that did not).

    Parameters
    ----------
    train_losses : sequence of float
        The classification loss (cross-entropy, nats) of each epoch or logged step.
    n_classes : int
        Classes (the loss of a uniform guess is ``ln n_classes``).
    fraction : float
        A run has converged when its loss fell below ``fraction · ln n_classes`` at least once.

    Returns
    -------
    bool
    """
    if n_classes < 2 or not 0 < fraction < 1:
        raise ValueError(f"need n_classes >= 2 and fraction in (0, 1), got {n_classes}, "
                         f"{fraction}")
    v = [float(x) for x in train_losses]
    if not v:
        raise ValueError("no training losses")
    finite = [x for x in v if math.isfinite(x)]
    return bool(finite) and min(finite) < fraction * math.log(n_classes)
