"""SHREC 2020's methods compared on our data set: the plan of each scale, one run per method.

The experiment (Gubins et al. 2020, Sections 3-5, on the data set of :mod:`.dataset`):

1. **Data.** The training models and the test model are made (or found, :func:`~.layout.
   ensure_models`: the data chapter's test model is reused) in the benchmark's layout.
2. **Networks.** Each of DeepFinder, YOPO and UMC trains on the training models with every
   seed of the plan together (:func:`~.train.train_method`: N runs per step), within the plan's
   budget, scored after every segment on (a central crop of) the test model: F1 against
   training time. The final networks are then run on the whole test model and scored in both
   evaluation modes (:mod:`.scoring`).
3. **Template matching.** TM-T and TM-F on the test model (:mod:`.tm`), with the rotation cap
   that fits the plan's budget at the time per rotation measured by ``cryo-companion bench
   template-matching --save`` on the device (or the plan's fixed cap).

Each method's run is a *piece*: a JSON-able record saved as ``results/shrec_methods/METHOD.json``
(paper scale; ``results/smoke/...`` at smoke scale) with provenance, by a paper-scale job
(``python -m cryo_companion.papers.shrec2020.experiment METHOD``) or by the chapter.
:func:`piece` reuses a saved piece made by the same plan and the same package sources, else
runs it. :func:`~.methods_results.assemble` merges the pieces into the data of
``results/shrec_methods.json`` (the paper's tables beside ours, Section 5's findings checked).

The headline numbers (tables, claims) are those of the official script's rules
(``benchmark_script`` mode, how the paper's tables were made); the default mode's are kept
beside them. Nothing of the test model is used in training or to choose a setting.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cryo_companion.dataset import default_data_dir
from cryo_companion.detect.detections import Detections
from cryo_companion.papers.shrec2020 import tm as shrec_tm
from cryo_companion.papers.shrec2020.comparison import (
    METHOD_KEYS,
    mean_f1,
)
from cryo_companion.papers.shrec2020.dataset import DATASET_SEED, ShrecRecipe, recipe, templates_for
from cryo_companion.papers.shrec2020.layout import ensure_models, model_dir
from cryo_companion.papers.shrec2020.metrics import CLASS_ORDER
from cryo_companion.papers.shrec2020.pipelines import detect_with_slices
from cryo_companion.papers.shrec2020.scoring import (
    TestView,
    detections_record,
    evaluation_record,
    pack_slice,
    score,
    test_view,
)
from cryo_companion.papers.shrec2020.train import (
    METHODS,
    SETTINGS,
    TrainSettings,
    deepfinder_min_sizes,
    train_method,
)
from cryo_companion.papers.shrec2020.training_data import read_model_volumes

__all__ = ["HEADLINE_MODE", "PIECES", "PLANS", "Plan", "collect", "ensure_data", "load_piece",
           "main", "piece", "plan", "run_network", "run_template_matching"]

#: The runs of the experiment: the three networks and template matching (TM-T and TM-F).
PIECES: tuple[str, ...] = (*METHODS, "tm")
#: The evaluation mode of the tables and claims: the official script's (the paper's).
HEADLINE_MODE = "benchmark_script"
#: Where the pieces are saved (``results/shrec_methods/METHOD.json``).
PIECE_PREFIX = "shrec_methods"


@dataclass(frozen=True)
class Plan:
    """What the experiment runs at one scale.

    Attributes
    ----------
    scale : str
        ``"paper"`` or ``"smoke"``.
    recipe : ShrecRecipe
        The data set's recipe.
    data_subdir : str
        Folder of the models under ``$CRYO_COMPANION_DATA`` (paper scale: the data chapter's).
    train_models : tuple of int
        Models trained on.
    test_model : int
        The test model (9).
    seeds : tuple of int
        Seeds of every network (trained together, N runs per step).
    train : dict of str to TrainSettings
        Each network's training.
    inference : dict of str to dict
        Each network's post-processing (keyword arguments of its ``detect_*``); DeepFinder's
        size thresholds are added from the training models (:func:`~.train.deepfinder_min_sizes`).
    min_size_fraction : float
        DeepFinder's threshold as a share of a class's median particle size.
    inference_batch : int
        Tiles per forward pass at inference.
    curve_crop_yx : int or None
        Central crop (y, x) the F1-against-time curves are scored on (None: the whole model).
    figure_z : int
        Slice of the test model shown in the figures (the mask's frame).
    tm_budget_s : float or None
        Seconds of correlations for the twelve classes (None: ``tm_max_rotations``).
    tm_max_rotations : int or None
        A fixed cap of rotations per class when there is no budget.
    tm_guess_ms_per_rotation : float
        Time per rotation assumed when the device's benchmark is not recorded (a guess,
        recorded as such).
    tm_n_candidates, tm_n_per_class : int
        Candidates per class (2,000) and particles selected per class (217).
    tm_batch_size : int
        Rotations per FFT batch when no benchmark says better.
    mean_shift_jobs : int or None
        Parallel jobs of DeepFinder's mean shift (-1: every core).
    """

    scale: str
    recipe: ShrecRecipe
    data_subdir: str
    train_models: tuple[int, ...]
    test_model: int
    seeds: tuple[int, ...]
    train: dict[str, TrainSettings]
    inference: dict[str, dict[str, Any]]
    min_size_fraction: float = 0.1
    inference_batch: int = 1
    curve_crop_yx: int | None = None
    figure_z: int = 100
    tm_budget_s: float | None = None
    tm_max_rotations: int | None = None
    tm_guess_ms_per_rotation: float = 10.0
    tm_n_candidates: int = 2000
    tm_n_per_class: int = 217
    tm_batch_size: int = 8
    mean_shift_jobs: int | None = None

    def __post_init__(self) -> None:
        """Refuse a plan that cannot run."""
        if set(self.train) != set(METHODS) or set(self.inference) != set(METHODS):
            raise ValueError(f"train and inference settings are needed for {', '.join(METHODS)}")
        if not self.seeds or not self.train_models or self.test_model in self.train_models:
            raise ValueError("need seeds, training models, and a test model not trained on")
        if not 0 <= self.figure_z < self.recipe.thickness_vox:
            raise ValueError(f"figure_z {self.figure_z} is outside the "
                             f"{self.recipe.thickness_vox} ground-truth slices")

    def data_root(self) -> Path:
        """Return the models' folder, ``$CRYO_COMPANION_DATA/data_subdir``."""
        return default_data_dir() / self.data_subdir

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["recipe"] = self.recipe.to_dict()
        d["train"] = {k: v.to_dict() for k, v in self.train.items()}
        d["train_models"], d["seeds"] = list(self.train_models), list(self.seeds)
        return d

    def method_dict(self, method: str) -> dict[str, Any]:
        """Return the parts of the plan one piece depends on (its fingerprint's input)."""
        keep = {"scale", "recipe", "data_subdir", "train_models", "test_model", "figure_z"}
        if method == "tm":
            keep |= {f.name for f in dataclasses.fields(self) if f.name.startswith("tm_")}
        else:
            keep |= {"seeds", "min_size_fraction", "inference_batch", "curve_crop_yx",
                     "mean_shift_jobs"}
        d = {k: v for k, v in self.to_dict().items() if k in keep}
        if method != "tm":
            d["train"], d["inference"] = self.train[method].to_dict(), self.inference[method]
        return d

    def fingerprint(self, method: str) -> str:
        """Hash of :meth:`method_dict` (16 hexadecimal digits)."""
        text = json.dumps(self.method_dict(method), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _paper_plan() -> Plan:
    return Plan(
        scale="paper", recipe=recipe("paper"), data_subdir="shrec2020_paper",
        train_models=(0,), test_model=9, seeds=(0, 1), train=dict(SETTINGS["paper"]),
        inference={"deepfinder": {"tile": 192, "crop": 25, "bin_factor": 2,
                                  "bandwidth_vox": 5.0},
                   "yopo": {"tile": 88, "threshold": 0.99, "min_distance_vox": 14.0},
                   "umc": {"tile": 128, "crop": 16, "min_size": 10, "min_separation_vox": 5.0}},
        inference_batch=2, curve_crop_yx=256, tm_budget_s=120.0, mean_shift_jobs=-1)


def _smoke_plan() -> Plan:
    r = recipe("smoke", field_vox=64, reconstruction_slices=256)
    area = (r.field_vox / 512) ** 2
    return Plan(
        scale="smoke", recipe=r, data_subdir="shrec2020_methods_smoke", train_models=(0,),
        test_model=9, seeds=(0, 1), train=dict(SETTINGS["smoke"]),
        inference={"deepfinder": {"tile": 48, "crop": 6, "bin_factor": 2, "bandwidth_vox": 5.0},
                   "yopo": {"tile": 64, "threshold": 0.99, "min_distance_vox": 14.0},
                   "umc": {"tile": 32, "crop": 4, "min_size": 10, "min_separation_vox": 5.0}},
        curve_crop_yx=32, figure_z=100, tm_max_rotations=4, tm_n_candidates=round(2000 * area),
        tm_n_per_class=round(sum(r.particles) / 2 / len(CLASS_ORDER)), tm_batch_size=4)


#: The plans: ``"paper"`` (the benchmark's models; training model 0 only of the paper's 0-8
#: and 90 s per network for both seeds together: what one 15-minute GPU window affords with
#: the generation of the two 512³ models it needs on a bare machine, see
#: :mod:`.jobs`) and ``"smoke"`` (64² models of 256 reconstructed slices, tiny networks, six
#: iterations: a check of the pipeline on the CPU, not a result).
PLANS: dict[str, Plan] = {"paper": _paper_plan(), "smoke": _smoke_plan()}


def plan(scale: str, **changes: Any) -> Plan:
    """Return the plan of a scale, with optional changes.

    Parameters
    ----------
    scale : str
        ``"paper"`` or ``"smoke"``.
    **changes : Any
        :class:`Plan` fields to change (``seeds=(0, 1, 2)``, ``train_models=(0, 1, 2, 3)``).

    Returns
    -------
    Plan
    """
    if scale not in PLANS:
        raise ValueError(f"unknown scale {scale!r}; valid: {', '.join(PLANS)}")
    return dataclasses.replace(PLANS[scale], **changes)


def ensure_data(p: Plan, device: torch.device | str, *, progress: bool = False
                ) -> dict[str, Any]:
    """Make the plan's models that are missing (or not current) under :meth:`Plan.data_root`.

    Parameters
    ----------
    p : Plan
        The plan.
    device : torch.device or str
        Where to simulate.
    progress : bool
        Progress bars (on a terminal only).

    Returns
    -------
    dict
        ``models`` (their numbers), ``made`` (those simulated now), ``seconds`` (wall time),
        ``n_particles`` per model.
    """
    from cryo_companion.papers.shrec2020.layout import is_current

    root = p.data_root()
    models = [*p.train_models, p.test_model]
    missing = [k for k in models if not is_current(model_dir(root, k), p.recipe, DATASET_SEED)]
    t0 = time.perf_counter()
    stats = ensure_models(root, models, p.recipe, DATASET_SEED, device,
                          meta={"scale": p.scale}, snr=False, progress=progress)
    return {"models": models, "made": missing, "seconds": time.perf_counter() - t0,
            "n_particles": {str(k): s.get("n_particles") for k, s in zip(models, stats)}}


def _shape3(t: torch.Tensor) -> tuple[int, int, int]:
    z, y, x = (int(n) for n in t.shape)
    return z, y, x


def _view_slices(view: TestView, z: int) -> dict[str, dict[str, Any]]:
    """Pack the class mask and the tomogram (binned by 2, float16) of the view at slice ``z``."""
    tomo = view.tomogram[int(z)].float().numpy()
    h, w = (tomo.shape[0] // 2) * 2, (tomo.shape[1] // 2) * 2
    binned = tomo[:h, :w].reshape(h // 2, 2, w // 2, 2).mean((1, 3))
    return {"truth": pack_slice(view.class_mask[int(z)]), "tomogram_bin2": pack_slice(binned)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _scores(evs: Mapping[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for mode, ev in evs.items():
        out[f"{mode}_f1"] = float(ev.localisation.f1)
        out[f"{mode}_mean_class_f1"] = mean_f1(ev.classification.table4_row())
    return out


def _infer(method: str, model: torch.nn.Module, view: TestView, p: Plan,
           postprocess: Mapping[str, Any], device: torch.device, *, slice_z: int | None,
           progress: bool) -> tuple[Detections, dict[str, np.ndarray], float]:
    _sync(device)
    t0 = time.perf_counter()
    det, slices = detect_with_slices(method, model, view.tomogram.to(device),
                                     postprocess=postprocess, batch_size=p.inference_batch,
                                     slice_z=slice_z, progress=progress)
    _sync(device)
    return det, slices, time.perf_counter() - t0


def run_network(p: Plan, method: str, device: torch.device | str, work: str | Path, *,
                data: Mapping[str, Any] | None = None, progress: bool = False
                ) -> dict[str, Any]:
    """Train one network's seeds, score them as they train and at the end: its piece.

    Parameters
    ----------
    p : Plan
        The plan.
    method : str
        ``deepfinder``, ``yopo`` or ``umc``.
    device : torch.device or str
        Training and inference device.
    work : str or Path
        Folder of the runs (``work/METHOD/seed_S``: checkpoint, ``detector.pt``); must not
        hold this method's checkpoints yet.
    data : mapping or None
        What :func:`ensure_data` returned when the caller made the models (None: it is called
        here).
    progress : bool
        Progress bars (on a terminal only).

    Returns
    -------
    dict
        The piece: ``method``, ``row``, ``plan_fingerprint``, ``plan``, ``data``,
        ``postprocess``, ``training`` (:meth:`~.train.TrainedMethod.record`), ``curve``,
        ``evaluations`` (mode -> one record per seed), ``detections`` (per seed),
        ``inference_s`` (per seed), ``slices`` (seed 0's maps at ``figure_z``), ``device``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown network {method!r}; valid: {', '.join(METHODS)}")
    dev = torch.device(device)
    data = dict(data) if data is not None else ensure_data(p, dev, progress=progress)
    root = p.data_root()
    train = [read_model_volumes(model_dir(root, k)) for k in p.train_models]
    full = test_view(model_dir(root, p.test_model))
    curve_view = full if p.curve_crop_yx is None else test_view(
        model_dir(root, p.test_model), crop_yx=p.curve_crop_yx)
    post = dict(p.inference[method])
    if method == "deepfinder":
        post["min_size"] = deepfinder_min_sizes(train, fraction=p.min_size_fraction,
                                                bin_factor=int(post.get("bin_factor", 2)))
        post["n_jobs"] = p.mean_shift_jobs

    def curve_score(i: int, job: Any) -> dict[str, float | None]:
        det, _, dt = _infer(method, job.model, curve_view, p, post, dev, slice_z=None,
                            progress=False)
        return {**_scores(score(det, curve_view, modes=("default",))), "detections": len(det),
                "inference_s": dt}

    trained = train_method(p.train[method], train, p.seeds, work, dev, score=curve_score,
                           postprocess={k: v for k, v in post.items() if k != "n_jobs"},
                           progress=progress)
    del train
    evaluations: dict[str, list[dict[str, Any]]] = {"default": [], "benchmark_script": []}
    detections, inference_s = [], []
    slices: dict[str, Any] = {}
    for k, job in enumerate(trained.jobs):
        with torch.no_grad():
            det, sl, dt = _infer(method, job.model, full, p, post, dev,
                                 slice_z=p.figure_z if k == 0 else None, progress=progress)
        for mode, ev in score(det, full).items():
            evaluations[mode].append(evaluation_record(ev))
        detections.append(detections_record(det))
        inference_s.append(dt)
        if k == 0:
            slices = {"z": p.figure_z, "seed": p.seeds[0],
                      "maps": {**{name: pack_slice(a) for name, a in sl.items()},
                               **_view_slices(full, p.figure_z)}}
    record = trained.record(every=max(1, trained.segmented.results[0].iterations // 500))
    curve = [{"iteration": pt["iteration"], "train_s": pt["train_s"],
              "train_s_per_run": pt["train_s_per_run"], "score_s": pt["score_s"],
              "scores": pt["scores"]} for pt in trained.segmented.points]
    record.pop("points", None)
    return {"method": method, "row": METHOD_KEYS[method], "plan_fingerprint": p.fingerprint(method),
            "plan": p.method_dict(method), "data": data,
            "postprocess": {k: (v if not isinstance(v, Mapping) else {str(a): b for a, b in
                                                                     v.items()})
                            for k, v in post.items()},
            "training": record, "curve": curve, "curve_view": curve_view.name,
            "evaluations": evaluations, "detections": detections, "inference_s": inference_s,
            "slices": slices, "device": str(dev),
            "detector_files": [str(x) for x in trained.detectors]}


def run_template_matching(p: Plan, device: torch.device | str, *,
                          bench_record: Mapping[str, Any] | None = None,
                          data: Mapping[str, Any] | None = None,
                          progress: bool = False) -> dict[str, Any]:
    """TM-T and TM-F on the test model: their piece.

    Parameters
    ----------
    p : Plan
        The plan.
    device : torch.device or str
        Where the correlations run.
    bench_record : mapping or None
        ``results/bench_template_matching.json`` (the time per rotation on this device kind;
        None: the plan's guess).
    data : mapping or None
        What :func:`ensure_data` returned when the caller made the models (None: it is called
        here).
    progress : bool
        Progress bars (on a terminal only).

    Returns
    -------
    dict
        The piece: ``method`` ``"tm"``, ``plan_fingerprint``, ``plan``, ``data``, ``cap``
        (rule, source, rotations per class before the cap), ``search`` (the record of
        :func:`~.tm.search`: steps, rotations and seconds per class), ``lists`` (``TM-T`` and
        ``TM-F``: evaluations by mode, detections, selection seconds), ``inference_s``.
    """
    dev = torch.device(device)
    data = dict(data) if data is not None else ensure_data(p, dev, progress=progress)
    view = test_view(model_dir(p.data_root(), p.test_model))
    templates = templates_for(p.recipe)
    measured = shrec_tm.measured_ms_per_rotation(dict(bench_record) if bench_record else None,
                                                 dev.type, _shape3(view.tomogram))
    batch = measured[1] if measured else p.tm_batch_size
    base = shrec_tm.TMSettings(voxel_size_A=p.recipe.voxel_size_A,
                               n_candidates=p.tm_n_candidates, batch_size=batch)
    rotations = shrec_tm.crowther_rotations(templates, base)
    if p.tm_budget_s is not None:
        ms, source = (measured[0], measured[2]) if measured else (
            p.tm_guess_ms_per_rotation, f"a guess of {p.tm_guess_ms_per_rotation:g} ms per "
            f"rotation (no {shrec_tm.BENCH_RECORD} record for {dev.type} on this volume)")
        cap = shrec_tm.rotation_cap(p.tm_budget_s, ms, rotations)
        rule = f"budget {p.tm_budget_s:g} s for the twelve classes at {ms:.2f} ms per rotation"
    else:
        cap, source = p.tm_max_rotations, "the plan's fixed cap"
        rule = f"fixed cap of {cap} rotations per class"
    s = dataclasses.replace(base, max_rotations=cap)
    vol = view.tomogram.to(dev)
    found = shrec_tm.search(vol, templates, s, progress=progress)
    t0 = time.perf_counter()
    lists = shrec_tm.tm_lists(found, n_per_class=p.tm_n_per_class)
    select_s = time.perf_counter() - t0
    out_lists = {}
    for name, det in lists.items():
        evs = score(det, view)
        out_lists[name] = {"evaluations": {m: [evaluation_record(e)] for m, e in evs.items()},
                           "detections": [detections_record(det)]}
    return {"method": "tm", "rows": list(lists), "plan_fingerprint": p.fingerprint("tm"),
            "plan": p.method_dict("tm"), "data": data,
            "cap": {"max_rotations": cap, "rule": rule, "source": source,
                    "crowther_rotations": rotations},
            "search": found.record, "lists": out_lists, "select_s": select_s,
            "slices": {"z": p.figure_z, "maps": _view_slices(view, p.figure_z)},
            "inference_s": float(found.record["total_s"]) + select_s, "device": str(dev)}


def load_piece(p: Plan, method: str, *, current: bool = True) -> dict[str, Any] | None:
    """Return a saved piece of this plan (made by the current package sources), else None.

    Parameters
    ----------
    p : Plan
        The plan.
    method : str
        A name of :data:`PIECES`.
    current : bool
        Require the package sources it was made with to be today's (what a job reuses); False:
        any piece of this plan (what the chapter assembles; its provenance says the commit).

    Returns
    -------
    dict or None
        The piece's ``data`` with its ``provenance`` under ``"provenance"``.
    """
    from cryo_companion.runs.results import load_result
    from cryo_companion.runs.sources import package_sha256

    try:
        rec = load_result(f"{PIECE_PREFIX}/{method}", p.scale)
    except (OSError, ValueError):
        return None
    if not rec or rec.get("data", {}).get("plan_fingerprint") != p.fingerprint(method):
        return None
    if current and rec.get("provenance", {}).get("package_sha256") != package_sha256():
        return None
    return {**rec["data"], "provenance": rec["provenance"]}


def piece(p: Plan, method: str, run: Any, *, work: str | Path | None = None,
          reuse: bool = True, progress: bool = False) -> dict[str, Any]:
    """Reuse a method's current saved piece, or run it and save it (with provenance).

    Parameters
    ----------
    p : Plan
        The plan.
    method : str
        A name of :data:`PIECES`.
    run : cryo_companion.runs.runtime.Run
        The run (scale, device, seed) its result is saved under.
    work : str or Path or None
        Folder of the networks' runs (default ``build/shrec_methods/SCALE``; a method's old
        runs there are replaced).
    reuse : bool
        Reuse a current saved piece (:func:`load_piece`).
    progress : bool
        Progress bars (on a terminal only).

    Returns
    -------
    dict
        The piece, with its ``provenance``.
    """
    import shutil

    from cryo_companion._io import repo_root
    from cryo_companion.runs.results import load_result, save_result

    if method not in PIECES:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(PIECES)}")
    if p.scale != run.scale:
        raise ValueError(f"plan of scale {p.scale!r} run at scale {run.scale!r}")
    if reuse:
        found = load_piece(p, method)
        if found is not None:
            return found
    if method == "tm":
        data = run_template_matching(p, run.device, progress=progress,
                                     bench_record=load_result(shrec_tm.BENCH_RECORD))
    else:
        folder = Path(work) if work is not None else repo_root() / "build" / "shrec_methods" \
            / p.scale
        if (folder / method).is_dir():
            shutil.rmtree(folder / method)             # this function's own earlier runs
        data = run_network(p, method, run.device, folder, progress=progress)
        if p.scale == "paper" and method == "deepfinder":
            data["weights"] = _keep_weights(Path(data["detector_files"][0]))
    path = save_result(run, data, name=f"{PIECE_PREFIX}/{method}", seeds=list(p.seeds))
    saved = json.loads(path.read_text())
    return {**saved["data"], "provenance": saved["provenance"]}


def _keep_weights(detector: Path) -> str:
    """Copy DeepFinder's first detector file to ``results/weights/`` (3.6 MB: it comes back)."""
    import shutil

    from cryo_companion._io import atomic_path, repo_root

    dest = repo_root() / "results" / "weights" / "shrec2020_deepfinder_seed0.pt"
    with atomic_path(dest, suffix=".pt") as tmp:
        shutil.copyfile(detector, tmp)
    return dest.relative_to(repo_root()).as_posix()


def collect(p: Plan, run: Any, *, make: bool, work: str | Path | None = None,
            progress: bool = False) -> dict[str, dict[str, Any] | None]:
    """Every piece of the plan: saved ones reused, missing ones run when ``make`` (else None).

    Parameters
    ----------
    p : Plan
        The plan.
    run : cryo_companion.runs.runtime.Run
        The run the pieces are saved under.
    make : bool
        Run the pieces that are missing or not current (smoke scale: the chapter makes them;
        paper scale: the GPU jobs do, and the chapter only reads what they saved for this
        plan, made by whichever package sources their provenance names).
    work : str or Path or None
        Folder of the networks' runs (:func:`piece`).
    progress : bool
        Progress bars (on a terminal only).

    Returns
    -------
    dict
        :data:`PIECES` name -> the piece, or None where it is missing.
    """
    if make:
        return {m: piece(p, m, run, work=work, progress=progress) for m in PIECES}
    return {m: load_piece(p, m, current=False) for m in PIECES}


def _parser() -> Any:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m cryo_companion.papers.shrec2020.experiment",
                                 description="Run one piece of the SHREC 2020 methods' "
                                             "experiment and save it with provenance.")
    ap.add_argument("piece", choices=PIECES, help="a network or tm (TM-T and TM-F)")
    ap.add_argument("--scale", default="paper", choices=sorted(PLANS))
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N, cpu or auto")
    ap.add_argument("--rerun", action="store_true", help="run even if a current piece is saved")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Run one piece from the command line (the paper-scale jobs of :mod:`.jobs`).

    Parameters
    ----------
    argv : sequence of str or None
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success.
    """
    from cryo_companion.runs.runtime import setup

    a = _parser().parse_args(argv)
    run = setup(a.scale, a.device, 0, chapter="shrec_methods", paper_needs_gpu=True)
    got = piece(plan(a.scale), a.piece, run, reuse=not a.rerun, progress=True)
    rows = ([got["row"]] if a.piece != "tm" else list(got["rows"]))
    for row in rows:
        evs = (got["evaluations"] if a.piece != "tm"
               else got["lists"][row]["evaluations"])[HEADLINE_MODE]
        f1 = [round(float(e["localisation"]["f1"]), 4) for e in evs]
        print(f"{row}: localisation F1 {f1} ({HEADLINE_MODE} mode)")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
