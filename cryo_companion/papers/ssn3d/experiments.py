"""SSN3D's experiments, recorded run by run: the data sets, Tables 2 and 3 and the Xu baseline.

- :func:`ensure_data`: data sets A, B, C (dose calibrated once per set, cached in the data
  folder), their summary (measured SNR, calibrated dose, counts, timing) merged into
  ``results/ssn3d_data.json``;
- :func:`train_specs`: runs of :mod:`cryo_companion.papers.ssn3d.train`, grouped by network,
  data set and epoch length, ``group_size`` runs per step; after every group each finished run
  is saved at once as ``results/ssn3d_runs/NAME.json`` (with provenance), and the weights of the
  runs named in ``weights`` as ``results/weights/ssn3d_NAME.pt``;
- :func:`run_baseline`: the Xu & Alber 2013 segmentation of a data set's test split,
  ``results/ssn3d_runs/xu_A.json``.

A run whose record holds the same run, the same settings and the same package sources is not
trained again, so a job cut off after some groups continues with the others in a later window.
At smoke scale everything goes to ``results/smoke/``.

Command line (the GPU jobs of :mod:`cryo_companion.papers.ssn3d.jobs`)::

    python -m cryo_companion.papers.ssn3d.experiments data --datasets A B C
    python -m cryo_companion.papers.ssn3d.experiments table2 --variant ed --dataset A --seeds 0 1 2
    python -m cryo_companion.papers.ssn3d.experiments table3 --classes 1A1S 1BXR --seeds 0
    python -m cryo_companion.papers.ssn3d.experiments xu --dataset A
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cryo_companion.metrics import two_class_scores
from cryo_companion.papers.ssn3d.datasets import DATASETS, TARGET_SNR, ensure_dataset
from cryo_companion.papers.ssn3d.train import (
    RunSpec,
    Settings,
    held_out_ids,
    iters_per_epoch,
    run_record,
    split_of,
    train_runs,
)
from cryo_companion.runs import records
from cryo_companion.runs.results import load_result, results_dir, save_result
from cryo_companion.runs.runtime import Run, setup
from cryo_companion.runs.sources import package_sha256
from cryo_companion.segment.network import save_weights
from cryo_companion.segment.target_region import TargetSegmentation, segment_targets
from cryo_companion.simulate.crowded import CrowdedSubtomograms, DoseCalibration

__all__ = ["DATA_RESULT", "RUNS", "TABLE2_ROWS", "WEIGHTS", "collect_records", "current_record",
           "dataset_summary", "ensure_data", "fig5_examples", "first_of_each_class",
           "load_records", "main",
           "run_baseline", "scale_note", "table2_specs", "table3_classes", "table3_specs",
           "train_specs", "weights_path"]

#: Table 2's network rows (variant, data set), in the paper's order.
TABLE2_ROWS: tuple[tuple[str, str], ...] = (("v1", "A"), ("v2", "A"), ("ed", "A"), ("ed", "B"),
                                            ("ed", "C"))
#: Sub-folder of ``results/`` with one record per run.
RUNS = "ssn3d_runs"
#: The data sets' summary, ``results/ssn3d_data.json``.
DATA_RESULT = "ssn3d_data"
#: Runs whose weights are kept (SSN3D-ED, seed 0, at each SNR): ``cryo-companion segment``.
WEIGHTS = ("table2_ed_A_seed0", "table2_ed_B_seed0", "table2_ed_C_seed0")


def table2_specs(seeds: Iterable[int], rows: Iterable[tuple[str, str]] = TABLE2_ROWS
                 ) -> list[RunSpec]:
    """Return the runs of Table 2's network rows.

    Parameters
    ----------
    seeds : iterable of int
        Seeds of every row.
    rows : iterable of (str, str)
        ``(variant, data set)`` rows (default all five).

    Returns
    -------
    list of RunSpec
    """
    seeds = list(seeds)
    return [RunSpec("table2", v, d, s) for v, d in rows for s in seeds]


def table3_specs(seeds: Iterable[int], classes: Iterable[str] | None = None) -> list[RunSpec]:
    """Return the leave-one-out runs of Table 3 (SSN3D-ED on data set A).

    Parameters
    ----------
    seeds : iterable of int
        Seeds of every held-out class.
    classes : iterable of str or None
        Held-out classes as Table 3 names them (default all 22).

    Returns
    -------
    list of RunSpec
    """
    seeds = list(seeds)
    return [RunSpec("table3", "ed", "A", s, held_out=c) for c in (classes or held_out_ids())
            for s in seeds]


def weights_path(name: str, scale: str) -> Path:
    """Return where the weights of run ``name`` are kept: ``results/weights/ssn3d_NAME.pt``.

    Parameters
    ----------
    name : str
        A run's name (:attr:`RunSpec.name`).
    scale : str
        ``"paper"`` or ``"smoke"`` (``results/smoke/weights/``).

    Returns
    -------
    pathlib.Path
    """
    return results_dir(scale) / "weights" / f"ssn3d_{name}.pt"


def dataset_summary(name: str, data: CrowdedSubtomograms, cal: DoseCalibration
                    ) -> dict[str, Any]:
    """Return what the book shows of a data set: its measured SNR, calibrated dose and counts.

    Parameters
    ----------
    name : str
        ``"A"``, ``"B"`` or ``"C"``.
    data : CrowdedSubtomograms
        The data set.
    cal : DoseCalibration
        Its dose calibration.

    Returns
    -------
    dict
        ``name``, ``target_snr``, ``snr`` (the measured summary), ``dose_e_A2``,
        ``calibration`` (every measurement), ``n``, ``counts``, ``complexes_placed``,
        ``extractable``, ``target_fraction`` (mean share of a box in the target),
        ``timing_s``, ``config_hash``.
    """
    m = data.meta
    assert data.masks is not None
    return {"name": name, "target_snr": TARGET_SNR[name], "snr": m.get("snr"),
            "dose_e_A2": cal.dose_e_A2, "calibration": cal.measurements, "n": len(data),
            "counts": data.counts, "complexes_placed": m.get("complexes_placed"),
            "extractable": m.get("extractable"), "tilts": m.get("tilts"),
            "target_fraction": float(data.masks.mean()), "timing_s": m.get("timing_s"),
            "config_hash": m.get("config_hash")}


def ensure_data(names: Iterable[str], run: Run, *, folder: str | Path | None = None,
                progress: bool = True) -> dict[str, tuple[CrowdedSubtomograms, DoseCalibration]]:
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
        ``name -> (data set, calibration)``.
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
        out[n] = (data, cal)
    save_result(run, summary, name=DATA_RESULT)
    return out


def load_records(scale: str = "paper") -> dict[str, dict[str, Any]]:
    """Read every run record of ``scale`` (``results/ssn3d_runs/*.json``).

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


def current_record(spec: RunSpec, settings: Settings, scale: str,
                   package: str | None = None) -> dict[str, Any] | None:
    """Return run ``spec``'s record if it was made with these settings and package sources.

    Parameters
    ----------
    spec : RunSpec
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
    return records.current_record(RUNS, spec.name, spec.to_dict(), settings.to_dict(),
                                  scale, package)


def _groups(specs: Sequence[RunSpec], data: CrowdedSubtomograms, settings: Settings,
            group_size: int | None) -> list[list[RunSpec]]:
    keys: dict[tuple[str, int], list[RunSpec]] = {}
    for s in specs:
        n_train = len(split_of(s, data.labels, settings)["train"])
        keys.setdefault((s.variant, iters_per_epoch(n_train, settings.batch_size)), []).append(s)
    size = group_size or max(len(v) for v in keys.values())
    return [g[i:i + size] for g in keys.values() for i in range(0, len(g), size)]


def train_specs(specs: Sequence[RunSpec], run: Run, settings: Settings | None = None, *,
                folder: str | Path | None = None, group_size: int | None = None,
                strategy: str = "auto", weights: Sequence[str] = WEIGHTS,
                checkpoints: str | Path | None = None, progress: bool = True
                ) -> dict[str, dict[str, Any]]:
    """Train the runs not yet recorded, group by group, saving each finished run at once.

    Parameters
    ----------
    specs : sequence of RunSpec
        The runs (any tables, networks, data sets).
    run : Run
        Scale, device and provenance.
    settings : Settings or None
        The recipe (None: :meth:`Settings.for_scale` of the run's scale).
    folder : str or Path or None
        Data cache root.
    group_size : int or None
        Runs per step at most (None: all runs of a network, data set and epoch length).
    strategy : str
        Stepper (``"auto"``, ``"loop"``, ``"vmap"``).
    weights : sequence of str
        Names of the runs whose weights are kept (:func:`weights_path`).
    checkpoints : str or Path or None
        Folder of the runs' checkpoint folders (None: none).
    progress : bool
        Progress bars on a terminal.

    Returns
    -------
    dict
        ``name -> record`` (``{"data", "provenance"}``) of every run of ``specs``.
    """
    settings = settings or Settings.for_scale(run.scale)
    package = package_sha256()
    records: dict[str, dict[str, Any]] = {}
    pending = []
    for s in specs:
        rec = current_record(s, settings, run.scale, package)
        if rec is None:
            pending.append(s)
        else:
            records[s.name] = rec
    for name in sorted({s.dataset for s in pending}):
        data, cal = ensure_data([name], run, folder=folder, progress=progress)[name]
        info = {"name": name, "target_snr": TARGET_SNR[name],
                "snr_median": (data.meta.get("snr") or {}).get("median"),
                "dose_e_A2": cal.dose_e_A2, "n": len(data),
                "config_hash": data.meta.get("config_hash")}
        for group in _groups([s for s in pending if s.dataset == name], data, settings,
                             group_size):
            done = train_runs(group, data, settings, run.device, root=checkpoints,
                              strategy=strategy, progress=progress)
            for tr in done:
                rec_data = run_record(tr, settings, info)
                if tr.spec.name in weights:
                    path = weights_path(tr.spec.name, run.scale)
                    save_weights(tr.model, path, preprocessing={
                        "voxel_size_A": data.voxel_size_A,
                        "contrast": str(data.meta.get("contrast", "dark"))},
                        training={**tr.spec.to_dict(), "settings": settings.to_dict(),
                                  "epochs_trained": rec_data["epochs_trained"],
                                  "best_epoch": rec_data["best_epoch"], "dataset": info})
                    rec_data["weights"] = path.name
                save_result(run, rec_data, name=f"{RUNS}/{tr.spec.name}", seeds=[tr.spec.seed])
                records[tr.spec.name] = load_result(f"{RUNS}/{tr.spec.name}", run.scale) or {}
    return records


def run_baseline(dataset: str, run: Run, settings: Settings | None = None, *,
                 folder: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Segment the test split of a data set with Xu & Alber 2013 and record its scores.

    A record made with the same split seed and package sources is returned as it is.

    Parameters
    ----------
    dataset : str
        ``"A"``, ``"B"`` or ``"C"`` (Table 2 has it at A).
    run : Run
        Scale, device and provenance.
    settings : Settings or None
        The split seed (None: :meth:`Settings.for_scale`).
    folder : str or Path or None
        Data cache root.
    progress : bool
        Progress bars on a terminal.

    Returns
    -------
    dict
        The record (``{"data", "provenance"}``); its data: ``method``, ``dataset``, ``test``
        (SSN3D's metrics), ``n_test``, ``wall_s``, ``settings`` (the method's parameters).
    """
    settings = settings or Settings.for_scale(run.scale)
    name = f"{RUNS}/xu_{dataset}"
    old = load_result(name, run.scale)
    if old and old["data"].get("split_seed") == settings.split_seed and old.get(
            "provenance", {}).get("package_sha256") == package_sha256():
        return old
    data, _ = ensure_data([dataset], run, folder=folder, progress=progress)[dataset]
    test = split_of(RunSpec("table2", "ed", dataset, 0), data.labels, settings)["test"]
    t0 = time.perf_counter()
    pred = segment_targets(data.volumes[test], contrast=str(data.meta.get("contrast", "dark")),
                           seed=settings.split_seed, progress=progress)
    assert data.masks is not None
    scores = two_class_scores(pred, data.masks[test])
    rec = {"method": "Xu & Alber 2013 (our reimplementation)", "dataset": dataset,
           "test": scores, "n_test": len(test), "wall_s": time.perf_counter() - t0,
           "split_seed": settings.split_seed, "parameters": TargetSegmentation().to_dict()}
    save_result(run, rec, name=name)
    return load_result(name, run.scale) or {}


def table3_classes(scale: str, labels: np.ndarray, smoke_count: int = 2) -> list[str]:
    """Return the held-out classes a scale trains: all 22 (paper), or a few present (smoke).

    Parameters
    ----------
    scale : str
        ``"paper"`` or ``"smoke"``.
    labels : numpy.ndarray
        `(N,)` labels of data set A (a smoke set lacks some classes).
    smoke_count : int
        Classes at smoke scale: the first of Table 3's order with a subtomogram in the set.

    Returns
    -------
    list of str
        Table 3 IDs.
    """
    from cryo_companion.papers.ssn3d.paper_tables import TABLE3
    from cryo_companion.papers.ssn3d.train import class_index

    if scale == "paper":
        return list(TABLE3)
    present = set(np.asarray(labels).tolist())
    return [p for p in TABLE3 if class_index(p) in present][:smoke_count]


def collect_records(specs: Sequence[RunSpec], settings: Settings, scale: str,
                    baselines: Sequence[str] = ("A",)) -> dict[str, dict[str, Any]]:
    """Return the current records of ``specs`` and of the Xu baseline (missing ones left out).

    Parameters
    ----------
    specs : sequence of RunSpec
        The runs shown.
    settings : Settings
        Their settings.
    scale : str
        ``"paper"`` or ``"smoke"``.
    baselines : sequence of str
        Data sets of the Xu records (``xu_A``).

    Returns
    -------
    dict
        ``name -> record`` of the runs made with these settings and this tree's package
        sources, in the order of ``specs``, then ``xu_<data set>``.
    """
    package = package_sha256()
    out = {}
    for s in specs:
        rec = current_record(s, settings, scale, package)
        if rec is not None:
            out[s.name] = rec
    for d in baselines:
        rec = load_result(f"{RUNS}/xu_{d}", scale)
        if rec and (rec.get("provenance") or {}).get("package_sha256") == package and \
                rec["data"].get("split_seed") == settings.split_seed:
            out[f"xu_{d}"] = rec
    return out


def first_of_each_class(labels: np.ndarray, k: int, among: Sequence[int] | None = None
                        ) -> list[int]:
    """Return the index of the first subtomogram of each of the first ``k`` classes present.

    Parameters
    ----------
    labels : numpy.ndarray
        `(N,)` class labels.
    k : int
        Classes at most, in increasing label order.
    among : sequence of int or None
        Only these indices (e.g. a test split); None: all.

    Returns
    -------
    list of int
    """
    first: dict[int, int] = {}
    for i in (range(len(labels)) if among is None else among):
        first.setdefault(int(labels[i]), int(i))
    return [first[c] for c in sorted(first)][:k]


def fig5_examples(data: CrowdedSubtomograms, weights: str | Path, settings: Settings,
                  device: torch.device | str = "cpu", k: int = 4
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]] | None:
    """Pick test subtomograms of distinct classes and segment them, for the paper's Fig. 5.

    Parameters
    ----------
    data : CrowdedSubtomograms
        Data set A.
    weights : str or Path
        SSN3D weights (:func:`weights_path`); missing: None is returned.
    settings : Settings
        The split seed (the weights' test split).
    device : torch.device or str
        Where to predict.
    k : int
        Subtomograms, the first test box of each of the first ``k`` classes in it.

    Returns
    -------
    tuple or None
        Standardised inputs `(k, D, D, D)`, ground truth and predicted masks (bool), and the
        class names; None without the weights.
    """
    from cryo_companion.segment.network import load_weights, preprocess, segment_subtomograms

    if not Path(weights).is_file():
        return None
    model, meta = load_weights(weights, map_location=device)
    test = split_of(RunSpec("table2", "ed", "A", 0), data.labels, settings)["test"]
    idx = first_of_each_class(data.labels, k, test.tolist())
    x = torch.from_numpy(data.volumes[idx])
    invert = meta["preprocessing"]["contrast"] != data.meta.get("contrast", "dark")
    _, pred = segment_subtomograms(model, x, invert=invert)
    assert data.masks is not None
    return (preprocess(x, invert=invert).numpy(), data.masks[idx], pred.numpy(),
            [data.class_names[int(data.labels[i])] for i in idx])


def scale_note(scale: str, settings: Settings, n_seeds: int) -> str:
    """Say what the numbers of a chapter run are: the paper's experiment or a pipeline check.

    Parameters
    ----------
    scale : str
        ``"paper"`` or ``"smoke"``.
    settings : Settings
        The training settings of the run.
    n_seeds : int
        Seeds per Table 2 row.

    Returns
    -------
    str
        One Markdown paragraph.
    """
    if scale == "smoke":
        return ("**Smoke scale: every number on this page is a pipeline check**, not a result: "
                "data sets of one 80 × 128 × 128 tomogram (about 40 subtomograms), "
                f"{settings.max_epochs} epochs of {settings.max_iters_per_epoch} batches of "
                f"{settings.batch_size}, {n_seeds} seed(s), two held-out classes.")
    reduced = [] if n_seeds >= 3 else [f"{n_seeds} seed(s) per row instead of 3"]
    if settings != Settings.for_scale("paper"):
        reduced.append("training settings other than the paper's (see below)")
    if reduced:
        return "**A reduced paper-scale run**: " + "; ".join(reduced) + "."
    return ("Paper scale: the paper's data-set sizes and recipe, three seeds per row of "
            "Table 2, one per held-out class of Table 3.")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cryo_companion.papers.ssn3d.experiments",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", default="paper", choices=["paper", "smoke"])
    p.add_argument("--device", default="cuda", help="cuda, cuda:N, cpu or auto")
    p.add_argument("--group-size", type=int, default=None, help="runs per step at most")
    p.add_argument("--strategy", default="auto", choices=["auto", "loop", "vmap"])
    sub = p.add_subparsers(dest="what", required=True)
    d = sub.add_parser("data", help="data sets A, B, C -> results/ssn3d_data.json")
    d.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    t2 = sub.add_parser("table2", help="one network row of Table 2")
    t2.add_argument("--variant", required=True, choices=["v1", "v2", "ed"])
    t2.add_argument("--dataset", required=True, choices=DATASETS)
    t2.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    t3 = sub.add_parser("table3", help="leave-one-out runs of Table 3")
    t3.add_argument("--classes", nargs="+", default=None, help="held-out classes (Table 3 IDs)")
    t3.add_argument("--seeds", type=int, nargs="+", default=[0])
    x = sub.add_parser("xu", help="the Xu & Alber 2013 baseline of Table 2")
    x.add_argument("--dataset", default="A", choices=DATASETS)
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
    a = _parser().parse_args(argv)
    run = setup(a.scale, a.device, 0, chapter="ssn3d", paper_needs_gpu=True)
    if a.what == "data":
        got = ensure_data(a.datasets, run)
        for n, (data, cal) in got.items():
            snr = (data.meta.get("snr") or {}).get("median")
            print(f"data set {n}: {len(data)} subtomograms, SNR {snr:.3g} (target "
                  f"{TARGET_SNR[n]}), dose {cal.dose_e_A2:.4g} e/A^2")
        return 0
    if a.what == "xu":
        rec = run_baseline(a.dataset, run)
        print(f"Xu 2013 on {a.dataset}: {json.dumps(rec['data']['test'])}")
        return 0
    specs = (table2_specs(a.seeds, [(a.variant, a.dataset)]) if a.what == "table2"
             else table3_specs(a.seeds, a.classes))
    recs = train_specs(specs, run, group_size=a.group_size, strategy=a.strategy,
                       checkpoints=Path("build") / "ssn3d_runs" / a.scale)
    for name, rec in recs.items():
        t = rec["data"]["test"]
        print(f"{name}: pixel accuracy {t['pixel_accuracy']:.4f}, mIoU {t['miou']:.4f}, "
              f"target IoU {t['target_iou']:.4f}, {rec['data']['epochs_trained']} epochs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
