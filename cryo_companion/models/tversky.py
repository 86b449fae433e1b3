"""The Tversky loss (Salehi et al. 2017) of DeepFinder (α = β = 0.5, Dice) and UMC (α 0.7, β 0.3).

For class ``c`` with predicted probabilities ``p`` and one-hot truth ``g``, summed over the
batch and every voxel::

    T_c = Σ p g / (Σ p g + α Σ p (1 − g) + β Σ (1 − p) g)

α weighs the false positives and β the false negatives; α = β = 0.5 is the Dice coefficient,
α = β = 1 the Jaccard index. The loss is ``Σ_c (1 − T_c)`` = ``C − Σ_c T_c`` (DeepFinder's
``losses.tversky_loss``), from 0 (perfect) to the number of classes C. A class absent from both
prediction and truth would give 0/0; ``eps`` in numerator and denominator makes it a perfect 1.

Integer labels are turned into one-hot targets by comparison with the class indices (no data-
dependent Python control flow), so the loss runs under ``torch.func.vmap`` (several runs in one
training step, :mod:`cryo_companion.learn.step`) when ``check_labels=False``; the default checks
the labels' range first, which reads values back to the host.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["tversky_index", "tversky_loss"]


def tversky_index(probs: Tensor, target: Tensor, *, alpha: float = 0.5, beta: float = 0.5,
                  eps: float = 1e-6, check_labels: bool = True) -> Tensor:
    """Per-class Tversky index over a batch.

    Parameters
    ----------
    probs : torch.Tensor
        `(B, C, D, H, W)` class probabilities (softmax over dim 1).
    target : torch.Tensor
        `(B, D, H, W)` integer labels in ``[0, C)``, or `(B, C, D, H, W)` one-hot / soft
        targets.
    alpha : float
        Weight of the false positives (>= 0).
    beta : float
        Weight of the false negatives (>= 0).
    eps : float
        Added to numerator and denominator (> 0).
    check_labels : bool
        Refuse integer labels outside ``[0, C)`` (a host read-back; False under ``vmap``, where
        a label outside the range simply matches no class).

    Returns
    -------
    torch.Tensor
        `(C,)` indices in [0, 1].
    """
    if probs.ndim != 5:
        raise ValueError(f"probs must be (B, C, D, H, W), got {tuple(probs.shape)}")
    if alpha < 0 or beta < 0 or not eps > 0:
        raise ValueError(f"need alpha, beta >= 0 and eps > 0, got {alpha}, {beta}, {eps}")
    n_cls = probs.shape[1]
    if target.ndim == 4:
        if target.dtype.is_floating_point:
            raise ValueError("integer label targets must have an integer dtype")
        if check_labels:
            lo, hi = int(target.min()), int(target.max())
            if lo < 0 or hi >= n_cls:
                raise ValueError(f"labels {lo}..{hi} are outside [0, {n_cls})")
        classes = torch.arange(n_cls, device=target.device).reshape(1, n_cls, 1, 1, 1)
        g = (target.long().unsqueeze(1) == classes).to(probs.dtype)
    elif target.shape == probs.shape:
        g = target.to(probs.dtype)
    else:
        raise ValueError(f"target {tuple(target.shape)} must be (B, D, H, W) labels or "
                         f"{tuple(probs.shape)}")
    dims = (0, 2, 3, 4)
    tp = (probs * g).sum(dims)
    fp = (probs * (1 - g)).sum(dims)
    fn = ((1 - probs) * g).sum(dims)
    return (tp + eps) / (tp + alpha * fp + beta * fn + eps)


def tversky_loss(probs: Tensor, target: Tensor, *, alpha: float = 0.5, beta: float = 0.5,
                 eps: float = 1e-6, check_labels: bool = True) -> Tensor:
    """``C − Σ_c T_c``: the Tversky loss summed over classes (0 is perfect).

    Parameters
    ----------
    probs : torch.Tensor
        `(B, C, D, H, W)` class probabilities.
    target : torch.Tensor
        `(B, D, H, W)` labels or `(B, C, D, H, W)` one-hot targets.
    alpha : float
        Weight of the false positives (DeepFinder 0.5, UMC 0.7).
    beta : float
        Weight of the false negatives (DeepFinder 0.5, UMC 0.3).
    eps : float
        Smoothing (> 0).
    check_labels : bool
        Check the labels' range (see :func:`tversky_index`).

    Returns
    -------
    torch.Tensor
        Scalar loss.
    """
    t = tversky_index(probs, target, alpha=alpha, beta=beta, eps=eps,
                      check_labels=check_labels)
    return t.numel() - t.sum()
