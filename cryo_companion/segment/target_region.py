"""Unsupervised segmentation of the centre target of a subtomogram, after Xu & Alber 2013.

SSN3D's baseline (Liu et al. 2018, [20]: Xu & Alber, Bioinformatics 29(13) i274, 2013) is
described there as "manually designed heuristic rules on over-segmenting, thresholding, and
model based clustering", whose clustering "assumes that the shape of a structural region
cluster to be spherical". This module reimplements that description with scikit-image and
scikit-learn; the original code is not used. Every step and its choice:

1. **Contrast.** Structure is made bright: ``contrast="dark"`` (a raw reconstruction, mass
   dark) flips the sign. Each volume is standardised (zero mean, unit variance).
2. **Smoothing.** Gaussian filter of ``sigma_vox`` voxels (default 2): the noise of a
   subtomogram has most of its power at high frequency; the targets are several voxels across.
3. **Over-segmentation.** Watershed (:func:`skimage.segmentation.watershed`) of the negated
   smoothed volume from markers at its local maxima (:func:`skimage.feature.peak_local_max`,
   at least ``min_distance_vox`` apart): every density peak gets its own small segment.
4. **Thresholding.** Voxels whose smoothed value exceeds Otsu's threshold of the volume
   (:func:`skimage.filters.threshold_otsu`) are structural; a segment keeps its structural
   voxels, and segments with fewer than ``min_segment_vox`` of them are dropped.
5. **Model-based clustering.** A Gaussian mixture with *spherical* covariances
   (:class:`sklearn.mixture.GaussianMixture`, ``covariance_type="spherical"``) is fitted to the
   coordinates of the structural voxels (at most ``max_points``, drawn at random), for 1 to
   ``max_clusters`` components (k-means++ initialisation, one start); the number with the lowest
   BIC is kept. Each segment joins the component that most of its voxels belong to, so
   segments are never split.
6. **The region of the centre.** The target is the union of the segments of the component
   whose mean is nearest to the box centre ``(D − 1) / 2``.

Same input, same seed: same mask.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import ndimage
from skimage.feature import peak_local_max
from skimage.filters import threshold_otsu
from skimage.segmentation import watershed
from sklearn.mixture import GaussianMixture

from cryo_companion._progress import progress as progress_bar

__all__ = ["CONTRASTS", "TargetSegmentation", "segment_target", "segment_targets"]

#: Valid values of ``contrast``: the sign of mass in the input.
CONTRASTS = ("dark", "bright")


@dataclass(frozen=True)
class TargetSegmentation:
    """The parameters of :func:`segment_target` (module docstring, steps 2 to 5).

    Attributes
    ----------
    sigma_vox : float
        Standard deviation of the Gaussian smoothing (voxels).
    min_distance_vox : int
        Least distance between two watershed markers (voxels).
    min_segment_vox : int
        Segments with fewer structural voxels are dropped.
    max_clusters : int
        Largest number of mixture components tried.
    max_points : int
        Structural voxels the mixture is fitted to, at most.
    """

    sigma_vox: float = 2.0
    min_distance_vox: int = 2
    min_segment_vox: int = 4
    max_clusters: int = 6
    max_points: int = 4000

    def __post_init__(self) -> None:
        """Refuse parameters the method cannot use."""
        if not self.sigma_vox >= 0:
            raise ValueError(f"sigma_vox must be >= 0, got {self.sigma_vox}")
        if self.min_distance_vox < 1 or self.min_segment_vox < 1:
            raise ValueError("min_distance_vox and min_segment_vox must be >= 1, got "
                             f"{self.min_distance_vox}, {self.min_segment_vox}")
        if self.max_clusters < 1 or self.max_points < 10:
            raise ValueError(f"need max_clusters >= 1 and max_points >= 10, got "
                             f"{self.max_clusters}, {self.max_points}")

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-able form."""
        return asdict(self)


def _check_volume(volume: np.ndarray, contrast: str) -> None:
    if contrast not in CONTRASTS:
        raise ValueError(f"contrast {contrast!r} is unknown; valid: {', '.join(CONTRASTS)}")
    if volume.ndim != 3 or len(set(volume.shape)) != 1 or volume.shape[0] < 4:
        raise ValueError(f"volume must be a cube (D, D, D) with D >= 4, got {volume.shape}")
    if not np.isfinite(volume).all():
        raise ValueError("volume contains NaN or infinite values")


def segment_target(volume: np.ndarray, *, contrast: str = "dark",
                   params: TargetSegmentation | None = None, seed: int = 0) -> np.ndarray:
    """Segment the complex at the centre of one subtomogram (module docstring).

    Parameters
    ----------
    volume : numpy.ndarray
        `(D, D, D)` subtomogram, z-y-x, centred on the target.
    contrast : str
        ``"dark"`` (mass darker than ice, a raw reconstruction) or ``"bright"``.
    params : TargetSegmentation or None
        The method's parameters (None: the defaults).
    seed : int
        Seed of the point subsample and of the mixture's initialisation.

    Returns
    -------
    numpy.ndarray
        `(D, D, D)` bool, True on the voxels of the target; all False when nothing in the
        volume rises above the threshold.
    """
    v = np.asarray(volume, dtype=np.float64)
    _check_volume(v, contrast)
    p = params or TargetSegmentation()
    if contrast == "dark":
        v = -v
    sd = v.std()
    v = (v - v.mean()) / (sd if sd > 0 else 1.0)
    s = ndimage.gaussian_filter(v, p.sigma_vox) if p.sigma_vox > 0 else v
    D = v.shape[0]
    empty = np.zeros(v.shape, dtype=bool)
    if float(s.max()) <= float(s.min()):
        return empty
    # 3. over-segmentation: one basin per local maximum of the smoothed density
    peaks = peak_local_max(s, min_distance=p.min_distance_vox, exclude_border=False)
    markers = np.zeros(v.shape, dtype=np.int64)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    seg = watershed(-s, markers)
    # 4. thresholding: structural voxels above Otsu's threshold; small segments dropped
    seg = np.where(s > threshold_otsu(s), seg, 0)
    ids, sizes = np.unique(seg[seg > 0], return_counts=True)
    ids = ids[sizes >= p.min_segment_vox]
    if ids.size == 0:
        return empty
    seg = np.where(np.isin(seg, ids), seg, 0)
    # 5. spherical Gaussian mixture on the structural voxels' coordinates, k by BIC
    pts = np.argwhere(seg > 0).astype(np.float64)
    rng = np.random.default_rng(seed)
    fit_pts = pts if len(pts) <= p.max_points else pts[rng.choice(len(pts), p.max_points,
                                                                  replace=False)]
    best, best_bic = None, math.inf
    for k in range(1, min(p.max_clusters, len(fit_pts)) + 1):
        gm = GaussianMixture(k, covariance_type="spherical", init_params="k-means++",
                             random_state=seed).fit(fit_pts)
        bic = gm.bic(fit_pts)
        if bic < best_bic:
            best, best_bic = gm, bic
    assert best is not None
    comp = best.predict(pts)
    seg_of = seg[tuple(pts.astype(np.int64).T)]
    # each segment joins the component most of its voxels belong to
    votes = np.zeros((int(seg.max()) + 1, best.n_components), dtype=np.int64)
    np.add.at(votes, (seg_of, comp), 1)
    seg_comp = votes.argmax(axis=1)
    # 6. the component nearest to the box centre
    centre = np.full(3, (D - 1) / 2)
    target = int(np.argmin(((best.means_ - centre) ** 2).sum(axis=1)))
    keep = np.flatnonzero((seg_comp == target) & (votes.sum(axis=1) > 0))
    return np.isin(seg, keep[keep > 0])


def segment_targets(volumes: np.ndarray, *, contrast: str = "dark",
                    params: TargetSegmentation | None = None, seed: int = 0,
                    progress: bool = True) -> np.ndarray:
    """Segment the centre target of every subtomogram of a set (:func:`segment_target`).

    Parameters
    ----------
    volumes : numpy.ndarray
        `(N, D, D, D)` subtomograms, z-y-x.
    contrast : str
        ``"dark"`` or ``"bright"`` (the sign of mass).
    params : TargetSegmentation or None
        The method's parameters.
    seed : int
        Base seed; subtomogram ``i`` uses ``seed + i``.
    progress : bool
        Progress bar on a terminal.

    Returns
    -------
    numpy.ndarray
        `(N, D, D, D)` bool target masks.

    Raises
    ------
    ValueError
        ``volumes`` is not `(N, D, D, D)` or holds NaN or infinite values, or ``contrast`` is not
        one of :data:`CONTRASTS`.
    """
    vols = np.asarray(volumes)
    if vols.ndim != 4:
        raise ValueError(f"volumes must be (N, D, D, D), got {vols.shape}")
    if contrast not in CONTRASTS:
        raise ValueError(f"contrast {contrast!r} is unknown; valid: {', '.join(CONTRASTS)}")
    if not np.isfinite(vols).all():
        bad = np.flatnonzero(~np.isfinite(vols.reshape(len(vols), -1)).all(axis=1))
        raise ValueError(f"volumes {bad[:10].tolist()} contain NaN or infinite values")
    out = np.zeros(vols.shape, dtype=bool)
    for i in progress_bar(range(len(vols)), desc="Xu 2013 segmentation", show=progress):
        out[i] = segment_target(vols[i], contrast=contrast, params=params, seed=seed + i)
    return out
