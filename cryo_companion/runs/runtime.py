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
from typing import TypeVar

import numpy as np
import torch

from cryo_companion.devices import DEVICES, resolve_device, tune_cpu_allocator

__all__ = ["DEVICES", "SCALES", "Run", "resolve_device", "setup", "tune_cpu_allocator"]

SCALES = ("smoke", "paper")

_T = TypeVar("_T")


@dataclass
class Run:
    """The resolved parameters of one chapter run (what provenance records).

    Attributes
    ----------
    scale : str
        ``"smoke"`` or ``"paper"``.
    device : torch.device
        The resolved device.
    seed : int
        Base seed of the run.
    chapter : str
        The chapter's name (results file name, provenance).
    started : float
        ``time.time()`` when the run was set up.
    """

    scale: str
    device: torch.device
    seed: int
    chapter: str
    started: float = field(default_factory=time.time)

    @property
    def paper(self) -> bool:
        """True at the papers' scale."""
        return self.scale == "paper"

    def pick(self, smoke: _T, paper: _T) -> _T:
        """Return the smoke- or paper-scale value of a size parameter.

        Parameters
        ----------
        smoke : object
            The value at smoke scale.
        paper : object
            The value at the papers' scale.

        Returns
        -------
        object
            ``paper`` at paper scale, else ``smoke``.
        """
        return paper if self.paper else smoke

    def generator(self, offset: int = 0) -> torch.Generator:
        """Make a CPU torch generator seeded with ``seed + offset``.

        Parameters
        ----------
        offset : int
            Added to the run's seed (one offset per independent stream of a chapter).

        Returns
        -------
        torch.Generator
            A fresh CPU generator.
        """
        return torch.Generator().manual_seed(self.seed + offset)

    @property
    def wall_time_s(self) -> float:
        """Seconds since :func:`setup` was called."""
        return time.time() - self.started


def setup(scale: str, device: str, seed: int, *, chapter: str,
          paper_needs_gpu: bool = True) -> Run:
    """Validate a chapter's parameters, seed every RNG and return the :class:`Run`.

    Parameters
    ----------
    scale : str
        ``"smoke"`` (a 2-core CPU in about a minute) or ``"paper"`` (the papers' sizes).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    seed : int
        Base seed of the run.
    chapter : str
        The chapter's name (results file name, provenance).
    paper_needs_gpu : bool, optional
        If True, ``scale="paper"`` without a GPU is refused.

    Returns
    -------
    Run
        The validated parameters, the device resolved.

    Raises
    ------
    ValueError
        For an unknown scale or device, or a seed that is not a non-negative integer.
    RuntimeError
        For CUDA asked for without a GPU, or a paper-scale run of a chapter that needs a GPU on
        a machine without one.
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
