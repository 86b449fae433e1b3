"""Checkpoints of a training run: written atomically, read back exactly.

A checkpoint is a ``torch.save`` dict with the keys ``config`` (the caller's description of the
run, compared on resume), ``iteration``, ``model`` and ``optimizer`` (state dicts),
``generator`` (the state of the run's batch generator), ``rng`` (the global torch RNG states of
the run, see :func:`rng_state`), ``history``, ``timing`` and ``source`` (the state of the batch
source, e.g. batches simulated ahead). Checkpoints written before ``source`` existed load with a
fresh source.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from cryo_companion._io import atomic_path

__all__ = ["load_checkpoint", "rng_state", "save_checkpoint", "set_rng_state"]


def rng_state(device: torch.device) -> dict[str, torch.Tensor]:
    """Return the global torch RNG states that a step on ``device`` may draw from.

    Parameters
    ----------
    device : torch.device
        Device of the run; on CUDA the state of that device is included.

    Returns
    -------
    dict
        ``{"torch_cpu": ByteTensor}`` and, on CUDA, ``"torch_cuda"``.
    """
    st = {"torch_cpu": torch.get_rng_state()}
    if device.type == "cuda":
        st["torch_cuda"] = torch.cuda.get_rng_state(device)
    return st


def set_rng_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    """Restore states returned by :func:`rng_state`.

    Parameters
    ----------
    state : dict
        As returned by :func:`rng_state`.
    device : torch.device
        Device of the run.
    """
    torch.set_rng_state(state["torch_cpu"].cpu())
    if device.type == "cuda" and "torch_cuda" in state:
        torch.cuda.set_rng_state(state["torch_cuda"].cpu(), device)


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically (complete or not at all).

    Parameters
    ----------
    path : str or os.PathLike
        Destination (its folder is created).
    payload : dict
        Tensors, numbers, strings, lists and dicts of them.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, device: torch.device) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    device : torch.device
        Where its tensors are loaded (RNG states stay on the CPU).

    Returns
    -------
    dict
        The payload.

    Raises
    ------
    ValueError
        If the file is not a checkpoint (unreadable, or without ``iteration``/``model``).
    """
    try:
        ck = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # any unpickling failure means "not a checkpoint"
        raise ValueError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})"
                         ) from exc
    if not isinstance(ck, dict) or "iteration" not in ck or "model" not in ck:
        raise ValueError(f"{path}: not a training checkpoint (no iteration/model)")
    return ck
