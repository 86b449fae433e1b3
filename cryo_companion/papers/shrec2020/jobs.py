"""SHREC 2020's paper-scale jobs (see :mod:`cryo_companion.runs.jobs`).

- ``shrec-data-cuda-tests``: multislice, the tilt series and the data set's tests with CUDA
  present;
- ``bench-shrec-data-cuda``: one paper-size model (512³ at 1 nm, about 2,600 particles, 41
  tilts, multislice) timed on the GPU (target: at most 60 s on one H200),
  ``results/bench_shrec_data.json``;
- the chapter ``shrec_data`` at paper scale (it makes the models it shows and records
  ``results/shrec_data.json``);
- ``shrec-methods-cuda-tests``: the detection layer's and the methods' networks' tests with a
  CUDA device present (template matching, tiling, peaks, DeepFinder / YOPO / UMC, the
  inference pipelines);
- ``bench-template-matching-cuda``: ``cryo-companion bench template-matching --device cuda``,
  milliseconds per rotation on the benchmark's 200 x 512 x 512 specimen and the projected time
  of the twelve classes at their Crowther steps (what the methods' chapter budgets its template
  matching from).

The data-set jobs read the twelve classes' structures (class set ``"shrec2020"``); the methods'
checks read none (synthetic templates and stand-in networks).
"""
from __future__ import annotations

from cryo_companion.runs.jobs import chapter_job, command_job
from cryo_companion.structures.catalogue import class_set

__all__ = ["JOBS", "STRUCTURES"]

#: The entries the SHREC 2020 jobs read (the twelve classes, 4v94 standing in for 4d8q).
STRUCTURES = tuple(sorted(c.entry for c in class_set("shrec2020").classes))

_TESTS = ("tests/test_multislice.py", "tests/test_tiltseries.py", "tests/test_shrec_dataset.py")
_METHOD_TESTS = ("tests/test_template_matching.py", "tests/test_detect_tiling.py",
                 "tests/test_detect_peaks.py", "tests/test_models_shrec.py",
                 "tests/test_shrec_pipelines.py")

JOBS = [
    command_job(
        "shrec-data-cuda-tests",
        ("{python}", "-m", "pytest", "-q", "-p", "no:cacheprovider", *_TESTS), priority=50,
        inputs=(*_TESTS, "tests/conftest.py", "pyproject.toml"), structures=STRUCTURES,
        guess_s=150, guess_source="the three files took about 2 min on a busy 2-core CPU",
        description="multislice and SHREC 2020 data-set tests with CUDA present"),
    command_job(
        "bench-shrec-data-cuda",
        ("{python}", "-m", "cryo_companion.cli.main", "bench", "shrec-data", "--device", "cuda"),
        priority=60, after=("shrec-data-cuda-tests",), structures=STRUCTURES,
        guess_s=180, guess_source="one 512³ model (target 60 s) plus template preparation",
        description="one paper-size SHREC 2020 model on CUDA -> results/bench_shrec_data.json"),
    chapter_job("shrec_data", priority=200, after=("bench-shrec-data-cuda",),
                structures=STRUCTURES,
                description="SHREC 2020: the data set (models made at paper scale)"),
    command_job(
        "shrec-methods-cuda-tests",
        ("{python}", "-m", "pytest", "-q", "-p", "no:cacheprovider", *_METHOD_TESTS),
        priority=70, inputs=(*_METHOD_TESTS, "tests/conftest.py", "pyproject.toml"),
        structures=(), guess_s=90,
        guess_source="the five files take about 60 s on a busy 2-core CPU; on the GPU machine "
                     "the CPU half is faster and the CUDA half small",
        description="detection layer and SHREC networks' tests with CUDA present"),
    command_job(
        "bench-template-matching-cuda",
        ("{python}", "-m", "cryo_companion.cli.main", "bench", "template-matching", "--device",
         "cuda"),
        priority=80, after=("shrec-methods-cuda-tests",), structures=(), guess_s=60,
        guess_source="3 batch sizes x 64 rotations of a 200 x 512 x 512 volume (a few ms each) "
                     "plus start-up",
        description="template matching ms per rotation on CUDA, the twelve classes projected"),
]
