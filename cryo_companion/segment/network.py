"""Segmenting the centre target of subtomograms with trained SSN3D weights.

The weights file (:func:`save_weights`) is a ``torch.save`` dict that records everything a
user's data must match: the format tag :data:`WEIGHTS_FORMAT`, the architecture (its
configuration and fingerprint, hence the box), the output channels' names, the preprocessing
(:data:`PREPROCESSING`: per-subtomogram standardisation, the voxel size in Å and the contrast
the network was trained on), training metadata and the float32 state dict.

Preprocessing (:func:`preprocess`): a subtomogram whose contrast differs from the training
contrast is negated (``"dark"``: mass darker than the solvent, as in a raw reconstruction;
``"bright"``: inverted), then each subtomogram is standardised on its own to zero mean and unit
standard deviation. Standardising each box on its own (not with statistics of a batch or a
set) makes a subtomogram's prediction independent of what it is predicted with.

Prediction (:func:`segment_subtomograms`): the softmax probability of the target channel, and
the target mask where the target's logit is the larger (a tie is background), which is the
arg-max of SSN3D's two-class output.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from cryo_companion.learn.predict import predict
from cryo_companion.models.ssn3d import SSN3D, SSN3DConfig

__all__ = ["CONTRASTS", "PREPROCESSING", "WEIGHTS_FORMAT", "check_volumes", "load_weights",
           "needs_inversion", "preprocess", "save_weights", "segment_subtomograms"]

#: Format tag of the weights files written by :func:`save_weights`.
WEIGHTS_FORMAT = "cryo_companion.ssn3d/1"
#: Valid contrasts: how mass appears in a subtomogram.
CONTRASTS = ("dark", "bright")
#: Default preprocessing record: the crowded data sets are raw reconstructions (mass dark).
PREPROCESSING: dict[str, Any] = {"standardize": "per_subtomogram", "voxel_size_A": 13.68,
                                 "contrast": "dark"}


def needs_inversion(data_contrast: str, trained_contrast: str) -> bool:
    """Tell whether data of ``data_contrast`` must be negated for a network trained on the other.

    Parameters
    ----------
    data_contrast : str
        ``"dark"`` or ``"bright"``: the input's contrast.
    trained_contrast : str
        The contrast the network was trained on.

    Returns
    -------
    bool
    """
    for c in (data_contrast, trained_contrast):
        if c not in CONTRASTS:
            raise ValueError(f"contrast {c!r} is unknown; valid: {', '.join(CONTRASTS)}")
    return data_contrast != trained_contrast


def check_volumes(volumes: np.ndarray | Tensor, box: int, what: str = "volumes") -> None:
    """Refuse subtomograms a network of ``box``³ voxels cannot take, before any work.

    Parameters
    ----------
    volumes : numpy.ndarray or torch.Tensor
        `(N, D, D, D)` subtomograms.
    box : int
        The network's box edge in voxels.
    what : str
        How the message names them.

    Raises
    ------
    ValueError
        Not `(N, box, box, box)` with N >= 1, or NaN / infinite values (naming the first
        subtomograms that hold them).
    """
    shape = tuple(volumes.shape)
    if len(shape) != 4 or shape[0] < 1:
        raise ValueError(f"{what} must be (N, {box}, {box}, {box}) with N >= 1, got {shape}")
    if shape[1:] != (box,) * 3:
        raise ValueError(f"{what} have boxes of {shape[1:]} voxels; the network takes "
                         f"{box}^3 (extract {box}^3 boxes at its voxel size)")
    arr = volumes.detach().cpu().numpy() if isinstance(volumes, Tensor) else np.asarray(volumes)
    finite = np.isfinite(arr.reshape(shape[0], -1)).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(f"{what} {bad[:10].tolist()} contain NaN or infinite values")


def preprocess(volumes: Tensor, *, invert: bool) -> Tensor:
    """Negate (if ``invert``) and standardise each subtomogram on its own.

    Parameters
    ----------
    volumes : torch.Tensor
        `(N, D, D, D)` subtomograms, z-y-x.
    invert : bool
        Negate first (the input's contrast differs from the training contrast).

    Returns
    -------
    torch.Tensor
        `(N, D, D, D)` float32, each with mean 0 and standard deviation 1 (a constant box
        becomes zeros).
    """
    x = volumes.float()
    if invert:
        x = -x
    flat = x.reshape(x.shape[0], -1)
    mean = flat.mean(dim=1, keepdim=True)
    std = flat.std(dim=1, keepdim=True)
    return ((flat - mean) / torch.where(std > 0, std, torch.ones_like(std))).reshape(x.shape)


def save_weights(model: SSN3D, path: str | os.PathLike, *,
                 preprocessing: Mapping[str, Any] | None = None,
                 training: Mapping[str, Any] | None = None) -> Path:
    """Write SSN3D weights with everything needed to use them, atomically.

    Parameters
    ----------
    model : SSN3D
        The trained network.
    path : str or os.PathLike
        Destination ``.pt`` file.
    preprocessing : mapping or None
        ``voxel_size_A`` and ``contrast`` of the training data (default :data:`PREPROCESSING`);
        ``standardize`` is always ``"per_subtomogram"``.
    training : mapping or None
        JSON-able training metadata (variant, data set, seed, epochs, ...).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from cryo_companion._io import atomic_path

    pre = {**PREPROCESSING, **dict(preprocessing or {}), "standardize": "per_subtomogram"}
    needs_inversion(str(pre["contrast"]), "dark")      # validates the contrast
    payload = {
        "format": WEIGHTS_FORMAT, "config": model.cfg.to_dict(),
        "fingerprint": model.cfg.fingerprint(), "class_names": list(model.class_names),
        "preprocessing": {**pre, "box": model.cfg.box}, "training": dict(training or {}),
        "state_dict": {k: v.detach().float().cpu() for k, v in model.state_dict().items()},
    }
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_weights(path: str | os.PathLike, map_location: str | torch.device = "cpu"
                 ) -> tuple[SSN3D, dict[str, Any]]:
    """Read a weights file of :func:`save_weights`.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    map_location : str or torch.device
        Where the model is put.

    Returns
    -------
    tuple
        The model (evaluation mode) and its metadata (everything but the state dict).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not SSN3D weights of this format, or a configuration or state dict that does not fit.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling failure: not a weights file of ours
        raise ValueError(f"{path}: not a cryo_companion weights file (torch.load could not "
                         f"read it: {type(exc).__name__})") from exc
    if not isinstance(payload, dict) or payload.get("format") != WEIGHTS_FORMAT:
        fmt = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path}: weights of another model (format {fmt!r}); expected SSN3D "
                         f"weights ({WEIGHTS_FORMAT!r}, written by the SSN3D training)")
    try:
        cfg = SSN3DConfig.from_dict(payload["config"])
        model = SSN3D(cfg, class_names=payload["class_names"])
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"{path}: SSN3D weights that do not fit their architecture "
                         f"({first})") from exc
    if cfg.fingerprint() != payload.get("fingerprint"):
        raise ValueError(f"{path}: architecture fingerprint {payload.get('fingerprint')} does "
                         f"not match its configuration ({cfg.fingerprint()})")
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    return model.to(map_location).eval(), meta


def segment_subtomograms(model: SSN3D, volumes: Tensor, *, invert: bool, batch_size: int = 32,
                         progress: bool = False) -> tuple[Tensor, Tensor]:
    """Segment the centre target of each subtomogram.

    Parameters
    ----------
    model : SSN3D
        The network (on the device to run on).
    volumes : torch.Tensor
        `(N, D, D, D)` subtomograms (any device), D = the network's box, finite.
    invert : bool
        Negate before standardising (:func:`needs_inversion` of the data and the training
        contrast).
    batch_size : int
        Subtomograms per forward pass.
    progress : bool
        Progress bar on a terminal.

    Returns
    -------
    tuple of torch.Tensor
        `(N, D, D, D)` float32 probability of the target channel and `(N, D, D, D)` bool
        target masks, on the CPU.
    """
    check_volumes(volumes, model.cfg.box)
    x = preprocess(volumes, invert=invert)

    def reduce(out: Tensor, _chunk: slice) -> tuple[Tensor, Tensor]:
        out = out.float()
        return torch.softmax(out, dim=1)[:, 1], out[:, 1] > out[:, 0]

    prob, mask = predict(model, x, batch_size=batch_size, reduce=reduce, progress=progress,
                         desc="segment")
    return prob, mask
