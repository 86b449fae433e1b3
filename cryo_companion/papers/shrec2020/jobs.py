"""SHREC 2020's GPU checks that need no training, as paper-scale jobs (see :mod:`~.runs.jobs`).

- ``shrec-methods-cuda-tests``: the detection layer's and the methods' networks' tests with a
  CUDA device present (template matching, tiling, peaks, DeepFinder / YOPO / UMC, the
  inference pipelines): every test taking the ``device`` fixture also runs on CUDA.
- ``bench-template-matching-cuda``: ``cryo-companion bench template-matching --device cuda``,
  milliseconds per rotation on the benchmark's 200 x 512 x 512 specimen and the projected time
  of the twelve classes at their Crowther steps: the figure the methods' chapter budgets its
  template matching from (its printout is kept in the job's log).

Neither reads the structures mirror (synthetic templates and stand-in networks). The methods'
chapter and its training runs are declared with the chapter (they need the training loop).
"""
from __future__ import annotations

from cryo_companion.runs.jobs import command_job

__all__ = ["JOBS"]

_TESTS = ("tests/test_template_matching.py", "tests/test_detect_tiling.py",
          "tests/test_detect_peaks.py", "tests/test_models_shrec.py",
          "tests/test_shrec_pipelines.py")

JOBS = [
    command_job(
        "shrec-methods-cuda-tests",
        ("{python}", "-m", "pytest", "-q", "-p", "no:cacheprovider", *_TESTS),
        priority=30, inputs=(*_TESTS, "tests/conftest.py", "pyproject.toml"), structures=(),
        guess_s=90,
        guess_source="the five files take about 60 s on a busy 2-core CPU; on the GPU machine "
                     "the CPU half is faster and the CUDA half small",
        description="detection layer and SHREC networks' tests with CUDA present"),
    command_job(
        "bench-template-matching-cuda",
        ("{python}", "-m", "cryo_companion.cli.main", "bench", "template-matching", "--device",
         "cuda"),
        priority=40, after=("shrec-methods-cuda-tests",), structures=(),
        guess_s=60,
        guess_source="3 batch sizes x 64 rotations of a 200 x 512 x 512 volume (a few ms each) "
                     "plus start-up",
        description="template matching ms per rotation on CUDA, the twelve classes projected"),
]
