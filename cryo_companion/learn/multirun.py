"""N independent runs of one architecture trained in one step of one process.

A GPU shared by N processes runs their kernels in turns (without MPS), so N processes buy
nothing over one; one process that steps all N runs at once fills the GPU with larger kernels
and pays Python and launch overheads once. :func:`fit_many` does that: each run keeps its own
weights, optimizer state, batch source, generator, validation and checkpoint (a run trained in
a group resumes alone and vice versa), and the step is one of

- ``"vmap"``: stacked weights, one vmapped forward/backward (grouped convolutions), one
  optimizer step (:class:`~cryo_companion.learn.step.VmapStep`); equal to the runs alone up to
  float rounding; refused for models that draw random numbers (dropout) and for runs whose
  optimizers differ;
- ``"loop"``: the runs one after the other inside the step
  (:class:`~cryo_companion.learn.step.LoopStep`); bit-for-bit the runs alone, any model;
- ``"auto"``: :func:`choose_strategy` (the faster one measured, when the caller passes the
  figures of ``cryo-companion bench train``; else vmap on CUDA, the loop on the CPU).

Which is faster depends on the device and the network; ``cryo-companion bench train``
measures both (and N processes) and records them in ``results/bench_train.json``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from cryo_companion.learn.fit import FitConfig, FitResult, Job, run_jobs
from cryo_companion.learn.predict import model_device
from cryo_companion.learn.step import LossFn, check_stackable

__all__ = ["STRATEGIES", "choose_strategy", "fit_many"]

STRATEGIES = ("auto", "loop", "vmap")


def choose_strategy(jobs: Sequence[Job], strategy: str = "auto",
                    measured_ms: Mapping[str, float] | None = None) -> str:
    """Choose the stepper for ``jobs`` (``"loop"`` or ``"vmap"``).

    Parameters
    ----------
    jobs : sequence of Job
        The runs.
    strategy : str
        ``"loop"`` or ``"vmap"`` are returned as they are (``"vmap"`` after checking that the
        runs can be stacked); ``"auto"`` takes the faster of ``measured_ms`` when given, else
        ``"vmap"`` on CUDA for two or more stackable runs and ``"loop"`` otherwise (on the
        CPU the loop is the default because it is bit for bit the runs alone; the CPU figures
        recorded on a shared 2-core machine are too noisy to rank the two).
    measured_ms : mapping or None
        Measured milliseconds per step of this many runs by stepper (``{"loop": ..,
        "vmap": ..}``, e.g. from ``results/bench_train.json``); a stepper the runs cannot use
        is ignored.

    Returns
    -------
    str
        The stepper's name.

    Raises
    ------
    ValueError
        For an unknown strategy, or ``"vmap"`` for runs that cannot be stacked.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; valid: {', '.join(STRATEGIES)}")
    models = [j.model for j in jobs]
    opts = [j.optimizer for j in jobs]
    if strategy == "vmap":
        check_stackable(models, opts)
        return "vmap"
    if strategy == "loop" or len(jobs) < 2:
        return "loop"
    try:
        check_stackable(models, opts)
    except ValueError:
        return "loop"
    known = {k: v for k, v in (measured_ms or {}).items() if k in ("loop", "vmap")}
    if known:
        return min(known, key=lambda k: known[k])
    return "vmap" if model_device(models[0]).type == "cuda" else "loop"


def fit_many(jobs: Sequence[Job], loss_fn: LossFn, config: FitConfig, *,
             strategy: str = "auto", resume: bool = False, progress: bool = True,
             loss_logs: Sequence[list[float]] | None = None,
             measured_ms: Mapping[str, float] | None = None) -> list[FitResult]:
    """Train N runs of one architecture together, one step of all of them per iteration.

    Parameters
    ----------
    jobs : sequence of Job
        The runs (make each :class:`~cryo_companion.learn.fit.Job` right after seeding and
        initialising its model: the job keeps the global RNG state of that moment as its own).
    loss_fn : LossFn
        The loss shared by the runs.
    config : FitConfig
        Iterations, checkpoints, validation, precision, timing (shared).
    strategy : str
        ``"auto"``, ``"loop"`` or ``"vmap"`` (see the module docstring).
    resume : bool
        Continue each run from its checkpoint (all must be at the same iteration).
    progress : bool
        Show one progress bar for the group (on a terminal only).
    loss_logs : sequence of list or None
        One list per run receiving each iteration's loss (for checks).
    measured_ms : mapping or None
        Measured step times by stepper, for ``strategy="auto"`` (:func:`choose_strategy`).

    Returns
    -------
    list of FitResult
        In the order of ``jobs``; ``timing["net_s"]`` is each run's share of the group's
        steps (the step's time divided by N).
    """
    return run_jobs(jobs, loss_fn, config, stepper=choose_strategy(jobs, strategy, measured_ms),
                    resume=resume, progress=progress, loss_logs=loss_logs)
