"""Notebook run parameters: scale, device and seed, validated once at the top of every chapter.

Each chapter's papermill ``parameters`` cell sets ``scale``, ``device`` and ``seed`` and then calls
:func:`setup`, which fails at once on an unknown value and refuses a paper-scale run with no GPU
(no silent CPU fallback for hours) unless the chapter declares itself cheap at paper scale.
"""
from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field

import numpy as np
import torch

__all__ = ["SCALES", "DEVICES", "Run", "setup", "resolve_device"]

SCALES = ("smoke", "paper")
DEVICES = ("auto", "cpu", "cuda")


def resolve_device(device: str) -> torch.device:
    """Map ``"auto" | "cpu" | "cuda" | "cuda:N"`` to a torch device, with a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda" or (isinstance(device, str) and device.startswith("cuda:")):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {device!r} requested but no CUDA GPU is available here")
        return torch.device(device)
    raise ValueError(f"unknown device {device!r}; valid values: {', '.join(DEVICES)} (or cuda:N)")


@dataclass
class Run:
    """The resolved parameters of one chapter run (what provenance records)."""

    scale: str
    device: torch.device
    seed: int
    chapter: str
    started: float = field(default_factory=time.time)

    @property
    def paper(self) -> bool:
        """True at the papers' scale."""
        return self.scale == "paper"

    def pick(self, smoke, paper):
        """Return the smoke- or paper-scale value of a size parameter."""
        return paper if self.paper else smoke

    def generator(self, offset: int = 0) -> torch.Generator:
        """A CPU torch generator seeded with ``seed + offset``."""
        return torch.Generator().manual_seed(self.seed + offset)

    @property
    def wall_time_s(self) -> float:
        """Seconds since :func:`setup` was called."""
        return time.time() - self.started


def tune_cpu_allocator() -> bool:
    """Keep large freed blocks in the process heap (glibc ``mallopt``); True if applied.

    By default glibc returns every freed block above a few MB to the kernel, so each batch's
    fresh ``(B, 40, 40, 40)`` tensors page-fault their memory back in, which costs as much as the
    arithmetic on them (``cryo-companion bench simulate --no-malloc-tuning`` shows the
    difference). Raising ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` to 1 GiB keeps the blocks
    for reuse (the effect of the jemalloc/tcmalloc advice of PyTorch's CPU tuning guide, without
    preloading a library); the process keeps up to that much freed memory. Process-wide, idempotent, a no-op
    off glibc or with ``CRYO_COMPANION_MALLOC_TUNING=0``. Applied by :func:`setup` on the CPU
    and by the ``simulate``, ``train`` and ``bench`` commands.
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


def setup(scale: str, device: str, seed: int, *, chapter: str,
          paper_needs_gpu: bool = True) -> Run:
    """Validate a chapter's parameters, seed every RNG and return the :class:`Run`.

    Parameters
    ----------
    scale : ``"smoke"`` (a 2-core CPU in about a minute) or ``"paper"`` (the papers' sizes).
    device : ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    seed : base seed of the run.
    chapter : the chapter's name (results file name, provenance).
    paper_needs_gpu : if True, ``scale="paper"`` without a GPU is refused.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; valid values: {', '.join(SCALES)}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    dev = resolve_device(device)
    if scale == "paper" and paper_needs_gpu and dev.type != "cuda":
        raise RuntimeError(
            f"chapter {chapter!r} at scale='paper' needs a CUDA GPU (resolved device: {dev}); "
            "run it on a GPU machine (see README, 'Paper scale on a GPU') or use scale='smoke'")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if dev.type == "cpu" and os.environ.get("CRYO_COMPANION_THREADS"):
        torch.set_num_threads(int(os.environ["CRYO_COMPANION_THREADS"]))
    if dev.type == "cpu":
        tune_cpu_allocator()
    return Run(scale=scale, device=dev, seed=int(seed), chapter=chapter)
