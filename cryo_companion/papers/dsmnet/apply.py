"""Classify, segment and recover a user's own subtomograms with trained DSM-Net weights.

What ``cryo-companion dsmnet`` runs: the inputs are checked against what the weights were
trained on (box, voxel size), brought to the training contrast (inverted when the user's mass is
bright and the training's dark, or the reverse), standardised box by box as in training
(:func:`cryo_companion.papers.dsmnet.evaluate.standardize`) and passed through the network in
chunks; every check comes before any work.

Outputs, for the heads the weights have: the predicted class and its softmax probability, the
target mask (the voxels where the target channel scores higher, as in training's metrics) and
the recovered density in the network's unit (the protein fraction of each voxel, about 0
outside and 1 inside the target; :data:`~cryo_companion.papers.dsmnet.evaluate.PREPROCESSING`).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor

from cryo_companion._progress import progress as progress_bar
from cryo_companion.metrics import target_masks_from_scores
from cryo_companion.models.dsmnet import DSMNet
from cryo_companion.papers.dsmnet.evaluate import PREPROCESSING, standardize

__all__ = ["CONTRASTS", "apply_network", "check_inputs"]

CONTRASTS = ("dark", "bright")


def check_inputs(model: DSMNet, meta: Mapping[str, Any], shape: tuple[int, ...],
                 voxel_size_A: float, contrast: str) -> bool:
    """Check subtomograms against the weights; return whether they must be inverted.

    Parameters
    ----------
    model : DSMNet
        The network (its ``cfg.box`` is the box it takes).
    meta : Mapping
        The weights file's metadata (its ``preprocessing``).
    shape : tuple of int
        `(N, D, D, D)` shape of the subtomograms.
    voxel_size_A : float
        Their voxel size (Å).
    contrast : str
        How mass appears in them: ``"dark"`` or ``"bright"``.

    Returns
    -------
    bool
        True when they must be inverted to the training contrast.

    Raises
    ------
    ValueError
        Not cubic, another box, another voxel size (beyond 1 %), an unknown contrast.
    """
    pre = {**PREPROCESSING, **dict(meta.get("preprocessing") or {})}
    box = int(model.cfg.box)
    if len(shape) != 4 or len(set(shape[1:])) != 1:
        raise ValueError(f"subtomograms of shape {tuple(shape[1:])} are not cubic; the model "
                         f"takes cubic boxes of {box}^3 voxels")
    if shape[1] != box:
        raise ValueError(f"box {shape[1]}^3 differs from the model's {box}^3; extract {box}^3 "
                         f"boxes at {pre['voxel_size_A']} A/voxel")
    trained = float(pre["voxel_size_A"])
    if abs(voxel_size_A - trained) > 0.01 * trained:
        raise ValueError(f"voxel size {voxel_size_A:g} A differs from the model's {trained:g} A;"
                         f" extract {box}^3 boxes at {trained:g} A")
    if contrast not in CONTRASTS:
        raise ValueError(f"unknown contrast {contrast!r}; valid: {', '.join(CONTRASTS)}")
    return contrast != pre["contrast"]


@torch.no_grad()
def apply_network(model: DSMNet, volumes: Any, *, invert: bool = False,
                  batch_size: int = 64, progress: bool = True) -> dict[str, Tensor]:
    """Run a DSM-Net (sub)network on raw subtomograms, chunk by chunk on its device.

    Parameters
    ----------
    model : DSMNet
        The network (evaluation mode is set for the call, its mode restored afterwards).
    volumes : numpy.ndarray or torch.Tensor
        `(N, D, D, D)` subtomograms, z-y-x.
    invert : bool
        Negate them first (:func:`check_inputs` says when).
    batch_size : int
        Subtomograms per forward pass.
    progress : bool
        A progress bar on a terminal.

    Returns
    -------
    dict of torch.Tensor
        On the CPU, for the heads present: ``class_index`` `(N,)` int64 and ``probability``
        `(N,)` (softmax of the predicted class), ``probabilities`` `(N, C)`, ``features``
        `(N, F)`; ``masks`` `(N, D, D, D)` bool; ``recovery`` `(N, D, D, D)` float32.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    v = torch.as_tensor(np.asarray(volumes) if not isinstance(volumes, Tensor) else volumes)
    if v.dim() != 4 or v.shape[0] == 0:
        raise ValueError(f"volumes must be (N, D, D, D) with N >= 1, got {tuple(v.shape)}")
    dev = next(model.parameters()).device
    was = model.training
    model.eval()
    parts: dict[str, list[Tensor]] = {}
    try:
        for i in progress_bar(range(0, v.shape[0], batch_size), show=progress, desc="dsmnet"):
            x = standardize(-v[i:i + batch_size] if invert else v[i:i + batch_size])
            out = model(x.to(dev))
            if "class_logits" in out:
                p = torch.softmax(out["class_logits"].float(), 1)
                parts.setdefault("probabilities", []).append(p.cpu())
                parts.setdefault("features", []).append(out["features"].float().cpu())
            if "segmentation" in out:
                parts.setdefault("masks", []).append(
                    target_masks_from_scores(out["segmentation"]).cpu())
            if "recovery" in out:
                parts.setdefault("recovery", []).append(out["recovery"].float().cpu())
    finally:
        model.train(was)
    res = {k: torch.cat(p) for k, p in parts.items()}
    if "probabilities" in res:
        prob, idx = res["probabilities"].max(1)
        res["class_index"], res["probability"] = idx, prob
    return res
