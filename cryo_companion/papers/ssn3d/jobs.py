"""SSN3D's paper-scale jobs (see :mod:`cryo_companion.runs.jobs`): data, Tables 2 and 3, chapter.

Order: ``ssn3d-cuda-tests`` runs the tests of the training code with CUDA present (SSN3D-ED's
runs vmapped on the GPU, early stopping, Keras' Adam, the segment command); ``ssn3d-data``
generates and calibrates data sets A, B and C (and records them in
``results/ssn3d_data.json``); then the trainings, each job one group of runs trained N per
step and saved run by run in ``results/ssn3d_runs/`` (:mod:`cryo_companion.papers.ssn3d.
experiments`): first one SSN3D-ED run alone (``ssn3d-table2-ed-a-seed0``), whose record gives
every later estimate a measured GPU speed and a measured number of epochs, then the other
rows of Table 2 (three seeds each), the Xu baseline, and Table 3's 22 leave-one-out runs in
eleven jobs of two; last the chapter, which only assembles the records (it trains nothing at paper
scale).

Estimates (:func:`training_estimate`), from the most direct figure recorded:

- the seconds per run and epoch of the paper-scale records of the same network (else of any
  SSN3D network), times the epochs the job's runs may take: 1.25 x the most epochs a recorded
  run took (early stopping ends most runs well before 200), at most 200;
- else SSN3D's CUDA step time in ``results/bench_train.json`` (``bench-train-cuda-ssn3d``, batch 32,
  scaled to 128) times 200 epochs (an upper bound);
- else the declared guess :data:`GUESS_GPU_STEP_S` (stated with the CPU measurement it rests on);

plus, when the data set is not in the data cache at planning time (a fresh machine), its
generation: the wall time of the last ``ssn3d-data`` run per data set, else
:data:`GUESS_DATA_S`. A window's machine starts bare, so a job's data set is generated again
in every window that trains on it, and every job's estimate made at the start of a window on a
fresh machine counts it (the plan is made before any job runs), which is conservative.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryo_companion.papers.ssn3d.paper_tables import TABLE3
from cryo_companion.papers.ssn3d.train import Settings
from cryo_companion.runs.jobs import (
    Estimate,
    Estimator,
    Job,
    chapter_job,
    command_job,
    notebook_estimate,
)
from cryo_companion.structures.catalogue import class_set

__all__ = ["GUESS_DATA_S", "GUESS_GPU_STEP_S", "JOBS", "STRUCTURES", "TABLE3_PARTS",
           "chapter_estimate", "training_estimate"]

#: The structure entries SSN3D's data sets read (the ``liu22`` stand-ins).
STRUCTURES = tuple(sorted({c.entry for c in class_set("liu22")}))
#: Declared guess of one data set's calibration and generation on one H200 (seconds): the
#: tomogram benchmark packed 2,500 complexes in 5 s and imaged 61 tilts in 1.5 s on an H100
#: (results/bench_tomogram.json); 10,000 complexes, the dose calibration on a 240 x 240 pilot
#: (2 to 6 tilt series), the per-box extraction of about 7,600 targets and writing 3 x 3,380 MRC
#: files are guessed at 120 s in all.
GUESS_DATA_S = 120.0
#: Declared guess of one training step of 128 subtomograms on one H200 (seconds). On this
#: project's shared 2-core CPU (fp32, 2 threads, load average 2-6) a step of SSN3D-ED at batch
#: 32 took 5.7-6.7 s, so about 23 s at 128: about 3.0 TFLOP (3.9 GMAC forward per 40³ box,
#: times 3 for the backward pass), 130 GFLOP/s; SSN3D-v1 and -v2 took the same at batch 8 (1.0-
#: 1.2 s) and 10-18 s at 32 at a busier moment. The H200 is assumed to sustain 60 TFLOP/s on
#: these 3-D convolutions in TF32 (an eighth of its dense TF32 peak), 0.05 s a step; the first
#: recorded run replaces this guess.
GUESS_GPU_STEP_S = 0.05
#: Iterations of one epoch at the paper's scale: 2,738 training subtomograms (Table 2) or
#: about 2,900 (Table 3, all but one class less 10 % validation) in batches of 128.
ITERS_PER_EPOCH = {"table2": 2738 // 128, "table3": 2900 // 128}
#: Seconds of start-up (imports, CUDA context, cuDNN's algorithm search) per job.
STARTUP_S = 20.0
#: Table 3's held-out classes in eleven jobs of two (the paper's order): small enough that
#: each fits a window with its data set's generation once the pilot has measured the speed.
TABLE3_PARTS: tuple[tuple[str, ...], ...] = tuple(
    tuple(list(TABLE3)[i:i + 2]) for i in range(0, len(TABLE3), 2))

_EXP = ("{python}", "-m", "cryo_companion.papers.ssn3d.experiments", "--device", "{device}")


def _json(path: Path) -> dict[str, Any] | None:
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def _records(root: Path) -> list[dict[str, Any]]:
    out = []
    for p in sorted((root / "results" / "ssn3d_runs").glob("table*.json")):
        d = (_json(p) or {}).get("data")
        if isinstance(d, dict) and d.get("timing") and d.get("epochs_trained"):
            out.append(d)
    return out


def _run_epoch_s(recs: list[dict[str, Any]], variant: str) -> tuple[float, str] | None:
    """Measured seconds per run and epoch (a run's share of its group's steps and data)."""
    mine = [r for r in recs if r["run"]["variant"] == variant] or recs
    if not mine:
        return None
    vals = [(r["timing"]["net_ms_per_iter"] + r["timing"]["data_ms_per_iter"]) / 1e3
            * r["iters_per_epoch"] for r in mine]
    which = variant if mine[0]["run"]["variant"] == variant else "SSN3D"
    return max(vals), f"{max(vals):.2f} s per run-epoch ({len(mine)} {which} record(s))"


def _bench_step_s(root: Path) -> tuple[float, str] | None:
    bench = _json(root / "results" / "bench_train.json") or {}
    try:
        e = bench["data"]["cuda"]
        ms = float(e["networks"]["ssn3d"]["modes"]["loop"]["1"]["ms_per_step"])
        batch = int(e["settings"]["batch"])
    except (KeyError, TypeError, ValueError):
        return None
    s = ms / 1e3 * Settings().batch_size / batch
    return s, (f"{ms:.1f} ms per step at batch {batch} (results/bench_train.json, CUDA), "
               f"{s:.3f} s at {Settings().batch_size}")


def _data_s(root: Path, dataset: str) -> tuple[float, str]:
    summary = ((_json(root / "results" / "ssn3d_data.json") or {}).get("data") or {})
    h = (summary.get(dataset) or {}).get("config_hash")
    if h:
        import os

        data_root = Path(os.environ.get("CRYO_COMPANION_DATA", root / "data"))
        if (data_root / "crowded" / f"liu22_{h[:16]}" / "config.json").is_file():
            return 15.0, f"data set {dataset} cached (15 s to read)"
    rec = _json(root / "results" / "jobs" / "ssn3d-data.json") or {}
    if rec.get("status") == "ok" and rec.get("wall_s"):
        s = float(rec["wall_s"]) / 3
        return s, f"{s:.0f} s to generate data set {dataset} (ssn3d-data's last run / 3)"
    return GUESS_DATA_S, f"{GUESS_DATA_S:.0f} s to generate data set {dataset} (declared guess)"


def training_estimate(n_runs: int, variant: str, dataset: str, table: str) -> Estimator:
    """Make the estimator of a job training ``n_runs`` runs of one network on one data set.

    Parameters
    ----------
    n_runs : int
        Runs of the job (trained together, N per step).
    variant : str
        ``"v1"``, ``"v2"`` or ``"ed"``.
    dataset : str
        ``"A"``, ``"B"`` or ``"C"``.
    table : str
        ``"table2"`` or ``"table3"`` (the epoch length).

    Returns
    -------
    Estimator
        ``(root, params) -> Estimate``, or None when nothing is measured yet (the job's
        declared guess applies).
    """
    ipe = ITERS_PER_EPOCH[table]
    max_epochs = Settings().max_epochs

    def estimate(root: Path, params: Mapping[str, Any]) -> Estimate | None:
        recs = _records(root)
        measured = _run_epoch_s(recs, variant)
        if measured is not None:
            per, how = measured
            most = max(r["epochs_trained"] for r in recs)
            epochs = min(max_epochs, 1.25 * most)
            ep_how = f"{epochs:.0f} epochs (1.25 x the most a recorded run took, {most})"
        else:
            bench = _bench_step_s(root)
            if bench is None:
                return None
            step, how = bench
            per = step * ipe * 1.05          # + validation, about 5 % of an epoch
            epochs, ep_how = max_epochs, f"{max_epochs} epochs (at most; nothing recorded)"
        data_s, d_how = _data_s(root, dataset)
        total = n_runs * epochs * per + data_s + STARTUP_S
        return Estimate(total, f"{n_runs} run(s) x {ep_how} x {how}; + {d_how}; "
                               f"+ {STARTUP_S:.0f} s start-up")

    return estimate


def chapter_estimate(root: Path, params: Mapping[str, Any]) -> Estimate:
    """Estimate the chapter at paper scale: its last paper-scale run, else its parts.

    At paper scale the chapter trains nothing: data set A (for Fig. 5; generated unless
    cached), the pilot region at three doses, predictions and tables.

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
    found = notebook_estimate(root, "ssn3d", scale="paper")
    if found is not None:
        return found
    data_s, how = _data_s(root, "A")
    return Estimate(data_s + 60.0 + STARTUP_S, f"{how} + 60 s for the pilot region, Fig. 5 "
                                               f"and the tables (declared) + start-up")


def _guess(n_runs: int, table: str) -> tuple[float, str]:
    epochs = Settings().max_epochs
    s = n_runs * epochs * ITERS_PER_EPOCH[table] * GUESS_GPU_STEP_S * 1.05 + GUESS_DATA_S + \
        STARTUP_S
    return s, (f"declared: {n_runs} run(s) x at most {epochs} epochs x {ITERS_PER_EPOCH[table]} "
               f"steps x {GUESS_GPU_STEP_S} s (a guess: a CPU step scaled by an assumed GPU "
               f"speed-up, see papers/ssn3d/jobs.py) + {GUESS_DATA_S:.0f} s for the data set")


def _train_job(name: str, argv: tuple[str, ...], n_runs: int, variant: str, dataset: str,
               table: str, priority: int, after: tuple[str, ...], description: str) -> Job:
    g, src = _guess(n_runs, table)
    return command_job(name, (*_EXP, *argv), priority=priority, after=after,
                       structures=STRUCTURES, estimator=training_estimate(n_runs, variant,
                                                                          dataset, table),
                       guess_s=g, guess_source=src, description=description)


_PILOT = "ssn3d-table2-ed-a-seed0"
_T2 = [_train_job(_PILOT, ("table2", "--variant", "ed", "--dataset", "A", "--seeds", "0"), 1,
                  "ed", "A", "table2", 310, ("ssn3d-data",),
                  "SSN3D-ED on data set A, seed 0 (Table 2; its record measures the GPU speed)")]
_T2 += [_train_job(f"ssn3d-table2-{v}-{d.lower()}", ("table2", "--variant", v, "--dataset", d,
                                             "--seeds", *seeds), len(seeds), v, d, "table2",
                   prio, (_PILOT,), f"Table 2: SSN3D-{v.upper() if v == 'ed' else v} on data "
                   f"set {d}, seeds {', '.join(seeds)}")
        for v, d, seeds, prio in (("ed", "A", ("1", "2"), 320), ("v2", "A", ("0", "1", "2"), 330),
                                  ("v1", "A", ("0", "1", "2"), 340),
                                  ("ed", "B", ("0", "1", "2"), 350),
                                  ("ed", "C", ("0", "1", "2"), 360))]
_XU = command_job("ssn3d-xu", (*_EXP, "xu", "--dataset", "A"), priority=370, after=(_PILOT,),
                  structures=STRUCTURES, guess_s=GUESS_DATA_S + 120.0,
                  guess_source="338 test subtomograms at about 0.2 s each on the CPU (Xu 2013 "
                               "segmentation, measured on the 2-core machine) + the data set",
                  description="Table 2: the Xu & Alber 2013 baseline on data set A")
_T3 = [_train_job(f"ssn3d-table3-part{i + 1}", ("table3", "--seeds", "0", "--classes", *part),
                  len(part), "ed", "A", "table3", 380 + i, (_PILOT,),
                  f"Table 3: SSN3D-ED leaving out {', '.join(part)}")
       for i, part in enumerate(TABLE3_PARTS)]

#: The tests of SSN3D's training, early stopping, Keras' Adam and the segment command.
_TESTS = ("tests/test_ssn3d_train.py", "tests/test_learn_early_stopping.py",
          "tests/test_learn_optim.py", "tests/test_segment_cli.py", "tests/test_learn_batches.py")

JOBS = [
    command_job("ssn3d-cuda-tests", ("{python}", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                     *_TESTS), priority=290,
                inputs=(*_TESTS, "tests/ssn3d_tiny.py", "tests/learn_tiny.py",
                        "tests/conftest.py", "pyproject.toml"), structures=(),
                guess_s=150, guess_source="the five files took about 2 min on a busy 2-core CPU",
                description="SSN3D training (vmap on CUDA), early stopping, segment: tests"),
    command_job("ssn3d-data", (*_EXP, "data"), priority=300, structures=STRUCTURES,
                guess_s=3 * GUESS_DATA_S + STARTUP_S,
                guess_source=f"declared: {GUESS_DATA_S:.0f} s per data set (see "
                             "papers/ssn3d/jobs.py)",
                description="SSN3D's data sets A, B, C: dose calibrated, generated, recorded"),
    *_T2, _XU, *_T3,
    chapter_job("ssn3d", priority=400, after=tuple(j.name for j in (*_T2, _XU, *_T3)),
                structures=STRUCTURES, estimator=chapter_estimate,
                description="SSN3D: Tables 2 and 3 assembled from the run records"),
]
