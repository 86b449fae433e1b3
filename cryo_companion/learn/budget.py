"""Training in segments: a fixed number of iterations or a wall-time budget, scored as it goes.

:func:`fit_segments` trains N runs of one architecture together (:func:`~cryo_companion.learn.
multirun.fit_many`) in *segments*, each ending with a checkpoint of every run, and calls a
scoring function on every run's model between segments (its time is not training time). It is
how a run is trained "within a stated GPU budget" and its score plotted against training time:

- ``budget_s=None``: exactly ``iters`` iterations in ``points`` equal segments (reproducible:
  the same seeds give the same models and scores on any machine of one kind);
- ``budget_s``: iterations until ``budget_s`` seconds of training (wall clock of the group's
  steps, all runs together) are spent, at most ``iters``. The first segment is ``first_iters``
  long; from its speed the rest of the budget is split into ``points - 1`` segments, each
  re-planned from the speed so far; training stops when the next iteration would not fit. The
  number of iterations then depends on the device, and is recorded.

Each segment continues the runs exactly from their checkpoints (``out`` of every job is
required), so the segments together are one training run: the same batches and steps as a run
of the same length in one go.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from cryo_companion.learn.fit import FitConfig, FitResult, Job
from cryo_companion.learn.multirun import fit_many
from cryo_companion.learn.step import LossFn

__all__ = ["ScoreFn", "SegmentedResult", "fit_segments", "plan_segment"]

#: ``score(run_index, job) -> {name: number}``, called between segments with the run's model
#: in evaluation mode and without gradients (restored to training mode afterwards).
ScoreFn = Callable[[int, Job], Mapping[str, float | None]]


@dataclass
class SegmentedResult:
    """What :func:`fit_segments` returns.

    Attributes
    ----------
    results : list of FitResult
        Each run's result after the last segment (history and timing of the last segment's
        call; ``iterations`` in all).
    points : list of dict
        One per segment end: ``iteration``, ``train_s`` (training wall time of the group so
        far, all runs together), ``train_s_per_run`` (``train_s`` / N), ``score_s`` (time of
        that point's scoring) and ``scores`` (one mapping per run).
    losses : list of list of float
        Every iteration's training loss of each run.
    train_s : float
        Training wall time of the group in all (seconds, without scoring).
    score_s : float
        Scoring time in all (seconds).
    stepper : str
        The stepper used (``"loop"`` or ``"vmap"``).
    stopped_by : str
        ``"iterations"`` (reached ``iters``) or ``"budget"``.
    """

    results: list[FitResult]
    points: list[dict[str, Any]] = field(default_factory=list)
    losses: list[list[float]] = field(default_factory=list)
    train_s: float = 0.0
    score_s: float = 0.0
    stepper: str = "loop"
    stopped_by: str = "iterations"


def plan_segment(done: int, iters: int, points_left: int, *, budget_s: float | None,
                 spent_s: float) -> int:
    """Length of the next segment (0: stop).

    Parameters
    ----------
    done : int
        Iterations trained so far (>= 1 when ``budget_s`` is given).
    iters : int
        The most iterations in all.
    points_left : int
        Segments still to come, this one included (>= 1).
    budget_s : float or None
        Training budget in seconds (None: ``iters`` in equal segments).
    spent_s : float
        Training seconds spent so far.

    Returns
    -------
    int
        Iterations of the next segment: with a budget, the iterations that fit in the rest at
        the speed so far, shared over the segments left; never beyond ``iters``.
    """
    if points_left < 1:
        raise ValueError(f"points_left must be >= 1, got {points_left}")
    room = iters - done
    if budget_s is not None:
        if done < 1:
            raise ValueError("a budgeted segment is planned from the speed of earlier ones")
        per_iter = spent_s / done
        room = min(room, math.floor(max(budget_s - spent_s, 0.0) / max(per_iter, 1e-9)))
    if room < 1:
        return 0
    return max(1, math.ceil(room / points_left))


@torch.no_grad()
def _score(jobs: Sequence[Job], score: ScoreFn | None) -> tuple[list[dict[str, Any]], float]:
    if score is None:
        return [{} for _ in jobs], 0.0
    t0 = time.perf_counter()
    out = []
    for i, job in enumerate(jobs):
        was = job.model.training
        job.model.eval()
        try:
            out.append(dict(score(i, job)))
        finally:
            job.model.train(was)
    return out, time.perf_counter() - t0


def _check_segments(jobs: Sequence[Job], points: int, first_iters: int,
                    budget_s: float | None) -> None:
    if not jobs:
        raise ValueError("no runs to fit")
    if points < 1 or first_iters < 1:
        raise ValueError(f"points ({points}) and first_iters ({first_iters}) must be >= 1")
    if budget_s is not None and not budget_s > 0:
        raise ValueError(f"budget_s must be > 0 seconds, got {budget_s}")
    for j in jobs:
        if j.checkpoint is None:
            raise ValueError(f"run {j.name!r} has no out folder: segments continue from "
                             "checkpoints")
        if j.checkpoint.exists():
            raise ValueError(f"{j.checkpoint} exists: fit_segments starts runs afresh; remove "
                             "it or train into a new folder")


def fit_segments(jobs: Sequence[Job], loss_fn: LossFn, config: FitConfig, *,
                 points: int, budget_s: float | None = None, first_iters: int = 1,
                 score: ScoreFn | None = None, strategy: str = "auto",
                 measured_ms: Mapping[str, float] | None = None,
                 progress: bool = True) -> SegmentedResult:
    """Train ``jobs`` together in segments, scoring every run after each (module docstring).

    Parameters
    ----------
    jobs : sequence of Job
        The runs, each with an ``out`` folder (its checkpoint joins the segments) and no
        checkpoint there yet.
    loss_fn : LossFn
        The loss shared by the runs.
    config : FitConfig
        ``iters`` is the most iterations in all; precision, timing and the label are used as
        given; checkpoints are written at the end of every segment only.
    points : int
        Segments (and scored points) in all (>= 1).
    budget_s : float or None
        Training wall-time budget of the group in seconds (None: exactly ``config.iters``).
    first_iters : int
        Length of the first segment with a budget (its speed plans the rest; >= 1).
    score : ScoreFn or None
        Called for every run after every segment.
    strategy : str
        ``"auto"``, ``"loop"`` or ``"vmap"`` (:func:`~cryo_companion.learn.multirun.
        choose_strategy`).
    measured_ms : mapping or None
        Measured step times by stepper, for ``strategy="auto"``.
    progress : bool
        Progress bars (on a terminal only).

    Returns
    -------
    SegmentedResult
        Each run's result, the scored points, the per-iteration losses and the times.

    Raises
    ------
    ValueError
        For no jobs, a job without ``out``, an existing checkpoint, ``points < 1``,
        ``first_iters < 1`` or a budget that is not positive.
    """
    _check_segments(jobs, points, first_iters, budget_s)
    losses: list[list[float]] = [[] for _ in jobs]
    out = SegmentedResult(results=[], losses=losses)
    done = 0
    for k in range(points):
        if k == 0 and budget_s is not None:
            n = min(first_iters, config.iters)
        else:
            n = plan_segment(done, config.iters, points - k, budget_s=budget_s,
                             spent_s=out.train_s)
        if n < 1:
            out.stopped_by = "budget" if done < config.iters else "iterations"
            break
        seg = replace(config, iters=done + n, checkpoint_every=0)
        t0 = time.perf_counter()
        out.results = fit_many(jobs, loss_fn, seg, strategy=strategy, resume=done > 0,
                               progress=progress, loss_logs=losses, measured_ms=measured_ms)
        out.train_s += time.perf_counter() - t0
        out.stepper = out.results[0].stepper
        done += n
        scores, dt = _score(jobs, score)
        out.score_s += dt
        out.points.append({"iteration": done, "train_s": out.train_s,
                           "train_s_per_run": out.train_s / len(jobs), "score_s": dt,
                           "scores": scores})
        if done >= config.iters:
            out.stopped_by = "iterations"
            break
    else:
        out.stopped_by = "iterations" if budget_s is None or done >= config.iters else "budget"
    return out
