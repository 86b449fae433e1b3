"""DSM-Net's paper-scale jobs (see :mod:`cryo_companion.runs.jobs`): data sets, Tables 2-4, 3.5.

Order: ``dsmnet-cuda-tests`` runs the tests of the training code with CUDA present;
``dsmnet-data`` generates and calibrates data sets A, B and C (``results/dsmnet_data.json``);
then the trainings, each job one row's seeds (or part of them) trained N per step and saved run
by run in ``results/dsmnet_runs/`` (:mod:`cryo_companion.papers.dsmnet.experiments`): first
DSM-Net on A, seed 0, alone (``dsmnet-table2-dsmnet-seed0``; its weights are the ones kept), whose
record gives every later estimate a measured GPU speed and a measured number of epochs; then the
other rows of Tables 2, 4 and 3 and the unseen GroEL (``dsmnet-unseen``: the 21-class run and
the analysis of all of A); last the chapter, which only assembles the records.

**Sizes.** A job's runs are one row's seeds, split so that each job's declared estimate leaves
room for its data set's generation in a fresh window: at most :data:`TRAIN_S_PER_JOB` seconds
of training at the declared speed, 100 epochs (early stopping aside). :func:`group_sizes` makes
the split; :func:`windows` shows how the jobs pack into windows of the runner's budget.

**Estimates** (:func:`training_estimate`), from the most direct figure recorded:

- measured: the effective speed (TFLOP/s) of the paper-scale records (seconds per run and
  epoch of a run's share of its group's steps and data, over the FLOPs of its epoch), times the
  FLOPs of the job's runs over the epochs they may take (1.25 x the most a recorded run took,
  at most 100);
- else DSM-Net's CUDA step in ``results/bench_train.json`` (``bench train``: the speed of one
  run's step at its batch), times 100 epochs;
- else the declared speed :data:`GUESS_TFLOPS` (phase A's figure), times 100 epochs;

plus the data set's generation when it is not in the data cache at planning time
(:data:`GUESS_DATA_S`, or ``dsmnet-data``'s last wall time per set) and :data:`STARTUP_S`.

**FLOPs** (:data:`FORWARD_GFLOP`): one 40³ box's forward pass, counted by
``torch.utils.flop_counter.FlopCounterMode`` (2 per multiply-add; checked in the tests); a
training step is taken as 3 forward passes (forward, and the backward pass's two), a
validation (the validation set and as many training boxes) as one forward pass per box.
"""
from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from cryo_companion.papers.dsmnet.datasets import PAPER_SUBTOMOGRAMS
from cryo_companion.papers.dsmnet.splits import split_sizes
from cryo_companion.papers.dsmnet.train import Settings
from cryo_companion.papers.dsmnet.training import RUNS, RunSpec, run_spec
from cryo_companion.runs.jobs import (
    Estimate,
    Estimator,
    Job,
    chapter_job,
    command_job,
    notebook_estimate,
)
from cryo_companion.structures.catalogue import class_set

__all__ = ["FORWARD_GFLOP", "GUESS_DATA_S", "GUESS_TFLOPS", "JOBS", "STARTUP_S", "STRUCTURES",
           "TRAIN_S_PER_JOB", "chapter_estimate", "epoch_gflop", "group_sizes", "guess_run_s",
           "pack_rows", "training_estimate", "windows"]

#: The structure entries the data sets read (the ``liu22`` stand-ins; C's ribosome and
#: proteasome are among them).
STRUCTURES = tuple(sorted({c.entry for c in class_set("liu22")}))
#: GFLOP of one 40³ box's forward pass, by network (DSM-Net: by variant), measured with
#: ``torch.utils.flop_counter.FlopCounterMode`` (22 classes; 21 or 2 change it by < 0.1 %).
FORWARD_GFLOP: dict[str, float] = {"dsmnet": 3.77, "cls+seg": 3.77, "cls+rec": 3.76,
                                   "seg": 3.77, "cls": 1.83, "dsrf3d_v2": 7.67,
                                   "ssn3d_ed": 7.74}
#: Declared speed of these 3-D convolutions on one H200 in TF32 (TFLOP/s), phase A's figure
#: (57 GPU-minutes for all 34 runs at 100 epochs); the first recorded run replaces it. On this
#: project's shared 2-core CPU a DSM-Net step at batch 8 took 4.25 s (bench train, fp32): 21
#: GFLOP/s.
GUESS_TFLOPS = 30.0
#: Declared seconds to calibrate and generate a data set on one H200 (A and B as SSN3D's data
#: sets, :data:`cryo_companion.papers.ssn3d.jobs.GUESS_DATA_S`; C: two 400 x 400 tomograms
#: imaged tilt by tilt, guessed the same).
GUESS_DATA_S = 120.0
#: Seconds of start-up (imports, CUDA context, cuDNN's algorithm search) per job.
STARTUP_S = 20.0
#: Seconds of training a job may take at the declared speed (its data set's generation and the
#: start-up then fit the runner's 510 s).
TRAIN_S_PER_JOB = 360.0

_EXP = ("{python}", "-m", "cryo_companion.papers.dsmnet.experiments", "--device", "{device}")
_DATA_N = {"A": PAPER_SUBTOMOGRAMS, "B": PAPER_SUBTOMOGRAMS, "C": 786}


def _key(spec: RunSpec) -> str:
    return spec.variant if spec.network == "dsmnet" and spec.variant else spec.network


def epoch_gflop(spec: RunSpec, settings: Settings | None = None) -> tuple[float, int]:
    """Return the GFLOP of one run's epoch at paper scale, and the epoch's iterations.

    Parameters
    ----------
    spec : RunSpec
        The row.
    settings : Settings or None
        The recipe (None: the paper's).

    Returns
    -------
    tuple
        GFLOP (training steps at 3 forward passes per box, the validation at one per box of
        the validation set and of as many training boxes) and iterations per epoch.
    """
    s = settings or Settings()
    sizes = split_sizes(_DATA_N[spec.dataset])
    n_train = sizes["train"]
    if spec.held_out is not None:           # one class of 22 less (an even share)
        n_train = n_train * 21 // 22
    ipe = n_train // s.batch_size
    f = FORWARD_GFLOP[_key(spec)]
    return f * (3 * ipe * s.batch_size + 2 * sizes["validation"]), ipe


def guess_run_s(spec: RunSpec, tflops: float = GUESS_TFLOPS) -> float:
    """Return the declared seconds of one run of ``spec`` at 100 epochs.

    Parameters
    ----------
    spec : RunSpec
        The row.
    tflops : float
        Assumed speed.

    Returns
    -------
    float
    """
    return epoch_gflop(spec)[0] * Settings().max_epochs / (tflops * 1e3)


def group_sizes(spec: RunSpec, budget_s: float = TRAIN_S_PER_JOB) -> list[tuple[int, ...]]:
    """Split a row's seeds into jobs of at most ``budget_s`` declared training seconds.

    Parameters
    ----------
    spec : RunSpec
        The row.
    budget_s : float
        Training seconds per job.

    Returns
    -------
    list of tuple of int
        The seeds of each job, in order.
    """
    n = max(1, math.floor(budget_s / guess_run_s(spec)))
    seeds = tuple(spec.seeds)
    return [seeds[i:i + n] for i in range(0, len(seeds), n)]


def _json(path: Path) -> dict[str, Any] | None:
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def _records(root: Path) -> list[dict[str, Any]]:
    out = []
    for p in sorted((root / "results" / "dsmnet_runs").glob("*.json")):
        d = (_json(p) or {}).get("data")
        if isinstance(d, dict) and d.get("timing") and d.get("epochs_trained"):
            out.append(d)
    return out


def _measured_tflops(recs: Sequence[Mapping[str, Any]]) -> tuple[float, str] | None:
    vals = []
    for r in recs:
        try:
            spec = run_spec(f"{r['run']['table']}/{r['run']['dataset']}/{r['run']['row']}"
                            if r["run"]["table"] == "table3" else
                            f"{r['run']['table']}/{r['run']['row']}")
        except KeyError:
            continue
        t = r["timing"]
        s_epoch = (t["net_ms_per_iter"] + t["data_ms_per_iter"]) / 1e3 * r["iters_per_epoch"]
        vals.append(epoch_gflop(spec)[0] / s_epoch / 1e3)
    if not vals:
        return None
    return min(vals), f"{min(vals):.1f} TFLOP/s effective (slowest of {len(vals)} record(s))"


def _bench_tflops(root: Path) -> tuple[float, str] | None:
    bench = _json(root / "results" / "bench_train.json") or {}
    try:
        e = bench["data"]["cuda"]
        ms = float(e["networks"]["dsmnet"]["modes"]["loop"]["1"]["ms_per_step"])
        batch = int(e["settings"]["batch"])
    except (KeyError, TypeError, ValueError):
        return None
    tf = 3 * FORWARD_GFLOP["dsmnet"] * batch / ms        # GFLOP per ms = TFLOP/s
    return tf, f"{tf:.1f} TFLOP/s (DSM-Net, {ms:.1f} ms per step at batch {batch}, " \
               "results/bench_train.json)"


def _data_s(root: Path, dataset: str) -> tuple[float, str]:
    summary = ((_json(root / "results" / "dsmnet_data.json") or {}).get("data") or {})
    h = (summary.get(dataset) or {}).get("config_hash")
    if h:
        data_root = Path(os.environ.get("CRYO_COMPANION_DATA", root / "data"))
        if any(data_root.glob(f"*/*{h[:16]}*/config.json")):
            return 15.0, f"data set {dataset} cached (15 s to read)"
    rec = _json(root / "results" / "jobs" / "dsmnet-data.json") or {}
    if rec.get("status") == "ok" and rec.get("wall_s"):
        s = float(rec["wall_s"]) / 3
        return s, f"{s:.0f} s to generate data set {dataset} (dsmnet-data's last run / 3)"
    return GUESS_DATA_S, f"{GUESS_DATA_S:.0f} s to generate data set {dataset} (declared guess)"


def training_estimate(specs: Sequence[tuple[RunSpec, int]]) -> Estimator:
    """Make the estimator of a job training some runs (each ``(row, number of seeds)``).

    Parameters
    ----------
    specs : sequence of tuple
        ``(RunSpec, n_runs)`` of the job.

    Returns
    -------
    Estimator
        ``(root, params) -> Estimate``; None when nothing is measured yet (the declared guess
        applies).
    """
    max_epochs = Settings().max_epochs
    gflop = sum(n * epoch_gflop(s)[0] for s, n in specs)
    datasets = sorted({s.dataset for s, _ in specs})

    def estimate(root: Path, params: Mapping[str, Any]) -> Estimate | None:
        recs = _records(root)
        speed = _measured_tflops(recs)
        if speed is not None:
            most = max(r["epochs_trained"] for r in recs)
            epochs = min(max_epochs, 1.25 * most)
            ep_how = f"{epochs:.0f} epochs (1.25 x the most a recorded run took, {most})"
        else:
            speed = _bench_tflops(root)
            if speed is None:
                return None
            epochs, ep_how = max_epochs, f"{max_epochs} epochs (at most; nothing recorded)"
        tf, how = speed
        data = [_data_s(root, d) for d in datasets]
        total = gflop * epochs / (tf * 1e3) + sum(s for s, _ in data) + STARTUP_S
        return Estimate(total, f"{gflop / 1e3:.0f} TFLOP per epoch of its runs x {ep_how} at "
                               f"{how}; + {'; '.join(h for _, h in data)}; + "
                               f"{STARTUP_S:.0f} s start-up")

    return estimate


def chapter_estimate(root: Path, params: Mapping[str, Any]) -> Estimate:
    """Estimate the chapter at paper scale: its last paper-scale run, else its parts.

    At paper scale the chapter trains nothing: data set A (Fig. 2; generated unless cached),
    the parameter counts, the tables and figures from the records.

    Parameters
    ----------
    root : Path
        Repository root.
    params : Mapping
        The run's papermill parameters (unused).

    Returns
    -------
    Estimate
    """
    found = notebook_estimate(root, "dsmnet", scale="paper")
    if found is not None:
        return found
    data_s, how = _data_s(root, "A")
    return Estimate(data_s + 60.0 + STARTUP_S, f"{how} + 60 s for Fig. 2, the parameter counts, "
                                               "the tables and figures (declared) + start-up")


def _guess(specs: Sequence[tuple[RunSpec, int]]) -> tuple[float, str]:
    train = sum(n * guess_run_s(s) for s, n in specs)
    n_data = len({s.dataset for s, _ in specs})
    total = train + n_data * GUESS_DATA_S + STARTUP_S
    return total, (f"declared: {train:.0f} s of training (FLOPs of {sum(n for _, n in specs)} "
                   f"run(s) x 100 epochs at {GUESS_TFLOPS:.0f} TFLOP/s, see papers/dsmnet/"
                   f"jobs.py) + {n_data * GUESS_DATA_S:.0f} s for the data set + start-up")


def _arg(spec: RunSpec, seeds: tuple[int, ...]) -> str:
    return f"{spec.name}@{','.join(map(str, seeds))}"


def pack_rows(items: Sequence[tuple[RunSpec, tuple[int, ...]]],
              budget_s: float = TRAIN_S_PER_JOB) -> list[list[tuple[RunSpec, tuple[int, ...]]]]:
    """Pack (row, seeds) groups of one data set into jobs of ``budget_s`` training seconds.

    In order (first fit), at the declared speed, so that a job's data set is made once for
    several rows.

    Parameters
    ----------
    items : sequence of tuple
        ``(RunSpec, seeds)``, each within the budget (:func:`group_sizes`).
    budget_s : float
        Training seconds per job.

    Returns
    -------
    list of list of tuple
        The items of each job.
    """
    jobs: list[list[tuple[RunSpec, tuple[int, ...]]]] = []
    room: list[float] = []
    for spec, seeds in items:
        s = len(seeds) * guess_run_s(spec)
        for i, r in enumerate(room):
            if s <= r + 1e-9:
                jobs[i].append((spec, seeds))
                room[i] -= s
                break
        else:
            jobs.append([(spec, seeds)])
            room.append(budget_s - s)
    return jobs


def _train_job(name: str, items: Sequence[tuple[RunSpec, tuple[int, ...]]], priority: int,
               after: tuple[str, ...]) -> Job:
    parts = [(spec, len(seeds)) for spec, seeds in items]
    g, src = _guess(parts)
    return command_job(name, (*_EXP, "train", *(_arg(sp, se) for sp, se in items)),
                       priority=priority, after=after, structures=STRUCTURES,
                       estimator=training_estimate(parts), guess_s=g, guess_source=src,
                       description="; ".join(f"{sp.name} seed(s) {', '.join(map(str, se))}"
                                             for sp, se in items))


def _training_jobs() -> list[Job]:
    pilot_spec = run_spec("table2/dsmnet")
    pilot = _train_job("dsmnet-pilot", [(pilot_spec, (0,))], 510, ("dsmnet-data",))
    jobs = [pilot]
    prio = 520
    for ds in ("A", "B", "C"):
        items: list[tuple[RunSpec, tuple[int, ...]]] = []
        for spec in RUNS:
            if spec.table == "unseen" or spec.dataset != ds:
                continue
            seeds = tuple(s for s in spec.seeds if not (spec is pilot_spec and s == 0))
            items += [(spec, g) for g in group_sizes(replace(spec, seeds=seeds))]
        for i, part in enumerate(pack_rows(items)):
            jobs.append(_train_job(f"dsmnet-{ds.lower()}-part{i + 1}", part, prio, (pilot.name,)))
            prio += 1
    unseen = run_spec("unseen/dsmnet_21")
    g, src = _guess([(unseen, 1)])
    jobs.append(command_job(
        "dsmnet-unseen", (*_EXP, "unseen"), priority=prio, after=(pilot.name,),
        structures=STRUCTURES, estimator=training_estimate([(unseen, 1)]), guess_s=g + 60,
        guess_source=src + " + 60 s for k-means, t-SNE and the FSC of 3,205 boxes (declared)",
        description="3.5: 21-class DSM-Net without GroEL, k-means, t-SNE, the FSC"))
    return jobs


def windows(jobs: Iterable[Job], budget_s: float = 540.0, margin_s: float = 30.0
            ) -> list[list[str]]:
    """Pack jobs into GPU windows by their declared estimates, in running order (next fit).

    Each window takes the next jobs while their estimates fit; every job's data set is counted
    in its own estimate (a fresh machine per window), so this is what the runner plans when
    nothing is measured yet.

    Parameters
    ----------
    jobs : iterable of Job
        In running order (dependencies first).
    budget_s : float
        The runner's budget per window.
    margin_s : float
        Its margin.

    Returns
    -------
    list of list of str
        The job names of each window.

    Raises
    ------
    ValueError
        When a job's estimate alone exceeds a window.
    """
    left = budget_s - margin_s
    out: list[list[str]] = []
    room = 0.0
    for j in jobs:
        s = float(j.guess_s or 0.0)
        if s > left:
            raise ValueError(f"job {j.name} ({s:.0f} s) does not fit a window of {left:.0f} s")
        if not out or s > room:
            out.append([])
            room = left
        out[-1].append(j.name)
        room -= s
    return out


#: The tests of DSM-Net's training, models and command, run with CUDA present.
_TESTS = ("tests/test_dsmnet_train.py", "tests/test_models_dsmnet.py",
          "tests/test_dsmnet_cli.py")
_TRAIN = _training_jobs()

JOBS = [
    command_job("dsmnet-cuda-tests", ("{python}", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                      *_TESTS), priority=490,
                inputs=(*_TESTS, "tests/dsmnet_tiny.py", "tests/conftest.py", "pyproject.toml"),
                structures=(), guess_s=150,
                guess_source="the three files took about 2 min on a busy 2-core CPU",
                description="DSM-Net training (CUDA), models, the dsmnet command: tests"),
    command_job("dsmnet-data", (*_EXP, "data"), priority=500, structures=STRUCTURES,
                guess_s=3 * GUESS_DATA_S + STARTUP_S,
                guess_source=f"declared: {GUESS_DATA_S:.0f} s per data set (see "
                             "papers/dsmnet/jobs.py)",
                description="DSM-Net's data sets A, B, C: dose calibrated, generated, recorded"),
    *_TRAIN,
    chapter_job("dsmnet", priority=600, after=tuple(j.name for j in _TRAIN),
                structures=STRUCTURES, estimator=chapter_estimate,
                guess_s=GUESS_DATA_S + 60.0 + STARTUP_S,
                guess_source="data set A read or generated (Fig. 2) + 60 s for the tables and "
                             "figures (declared) + start-up",
                description="DSM-Net: Tables 2-4, the unseen GroEL, from the run records"),
]
