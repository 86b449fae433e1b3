"""DSM-Net's experiments, recorded run by run: the data sets, Tables 2-4 and the unseen GroEL.

- :func:`ensure_data`: data sets A, B (dose calibrated once per set) and C, cached in the data
  folder, their summary (measured SNR, calibrated dose, counts, timing) merged into
  ``results/dsmnet_data.json``;
- :func:`train_recorded`: the runs of :data:`~cryo_companion.papers.dsmnet.training.RUNS`, one
  row's seeds per group (at most ``group_size`` per step); after every group each finished run
  is saved at once as ``results/dsmnet_runs/NAME.json`` (with provenance), and the weights of
  the runs named in ``weights`` as ``results/weights/dsmnet_NAME.pt``;
- :func:`unseen_experiment`: the unseen GroEL (3.5) — the 21-class DSM-Net trained (and
  recorded as a run) on A without GroEL, then :func:`analyze_unseen` on all of A: k-means of
  the 1,024 hidden units, the enriched cluster, t-SNE, the recovered GroEL against the truth by
  FSC, in ``results/dsmnet_unseen.json``.

A run whose record holds the same run, the same settings and the same package sources is not
trained again, so a job cut off after some groups continues with the others in a later window;
the unseen analysis likewise. At smoke scale everything goes to ``results/smoke/``.

Command line (the GPU jobs of :mod:`cryo_companion.papers.dsmnet.jobs`)::

    python -m cryo_companion.papers.dsmnet.experiments data --datasets A B C
    python -m cryo_companion.papers.dsmnet.experiments train table2/dsmnet --seeds 0
    python -m cryo_companion.papers.dsmnet.experiments train table2/seg table2/cls+seg@0,1
    python -m cryo_companion.papers.dsmnet.experiments unseen
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cryo_companion.learn.predict import predict
from cryo_companion.metrics import target_masks_from_scores
from cryo_companion.models.dsmnet import DSMNet, load_weights, save_weights
from cryo_companion.papers.dsmnet.datasets import DATASETS, TARGET_SNR, ensure_dataset
from cryo_companion.papers.dsmnet.evaluate import PREPROCESSING, prepare
from cryo_companion.papers.dsmnet.train import (
    SeedRun,
    Settings,
    TrainedRun,
    run_record,
    split_of,
    train_runs,
)
from cryo_companion.papers.dsmnet.training import RUNS as ROWS
from cryo_companion.papers.dsmnet.training import RunSpec, run_spec
from cryo_companion.papers.dsmnet.unseen import (
    GROEL,
    K,
    discover,
    groel_label,
    recovered_structure,
    structure_fsc,
)
from cryo_companion.runs import records
from cryo_companion.runs.results import load_result, results_dir, save_result
from cryo_companion.runs.runtime import Run, setup
from cryo_companion.runs.sources import package_sha256
from cryo_companion.simulate.targets import align_by_poses

__all__ = ["DATA_RESULT", "RUNS", "UNSEEN_RESULT", "UNSEEN_ROW", "WEIGHTS", "analyze_unseen",
           "collect_records", "current_record", "dataset_summary", "ensure_data",
           "fig2_examples", "load_records", "main", "parse_rows", "scale_note", "seed_runs",
           "table_runs", "train_recorded", "unseen_experiment", "weights_path"]

#: Sub-folder of ``results/`` with one record per run.
RUNS = "dsmnet_runs"
#: The data sets' summary, ``results/dsmnet_data.json``.
DATA_RESULT = "dsmnet_data"
#: The unseen-structure analysis, ``results/dsmnet_unseen.json``.
UNSEEN_RESULT = "dsmnet_unseen"
#: The row of the unseen-structure experiment.
UNSEEN_ROW = "unseen/dsmnet_21"
#: Runs whose weights are kept: DSM-Net of Table 2, seed 0 (``cryo-companion dsmnet``, Fig. 2).
WEIGHTS = ("table2_dsmnet_seed0",)


def seed_runs(rows: Iterable[RunSpec | str] | None = None, seeds: Sequence[int] | None = None,
              *, max_seeds: int | None = None) -> list[SeedRun]:
    """Return the runs of some rows: each row's seeds, or the seeds given.

    Parameters
    ----------
    rows : iterable of RunSpec or str or None
        Rows (or their names, ``"table3/B/dsmnet"``); None: every row of the tables
        (:data:`~cryo_companion.papers.dsmnet.training.RUNS`).
    seeds : sequence of int or None
        Seeds of every row instead of its own.
    max_seeds : int or None
        Keep at most this many of each row's seeds (a reduced run).

    Returns
    -------
    list of SeedRun
        In the rows' order, seed by seed.
    """
    specs = [run_spec(r) if isinstance(r, str) else r for r in (ROWS if rows is None else rows)]
    out = []
    for s in specs:
        mine = list(seeds) if seeds is not None else list(s.seeds)
        out += [SeedRun(s, int(k)) for k in mine[:max_seeds]]
    return out


def table_runs(max_seeds: int | None = None) -> list[SeedRun]:
    """Return the runs of Tables 2-4 (every row but the unseen-structure run's).

    Parameters
    ----------
    max_seeds : int or None
        Keep at most this many of each row's seeds (a reduced run; None: the row's own).

    Returns
    -------
    list of SeedRun
    """
    return seed_runs([r for r in ROWS if r.table != "unseen"], max_seeds=max_seeds)


def parse_rows(rows: Sequence[str], seeds: Sequence[int] | None = None) -> list[SeedRun]:
    """Return the runs of rows named on the command line, ``ROW`` or ``ROW@SEED,SEED``.

    Parameters
    ----------
    rows : sequence of str
        Rows of Tables 2-4 (:attr:`~cryo_companion.papers.dsmnet.training.RunSpec.name`),
        each optionally with its seeds after ``@``.
    seeds : sequence of int or None
        Seeds of the rows named without their own (None: each row's own).

    Returns
    -------
    list of SeedRun

    Raises
    ------
    ValueError
        An unknown row, the unseen-structure row (its own step) or a malformed seed list.
    """
    valid = [r.name for r in ROWS if r.table != "unseen"]
    out: list[SeedRun] = []
    for item in rows:
        name, _, mine = item.partition("@")
        if name not in valid:
            raise ValueError(f"unknown row {name!r}; valid: {', '.join(valid)}")
        try:
            own = [int(x) for x in mine.split(",")] if mine else None
        except ValueError:
            raise ValueError(f"{item!r}: seeds after @ are integers separated by commas "
                             "(table2/dsmnet@1,2)") from None
        out += seed_runs([name], own if own is not None else seeds)
    return out


def weights_path(name: str, scale: str) -> Path:
    """Return where the weights of run ``name`` are kept: ``results/weights/dsmnet_NAME.pt``.

    Parameters
    ----------
    name : str
        A run's name (:attr:`SeedRun.name`).
    scale : str
        ``"paper"`` or ``"smoke"`` (``results/smoke/weights/``).

    Returns
    -------
    pathlib.Path
    """
    return results_dir(scale) / "weights" / f"dsmnet_{name}.pt"


def dataset_summary(name: str, data: Any, cal: Any | None) -> dict[str, Any]:
    """Return what the book shows of a data set: its measured SNR, dose, counts and sizes.

    Parameters
    ----------
    name : str
        ``"A"``, ``"B"`` or ``"C"``.
    data : CrowdedSubtomograms
        The data set.
    cal : DoseCalibration or None
        Its dose calibration (None for C: its dose is the committed one).

    Returns
    -------
    dict
        ``name``, ``target_snr`` (None for C), ``snr`` (the measured summary), ``dose_e_A2``,
        ``calibration``, ``n``, ``counts``, ``target_fraction`` (mean share of a box in the
        target), ``tilts``, ``complexes_placed``, ``extractable``, ``tomograms``,
        ``timing_s``, ``config_hash``.
    """
    m = data.meta
    assert data.masks is not None
    dose = cal.dose_e_A2 if cal is not None else None
    if cal is None:
        from cryo_companion.papers.dsmnet.datasets import DATASET_C_CONFIG

        dose = float(DATASET_C_CONFIG["imaging"]["total_dose_e_A2"])
    return {"name": name, "target_snr": TARGET_SNR.get(name), "snr": m.get("snr"),
            "dose_e_A2": dose, "calibration": None if cal is None else cal.measurements,
            "n": len(data), "counts": data.counts, "target_fraction": float(data.masks.mean()),
            "tilts": m.get("tilts"), "complexes_placed": m.get("complexes_placed"),
            "extractable": m.get("extractable"), "tomograms": m.get("tomograms"),
            "timing_s": m.get("timing_s"), "config_hash": m.get("config_hash")}


def ensure_data(names: Iterable[str], run: Run, *, folder: str | Path | None = None,
                progress: bool = True) -> dict[str, Any]:
    """Make (or read from the cache) data sets and merge their summaries into the results.

    Parameters
    ----------
    names : iterable of str
        Data sets (``"A"``, ``"B"``, ``"C"``).
    run : Run
        Scale, device and provenance of the call.
    folder : str or Path or None
        Data cache root (None: :func:`~cryo_companion.dataset.default_data_dir`).
    progress : bool
        Progress bars on a terminal.

    Returns
    -------
    dict
        ``name -> data set`` (:class:`~cryo_companion.simulate.crowded.CrowdedSubtomograms`).
    """
    out = {}
    old = load_result(DATA_RESULT, run.scale) or {}
    summary = dict(old.get("data") or {})
    for n in names:
        t0 = time.perf_counter()
        data, cal = ensure_dataset(n, run.scale, folder, run.device, progress=progress)
        s = dataset_summary(n, data, cal)
        s["ensure_wall_s"] = round(time.perf_counter() - t0, 2)   # generated or read
        summary[n] = s
        out[n] = data
    save_result(run, summary, name=DATA_RESULT)
    return out


def load_records(scale: str = "paper") -> dict[str, dict[str, Any]]:
    """Read every run record of ``scale`` (``results/dsmnet_runs/*.json``).

    Parameters
    ----------
    scale : str
        ``"paper"`` or ``"smoke"``.

    Returns
    -------
    dict
        ``name -> {"data": ..., "provenance": ...}``, sorted by name.
    """
    return records.load_records(RUNS, scale)


def current_record(run: SeedRun, settings: Settings, scale: str,
                   package: str | None = None) -> dict[str, Any] | None:
    """Return run ``run``'s record if it was made with these settings and package sources.

    Parameters
    ----------
    run : SeedRun
        The run.
    settings : Settings
        Its settings.
    scale : str
        ``"paper"`` or ``"smoke"``.
    package : str or None
        The package hash to match (None: this tree's).

    Returns
    -------
    dict or None
    """
    return records.current_record(RUNS, run.name, run.to_dict(), settings.to_dict(),
                                  scale, package)


def _info(name: str, data: Any) -> dict[str, Any]:
    cal = (data.meta.get("calibration") or {})
    return {"name": name, "target_snr": TARGET_SNR.get(name),
            "snr_median": (data.meta.get("snr") or {}).get("median"),
            "dose_e_A2": cal.get("dose_e_A2"), "n": len(data),
            "config_hash": data.meta.get("config_hash")}


def _save_run(tr: TrainedRun, run: Run, settings: Settings, data: Any,
              weights: Sequence[str]) -> dict[str, Any]:
    rec = run_record(tr, settings, _info(tr.run.spec.dataset, data))
    if tr.run.name in weights:
        assert isinstance(tr.model, DSMNet)
        path = weights_path(tr.run.name, run.scale)
        save_weights(tr.model, path, preprocessing={
            **PREPROCESSING, "box": int(data.volumes.shape[1]),
            "voxel_size_A": float(data.voxel_size_A),
            "contrast": str(data.meta.get("contrast", "dark"))},
            training={**tr.run.to_dict(), "settings": settings.to_dict(),
                      "epochs_trained": rec["epochs_trained"], "best_epoch": rec["best_epoch"],
                      "dataset": rec["dataset"], "test": rec["test"]})
        rec["weights"] = path.name
    save_result(run, rec, name=f"{RUNS}/{tr.run.name}", seeds=[tr.run.seed])
    return load_result(f"{RUNS}/{tr.run.name}", run.scale) or {}


def _groups(runs: Sequence[SeedRun], group_size: int | None) -> list[list[SeedRun]]:
    rows: dict[str, list[SeedRun]] = {}
    for r in runs:
        rows.setdefault(r.spec.name, []).append(r)
    size = group_size or max(len(v) for v in rows.values())
    return [g[i:i + size] for g in rows.values() for i in range(0, len(g), size)]


def train_recorded(runs: Sequence[SeedRun], run: Run, settings: Settings | None = None, *,
                   folder: str | Path | None = None, group_size: int | None = None,
                   strategy: str = "auto", weights: Sequence[str] = WEIGHTS,
                   checkpoints: str | Path | None = None, progress: bool = True,
                   keep_models: bool = False
                   ) -> tuple[dict[str, dict[str, Any]], dict[str, nn.Module]]:
    """Train the runs not yet recorded, row by row, saving each finished run at once.

    Parameters
    ----------
    runs : sequence of SeedRun
        The runs (any rows and data sets).
    run : Run
        Scale, device and provenance.
    settings : Settings or None
        The recipe (None: :meth:`Settings.for_scale` of the run's scale).
    folder : str or Path or None
        Data cache root.
    group_size : int or None
        Runs per step at most (None: all seeds of a row).
    strategy : str
        Stepper (``"auto"``, ``"loop"``, ``"vmap"``).
    weights : sequence of str
        Names of the runs whose weights are kept (:func:`weights_path`).
    checkpoints : str or Path or None
        Folder of the runs' checkpoint folders (None: none).
    progress : bool
        Progress bars on a terminal.
    keep_models : bool
        Also return the networks trained in this call (for an analysis in the same process).

    Returns
    -------
    tuple
        ``name -> record`` (``{"data", "provenance"}``) of every run of ``runs``, and
        ``name -> network`` of those trained now (empty unless ``keep_models``).
    """
    settings = settings or Settings.for_scale(run.scale)
    package = package_sha256()
    records: dict[str, dict[str, Any]] = {}
    models: dict[str, nn.Module] = {}
    pending = []
    for r in runs:
        rec = current_record(r, settings, run.scale, package)
        if rec is None:
            pending.append(r)
        else:
            records[r.name] = rec
    for name in [d for d in DATASETS if any(r.spec.dataset == d for r in pending)]:
        data = ensure_data([name], run, folder=folder, progress=progress)[name]
        for group in _groups([r for r in pending if r.spec.dataset == name], group_size):
            done = train_runs(group, data, settings, run.device, root=checkpoints,
                              strategy=strategy, progress=progress)
            for tr in done:
                records[tr.run.name] = _save_run(tr, run, settings, data, weights)
                if keep_models:
                    models[tr.run.name] = tr.model
    return {r.name: records[r.name] for r in runs if r.name in records}, models


def collect_records(runs: Sequence[SeedRun], settings: Settings, scale: str
                    ) -> dict[str, dict[str, Any]]:
    """Return the current records of ``runs`` (missing ones left out), in their order.

    Parameters
    ----------
    runs : sequence of SeedRun
        The runs shown.
    settings : Settings
        Their settings.
    scale : str
        ``"paper"`` or ``"smoke"``.

    Returns
    -------
    dict
        ``name -> record`` of the runs made with these settings and this tree's sources.
    """
    package = package_sha256()
    out = {}
    for r in runs:
        rec = current_record(r, settings, scale, package)
        if rec is not None:
            out[r.name] = rec
    return out


def _slices(v: torch.Tensor) -> dict[str, list[list[float]]]:
    c = v.shape[0] // 2
    return {"xy": v[c].tolist(), "xz": v[:, c].tolist(), "yz": v[:, :, c].tolist()}


@torch.no_grad()
def analyze_unseen(model: nn.Module, data: Any, *, seed: int = 0, k: int = K,
                   chunk: int = 64, embed: bool = True) -> dict[str, Any]:
    """Analyse the unseen structure (3.5) on all of data set A (the model never saw GroEL).

    Parameters
    ----------
    model : torch.nn.Module
        The 21-class DSM-Net trained without GroEL.
    data : CrowdedSubtomograms
        Data set A (all of it: training, validation and test boxes, GroEL included).
    seed : int
        Seed of k-means and t-SNE.
    k : int
        Clusters of k-means (the paper's 22).
    chunk : int
        Subtomograms per forward pass.
    embed : bool
        Compute the t-SNE map.

    Returns
    -------
    dict
        ``labels`` (the set's classes, GroEL included), ``groel`` (its label),
        ``discovery`` (:func:`~cryo_companion.papers.dsmnet.unseen.discover`: clusters, the
        enriched cluster with its purity and recall, t-SNE), ``groel_predicted`` (how the 21
        classes the network knows take the GroEL boxes: ``{class: count}``), ``fsc`` (the
        pose-aligned average of the recovery outputs of the GroEL boxes against that of their
        true densities, :func:`~cryo_companion.papers.dsmnet.unseen.structure_fsc`),
        ``reference_fsc`` (the same for the plain average of the GroEL inputs aligned by the
        true poses, mass positive: what an ideal unsupervised averaging recovers from them),
        ``slices`` (central slices of the recovered, true and input averages) and
        ``example`` (one GroEL box: input, predicted mask, true and recovered density slices).
    """
    g = groel_label(data.class_names)
    lab = np.asarray(data.labels)
    sel = np.flatnonzero(lab == g)
    if sel.size == 0:
        raise ValueError(f"data set has no {GROEL} subtomogram to analyse")
    cols = prepare(data)
    is_g = torch.as_tensor(lab == g)

    def reduce(out: Any, sl: slice) -> dict[str, torch.Tensor]:
        keep = is_g[sl].to(out["features"].device)
        return {"features": out["features"].float(), "pred": out["class_logits"].argmax(1),
                "recovery": out["recovery"][keep].float(),
                "masks": target_masks_from_scores(out["segmentation"][keep])}

    got = predict(model, cols["x"], batch_size=chunk, reduce=reduce)
    found = discover(got["features"], lab, g, seed, k=min(k, len(lab)), embed=embed)
    names = list(getattr(model, "class_names", ()))
    pred = got["pred"][torch.as_tensor(sel)].tolist()
    counts: dict[str, int] = {}
    for p in pred:
        key = names[p] if p < len(names) else str(p)
        counts[key] = counts.get(key, 0) + 1
    truth = cols["density"][torch.as_tensor(sel)]
    eul, off = data.euler_zyz_deg[sel], data.offset_xyz_vox[sel]
    rec_avg, true_avg = recovered_structure(got["recovery"], truth, eul, off)
    inputs = -cols["x"][torch.as_tensor(sel)] if data.meta.get("contrast", "dark") == "dark" \
        else cols["x"][torch.as_tensor(sel)]
    in_avg = align_by_poses(inputs, eul, off).mean(0)
    i0 = int(sel[0])
    c = data.volumes.shape[1] // 2
    example = {"input": cols["x"][i0, c].tolist(), "mask": got["masks"][0, c].int().tolist(),
               "truth": cols["density"][i0, c].tolist(), "recovery": got["recovery"][0, c].tolist(),
               "index": i0}
    return {"n": int(len(lab)), "labels": lab.tolist(), "groel": g, "groel_name": GROEL,
            "n_groel": int(sel.size), "discovery": found,
            "groel_predicted": dict(sorted(counts.items(), key=lambda kv: -kv[1])),
            "fsc": structure_fsc(rec_avg, true_avg, data.voxel_size_A),
            "reference_fsc": structure_fsc(in_avg, true_avg, data.voxel_size_A),
            "slices": {"recovered": _slices(rec_avg), "true": _slices(true_avg),
                       "input_average": _slices(in_avg)},
            "example": example, "voxel_size_A": float(data.voxel_size_A)}


def _unseen_current(rec: Mapping[str, Any] | None, trained: Mapping[str, Any] | None,
                    package: str) -> bool:
    if not rec or not trained:
        return False
    d = rec.get("data") or {}
    return ((rec.get("provenance") or {}).get("package_sha256") == package
            and d.get("run") == (trained.get("data") or {}).get("run")
            and d.get("settings") == (trained.get("data") or {}).get("settings"))


def unseen_experiment(run: Run, settings: Settings | None = None, *,
                      folder: str | Path | None = None, progress: bool = True,
                      seed: int | None = None) -> dict[str, Any]:
    """Train the 21-class DSM-Net without GroEL (a recorded run), then analyse all of A.

    A current analysis (same run, settings and package sources) is returned as it is; without
    one, the run is trained (again, if only its record survived: its weights are not kept).

    Parameters
    ----------
    run : Run
        Scale, device and provenance.
    settings : Settings or None
        The recipe (None: the scale's).
    folder : str or Path or None
        Data cache root.
    progress : bool
        Progress bars on a terminal.
    seed : int or None
        The run's seed (None: the row's first).

    Returns
    -------
    dict
        The record of ``results/dsmnet_unseen.json`` (``{"data", "provenance"}``); its data:
        :func:`analyze_unseen`, the run's name, record and test scores.
    """
    settings = settings or Settings.for_scale(run.scale)
    spec = run_spec(UNSEEN_ROW)
    sr = SeedRun(spec, spec.seeds[0] if seed is None else int(seed))
    package = package_sha256()
    old = load_result(UNSEEN_RESULT, run.scale)
    if _unseen_current(old, current_record(sr, settings, run.scale, package), package):
        assert old is not None
        return old
    data = ensure_data(["A"], run, folder=folder, progress=progress)["A"]
    model: nn.Module | None = None
    if current_record(sr, settings, run.scale, package) is not None:
        scratch = _scratch_weights(sr, run.scale)
        if scratch.is_file():
            model, _ = load_weights(scratch, map_location=run.device)
    if model is None:
        done = train_runs([sr], data, settings, run.device, progress=progress)
        _save_run(done[0], run, settings, data, weights=())
        trained = done[0].model
        assert isinstance(trained, DSMNet)
        save_weights(trained, _scratch_weights(sr, run.scale))
        model = trained
    rec = load_result(f"{RUNS}/{sr.name}", run.scale) or {}
    res = analyze_unseen(model, data, seed=run.seed, chunk=settings.batch_size)
    res.update(run=(rec.get("data") or {}).get("run"), settings=settings.to_dict(),
               run_name=sr.name, test=(rec.get("data") or {}).get("test"),
               test_held_out=(rec.get("data") or {}).get("test_held_out"))
    save_result(run, res, name=UNSEEN_RESULT, seeds=[sr.seed])
    return load_result(UNSEEN_RESULT, run.scale) or {}


def _scratch_weights(sr: SeedRun, scale: str) -> Path:
    """Weights of the unseen run kept in ``build/`` (not results/: never packed or committed)."""
    from cryo_companion._io import repo_root

    return repo_root() / "build" / "dsmnet" / scale / f"{sr.name}.pt"


def fig2_examples(data: Any, weights: str | Path, settings: Settings,
                  device: torch.device | str = "cpu", k: int = 4
                  ) -> dict[str, Any] | None:
    """Pick test subtomograms of distinct classes and run DSM-Net on them (the paper's Fig. 2).

    Parameters
    ----------
    data : CrowdedSubtomograms
        Data set A.
    weights : str or Path
        DSM-Net weights (:func:`weights_path`); missing: None is returned.
    settings : Settings
        The split seed (the weights' test split).
    device : torch.device or str
        Where to predict.
    k : int
        Subtomograms: the first test box of each of the first ``k`` classes in it.

    Returns
    -------
    dict or None
        ``volumes`` (standardised inputs), ``truth`` (recovery targets), ``masks``
        (predicted), ``recovery`` (predicted), each `(k, D, D, D)`, ``titles`` (true class,
        and the predicted one where it differs); None without the weights.
    """
    from cryo_companion.papers.dsmnet.apply import apply_network, check_inputs

    if not Path(weights).is_file():
        return None
    model, meta = load_weights(weights, map_location=device)
    test = split_of(run_spec("table2/dsmnet"), data.labels, data.class_names, settings)["test"]
    first: dict[int, int] = {}
    for i in test.tolist():
        first.setdefault(int(data.labels[i]), int(i))
    idx = [first[c] for c in sorted(first)][:k]
    invert = check_inputs(model, meta, (len(idx), *data.volumes.shape[1:]), data.voxel_size_A,
                          str(data.meta.get("contrast", "dark")))
    res = apply_network(model, data.volumes[idx], invert=invert, progress=False)
    cols = prepare(data, idx)
    titles = []
    for j, i in enumerate(idx):
        true = data.class_names[int(data.labels[i])]
        t = true
        if "class_index" in res:
            p = model.class_names[int(res["class_index"][j])]
            t = true if p == true else f"{true} (as {p})"
        titles.append(t)
    return {"volumes": cols["x"].numpy(), "truth": cols["density"].numpy(),
            "masks": res["masks"].numpy(), "recovery": res["recovery"].numpy(), "titles": titles}


def scale_note(scale: str, settings: Settings, n_seeds: int) -> str:
    """Say what the numbers of a chapter run are: the paper's experiment or a pipeline check.

    Parameters
    ----------
    scale : str
        ``"paper"`` or ``"smoke"``.
    settings : Settings
        The training settings of the run.
    n_seeds : int
        Seeds of a row with several (the paper's: 3).

    Returns
    -------
    str
        One Markdown paragraph.
    """
    if scale == "smoke":
        return ("**Smoke scale: every number on this page is a pipeline check**, not a result: "
                "data sets A and B of one 80 × 128 × 128 tomogram (about 50 subtomograms), C of "
                f"12, DSM-Net's residual widths {', '.join(map(str, settings.widths))} instead "
                f"of 32, 64, 128 and {settings.fc_width} hidden units instead of 1,024, "
                f"{settings.max_epochs} epochs of {settings.max_iters_per_epoch} batches of "
                f"{settings.batch_size}, {n_seeds} seed(s) per row.")
    reduced = [] if n_seeds >= 3 else [f"{n_seeds} seed(s) per row instead of 3"]
    if settings != Settings.for_scale("paper"):
        reduced.append("training settings other than the paper's (see below)")
    if reduced:
        return "**A reduced paper-scale run**: " + "; ".join(reduced) + "."
    return ("Paper scale: the paper's data-set sizes, networks and recipe; three seeds for "
            "every row of Table 2 and for DSM-Net in Table 3, one for the other rows.")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cryo_companion.papers.dsmnet.experiments",
                                description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--scale", default="paper", choices=["paper", "smoke"])
    p.add_argument("--device", default="cuda", help="cuda, cuda:N, cpu or auto")
    p.add_argument("--group-size", type=int, default=None, help="runs per step at most")
    p.add_argument("--strategy", default="auto", choices=["auto", "loop", "vmap"])
    sub = p.add_subparsers(dest="what", required=True)
    d = sub.add_parser("data", help="data sets A, B, C -> results/dsmnet_data.json")
    d.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    t = sub.add_parser("train", help="rows of Tables 2-4 (each row's seeds)")
    t.add_argument("rows", nargs="+", metavar="ROW[@SEEDS]",
                   help="rows, e.g. table2/dsmnet table3/B/seg table4/cls+rec_1:1, each with "
                        "its own seeds after @ (table2/dsmnet@1,2)")
    t.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="seeds of every row without its own (default: each row's own)")
    sub.add_parser("unseen", help="the unseen GroEL (3.5) -> results/dsmnet_unseen.json")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run one experiment step from the command line (see the module docstring).

    Parameters
    ----------
    argv : sequence of str or None
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success.
    """
    p = _parser()
    a = p.parse_args(argv)
    if a.what == "train":
        try:
            runs = parse_rows(a.rows, a.seeds)
        except ValueError as err:
            p.error(str(err))
    run = setup(a.scale, a.device, 0, chapter="dsmnet", paper_needs_gpu=True)
    if a.what == "data":
        for n, data in ensure_data(a.datasets, run).items():
            snr = (data.meta.get("snr") or {}).get("median")
            print(f"data set {n}: {len(data)} subtomograms, SNR {snr:.3g} "
                  f"(target {TARGET_SNR.get(n, 'none: measured')})")
        return 0
    if a.what == "unseen":
        d = unseen_experiment(run)["data"]
        e = d["discovery"]["enriched"]
        r = d["fsc"]["resolution"]
        print(f"unseen GroEL: cluster {e['cluster']} purity {e['purity']:.3f} recall "
              f"{e['recall']:.3f}; FSC 0.5 at {r['fsc_0_5']['resolution_nm']:.2f} nm, 0.143 at "
              f"{r['fsc_0_143']['resolution_nm']:.2f} nm")
        return 0
    recs, _ = train_recorded(runs, run, group_size=a.group_size,
                             strategy=a.strategy,
                             checkpoints=Path("build") / "dsmnet_runs" / a.scale)
    for name, rec in recs.items():
        t = rec["data"]["test"]
        print(f"{name}: " + ", ".join(f"{k} {t[k]:.4f}" for k in (
            "object_accuracy", "pixel_accuracy", "miou") if k in t)
            + f", {rec['data']['epochs_trained']} epochs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
