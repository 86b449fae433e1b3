"""Scoring detections on the test model: both evaluation modes, a central crop, compact records.

* :func:`test_view` - the test model as the methods see it: the reconstruction's ground-truth
  slices (the mask's frame), the particle list, occupancy map and class mask; optionally only a
  central ``crop_yx``² region in y and x (all slices), which is how the F1-against-training-time
  curves are scored at paper scale (a quarter of the cost; the tables use the whole model). In a
  crop, the particles whose rounded centre lies inside it are the truth (renumbered in list
  order); the voxels of the others are *ignored*: a detection there is dropped before scoring
  (neither a hit nor a false positive), so a particle cut by the crop's edge costs nothing.
* :func:`score` - the SHREC 2020 evaluation (:func:`~.metrics.evaluate`) of detections in one or
  both modes: ``"default"`` (the regions as given) and ``"benchmark_script"`` (the official
  script's rules, :data:`~.metrics.BENCHMARK_SCRIPT`: the mask dilated once, the 512-slice
  frame with its auto-shift), the one the paper's tables come from.
* :func:`evaluation_record`, :func:`detections_record`, :func:`pack_slice` /
  :func:`unpack_slice` - JSON-able forms for the result files (per-detection outcome arrays
  are left out: they are recomputed from the stored detections where a figure needs them).
"""
from __future__ import annotations

import base64
import os
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from cryo_companion.detect.detections import Detections
from cryo_companion.papers.shrec2020.methods import to_particle_list
from cryo_companion.papers.shrec2020.metrics import (
    BENCHMARK_SCRIPT,
    CLASS_ORDER,
    ShrecEvaluation,
    evaluate,
)
from cryo_companion.papers.shrec2020.particles import ParticleList
from cryo_companion.papers.shrec2020.training_data import read_model_volumes

__all__ = ["MODES", "TestView", "detections_from_record", "detections_record",
           "evaluation_record", "pack_slice", "score", "test_view", "unpack_slice"]

#: Evaluation modes: name -> keyword arguments of :func:`~.metrics.evaluate`.
MODES: dict[str, dict[str, Any]] = {"default": {}, "benchmark_script": dict(BENCHMARK_SCRIPT)}


@dataclass(frozen=True)
class TestView:
    """The test model, whole or a central crop, as scored.

    Attributes
    ----------
    name : str
        ``"model 9"`` or ``"model 9, central 256 x 256"``.
    tomogram : torch.Tensor
        `(Z, Y, X)` float32 reconstruction slices of the ground truth (raw values).
    truth : ParticleList
        The particles scored (the view's frame, 0-based voxels).
    occupancy : numpy.ndarray
        `(Z, Y, X)` int32 particle labels (1-based line of ``truth``), 0 background.
    class_mask : numpy.ndarray
        `(Z, Y, X)` int32 class labels (1-12), 0 background.
    ignore : numpy.ndarray or None
        `(Z, Y, X)` bool: voxels of particles left out of a crop (None for the whole model).
    offset_zyx : tuple of int
        Where the view's voxel 0 lies in the model.
    voxel_size_A : float
        Voxel edge (Å).
    """

    name: str
    tomogram: Tensor
    truth: ParticleList
    occupancy: np.ndarray
    class_mask: np.ndarray
    ignore: np.ndarray | None
    offset_zyx: tuple[int, int, int]
    voxel_size_A: float


def test_view(folder: str | os.PathLike, *, crop_yx: int | None = None,
              name: str | None = None) -> TestView:
    """Read a model folder as the methods are scored on it.

    Parameters
    ----------
    folder : str or os.PathLike
        ``DIR/model_K`` (:mod:`.layout`).
    crop_yx : int or None
        Edge of a central crop in y and x (voxels), all slices kept; None: the whole model.
    name : str or None
        Name of the view (default ``"model K"`` plus the crop).

    Returns
    -------
    TestView
    """
    d = Path(folder)
    m = read_model_volumes(d)
    occ = m.occupancy.numpy().astype(np.int32)
    cm = m.class_mask.numpy().astype(np.int32)
    classes = [CLASS_ORDER[int(k) - 1] for k in m.labels]
    xyz = m.centres_zyx[:, ::-1].astype(np.float64)
    label = name or d.name.replace("_", " ")
    if crop_yx is None:
        return TestView(label, m.tomogram, ParticleList(tuple(classes), xyz), occ, cm, None,
                        (0, 0, 0), m.voxel_size_A)
    z, y, x = occ.shape
    c = int(crop_yx)
    if not 1 <= c <= min(y, x):
        raise ValueError(f"crop_yx {crop_yx} must lie in [1, {min(y, x)}] for a model of "
                         f"{occ.shape} (z, y, x)")
    y0, x0 = (y - c) // 2, (x - c) // 2
    sub = (slice(None), slice(y0, y0 + c), slice(x0, x0 + c))
    r = np.rint(m.centres_zyx).astype(np.int64)
    keep = (r[:, 1] >= y0) & (r[:, 1] < y0 + c) & (r[:, 2] >= x0) & (r[:, 2] < x0 + c)
    new = np.zeros(len(classes) + 1, dtype=np.int32)
    new[1:][keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    occ_sub = occ[sub]
    ignore = (occ_sub > 0) & (new[occ_sub] == 0)
    xyz_sub = xyz[keep] - np.array([x0, y0, 0.0])
    truth = ParticleList(tuple(c_ for c_, k in zip(classes, keep) if k), xyz_sub)
    return TestView(name or f"{label}, central {c} x {c}", m.tomogram[sub].contiguous(), truth,
                    new[occ_sub], np.where(ignore, 0, cm[sub]).astype(np.int32), ignore,
                    (0, y0, x0), m.voxel_size_A)


def _kept(det: Detections, view: TestView) -> Detections:
    """Keep the detections not in an ignored voxel (all of them for a whole model)."""
    if view.ignore is None or not len(det):
        return det
    r = np.rint(det.zyx).astype(np.int64)
    inside = ((r >= 0) & (r < np.asarray(view.ignore.shape))).all(1)
    hit = np.zeros(len(det), dtype=bool)
    hit[inside] = view.ignore[tuple(r[inside].T)]
    return det.take(~hit)


def score(det: Detections, view: TestView, *, modes: Sequence[str] = tuple(MODES)
          ) -> dict[str, ShrecEvaluation]:
    """Evaluate detections on a view of the test model.

    Parameters
    ----------
    det : Detections
        Detections in the view's voxels (labels 1-12, centres z-y-x).
    view : TestView
        The test model or its crop (:func:`test_view`).
    modes : sequence of str
        Names of :data:`MODES`.

    Returns
    -------
    dict
        Mode -> :class:`~.metrics.ShrecEvaluation` (detections in ignored voxels dropped).
    """
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(f"unknown modes {unknown}; valid: {', '.join(MODES)}")
    pred = to_particle_list(_kept(det, view))
    return {m: evaluate(pred, view.truth, view.occupancy, class_mask=view.class_mask,
                        **MODES[m]) for m in modes}


def evaluation_record(ev: ShrecEvaluation) -> dict[str, Any]:
    """Return a compact JSON-able evaluation: Tables 3, 4, 6, the confusion matrix, the settings.

    Parameters
    ----------
    ev : ShrecEvaluation
        An evaluation.

    Returns
    -------
    dict
        :meth:`~.metrics.ShrecEvaluation.to_dict` without the per-detection arrays
        (``outcome``, ``particle``, ``outside``).
    """
    d = ev.to_dict()
    d["localisation"] = {k: v for k, v in d["localisation"].items()
                         if k not in ("outcome", "particle", "outside")}
    return d


def detections_record(det: Detections) -> dict[str, list[Any]]:
    """Columns of detections for a result file: labels, ``z``, ``y``, ``x``, scores, sizes.

    Parameters
    ----------
    det : Detections
        The detections (voxels of the volume searched).

    Returns
    -------
    dict
        ``{"label", "z", "y", "x", "score", "size"}`` lists, rounded to 3 decimals.
    """
    return {"label": det.label.tolist(),
            **{a: np.round(det.zyx[:, i], 3).tolist() for i, a in enumerate("zyx")},
            "score": np.round(det.score, 5).tolist(), "size": det.size.tolist()}


def detections_from_record(rec: Mapping[str, Sequence[Any]]) -> Detections:
    """Inverse of :func:`detections_record`.

    Parameters
    ----------
    rec : mapping
        The columns.

    Returns
    -------
    Detections
    """
    zyx = np.stack([np.asarray(rec[a], dtype=np.float64) for a in "zyx"], 1) \
        if len(rec["label"]) else np.zeros((0, 3))
    return Detections.make(zyx, np.asarray(rec["label"], dtype=np.int64),
                           np.asarray(rec["score"], dtype=np.float64),
                           np.asarray(rec["size"], dtype=np.int64))


def pack_slice(arr: np.ndarray) -> dict[str, Any]:
    """Encode a 2-D array as JSON: shape, dtype and its bytes compressed (zlib) in base64.

    Parameters
    ----------
    arr : numpy.ndarray
        `(H, W)` integer or float array (floats are stored as float16).

    Returns
    -------
    dict
        ``{"shape", "dtype", "zlib_base64"}``.
    """
    a = np.asarray(arr)
    if a.ndim != 2:
        raise ValueError(f"a slice must be 2-D, got shape {a.shape}")
    a = a.astype(np.float16 if a.dtype.kind == "f" else np.int16)
    return {"shape": list(a.shape), "dtype": str(a.dtype),
            "zlib_base64": base64.b64encode(zlib.compress(a.tobytes(), 9)).decode("ascii")}


def unpack_slice(d: Mapping[str, Any]) -> np.ndarray:
    """Inverse of :func:`pack_slice` (floats come back as float32).

    Parameters
    ----------
    d : mapping
        ``{"shape", "dtype", "zlib_base64"}``.

    Returns
    -------
    numpy.ndarray
    """
    raw = zlib.decompress(base64.b64decode(d["zlib_base64"]))
    a = np.frombuffer(raw, dtype=np.dtype(d["dtype"])).reshape(d["shape"])
    return a.astype(np.float32) if a.dtype.kind == "f" else a.astype(np.int16)
