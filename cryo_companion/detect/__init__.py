"""The detection layer every method shares: tomogram-scale maps -> detections.

* :mod:`.detections` - :class:`Detections`, the table every detector returns (centres z-y-x in
  voxels, integer labels >= 1, scores, sizes).
* :mod:`.tiling` - a tile-wise network applied to a whole tomogram with overlapping tiles
  (:func:`tiled_map`), boxes cut at centres, maps binned by averaging.
* :mod:`.peaks` - greedy peaks of a score map (PyTom's candidate extraction, YOPO's minimum
  distance) and greedy exclusion by radii (SHREC 2020's TM-F).
* :mod:`.clusters` - label maps to objects: mean-shift (DeepFinder), connected components
  (UMC), majority class, size thresholds.
* :mod:`.template_matching` - locally normalised FFT cross-correlation over sampled rotations,
  CTF-modulated templates, spherical masks, rotation sets and the Crowther step.

Generic: nothing here knows a paper; class names, recipes and selection rules live in
``cryo_companion.papers``.
"""
from cryo_companion.detect.clusters import (
    connected_components,
    filter_min_size,
    majority_labels,
    mean_shift_clusters,
)
from cryo_companion.detect.detections import Detections
from cryo_companion.detect.peaks import ball_offsets, find_peaks, greedy_exclusion
from cryo_companion.detect.tiling import bin_mean, extract_boxes, tile_starts, tiled_map

__all__ = [
    "Detections",
    "ball_offsets",
    "bin_mean",
    "connected_components",
    "extract_boxes",
    "filter_min_size",
    "find_peaks",
    "greedy_exclusion",
    "majority_labels",
    "mean_shift_clusters",
    "tile_starts",
    "tiled_map",
]
