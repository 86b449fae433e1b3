"""The generic machinery's pending GPU checks, as paper-scale jobs (see :mod:`.jobs`).

- ``simulator-cuda-tests``: the simulator's, the noise streams' and the rotations' tests with a
  CUDA device present, so every test taking the ``device`` fixture also runs on CUDA and the
  CUDA-only tests are no longer skipped; its record keeps the pytest summary line.
- ``bench-simulate-cuda``: ``cryo-companion bench simulate --device cuda --save``, the simulator's
  throughput at large batch (target: at least 80,000 subtomograms per second), merged into
  ``results/bench_simulate.json`` with the device and commit.

Both are cheap and validate code that every GPU chapter runs, so they come first. Neither reads
the structures mirror (the tests and the benchmark use synthetic templates; measured with an
audit hook on file opens).
"""
from __future__ import annotations

from cryo_companion.runs.jobs import command_job

__all__ = ["JOBS"]

_TESTS = ("tests/test_simulate_subtomogram.py", "tests/test_rng.py", "tests/test_rotation.py")

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
]
