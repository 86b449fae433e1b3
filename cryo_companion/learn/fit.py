"""The training loop: any network, any loss, any batch source; one run or N runs per step.

:func:`fit` trains one model; :func:`run_jobs` is the same loop over N runs (:class:`Job`)
stepped together by a stepper of :mod:`cryo_companion.learn.step` (``"loop"`` or ``"vmap"``);
:func:`cryo_companion.learn.multirun.fit_many` chooses the stepper.

Every iteration: each run draws a batch from its source with its own generator (timed together
as *data*), then one step of all runs (timed as *network*: forward, loss, backward, optimizer
step); a run's share of either is the time divided by the number of runs. With
``FitConfig.time_split`` (default) the device is synchronised after the draws and after the
step (two synchronisations per iteration), so on CUDA the two times are what they say. A
non-finite loss stops the run with an error naming the iteration.

Every ``validate_every`` iterations (and at the end) a run's validation hook is called on its
model in evaluation mode without gradients and its numbers are appended to the run's history
together with the iteration's training loss terms. Every ``checkpoint_every`` iterations (and
at the end) each run with an ``out`` folder writes ``out/checkpoint.pt`` atomically (model,
optimizer, batch generator, global RNG state, batch-source state, iteration, history, timing,
early-stopping state: :mod:`cryo_companion.learn.checkpoint`); ``resume=True`` continues from it
exactly: the same batches and the same steps as without the interruption.

With ``FitConfig.early_stopping`` (:mod:`cryo_companion.learn.early_stopping`) each run stops on
its own after ``patience`` validations without improvement of a validation number: from then on
it is skipped (no batches, no steps, the step re-formed over the runs still training), its
checkpoint holds the iteration it stopped at, and at the end it gets its best weights
(``keep="best"``) or keeps its last.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from cryo_companion._progress import progress as progress_bar
from cryo_companion.learn.batches import Batch, BatchSource
from cryo_companion.learn.checkpoint import load_checkpoint, rng_state, save_checkpoint
from cryo_companion.learn.early_stopping import EarlyStopping, StopState
from cryo_companion.learn.precision import check_precision, configure_backends, use_channels_last
from cryo_companion.learn.predict import model_device
from cryo_companion.learn.step import LoopStep, LossFn, VmapStep

__all__ = ["CHECKPOINT", "STEPPERS", "FitConfig", "FitResult", "Job", "ValidateFn", "fit",
           "run_jobs"]

#: File name of a run's checkpoint in its ``out`` folder.
CHECKPOINT = "checkpoint.pt"
#: Steppers of :func:`run_jobs`.
STEPPERS = ("loop", "vmap")
#: ``validate(model) -> {name: number}``, called in evaluation mode without gradients.
ValidateFn = Callable[[nn.Module], dict[str, float]]
#: Without ``time_split`` the loss is checked for finiteness every this many iterations.
_FINITE_EVERY = 50


@dataclass(frozen=True)
class FitConfig:
    """Settings of the loop (not of the model or the optimizer).

    Attributes
    ----------
    iters : int
        Iterations (optimizer steps) in all, counting those before a resume.
    checkpoint_every : int
        Iterations between checkpoints (0: only at the end); runs without ``out`` write none.
    validate_every : int
        Iterations between validations (0: none); the last iteration is always validated when
        validation is on.
    precision : str
        ``"fp32"``, ``"tf32"`` or ``"bf16"`` (:mod:`cryo_companion.learn.precision`).
    channels_last : bool or None
        Channels-last 3-D layout; None: with bf16 on CUDA (loop stepper only).
    time_split : bool
        Synchronise the device around the data draw and the step, so both are timed exactly
        and a non-finite loss is caught at its iteration; False lets a GPU run ahead (times
        then measure launches, and finiteness is checked every 50 iterations).
    desc : str
        Label of the progress bar.
    early_stopping : EarlyStopping or None
        Stop each run on its own after ``patience`` validations without improvement (needs
        ``validate_every`` > 0 and a validation hook in every run); None trains ``iters``.
    """

    iters: int
    checkpoint_every: int = 0
    validate_every: int = 0
    precision: str = "fp32"
    channels_last: bool | None = None
    time_split: bool = True
    desc: str = "fit"
    early_stopping: EarlyStopping | None = None

    def __post_init__(self) -> None:
        """Validate the settings."""
        if int(self.iters) < 1:
            raise ValueError(f"iters must be >= 1, got {self.iters}")
        for name in ("checkpoint_every", "validate_every"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        check_precision(self.precision)
        if self.early_stopping is not None and int(self.validate_every) < 1:
            raise ValueError("early stopping needs validations: set validate_every >= 1 "
                             "(e.g. the iterations of one epoch)")


@dataclass
class Job:
    """One training run handed to the loop.

    Attributes
    ----------
    model : torch.nn.Module
        The network, on the training device.
    optimizer : torch.optim.Optimizer
        Over the model's parameters.
    batches : BatchSource
        Its batches (:mod:`cryo_companion.learn.batches`).
    generator : torch.Generator
        Source of its batches' random draws.
    out : pathlib.Path or None
        Folder of its checkpoint (None: no checkpoints, no resume).
    validate : ValidateFn or None
        Validation hook.
    config : dict or None
        Description of the run stored in its checkpoints; a resume refuses a checkpoint
        written with another one.
    accepts : callable or None
        ``accepts(stored_config) -> bool`` replaces the equality test on resume (e.g. to read
        configurations written under older key names).
    name : str
        Used in messages and the progress bar.
    rng : dict or None
        The run's global RNG state (None: captured when the job is made, so make each job
        right after initialising its model).
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    batches: BatchSource
    generator: torch.Generator
    out: Path | None = None
    validate: ValidateFn | None = None
    config: dict[str, Any] | None = None
    accepts: Callable[[dict[str, Any] | None], bool] | None = None
    name: str = "run"
    rng: dict[str, Tensor] | None = None

    def __post_init__(self) -> None:
        """Normalise the folder; capture the global RNG state if none is given."""
        if self.out is not None:
            self.out = Path(self.out)
        if self.rng is None:
            self.rng = rng_state(model_device(self.model))

    @property
    def checkpoint(self) -> Path | None:
        """Path of the run's checkpoint (None without ``out``)."""
        return None if self.out is None else self.out / CHECKPOINT


@dataclass
class FitResult:
    """What the loop returns for one run.

    Attributes
    ----------
    name : str
        The job's name.
    iterations : int
        Iterations done in all.
    history : list of dict
        One entry per validation: ``iteration``, ``train_<term>`` of that iteration and
        ``val_<name>`` of the hook.
    timing : dict
        ``data_s``, ``net_s`` (this run's share of the draws and steps), ``iters_timed``,
        ``data_ms_per_iter``, ``net_ms_per_iter``, ``data_fraction``,
        ``wall_s_this_session``, ``runs_per_step``, ``synchronised``.
    stepper : str
        ``"loop"`` or ``"vmap"``.
    checkpoint : pathlib.Path or None
        The final checkpoint.
    stopped_at : int or None
        Iteration at which early stopping stopped the run (None: it trained ``iters``).
    best_iteration : int or None
        Iteration of its best validation under early stopping (its final weights with
        ``keep="best"``).
    best_value : float or None
        The monitored number there.
    """

    name: str
    iterations: int
    history: list[dict[str, Any]]
    timing: dict[str, Any]
    stepper: str
    checkpoint: Path | None = None
    stopped_at: int | None = None
    best_iteration: int | None = None
    best_value: float | None = None


@dataclass
class _State:
    iteration: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=lambda: {
        "data_s": 0.0, "net_s": 0.0, "iters_timed": 0})
    stop: StopState = field(default_factory=StopState)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _resume_state(job: Job, device: torch.device, iters: int) -> _State:
    path = job.checkpoint
    ck = load_checkpoint(path, device)  # type: ignore[arg-type]
    stored = ck.get("config")
    ok = job.accepts(stored) if job.accepts is not None else stored == job.config
    if not ok:
        raise ValueError(f"{path}: checkpoint was written with another configuration "
                         f"({stored}); refusing to resume with {job.config}")
    if int(ck["iteration"]) > iters:
        raise ValueError(f"{path}: checkpoint is at iteration {ck['iteration']}, beyond the "
                         f"{iters} asked for")
    job.model.load_state_dict(ck["model"])
    job.optimizer.load_state_dict(ck["optimizer"])
    job.generator.set_state(ck["generator"].cpu())
    job.rng = dict(ck["rng"])
    if "source" in ck:
        job.batches.load_state_dict(ck["source"])
    timing = dict(ck["timing"])
    if "sim_s" in timing:  # checkpoints of the Table I loop before learn.fit
        timing["data_s"] = timing.pop("sim_s")
    return _State(int(ck["iteration"]), list(ck["history"]), timing,
                  StopState.from_state_dict(ck.get("early_stopping")))


def _start_states(jobs: Sequence[Job], device: torch.device, resume: bool,
                  iters: int) -> list[_State]:
    states = [_resume_state(j, device, iters) if resume and j.checkpoint is not None
              and j.checkpoint.exists() else _State() for j in jobs]
    starts = sorted({s.iteration for s in states if not s.stop.stopped})
    if len(starts) > 1:
        raise ValueError(f"the runs resume at different iterations "
                         f"{[s.iteration for s in states]}; fit groups of equal iteration")
    return states


def _make_stepper(stepper: str, jobs: Sequence[Job], loss_fn: LossFn, device: torch.device,
                  config: FitConfig) -> LoopStep | VmapStep:
    models = [j.model for j in jobs]
    opts = [j.optimizer for j in jobs]
    rngs = [j.rng for j in jobs]
    if stepper == "loop":
        cl = use_channels_last(device, config.precision, config.channels_last)
        return LoopStep(models, opts, loss_fn, device=device, precision=config.precision,
                        channels_last=cl, rng_states=rngs)  # type: ignore[arg-type]
    if stepper == "vmap":
        if config.channels_last:
            raise ValueError("channels_last applies to the loop stepper only")
        return VmapStep(models, opts, loss_fn, device=device, precision=config.precision,
                        rng_states=rngs)  # type: ignore[arg-type]
    raise ValueError(f"unknown stepper {stepper!r}; valid: {', '.join(STEPPERS)}")


def _draw(jobs: Sequence[Job], device: torch.device, sync: bool) -> tuple[list[Batch], float]:
    """Every run's next batch, and the seconds they took together (device synchronised)."""
    if sync:
        _sync(device)
    t0 = time.perf_counter()
    batches = [j.batches.next_batch(j.generator) for j in jobs]
    if sync:
        _sync(device)
    return batches, time.perf_counter() - t0


def _check_finite(terms: list[dict[str, Tensor]], done: int, jobs: Sequence[Job],
                  exact: bool) -> None:
    losses = torch.stack([t["loss"].float() for t in terms])
    ok = torch.isfinite(losses)
    if not bool(ok.all()):
        bad = [(j.name, float(v)) for j, v, f in zip(jobs, losses.tolist(), ok.tolist())
               if not f]
        when = f"at iteration {done}" if exact else f"at or before iteration {done}"
        raise RuntimeError(f"loss became non-finite {when}: " +
                           ", ".join(f"{n} ({v})" for n, v in bad))


def _due(done: int, every: int, iters: int) -> bool:
    return every > 0 and (done % every == 0 or done == iters)


@torch.no_grad()
def _validate(job: Job) -> dict[str, float]:
    was = job.model.training
    job.model.eval()
    try:
        return dict(job.validate(job.model))  # type: ignore[misc]
    finally:
        job.model.train(was)


def _record_validation(jobs: Sequence[Job], states: Sequence[_State],
                       terms: list[dict[str, Tensor]], done: int, bar: Any
                       ) -> list[dict[str, float] | None]:
    numbers: list[dict[str, float] | None] = []
    for i, (j, st, t) in enumerate(zip(jobs, states, terms)):
        if j.validate is None:
            numbers.append(None)
            continue
        v = _validate(j)
        numbers.append(v)
        st.history.append({"iteration": done, **{f"train_{k}": float(x) for k, x in t.items()},
                           **{f"val_{k}": x for k, x in v.items()}})
        if i == 0:
            first = {f"val_{k}": f"{x:.3f}" for k, x in list(v.items())[:2]}
            bar.set_postfix(loss=f"{float(t['loss']):.3f}", **first)
    return numbers


def _save_one(job: Job, st: _State, rng: dict[str, Tensor], done: int) -> None:
    if job.checkpoint is None:
        return
    save_checkpoint(job.checkpoint, {
        "config": job.config, "iteration": done, "model": job.model.state_dict(),
        "optimizer": job.optimizer.state_dict(), "generator": job.generator.get_state(),
        "rng": rng, "history": st.history, "timing": st.timing,
        "source": job.batches.state_dict(), "early_stopping": st.stop.state_dict()})


class _Loop:
    """The state of one :func:`run_jobs` call (small methods, one per part of an iteration).

    ``active`` lists the runs still training (all of them without early stopping); the stepper
    steps exactly those, and is re-formed when one stops.
    """

    def __init__(self, jobs: Sequence[Job], stepper: str, loss_fn: LossFn, config: FitConfig,
                 states: list[_State], device: torch.device,
                 loss_logs: Sequence[list[float]] | None) -> None:
        self.jobs, self.stepper_name, self.loss_fn, self.config = jobs, stepper, loss_fn, config
        self.states, self.device, self.loss_logs = states, device, loss_logs
        self.active = [i for i, st in enumerate(states) if not st.stop.stopped]
        self.stepper = self._make()

    def _make(self) -> LoopStep | VmapStep | None:
        if not self.active:
            return None
        return _make_stepper(self.stepper_name, [self.jobs[i] for i in self.active],
                             self.loss_fn, self.device, self.config)

    def _stop(self, stopping: list[int], done: int) -> None:
        """Record the runs that stop at ``done``, save them, re-form the step of the others."""
        assert self.stepper is not None
        for k, i in enumerate(self.active):
            self.jobs[i].rng = self.stepper.rng_state(k)   # where each run's stream is now
        for i in stopping:
            self.states[i].iteration = done
            _save_one(self.jobs[i], self.states[i], self.jobs[i].rng, done)  # type: ignore[arg-type]
        self.active = [i for i in self.active if i not in stopping]
        self.stepper = self._make()

    def iteration(self, done: int, bar: Any) -> None:
        cfg = self.config
        assert self.stepper is not None
        jobs = [self.jobs[i] for i in self.active]
        states = [self.states[i] for i in self.active]
        batches, data_dt = _draw(jobs, self.device, cfg.time_split)
        t0 = time.perf_counter()
        terms = self.stepper.step(batches)
        if cfg.time_split:
            _sync(self.device)
        n = len(jobs)
        net_dt = (time.perf_counter() - t0) / n
        for st in states:
            st.timing["data_s"] += data_dt / n
            st.timing["net_s"] += net_dt
            st.timing["iters_timed"] += 1
        validating = any(j.validate is not None for j in jobs) and _due(
            done, cfg.validate_every, cfg.iters)
        checkpointing = 0 < cfg.checkpoint_every and done % cfg.checkpoint_every == 0
        if cfg.time_split or validating or checkpointing or done % _FINITE_EVERY == 0:
            _check_finite(terms, done, jobs, cfg.time_split)
        if self.loss_logs is not None:
            for i, t in zip(self.active, terms):
                self.loss_logs[i].append(float(t["loss"]))
        self.last_terms = (jobs, terms)
        stopping: list[int] = []
        if validating:
            self.stepper.export()
            numbers = _record_validation(jobs, states, terms, done, bar)
            rule = cfg.early_stopping
            if rule is not None:
                stopping = [i for i, st, v in zip(self.active, states, numbers)
                            if v is not None and st.stop.update(rule, v, done, self.jobs[i].model)]
        if checkpointing and done < cfg.iters:
            self.stepper.export()
            for k, (j, st) in enumerate(zip(jobs, states)):
                _save_one(j, st, self.stepper.rng_state(k), done)
        if stopping and done < cfg.iters:
            self._stop(stopping, done)

    def finish(self) -> None:
        if not self.config.time_split and hasattr(self, "last_terms"):
            _check_finite(self.last_terms[1], self.config.iters, self.last_terms[0], False)
        if self.stepper is None:
            return
        self.stepper.export()
        for k, i in enumerate(self.active):
            _save_one(self.jobs[i], self.states[i], self.stepper.rng_state(k), self.config.iters)


def _result(job: Job, st: _State, wall_s: float, stepper: str, n_runs: int,
            synchronised: bool) -> FitResult:
    t = st.timing
    n = max(int(t["iters_timed"]), 1)
    timing = {**t, "data_ms_per_iter": 1e3 * t["data_s"] / n,
              "net_ms_per_iter": 1e3 * t["net_s"] / n,
              "data_fraction": t["data_s"] / max(t["data_s"] + t["net_s"], 1e-12),
              "wall_s_this_session": wall_s, "runs_per_step": n_runs,
              "synchronised": synchronised}
    return FitResult(name=job.name, iterations=st.iteration, history=st.history, timing=timing,
                     stepper=stepper, checkpoint=job.checkpoint, stopped_at=st.stop.stopped_at,
                     best_iteration=st.stop.best_iteration, best_value=st.stop.best)


def run_jobs(jobs: Sequence[Job], loss_fn: LossFn, config: FitConfig, *, stepper: str = "loop",
             resume: bool = False, progress: bool = True,
             loss_logs: Sequence[list[float]] | None = None) -> list[FitResult]:
    """Train ``jobs`` together, one step of all of them per iteration.

    Parameters
    ----------
    jobs : sequence of Job
        The runs, all on one device, all starting (or resuming) at the same iteration (runs
        that early stopping had stopped excepted).
    loss_fn : LossFn
        ``loss_fn(output, *targets)``: a scalar or named terms with the total under ``"loss"``.
    config : FitConfig
        Iterations, checkpoints, validation, precision, timing, early stopping.
    stepper : str
        ``"loop"`` (runs one after the other in each step) or ``"vmap"`` (one step over
        stacked weights); see :mod:`cryo_companion.learn.step`.
    resume : bool
        Continue each run from its checkpoint when it has one.
    progress : bool
        Show a progress bar (on a terminal only).
    loss_logs : sequence of list or None
        One list per run; each iteration's total loss is appended (a host synchronisation per
        iteration: for checks, not for long runs).

    Returns
    -------
    list of FitResult
        In the order of ``jobs``.

    Raises
    ------
    ValueError
        For no jobs, jobs on several devices, a ``loss_logs`` of another length, early
        stopping without a validation hook in every run, or a checkpoint that does not fit
        (another configuration, beyond ``iters``, unequal iterations).
    RuntimeError
        When a loss becomes NaN or infinite.
    """
    if not jobs:
        raise ValueError("no runs to fit")
    devices = {model_device(j.model) for j in jobs}
    if len(devices) != 1:
        raise ValueError(f"the runs are on several devices {sorted(map(str, devices))}")
    if loss_logs is not None and len(loss_logs) != len(jobs):
        raise ValueError(f"{len(loss_logs)} loss logs for {len(jobs)} runs")
    if config.early_stopping is not None and any(j.validate is None for j in jobs):
        raise ValueError(f"early stopping on {config.early_stopping.monitor!r} needs a "
                         f"validation hook in every run; none in "
                         f"{[j.name for j in jobs if j.validate is None]}")
    device = devices.pop()
    configure_backends(device, config.precision)
    states = _start_states(jobs, device, resume, config.iters)
    going = [s.iteration for s in states if not s.stop.stopped]
    start = going[0] if going else config.iters
    loop = _Loop(jobs, stepper, loss_fn, config, states, device, loss_logs)
    t0 = time.perf_counter()
    bar = progress_bar(range(start, config.iters), initial=start, total=config.iters,
                       show=progress, desc=config.desc, mininterval=2.0)
    for it in bar:
        if not loop.active:
            break
        loop.iteration(it + 1, bar)
    bar.close()
    for i in loop.active:
        states[i].iteration = config.iters
    loop.finish()
    for j, st in zip(jobs, states):
        st.stop.finish(config.early_stopping, j.model)
    wall = time.perf_counter() - t0
    return [_result(j, st, wall, stepper, len(jobs), config.time_split)
            for j, st in zip(jobs, states)]


def fit(model: nn.Module, loss_fn: LossFn, batches: BatchSource,
        optimizer: torch.optim.Optimizer, config: FitConfig, *, generator: torch.Generator,
        out: str | os.PathLike | None = None, resume: bool = False,
        validate: ValidateFn | None = None, progress: bool = True,
        loss_log: list[float] | None = None, run_config: dict[str, Any] | None = None,
        accepts: Callable[[dict[str, Any] | None], bool] | None = None,
        name: str = "run") -> FitResult:
    """Train one model (see the module docstring).

    Parameters
    ----------
    model : torch.nn.Module
        The network, on the training device, initialised.
    loss_fn : LossFn
        ``loss_fn(model(inputs), *targets)``: a scalar tensor, or named scalar terms with the
        total under ``"loss"`` (the others are recorded in the history).
    batches : BatchSource
        ``batches.next_batch(generator) -> (inputs, *targets)``.
    optimizer : torch.optim.Optimizer
        Over ``model.parameters()``.
    config : FitConfig
        Iterations, checkpoints, validation period, precision, timing.
    generator : torch.Generator
        The batches' source of randomness (checkpointed).
    out : str or os.PathLike or None
        Folder of the checkpoint ``checkpoint.pt`` (None: no checkpoints).
    resume : bool
        Continue from ``out/checkpoint.pt`` when it exists.
    validate : ValidateFn or None
        ``validate(model) -> {name: number}`` every ``config.validate_every`` iterations.
    progress : bool
        Show a progress bar (on a terminal only).
    loss_log : list or None
        Each iteration's total loss is appended (a host synchronisation per iteration).
    run_config : dict or None
        Stored in the checkpoints; a resume refuses a checkpoint of another configuration.
    accepts : callable or None
        Replaces the equality test of ``run_config`` on resume.
    name : str
        The run's name in messages.

    Returns
    -------
    FitResult
        History, timing and the checkpoint's path.
    """
    job = Job(model=model, optimizer=optimizer, batches=batches, generator=generator,
              out=None if out is None else Path(out), validate=validate, config=run_config,
              accepts=accepts, name=name)
    return run_jobs([job], loss_fn, config, stepper="loop", resume=resume, progress=progress,
                    loss_logs=None if loss_log is None else [loss_log])[0]
