"""Devices: resolving a device name with a clear error, and tuning the CPU allocator."""
from __future__ import annotations

import os
from typing import TypeAlias

import torch
from torch import Tensor

__all__ = ["DEVICES", "DeviceLike", "ScalarOrTensor", "resolve_device", "tune_cpu_allocator"]

#: A device as the package's functions accept it: a ``torch.device``, a name (``"cpu"``,
#: ``"cuda:0"``), or None for the default (the inputs' device, else the CPU).
DeviceLike: TypeAlias = "torch.device | str | None"
#: A per-sample physical parameter: one value for the whole batch, or a ``(B,)`` tensor.
ScalarOrTensor: TypeAlias = "float | Tensor"

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str) -> torch.device:
    """Map ``"auto" | "cpu" | "cuda" | "cuda:N"`` to a torch device, with a clear error.

    Parameters
    ----------
    device : str
        ``"auto"`` (CUDA when available, else the CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns
    -------
    torch.device
        The device.

    Raises
    ------
    RuntimeError
        A CUDA device is requested and no CUDA GPU is available.
    ValueError
        ``device`` is none of the valid names.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda" or (isinstance(device, str) and device.startswith("cuda:")):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {device!r} requested but no CUDA GPU is available here")
        return torch.device(device)
    raise ValueError(f"unknown device {device!r}; valid values: {', '.join(DEVICES)} (or cuda:N)")


def tune_cpu_allocator() -> bool:
    """Keep large freed blocks in the process heap (glibc ``mallopt``); True if applied.

    By default glibc returns every freed block above a few MB to the kernel, so each batch's
    fresh ``(B, 40, 40, 40)`` tensors page-fault their memory back in, which costs as much as the
    arithmetic on them (``cryo-companion bench simulate --no-malloc-tuning`` shows the
    difference). Raising ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` to 1 GiB keeps the blocks
    for reuse (the effect of the jemalloc/tcmalloc advice of PyTorch's CPU tuning guide, without
    preloading a library); the process keeps up to that much freed memory. Process-wide,
    idempotent, a no-op off glibc or with ``CRYO_COMPANION_MALLOC_TUNING=0``. Applied by
    :func:`setup` on the CPU and by the ``simulate``, ``train`` and ``bench`` commands.

    Returns
    -------
    bool
        True if both thresholds were set, False when skipped or unavailable.
    """
    import ctypes
    import ctypes.util

    if os.environ.get("CRYO_COMPANION_MALLOC_TUNING", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)) and bool(
            libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):
        return False
