"""Does a cheaper precision change training? The same run trained twice and compared.

:func:`precision_parity` trains one run (made twice by the caller's factory: the same seed, the
same initial weights, the same batches) in a reference precision and in a candidate precision
(default TF32 against bf16 autocast) and compares the mean training loss over the last
``window`` iterations. The tolerance is a stated criterion, not a measurement; the observed
difference is returned so it can be compared with the spread between seeds.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from cryo_companion.learn.fit import FitConfig, Job, run_jobs
from cryo_companion.learn.step import LossFn

__all__ = ["precision_parity"]


def precision_parity(make_job: Callable[[], Job], loss_fn: LossFn, config: FitConfig, *,
                     reference: str = "tf32", candidate: str = "bf16", window: int = 100,
                     tolerance: float = 0.05) -> dict[str, Any]:
    """Train the run of ``make_job`` in two precisions and compare the loss curves.

    Parameters
    ----------
    make_job : callable
        Returns a fresh, identically seeded job each call (no ``out``: nothing is written).
    loss_fn : LossFn
        The run's loss.
    config : FitConfig
        Iterations and settings; precision, checkpoints and validation are overridden (none).
    reference : str
        The precision trusted (``"tf32"``).
    candidate : str
        The precision tested (``"bf16"``).
    window : int
        Last iterations whose mean loss is compared.
    tolerance : float
        Largest relative difference called the same.

    Returns
    -------
    dict
        ``{reference: losses, candidate: losses, "iters", "window",
        "mean_loss_<reference>", "mean_loss_<candidate>", "relative_difference",
        "tolerance", "same"}``.

    Raises
    ------
    ValueError
        For ``window < 1``.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    curves: dict[str, list[float]] = {}
    for precision in (reference, candidate):
        job = make_job()
        log: list[float] = []
        cfg = dataclasses.replace(config, precision=precision, checkpoint_every=0,
                                  validate_every=0)
        run_jobs([job], loss_fn, cfg, progress=False, loss_logs=[log])
        curves[precision] = log
    a = float(np.mean(curves[reference][-window:]))
    b = float(np.mean(curves[candidate][-window:]))
    r = abs(a - b) / max(abs(a), 1e-12)
    return {**curves, "iters": config.iters, "window": window,
            f"mean_loss_{reference}": a, f"mean_loss_{candidate}": b,
            "relative_difference": r, "tolerance": tolerance, "same": r <= tolerance}
