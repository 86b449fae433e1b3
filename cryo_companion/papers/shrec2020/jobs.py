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
- ``bench-template-matching-cuda``: ``cryo-companion bench template-matching --device cuda
  --save``, milliseconds per rotation on the benchmark's 200 x 512 x 512 specimen and the
  projected time of the twelve classes at their Crowther steps, saved in
  ``results/bench_template_matching.json`` (what the methods' template matching budgets its
  rotations from);
- the methods' pieces (:mod:`.experiment`, ``python -m cryo_companion.papers.shrec2020.
  experiment PIECE``), each saved as ``results/shrec_methods/PIECE.json`` when it ends:
  ``shrec-methods-tm`` (TM-T and TM-F on model 9, the rotation cap from the benchmark above),
  then ``shrec-methods-deepfinder``, ``-yopo`` and ``-umc`` (two seeds trained together for the
  plan's budget, 90 s, scored three times on a central 256² crop of model 9 and at the end on
  the whole model in both modes);
- the chapter ``shrec_methods`` at paper scale: it only assembles the saved pieces (it trains
  nothing; a missing piece shows as missing) into ``results/shrec_methods.json``.

**Estimates** (:func:`piece_estimate`): a piece's last run is the job's own record; before it,
the measured times of its saved piece (training, scoring, inference); before that, the plan's
training budget plus a declared guess of its scoring and inference (:data:`GUESS_SCORING_S`).
To each is added a start-up (:data:`STARTUP_S`) and the generation of the 512³ models the piece
needs that are not in the data cache at planning time: model 9 for template matching, models
0 and 9 for a network. A window's machine starts bare, so on a fresh machine every piece counts
its models (the plan is made before any job runs; conservative when several pieces share a
window). One model takes the CUDA time recorded by ``bench-shrec-data-cuda`` (without its SNR
measurement, which the pieces skip), else :data:`GUESS_MODEL_S`. Each piece is planned to fit
one 10-minute command with room to spare; the four pieces need about three to four windows.

The data-set jobs read the twelve classes' structures (class set ``"shrec2020"``); the methods'
checks read none (synthetic templates and stand-in networks); the pieces read the twelve.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryo_companion.runs.jobs import Estimate, Estimator, chapter_job, command_job
from cryo_companion.structures.catalogue import class_set

__all__ = ["GUESS_MODEL_S", "GUESS_SCORING_S", "JOBS", "PIECE_JOBS", "STARTUP_S", "STRUCTURES",
           "piece_estimate"]

#: The entries the SHREC 2020 jobs read (the twelve classes, 4v94 standing in for 4d8q).
STRUCTURES = tuple(sorted(c.entry for c in class_set("shrec2020").classes))

#: Declared guess of one 512³ model's generation without its SNR measurement on one H200
#: (seconds): ``bench-shrec-data-cuda``'s target of 60 s for the scene, 41 multislice tilts and
#: the reconstruction (on this project's 2-core CPU: 11 s scene + 385 s tilt series and WBP,
#: results/bench_shrec_data.json), plus about 30 s to write five 512³ MRC files (1 GB) and the
#: masks; the first CUDA record replaces it.
GUESS_MODEL_S = 90.0
#: Declared guess of a piece's scoring and inference on one H200 besides its training
#: (seconds): the networks' three scored points x two seeds on a 256² crop and two whole-model
#: inferences (DeepFinder's mean shift on the CPU dominates: scikit-learn with bin seeding on
#: every foreground voxel of the binned map, up to about 10^6 points); template matching's
#: templates, selection and scoring besides its budget of correlations.
GUESS_SCORING_S: dict[str, float] = {"deepfinder": 180.0, "yopo": 90.0, "umc": 90.0,
                                     "tm": 60.0}
#: Seconds of start-up per job (imports, CUDA context, cuDNN's algorithm search, templates).
STARTUP_S = 30.0
#: The experiment's pieces as jobs, in the order they run.
PIECE_JOBS: tuple[str, ...] = ("tm", "deepfinder", "yopo", "umc")


def _json(path: Path) -> dict[str, Any] | None:
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def _model_s(root: Path) -> tuple[float, str]:
    rec = _json(root / "results" / "bench_shrec_data.json") or {}
    dev = str((rec.get("provenance") or {}).get("device", ""))
    timing = (rec.get("data") or {}).get("timing_s") or {}
    if "cuda" in dev.lower() or "nvidia" in dev.lower() or "h100" in dev.lower() \
            or "h200" in dev.lower():
        try:
            s = float(timing["total"]) - float(timing.get("snr_measurement", 0.0)) + 30.0
            return s, f"{s:.0f} s per model (bench_shrec_data on {dev}, + 30 s to write it)"
        except (KeyError, TypeError, ValueError):
            pass
    return GUESS_MODEL_S, f"{GUESS_MODEL_S:.0f} s per model (declared guess)"


def _missing_models(method: str) -> list[int]:
    from cryo_companion.papers.shrec2020.dataset import DATASET_SEED
    from cryo_companion.papers.shrec2020.experiment import plan
    from cryo_companion.papers.shrec2020.layout import is_current, model_dir

    p = plan("paper")
    need = [p.test_model] if method == "tm" else [*p.train_models, p.test_model]
    return [k for k in need if not is_current(model_dir(p.data_root(), k), p.recipe,
                                              DATASET_SEED)]


def _piece_times(root: Path, method: str) -> tuple[float, str] | None:
    d = (_json(root / "results" / "shrec_methods" / f"{method}.json") or {}).get("data") or {}
    try:
        if method == "tm":
            s = float(d["inference_s"]) + 30.0
            return s, f"{s:.0f} s measured (its saved piece: search and selection, + 30 s scoring)"
        tr = d["training"]
        s = float(tr["train_s"]) + float(tr["score_s"]) + sum(float(x) for x in d["inference_s"])
        return s, f"{s:.0f} s measured (its saved piece: training, scoring, inference)"
    except (KeyError, TypeError, ValueError):
        return None


def piece_estimate(method: str) -> Estimator:
    """Make the estimator of one piece's job (module docstring: measured, else planned).

    Parameters
    ----------
    method : str
        ``"tm"``, ``"deepfinder"``, ``"yopo"`` or ``"umc"``.

    Returns
    -------
    Estimator
        ``(root, params) -> Estimate``.
    """
    def estimate(root: Path, params: Mapping[str, Any]) -> Estimate:
        from cryo_companion.papers.shrec2020.experiment import plan

        found = _piece_times(root, method)
        if found is None:
            p = plan("paper")
            work = (float(p.tm_budget_s or 0.0) if method == "tm"
                    else float(p.train[method].budget_s or 0.0))
            s = work + GUESS_SCORING_S[method]
            found = (s, f"{work:.0f} s budget + {GUESS_SCORING_S[method]:.0f} s scoring and "
                        "inference (declared guess)")
        missing = _missing_models(method)
        per, how = _model_s(root)
        total = found[0] + len(missing) * per + STARTUP_S
        models = (f"{len(missing)} model(s) to make ({how})" if missing
                  else "its models in the data cache")
        return Estimate(total, f"{found[1]}; + {models}; + {STARTUP_S:.0f} s start-up")

    return estimate


_PIECE = ("{python}", "-m", "cryo_companion.papers.shrec2020.experiment")
_DESCRIPTIONS = {
    "tm": "TM-T and TM-F on model 9 (rotation cap from the benchmark) -> results/shrec_methods/",
    "deepfinder": "DeepFinder, 2 seeds together, 90 s on model 0, scored on model 9",
    "yopo": "YOPO, 2 seeds together, 90 s on model 0, scored on model 9",
    "umc": "UMC, 2 seeds together, 90 s on model 0, scored on model 9"}

_TESTS = ("tests/test_multislice.py", "tests/test_tiltseries.py", "tests/test_shrec_dataset.py")
_METHOD_TESTS = ("tests/test_template_matching.py", "tests/test_detect_tiling.py",
                 "tests/test_detect_peaks.py", "tests/test_models_shrec.py",
                 "tests/test_shrec_pipelines.py", "tests/test_shrec_train.py")

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
        structures=(), guess_s=120,
        guess_source="the six files take about 100 s on a busy 2-core CPU; on the GPU machine "
                     "the CPU half is faster and the CUDA half small",
        description="detection layer and SHREC networks' tests with CUDA present"),
    command_job(
        "bench-template-matching-cuda",
        ("{python}", "-m", "cryo_companion.cli.main", "bench", "template-matching", "--device",
         "cuda", "--save"),
        priority=80, after=("shrec-methods-cuda-tests",), structures=(), guess_s=60,
        guess_source="3 batch sizes x 64 rotations of a 200 x 512 x 512 volume (a few ms each) "
                     "plus start-up",
        description="template matching ms per rotation on CUDA, the twelve classes projected"),
    *(command_job(
        f"shrec-methods-{m}", (*_PIECE, m, "--device", "{device}"), priority=300 + 10 * i,
        after=("bench-template-matching-cuda",) if m == "tm" else ("shrec-methods-cuda-tests",),
        structures=STRUCTURES, estimator=piece_estimate(m), description=_DESCRIPTIONS[m])
      for i, m in enumerate(PIECE_JOBS)),
    chapter_job("shrec_methods", priority=400,
                after=tuple(f"shrec-methods-{m}" for m in PIECE_JOBS), structures=STRUCTURES,
                guess_s=60, guess_source="it trains nothing at paper scale: reads the four "
                "pieces, assembles the tables and draws the figures (about 20 s at smoke scale "
                "besides the training)",
                description="SHREC 2020: methods and results (assembles the saved pieces)"),
]
