"""Label maps to objects: connected components, mean shift, majority class, size thresholds."""
from __future__ import annotations

import numpy as np
import pytest

from cryo_companion.detect.clusters import (
    connected_components,
    filter_min_size,
    majority_labels,
    mean_shift_clusters,
)
from cryo_companion.detect.detections import Detections


def _hand_map() -> np.ndarray:
    lab = np.zeros((12, 12, 20), dtype=np.int16)
    lab[1:4, 1:4, 1:4] = 2          # 27 voxels of class 2 ...
    lab[1, 1, 1:3] = 5              # ... two of which say 5: the majority stays 2
    lab[6:10, 6:10, 2:6] = 7        # 64 voxels of class 7
    lab[10, 10, 15] = 3             # a single voxel: under min_size
    lab[2:5, 2:5, 10:12] = 4        # 18 voxels at centroid (3, 3, 10.5) ...
    lab[2:4, 2:4, 13:14] = 9        # ... and 4 voxels at (2.5, 2.5, 13): 2.6 voxels away
    return lab


def test_connected_components_by_hand() -> None:
    det = connected_components(_hand_map(), min_size=2, min_separation_vox=0)
    # by decreasing size: 64, 27, 18, 4 (the single voxel is dropped)
    assert det.size.tolist() == [64, 27, 18, 4]
    assert det.label.tolist() == [7, 2, 4, 9]
    np.testing.assert_allclose(det.zyx[0], [7.5, 7.5, 3.5])
    np.testing.assert_allclose(det.zyx[1], [2.0, 2.0, 2.0])
    np.testing.assert_allclose(det.zyx[3], [2.5, 2.5, 13.0])
    assert det.score.tolist() == [64, 27, 18, 4]


def test_connected_components_separation_keeps_the_larger() -> None:
    det = connected_components(_hand_map(), min_size=2, min_separation_vox=5)
    assert det.size.tolist() == [64, 27, 18]            # the 4-voxel one sat 2.6 from the 18
    det = connected_components(_hand_map(), min_size=10, min_separation_vox=5)
    assert det.size.tolist() == [64, 27, 18]
    assert len(connected_components(np.zeros((3, 3, 3), dtype=np.int8))) == 0


def test_connected_components_are_face_connected() -> None:
    lab = np.zeros((3, 3, 3), dtype=np.int8)
    lab[0, 0, 0] = lab[1, 1, 1] = 1                      # touching at a corner only
    assert len(connected_components(lab)) == 2


def test_bad_label_maps_are_refused() -> None:
    with pytest.raises(ValueError, match="integer"):
        connected_components(np.zeros((3, 3, 3)))
    with pytest.raises(ValueError, match="negative"):
        connected_components(-np.ones((3, 3, 3), dtype=np.int8))


def test_majority_ties_go_to_the_smaller_label() -> None:
    out = majority_labels(np.array([0, 0, 1, 1, 1]), np.array([3, 2, 4, 4, 1]), 3)
    assert out.tolist() == [2, 4, 0]


def test_mean_shift_finds_two_blobs() -> None:
    lab = np.zeros((20, 20, 30), dtype=np.int8)
    z, y, x = np.indices(lab.shape)
    lab[(z - 6) ** 2 + (y - 6) ** 2 + (x - 6) ** 2 <= 9] = 3
    lab[(z - 12) ** 2 + (y - 13) ** 2 + (x - 22) ** 2 <= 9] = 5
    lab[12, 13, 22] = 1                                  # one odd voxel inside the second blob
    det = mean_shift_clusters(lab, bandwidth=5)
    assert len(det) == 2
    order = np.argsort(det.zyx[:, 2])
    np.testing.assert_allclose(det.zyx[order], [[6, 6, 6], [12, 13, 22]], atol=0.5)
    assert det.label[order].tolist() == [3, 5]
    n = int(((z - 6) ** 2 + (y - 6) ** 2 + (x - 6) ** 2 <= 9).sum())
    assert det.size[order].tolist() == [n, n]
    assert len(mean_shift_clusters(np.zeros((4, 4, 4), dtype=np.int8), 2)) == 0


def test_filter_min_size_per_label() -> None:
    det = Detections.make(np.zeros((4, 3)), [1, 1, 2, 3], size=[5, 20, 5, 1])
    assert filter_min_size(det, {1: 10, 2: 5}).size.tolist() == [20, 5, 1]
    assert filter_min_size(det, 5).size.tolist() == [5, 20, 5]
