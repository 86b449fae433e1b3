"""The generic machinery's pending GPU checks, as paper-scale jobs (see :mod:`.jobs`).

- ``simulator-cuda-tests``: the simulator's, the noise streams' and the rotations' tests with a
  CUDA device present, so every test taking the ``device`` fixture also runs on CUDA and the
  CUDA-only tests are no longer skipped; its record keeps the pytest summary line.
- ``bench-simulate-cuda``: ``cryo-companion bench simulate --device cuda --save``, the simulator's
  throughput at large batch (target: at least 80,000 subtomograms per second), merged into
  ``results/bench_simulate.json`` with the device and commit.

- ``learn-cuda-tests``: the training engine's tests (one loop, N runs per step by loop and by
  ``vmap``, batch sources, chunked prediction) with CUDA present.
- ``bench-train-cuda-PAPER`` (one job per paper's networks):
  ``cryo-companion bench train --device cuda --networks ... --save`` at the batch
  of 32 (ms per run-iteration for N = 1, 2, 6, 12 runs in one process and in N processes, the
  simulator's share, Table I's projected wall time), merged into ``results/bench_train.json``;
  the multi-run launcher then picks the measured faster stepper, and Table I's estimate reads it.
They are cheap and validate code that the GPU chapters run, so they come first. None reads the
structures mirror (synthetic templates; measured with an audit hook on file opens). The papers'
own checks are in their ``jobs.py`` (e.g. :mod:`cryo_companion.papers.shrec2020.jobs`).
"""
from __future__ import annotations

from cryo_companion.runs.jobs import command_job

__all__ = ["JOBS"]

_TESTS = ("tests/test_simulate_subtomogram.py", "tests/test_rng.py", "tests/test_rotation.py")
_LEARN_TESTS = ("tests/test_learn_multirun.py", "tests/test_learn_fit.py",
                "tests/test_learn_batches.py", "tests/test_learn_predict.py")
_CLI = ("{python}", "-m", "cryo_companion.cli.main")
_PYTEST = ("{python}", "-m", "pytest", "-q", "-p", "no:cacheprovider")
#: ``bench train`` on CUDA in one job per paper's networks (each fits a window; the record
#: merges them: :func:`cryo_companion.bench.train.merge_entry`).
_BENCH_TRAIN_GROUPS: tuple[tuple[str, tuple[str, ...], int], ...] = (
    ("che2019", ("dsrf3d",), 240),
    ("ssn3d", ("ssn3d",), 180),
    ("dsmnet", ("dsmnet", "dsrf3d_v2"), 300),
    ("shrec2020", ("deepfinder", "yopo", "umc"), 420),
)

JOBS = [
    command_job(
        "simulator-cuda-tests",
        ("{python}", "-m", "pytest", "-q", "-p", "no:cacheprovider", *_TESTS),
        priority=10, inputs=(*_TESTS, "tests/conftest.py", "pyproject.toml"), structures=(),
        guess_s=150,
        guess_source="the three files took 17 s + 33 s on a busy 2-core CPU (their CPU half); "
                     "the CUDA half adds compiling the simulator's kernels",
        description="simulator, RNG and rotation tests with CUDA present"),
    command_job(
        "bench-simulate-cuda",
        ("{python}", "-m", "cryo_companion.cli.main", "bench", "simulate", "--device", "cuda",
         "--save"),
        priority=20, after=("simulator-cuda-tests",), structures=(),  # synthetic templates
        guess_s=180,
        guess_source="4 batch sizes x 5 rounds of at least 1 s, plus compilation and warm-up",
        description="simulator throughput on CUDA -> results/bench_simulate.json"),
    command_job(
        "learn-cuda-tests", (*_PYTEST, *_LEARN_TESTS), priority=30,
        inputs=(*_LEARN_TESTS, "tests/conftest.py", "pyproject.toml"), structures=(),
        guess_s=120, guess_source="the four files took about 90 s on a busy 2-core CPU",
        description="training-engine tests (fit, multi-run loop and vmap) with CUDA present"),
    *(command_job(
        f"bench-train-cuda-{group}",
        (*_CLI, "bench", "train", "--device", "cuda", "--batch", "32", "--rounds", "2",
         "--networks", *nets, "--save"),
        priority=40 + i, after=("learn-cuda-tests",), structures=(),
        guess_s=guess, guess_source=f"{len(nets)} network(s) x 4 group sizes x 3 modes x 2 "
                                    "rounds of a few dozen steps (about 120 s a network)",
        description=f"training speed of {', '.join(nets)} on CUDA -> results/bench_train.json")
      for i, (group, nets, guess) in enumerate(_BENCH_TRAIN_GROUPS)),
]
