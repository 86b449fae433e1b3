"""Arithmetic precision and memory layout of a training step.

``"fp32"``: float32 everywhere. ``"tf32"``: on CUDA, matmuls and convolutions in TF32 (float32
storage, 10-bit mantissa products); on the CPU the same as fp32. ``"bf16"``: bfloat16 autocast
of the forward pass on the step's device (CUDA or CPU); parameters, gradients, losses and the
optimizer state stay float32. Whether bf16 leaves a paper's numbers unchanged is for a parity
check to show (Table I: ``cryo_companion.papers.che2019.train.precision_check``), not assumed.

Channels-last 3-D (``torch.channels_last_3d``) stores a ``(B, C, D, H, W)`` activation as
``(B, D, H, W, C)`` in memory, which bf16 convolutions on CUDA prefer; it changes no value
beyond float rounding.
"""
from __future__ import annotations

import contextlib

import torch
from torch import Tensor

__all__ = ["PRECISIONS", "autocast", "check_precision", "configure_backends",
           "to_channels_last", "use_channels_last"]

PRECISIONS = ("fp32", "tf32", "bf16")


def check_precision(precision: str) -> str:
    """Validate a precision name.

    Parameters
    ----------
    precision : str
        One of :data:`PRECISIONS`.

    Returns
    -------
    str
        ``precision``.

    Raises
    ------
    ValueError
        For another name, listing the valid ones.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    return precision


def configure_backends(device: torch.device, precision: str) -> None:
    """Set the process-wide CUDA flags of ``precision`` (nothing on the CPU).

    Parameters
    ----------
    device : torch.device
        Device of the step.
    precision : str
        ``"fp32"`` turns TF32 off; ``"tf32"`` and ``"bf16"`` turn it on. ``cudnn.benchmark``
        is switched on (the step's shapes do not change).
    """
    check_precision(precision)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = precision != "fp32"
        torch.backends.cudnn.allow_tf32 = precision != "fp32"
        torch.backends.cudnn.benchmark = True


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[None]:
    """Return the autocast context of ``precision`` on ``device``.

    Parameters
    ----------
    device : torch.device
        Device of the forward pass.
    precision : str
        ``"bf16"`` gives bfloat16 autocast; the others a context that does nothing.

    Returns
    -------
    contextlib.AbstractContextManager
        To wrap the forward pass (not the loss: losses are computed in float32).
    """
    if check_precision(precision) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def use_channels_last(device: torch.device, precision: str, requested: bool | None) -> bool:
    """Decide whether the step uses the channels-last 3-D layout.

    Parameters
    ----------
    device : torch.device
        Device of the step.
    precision : str
        The precision (see :data:`PRECISIONS`).
    requested : bool or None
        The caller's choice; None: with bf16 on CUDA only (where it is fastest).

    Returns
    -------
    bool
        True for channels-last.
    """
    if requested is not None:
        return bool(requested)
    return precision == "bf16" and device.type == "cuda"


def to_channels_last(x: Tensor) -> Tensor:
    """Convert a batch of volumes to the channels-last 3-D layout.

    Parameters
    ----------
    x : torch.Tensor
        `(B, D, H, W)` single-channel volumes (a channel axis is added) or `(B, C, D, H, W)`.

    Returns
    -------
    torch.Tensor
        `(B, C, D, H, W)` with ``torch.channels_last_3d`` strides (same values).

    Raises
    ------
    ValueError
        For a tensor of another rank.
    """
    if x.dim() == 4:
        x = x.unsqueeze(1)
    if x.dim() != 5:
        raise ValueError(f"channels-last 3-D needs (B, D, H, W) or (B, C, D, H, W) input, got "
                         f"{tuple(x.shape)}")
    return x.contiguous(memory_format=torch.channels_last_3d)
