"""From a trained network and a tomogram to detections: each method's inference (Sec. 3.2-3.6).

* **DeepFinder**: the standardised tomogram segmented on overlapping tiles (softmax scores),
  the score maps binned by 2, their arg-max clustered by mean shift (bandwidth 5 binned voxels,
  all classes together), clusters smaller than their class's threshold dropped, centres scaled
  back (binned voxel ``i`` -> ``2 i + 0.5``).
* **YOPO**: the dense box classifier over the standardised tomogram (every voxel the centre
  of a 24³ box), the probability of the most likely complex kept where above 0.99, greedy
  peaks more than 14 voxels apart, each with the class of its voxel.
* **UMC**: the segmentation decoder's arg-max on overlapping tiles, face-connected components,
  those under 10 voxels or with a centroid within 5 voxels of a larger one dropped, the most
  frequent class of each.

Weights are stored with what inference needs (:func:`save_detector`, :func:`load_detector`):
the method, the network's configuration, the voxel size it was trained at and its
post-processing settings. Labels follow :mod:`.methods` (1-12 = Table 1 by weight).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from cryo_companion._io import atomic_path
from cryo_companion.detect.clusters import (
    connected_components,
    filter_min_size,
    mean_shift_clusters,
)
from cryo_companion.detect.detections import Detections
from cryo_companion.detect.peaks import find_peaks
from cryo_companion.detect.tiling import bin_mean, tiled_map
from cryo_companion.models import deepfinder as _deepfinder
from cryo_companion.models import umc as _umc
from cryo_companion.models import yopo as _yopo

__all__ = ["DETECTOR_FORMAT", "NETWORK_METHODS", "build_network", "deepfinder_labels",
           "deepfinder_objects", "detect_deepfinder", "detect_umc", "detect_with_slices",
           "detect_yopo", "load_detector", "run_detector", "save_detector", "standardise",
           "umc_maps", "umc_objects", "yopo_maps", "yopo_objects"]

#: Version tag of the weights files written by :func:`save_detector`.
DETECTOR_FORMAT = "cryo_companion.shrec2020.detector/1"
#: The trained methods and how their networks are built from a configuration dict.
NETWORK_METHODS: dict[str, Any] = {
    "deepfinder": (_deepfinder.DeepFinder, _deepfinder.DeepFinderConfig),
    "yopo": (_yopo.YOPO, _yopo.YOPOConfig),
    "umc": (_umc.UMC, _umc.UMCConfig),
}


def standardise(volume: Tensor) -> Tensor:
    """Zero mean and unit sd over the whole volume (float32), as the methods' inputs."""
    v = volume.float()
    return (v - v.mean()) / v.std().clamp_min(1e-12)


def _cfg(model: nn.Module) -> Any:
    """Return the network's configuration (``cfg``), with a clear error for a foreign module."""
    cfg = getattr(model, "cfg", None)
    if cfg is None:
        raise ValueError(f"{type(model).__name__} has no cfg; pass a DeepFinder, YOPO or UMC "
                         "network of cryo_companion.models")
    return cfg


def _softmax_fn(model: nn.Module, output: int | None = None) -> Callable[[Tensor], Tensor]:
    def fn(x: Tensor) -> Tensor:
        with torch.no_grad():
            out = model(x)
            if output is not None:
                out = out[output]
            return torch.softmax(out.float(), 1)
    return fn


def deepfinder_labels(model: nn.Module, volume: Tensor, *, tile: int = 192, crop: int = 25,
                      bin_factor: int = 2, batch_size: int = 1, progress: bool = False
                      ) -> np.ndarray:
    """DeepFinder's segmentation of a tomogram: the binned score maps' arg-max.

    Parameters
    ----------
    model : torch.nn.Module
        A :class:`~cryo_companion.models.deepfinder.DeepFinder` (or any network giving class
        logits of its input's size), on the volume's device.
    volume : torch.Tensor
        `(D, H, W)` tomogram, z-y-x.
    tile, crop : int
        Tiles given to the network and the voxels dropped at their faces (tile divisible by 4).
    bin_factor : int
        Binning of the score maps before the arg-max (2).
    batch_size : int
        Tiles per forward pass.
    progress : bool
        Progress bars (on a terminal only).

    Returns
    -------
    numpy.ndarray
        `(ceil(D / b), ceil(H / b), ceil(W / b))` int16 labels (0 background), binned grid.
    """
    model.eval()
    n_cls = int(_cfg(model).n_classes)
    probs = tiled_map(standardise(volume), _softmax_fn(model), n_cls, tile=tile, crop=crop,
                      batch_size=batch_size, progress=progress)
    return bin_mean(probs, bin_factor).argmax(0).cpu().numpy().astype(np.int16)


def deepfinder_objects(labels: np.ndarray, *, bin_factor: int = 2, bandwidth_vox: float = 5.0,
                       min_size: Mapping[int, int] | int = 1, n_jobs: int | None = None
                       ) -> Detections:
    """Mean-shift clusters of DeepFinder's binned labels, size thresholds, centres scaled back.

    Parameters
    ----------
    labels : numpy.ndarray
        Binned `(z, y, x)` labels (:func:`deepfinder_labels`).
    bin_factor : int
        The binning of ``labels`` (binned voxel ``i`` -> ``b i + (b − 1) / 2``).
    bandwidth_vox : float
        Mean-shift bandwidth in binned voxels (5).
    min_size : mapping of int to int, or int
        Smallest cluster kept per label, in binned voxels.
    n_jobs : int or None
        Parallel jobs of scikit-learn's mean shift (None: one).

    Returns
    -------
    Detections
        Cluster centres in voxels of the unbinned volume, majority labels, sizes (binned
        voxels).
    """
    det = filter_min_size(mean_shift_clusters(labels, bandwidth_vox, n_jobs=n_jobs), min_size)
    return det.shifted([(bin_factor - 1) / 2.0] * 3, scale=bin_factor)


def detect_deepfinder(model: nn.Module, volume: Tensor, *, tile: int = 192, crop: int = 25,
                      bin_factor: int = 2, bandwidth_vox: float = 5.0,
                      min_size: Mapping[int, int] | int = 1, n_jobs: int | None = None,
                      batch_size: int = 1, progress: bool = False) -> Detections:
    """DeepFinder's segmentation, binning and mean-shift clustering.

    Parameters
    ----------
    model : torch.nn.Module
        A :class:`~cryo_companion.models.deepfinder.DeepFinder` (or any network giving class
        logits of its input's size), on the volume's device.
    volume : torch.Tensor
        `(D, H, W)` tomogram, z-y-x.
    tile, crop : int
        Tiles given to the network and the voxels dropped at their faces (tile divisible by 4).
    bin_factor : int
        Binning of the score maps before clustering (2).
    bandwidth_vox : float
        Mean-shift bandwidth in binned voxels (5).
    min_size : mapping of int to int, or int
        Smallest cluster kept per label, in binned voxels.
    n_jobs : int or None
        Parallel jobs of the mean shift (None: one).
    batch_size : int
        Tiles per forward pass.
    progress : bool
        Progress bars (on a terminal only).

    Returns
    -------
    Detections
        Cluster centres in voxels of ``volume``, majority labels, sizes (binned voxels).
    """
    labels = deepfinder_labels(model, volume, tile=tile, crop=crop, bin_factor=bin_factor,
                               batch_size=batch_size, progress=progress)
    return deepfinder_objects(labels, bin_factor=bin_factor, bandwidth_vox=bandwidth_vox,
                              min_size=min_size, n_jobs=n_jobs)


def yopo_maps(model: nn.Module, volume: Tensor, *, tile: int = 88, batch_size: int = 1,
              progress: bool = False) -> tuple[Tensor, Tensor]:
    """YOPO's dense prediction: the most likely complex and its probability at every voxel.

    Parameters
    ----------
    model : torch.nn.Module
        A :class:`~cryo_companion.models.yopo.YOPO`, on the volume's device.
    volume : torch.Tensor
        `(D, H, W)` tomogram, z-y-x.
    tile : int
        Input tiles of the dense pass (larger than the network's box, 24).
    batch_size : int
        Tiles per forward pass.
    progress : bool
        Progress bars (on a terminal only).

    Returns
    -------
    tuple of torch.Tensor
        `(D, H, W)` probability of the most likely complex (background excluded) of the box
        centred at each voxel, and `(D, H, W)` that complex's label (1-12).
    """
    model.eval()
    dense: Callable[[Tensor], Tensor] = model.dense  # type: ignore[assignment]

    def fn(x: Tensor) -> Tensor:
        with torch.no_grad():
            return torch.softmax(dense(x).float(), 1)

    n_cls, box = int(_cfg(model).n_classes), int(_cfg(model).box)
    probs = tiled_map(standardise(volume), fn, n_cls, tile=tile,
                      margin=(box // 2, box // 2 - 1), batch_size=batch_size,
                      progress=progress)
    best, arg = probs[1:].max(0)
    return best, arg + 1


def yopo_objects(best: Tensor, label: Tensor, *, threshold: float = 0.99,
                 min_distance_vox: float = 14.0) -> Detections:
    """YOPO's confident voxels, greedy peaks more than ``min_distance_vox`` apart.

    Parameters
    ----------
    best : torch.Tensor
        `(D, H, W)` probability of the most likely complex (:func:`yopo_maps`).
    label : torch.Tensor
        `(D, H, W)` that complex's label.
    threshold : float
        Keep voxels whose most likely complex has a probability above this (0.99).
    min_distance_vox : float
        Detections are more than this far apart (14).

    Returns
    -------
    Detections
        Box centres, the class of each, its probability as the score.
    """
    peaks = find_peaks(best, min_distance_vox, threshold=threshold)
    at = peaks.zyx.astype(np.int64)
    labels = label.cpu().numpy()[at[:, 0], at[:, 1], at[:, 2]]
    return Detections.make(peaks.zyx, labels, peaks.score)


def detect_yopo(model: nn.Module, volume: Tensor, *, tile: int = 88, threshold: float = 0.99,
                min_distance_vox: float = 14.0, batch_size: int = 1,
                progress: bool = False) -> Detections:
    """YOPO's dense prediction, confidence threshold and minimum distance.

    Parameters
    ----------
    model : torch.nn.Module
        A :class:`~cryo_companion.models.yopo.YOPO`, on the volume's device.
    volume : torch.Tensor
        `(D, H, W)` tomogram, z-y-x.
    tile : int
        Input tiles of the dense pass (larger than the network's box, 24).
    threshold : float
        Keep voxels whose most likely complex has a probability above this (0.99).
    min_distance_vox : float
        Detections are more than this far apart (14).
    batch_size : int
        Tiles per forward pass.
    progress : bool
        Progress bars (on a terminal only).

    Returns
    -------
    Detections
        Box centres, the class of each, its probability as the score.
    """
    best, label = yopo_maps(model, volume, tile=tile, batch_size=batch_size, progress=progress)
    return yopo_objects(best, label, threshold=threshold, min_distance_vox=min_distance_vox)


def umc_maps(model: nn.Module, volume: Tensor, *, tile: int = 128, crop: int = 16,
             batch_size: int = 1, progress: bool = False) -> tuple[np.ndarray, Tensor | None]:
    """UMC's segmentation decoder's arg-max, and its first decoder's output when it has two.

    Parameters
    ----------
    model : torch.nn.Module
        A :class:`~cryo_companion.models.umc.UMC` whose last decoder segments, on the volume's
        device.
    volume : torch.Tensor
        `(D, H, W)` tomogram, z-y-x.
    tile, crop : int
        Tiles (divisible by 16) and the voxels dropped at their faces.
    batch_size : int
        Tiles per forward pass.
    progress : bool
        Progress bars (on a terminal only).

    Returns
    -------
    tuple
        `(D, H, W)` int16 labels (0 background) and the `(D, H, W)` denoised tomogram (the
        first decoder's single channel; None when the cascade has one decoder or the first
        has several channels).
    """
    model.eval()
    outs = tuple(int(o) for o in _cfg(model).outputs)
    n_cls = outs[-1]
    den_ch = 1 if len(outs) > 1 and outs[0] == 1 else 0

    def fn(x: Tensor) -> Tensor:
        with torch.no_grad():
            out = model(x)
            seg = torch.softmax(out[-1].float(), 1)
            return torch.cat([out[0].float(), seg], 1) if den_ch else seg

    maps = tiled_map(standardise(volume), fn, n_cls + den_ch, tile=tile, crop=crop,
                     batch_size=batch_size, progress=progress)
    labels = maps[den_ch:].argmax(0).cpu().numpy().astype(np.int16)
    return labels, (maps[0] if den_ch else None)


def umc_objects(labels: np.ndarray, *, min_size: int = 10, min_separation_vox: float = 5.0
                ) -> Detections:
    """UMC's connected components of the labels, small and close ones dropped.

    Parameters
    ----------
    labels : numpy.ndarray
        `(z, y, x)` labels (:func:`umc_maps`).
    min_size : int
        Smallest component kept (10 voxels).
    min_separation_vox : float
        Of two centroids closer than this, the smaller component goes (5).

    Returns
    -------
    Detections
        Component centroids, majority labels, sizes.
    """
    return connected_components(labels, min_size=min_size, min_separation_vox=min_separation_vox)


def detect_umc(model: nn.Module, volume: Tensor, *, tile: int = 128, crop: int = 16,
               min_size: int = 10, min_separation_vox: float = 5.0, batch_size: int = 1,
               progress: bool = False) -> Detections:
    """UMC's segmentation decoder, connected components and their majority class.

    Parameters
    ----------
    model : torch.nn.Module
        A :class:`~cryo_companion.models.umc.UMC` whose last decoder segments, on the volume's
        device.
    volume : torch.Tensor
        `(D, H, W)` tomogram, z-y-x.
    tile, crop : int
        Tiles (divisible by 16) and the voxels dropped at their faces.
    min_size : int
        Smallest component kept (10 voxels).
    min_separation_vox : float
        Of two centroids closer than this, the smaller component goes (5).
    batch_size : int
        Tiles per forward pass.
    progress : bool
        Progress bars (on a terminal only).

    Returns
    -------
    Detections
        Component centroids, majority labels, sizes.
    """
    labels, _ = umc_maps(model, volume, tile=tile, crop=crop, batch_size=batch_size,
                         progress=progress)
    return umc_objects(labels, min_size=min_size, min_separation_vox=min_separation_vox)


#: Keyword arguments of each method's map stage (the rest of ``postprocess`` go to its objects).
_MAP_KEYS: dict[str, tuple[str, ...]] = {"deepfinder": ("tile", "crop", "bin_factor"),
                                         "yopo": ("tile",), "umc": ("tile", "crop")}


def _split(method: str, postprocess: Mapping[str, Any] | None
           ) -> tuple[dict[str, Any], dict[str, Any]]:
    if method not in _MAP_KEYS:
        raise ValueError(f"unknown method {method!r}; trained methods: {', '.join(_MAP_KEYS)}")
    kw = dict(postprocess or {})
    if "min_size" in kw and isinstance(kw["min_size"], Mapping):
        kw["min_size"] = {int(k): int(v) for k, v in kw["min_size"].items()}
    maps = {k: kw.pop(k) for k in _MAP_KEYS[method] if k in kw}
    if method == "deepfinder" and "bin_factor" in maps:
        kw["bin_factor"] = maps["bin_factor"]
    return maps, kw


def detect_with_slices(method: str, model: nn.Module, volume: Tensor, *,
                       postprocess: Mapping[str, Any] | None = None, batch_size: int = 1,
                       slice_z: int | None = None, progress: bool = False
                       ) -> tuple[Detections, dict[str, np.ndarray]]:
    """Run a trained method's inference and keep one z slice of the maps it was made from.

    Parameters
    ----------
    method : str
        ``deepfinder``, ``yopo`` or ``umc``.
    model : torch.nn.Module
        Its network, on the volume's device.
    volume : torch.Tensor
        `(D, H, W)` tomogram.
    postprocess : mapping or None
        Keyword arguments of the method's ``detect_*`` function (tile, thresholds, ...).
    batch_size : int
        Tiles per forward pass.
    slice_z : int or None
        The slice kept (volume's voxels; None: no slices).
    progress : bool
        Progress bars (on a terminal only).

    Returns
    -------
    tuple
        The detections and ``{name: (H', W') array}``: DeepFinder ``"labels"`` (binned grid,
        binned slice ``slice_z // bin_factor``), YOPO ``"probability"`` (of the most likely
        complex) and ``"labels"`` (where above the threshold, else 0), UMC ``"labels"`` and
        ``"denoised"``.
    """
    maps_kw, obj_kw = _split(method, postprocess)
    slices: dict[str, np.ndarray] = {}
    if method == "deepfinder":
        labels = deepfinder_labels(model, volume, batch_size=batch_size, progress=progress,
                                   **maps_kw)
        if slice_z is not None:
            slices["labels"] = labels[int(slice_z) // int(maps_kw.get("bin_factor", 2))].copy()
        return deepfinder_objects(labels, **obj_kw), slices
    if method == "yopo":
        best, label = yopo_maps(model, volume, batch_size=batch_size, progress=progress,
                                **maps_kw)
        if slice_z is not None:
            b = best[int(slice_z)].cpu().numpy()
            thr = float(obj_kw.get("threshold", 0.99))
            slices["probability"] = b.astype(np.float32)
            slices["labels"] = np.where(b > thr, label[int(slice_z)].cpu().numpy(), 0
                                        ).astype(np.int16)
        return yopo_objects(best, label, **obj_kw), slices
    labels, den = umc_maps(model, volume, batch_size=batch_size, progress=progress, **maps_kw)
    if slice_z is not None:
        slices["labels"] = labels[int(slice_z)].copy()
        if den is not None:
            slices["denoised"] = den[int(slice_z)].cpu().numpy().astype(np.float32)
    return umc_objects(labels, **obj_kw), slices


def build_network(method: str, config: Mapping[str, Any],
                  class_names: Sequence[str] | None = None) -> nn.Module:
    """Build the network of a trained method from its configuration (weights uninitialised).

    Parameters
    ----------
    method : str
        ``deepfinder``, ``yopo`` or ``umc``.
    config : mapping
        Its configuration's fields (``cfg.to_dict()``).
    class_names : sequence of str or None
        Names of the output classes (None: the network's generic ones).

    Returns
    -------
    torch.nn.Module
    """
    if method not in NETWORK_METHODS:
        raise ValueError(f"unknown method {method!r}; trained methods: "
                         f"{', '.join(NETWORK_METHODS)}")
    net_cls, cfg_cls = NETWORK_METHODS[method]
    return net_cls(cfg_cls.from_dict(dict(config)), class_names=class_names)


def save_detector(path: str | os.PathLike, method: str, model: nn.Module, *,
                  voxel_size_A: float, postprocess: Mapping[str, Any] | None = None,
                  meta: Mapping[str, Any] | None = None) -> Path:
    """Write a trained network with what inference needs, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination (``.pt``).
    method : str
        ``deepfinder``, ``yopo`` or ``umc``.
    model : torch.nn.Module
        The trained network (its ``cfg`` is stored).
    voxel_size_A : float
        Voxel size of the tomograms it was trained on (Å).
    postprocess : mapping or None
        Keyword arguments of its ``detect_*`` function (e.g. DeepFinder's ``min_size``).
    meta : mapping or None
        Anything else to record (training data, seeds, time, provenance).

    Returns
    -------
    Path
    """
    if method not in NETWORK_METHODS:
        raise ValueError(f"unknown method {method!r}; trained methods: "
                         f"{', '.join(NETWORK_METHODS)}")
    if not voxel_size_A > 0:
        raise ValueError(f"voxel_size_A must be > 0, got {voxel_size_A}")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    blob = {"format": DETECTOR_FORMAT, "method": method, "config": _cfg(model).to_dict(),
            "voxel_size_A": float(voxel_size_A), "postprocess": dict(postprocess or {}),
            "meta": dict(meta or {}), "state_dict": state,
            "class_names": list(getattr(model, "class_names", ()) or ())}
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(blob, tmp)
    return Path(path)


def load_detector(path: str | os.PathLike, map_location: torch.device | str = "cpu"
                  ) -> tuple[str, nn.Module, dict[str, Any]]:
    """Read a file of :func:`save_detector`.

    Parameters
    ----------
    path : str or os.PathLike
        The weights file.
    map_location : torch.device or str
        Where the network is put.

    Returns
    -------
    tuple
        ``(method, network in eval mode, info)``; ``info`` holds ``voxel_size_A``,
        ``postprocess``, ``config`` and ``meta``.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such weights file")
    try:
        blob = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a foreign file
        raise ValueError(f"{p}: not a weights file of this package ({exc})") from None
    if not isinstance(blob, dict) or blob.get("format") != DETECTOR_FORMAT:
        raise ValueError(f"{p}: not a detector file ({DETECTOR_FORMAT}); write one with "
                         "save_detector")
    net = build_network(blob["method"], blob["config"], blob.get("class_names") or None)
    net.load_state_dict(blob["state_dict"])
    net.to(map_location).eval()
    info = {k: blob[k] for k in ("voxel_size_A", "postprocess", "config", "meta")}
    return str(blob["method"]), net, info


def run_detector(method: str, model: nn.Module, volume: Tensor, *,
                 postprocess: Mapping[str, Any] | None = None, batch_size: int = 1,
                 progress: bool = False) -> Detections:
    """Run a trained method's inference (``detect_deepfinder``, ``detect_yopo``, ``detect_umc``).

    Parameters
    ----------
    method : str
        ``deepfinder``, ``yopo`` or ``umc``.
    model : torch.nn.Module
        Its network, on the volume's device.
    volume : torch.Tensor
        `(D, H, W)` tomogram.
    postprocess : mapping or None
        Keyword arguments of the method's function (tile, thresholds, ...).
    batch_size : int
        Tiles per forward pass.
    progress : bool
        Progress bars (on a terminal only).

    Returns
    -------
    Detections
    """
    return detect_with_slices(method, model, volume, postprocess=postprocess,
                              batch_size=batch_size, progress=progress)[0]
