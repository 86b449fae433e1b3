"""Peaks and greedy exclusion on hand-made score maps and lists."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cryo_companion.detect.peaks import ball_offsets, find_peaks, greedy_exclusion


def _bumps(shape, centres, heights, sigma=1.5) -> torch.Tensor:
    z, y, x = torch.meshgrid(*(torch.arange(s, dtype=torch.float32) for s in shape),
                             indexing="ij")
    out = torch.zeros(shape)
    for (cz, cy, cx), h in zip(centres, heights):
        out += h * torch.exp(-((z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma**2))
    return out


def test_ball_offsets_counts() -> None:
    assert len(ball_offsets(0)) == 1
    assert len(ball_offsets(1)) == 7
    assert len(ball_offsets(math.sqrt(2))) == 19
    assert len(ball_offsets(math.sqrt(3))) == 27


def test_peaks_in_order_of_height(device: torch.device) -> None:
    m = _bumps((20, 20, 20), [(5, 5, 5), (14, 6, 12), (10, 15, 4)], [1.0, 3.0, 2.0]).to(device)
    det = find_peaks(m, 3, max_peaks=3, label=4)
    np.testing.assert_array_equal(det.zyx, [[14, 6, 12], [10, 15, 4], [5, 5, 5]])
    np.testing.assert_allclose(det.score, [3.0, 2.0, 1.0], rtol=1e-5)
    assert det.label.tolist() == [4, 4, 4]


def test_threshold_and_exclusion_radius() -> None:
    m = _bumps((20, 20, 20), [(5, 5, 5), (5, 5, 8), (15, 15, 15)], [1.0, 0.9, 0.5], sigma=1.0)
    # the second bump lies 3 voxels from the first: a radius of 6 swallows it (and its flanks)
    det = find_peaks(m, 6, threshold=0.45)
    assert det.zyx.tolist() == [[5, 5, 5], [15, 15, 15]]
    det = find_peaks(m, 2, threshold=0.6)
    assert det.zyx.tolist() == [[5, 5, 5], [5, 5, 8]]
    # a radius that leaves a flank: the next "peak" is the first voxel outside the ball
    flank = find_peaks(_bumps((1, 1, 30), [(0, 0, 10)], [1.0], sigma=3.0), 2, max_peaks=3)
    assert flank.zyx[:, 2].tolist() == [10, 7, 13]
    assert len(find_peaks(m, 2, max_peaks=0)) == 0
    with pytest.raises(ValueError, match="max_peaks, threshold"):
        find_peaks(m, 2)


def test_peaks_are_farther_apart_than_the_radius_and_skip_nan() -> None:
    m = torch.rand(16, 16, 16, generator=torch.Generator().manual_seed(3))
    m[0, 0, 0] = float("nan")
    det = find_peaks(m, 4.0, max_peaks=40)
    d = np.sqrt(((det.zyx[:, None] - det.zyx[None]) ** 2).sum(-1))
    assert (d[~np.eye(len(det), dtype=bool)] > 4.0).all()
    assert [0, 0, 0] not in det.zyx.tolist()
    assert (np.diff(det.score) <= 0).all()


def test_greedy_exclusion_by_hand() -> None:
    # x positions 0, 3, 5, 10 with radii 2, 2, 1, 3 (order of preference as listed):
    # 3 is 3 < 2 + 2 from 0: dropped; 5 is 5 >= 2 + 1 from 0: kept; 10 is 5 >= 1 + 3 from 5
    # and 10 >= 2 + 3 from 0: kept.
    zyx = np.array([[0, 0, 0], [0, 0, 3], [0, 0, 5], [0, 0, 10]], dtype=float)
    assert greedy_exclusion(zyx, [2, 2, 1, 3]).tolist() == [0, 2, 3]
    # at exactly the sum (5 = 2 + 3): kept unless inclusive
    assert greedy_exclusion(zyx[[0, 2]], [2, 3]).tolist() == [0, 1]
    assert greedy_exclusion(zyx[[0, 2]], [2, 3], inclusive=True).tolist() == [0]
    assert greedy_exclusion(zyx[[0, 2]], [2.6, 2.6]).tolist() == [0]
    # a dropped item blocks nothing
    line = np.array([[0, 0, 0], [0, 0, 2], [0, 0, 4]], dtype=float)
    assert greedy_exclusion(line, 1.5).tolist() == [0, 2]
    assert greedy_exclusion(np.zeros((0, 3)), 1.0).tolist() == []
    with pytest.raises(ValueError):
        greedy_exclusion(line, -1.0)
