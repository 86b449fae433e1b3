"""Label maps to objects: mean-shift clusters (DeepFinder) and connected components (UMC).

A label map is a `(z, y, x)` integer array: 0 background, ``k >= 1`` a class (the arg-max of a
segmentation network's scores). Both stages group the foreground voxels *regardless of class*
and give each group the most frequent class among its voxels (ties: the smaller label):

* :func:`mean_shift_clusters` - scikit-learn's ``MeanShift`` on the foreground voxel
  coordinates with a flat kernel of radius ``bandwidth`` (voxels) and bin seeding, as
  DeepFinder's ``Cluster.launch`` (its ``clustRadius``); the centre is the cluster's mode.
* :func:`connected_components` - face-connected components of the foreground (SciPy's default
  structure), the centre their centroid; components under ``min_size`` voxels are dropped, and
  of two components whose centroids lie closer than ``min_separation_vox`` the smaller one
  (UMC's post-processing; see the function for the reading of the paper).
* :func:`filter_min_size` - DeepFinder's per-class size threshold on clusters.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import ndimage

from cryo_companion.detect.detections import Detections
from cryo_companion.detect.peaks import greedy_exclusion

__all__ = ["connected_components", "filter_min_size", "majority_labels",
           "mean_shift_clusters"]


def _check_label_map(label_map: np.ndarray) -> np.ndarray:
    lab = np.asarray(label_map)
    if lab.ndim != 3 or not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"label map must be a 3-D integer array (z, y, x), got {lab.dtype} "
                         f"{lab.shape}")
    if lab.size and lab.min() < 0:
        raise ValueError(f"label map has negative labels ({int(lab.min())}); 0 is background")
    return lab


def majority_labels(groups: np.ndarray, labels: np.ndarray, n_groups: int) -> np.ndarray:
    """Most frequent label of each group (ties: the smaller label).

    Parameters
    ----------
    groups : np.ndarray
        `(M,)` group index of each voxel, in ``[0, n_groups)``.
    labels : np.ndarray
        `(M,)` labels (>= 1) of the same voxels.
    n_groups : int
        Number of groups.

    Returns
    -------
    np.ndarray
        `(n_groups,)` int64 majority label per group (0 for an empty group).
    """
    g = np.asarray(groups, dtype=np.int64)
    lab = np.asarray(labels, dtype=np.int64)
    if n_groups == 0:
        return np.zeros(0, dtype=np.int64)
    k = int(lab.max(initial=0)) + 1
    table = np.zeros((n_groups, k), dtype=np.int64)
    np.add.at(table, (g, lab), 1)
    out = table.argmax(1)               # first maximum: the smaller label on ties
    out[table.sum(1) == 0] = 0
    return out.astype(np.int64)


def mean_shift_clusters(label_map: np.ndarray, bandwidth: float, *, bin_seeding: bool = True,
                        n_jobs: int | None = None) -> Detections:
    """Mean-shift clusters of the foreground voxels of a label map (DeepFinder).

    Parameters
    ----------
    label_map : np.ndarray
        `(z, y, x)` integer labels, 0 background.
    bandwidth : float
        Radius of the flat kernel (voxels of this map), DeepFinder's ``clustRadius``.
    bin_seeding : bool
        Seed from a grid of ``bandwidth``-sized bins (scikit-learn's option, DeepFinder's
        choice) instead of from every voxel.
    n_jobs : int or None
        Parallel jobs of scikit-learn (None: one).

    Returns
    -------
    Detections
        One row per cluster: centre = the cluster's mode (voxels, ``(z, y, x)``), label = the
        majority label of its voxels, size = its voxel count, score = size.
    """
    from sklearn.cluster import MeanShift

    lab = _check_label_map(label_map)
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be > 0 voxels, got {bandwidth}")
    pts = np.argwhere(lab > 0)
    if len(pts) == 0:
        return Detections.empty()
    ms = MeanShift(bandwidth=float(bandwidth), bin_seeding=bin_seeding, n_jobs=n_jobs)
    ms.fit(pts.astype(np.float64))
    n = len(ms.cluster_centers_)
    groups = np.asarray(ms.labels_, dtype=np.int64)
    sizes = np.bincount(groups, minlength=n)
    maj = majority_labels(groups, lab[tuple(pts.T)], n)
    keep = sizes > 0
    return Detections.make(ms.cluster_centers_[keep], maj[keep], sizes[keep], sizes[keep])


def connected_components(label_map: np.ndarray, *, min_size: int = 1,
                         min_separation_vox: float = 0.0) -> Detections:
    """Find the connected components of the foreground of a label map (UMC).

    Gubins et al. 2020 (3.6) "filtered out components that have less than 10 voxels or have
    centroids less than 5 voxels away from another connected component". Read literally, both
    members of a close pair would go; the pair is one particle split in two far more often
    than two particles, so here the larger one is kept: components are taken by decreasing size
    and one is dropped when its centroid lies closer than ``min_separation_vox`` to a kept one.

    Parameters
    ----------
    label_map : np.ndarray
        `(z, y, x)` integer labels, 0 background.
    min_size : int
        Components with fewer voxels are dropped (UMC: 10).
    min_separation_vox : float
        Centroids closer than this to a larger kept component are dropped (UMC: 5; 0: none).

    Returns
    -------
    Detections
        One row per kept component, by decreasing size (ties: lower component number):
        centroid, majority label, size, score = size.
    """
    lab = _check_label_map(label_map)
    if min_size < 1 or min_separation_vox < 0:
        raise ValueError(f"min_size {min_size} must be >= 1 and min_separation_vox "
                         f"{min_separation_vox} >= 0")
    comp, n = ndimage.label(lab > 0)
    if n == 0:
        return Detections.empty()
    fg = comp > 0
    ids = comp[fg] - 1
    sizes = np.bincount(ids, minlength=n)
    coords = np.argwhere(fg).astype(np.float64)
    centroid = np.stack([np.bincount(ids, weights=coords[:, a], minlength=n) for a in range(3)],
                        1) / sizes[:, None]
    maj = majority_labels(ids, lab[fg], n)
    order = np.argsort(-sizes, kind="stable")
    order = order[sizes[order] >= min_size]
    if min_separation_vox > 0 and len(order):
        order = order[greedy_exclusion(centroid[order], min_separation_vox / 2.0)]
    return Detections.make(centroid[order], maj[order], sizes[order], sizes[order])


def filter_min_size(det: Detections, min_size: Mapping[int, int] | int) -> Detections:
    """Drop objects smaller than a size threshold of their label (DeepFinder's ``sizeThr``).

    Parameters
    ----------
    det : Detections
        Objects with sizes (voxels).
    min_size : mapping of int to int, or int
        Label -> smallest size kept (labels not listed: kept), or one size for all labels.

    Returns
    -------
    Detections
        The objects with ``size >= min_size`` of their label, in order.
    """
    if isinstance(min_size, Mapping):
        thr = np.array([int(min_size.get(int(c), 0)) for c in det.label], dtype=np.int64)
    else:
        thr = np.full(len(det), int(min_size), dtype=np.int64)
    return det.take(det.size >= thr)
