"""Metrics against hand-worked examples, properties, and statistics over seeds."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cryo_companion.metrics import (
    accuracy,
    confusion_matrix,
    difference_ci,
    mean_std,
    per_class_accuracy,
    segmentation_metrics,
    threshold_sweep,
)


def test_classification_hand_example():
    true = [0, 0, 1, 1, 2, 3]
    pred = [0, 1, 1, 1, 0, 3]
    assert accuracy(pred, true) == pytest.approx(4 / 6)
    cm = confusion_matrix(pred, true, 4)
    assert cm == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]]
    assert per_class_accuracy(pred, true, 4) == [0.5, 1.0, 0.0, 1.0]
    assert per_class_accuracy([0, 0], [0, 0], 3) == [1.0, None, None]


def test_classification_bad_input():
    with pytest.raises(ValueError, match="equal length"):
        accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="empty"):
        accuracy([], [])
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        confusion_matrix([0, 2], [0, 1], 2)


def test_segmentation_hand_example():
    # two "subtomograms" of 4 voxels each
    true = np.array([[1, 1, 0, 0], [0, 0, 0, 1]], bool)
    pred = np.array([[1, 0, 0, 0], [0, 0, 1, 1]], bool)
    m = segmentation_metrics(pred, true)
    assert m["pixel_accuracy"] == pytest.approx(6 / 8)
    # target IoU: 1/2 and 1/2 -> mean 1/2; pooled: (1+1)/(2+2)
    assert m["miou"] == pytest.approx(0.5)
    assert m["iou_pooled"] == pytest.approx(0.5)
    # background IoU: 2/3 and 2/3 -> fg/bg mean (1/2 + 2/3)/2
    assert m["miou_fg_bg"] == pytest.approx((0.5 + 2 / 3) / 2)


def test_per_sample_mean_differs_from_pooled():
    true = np.array([[1, 0, 0, 0], [1, 1, 1, 1]], bool)
    pred = np.array([[0, 1, 0, 0], [1, 1, 1, 1]], bool)
    m = segmentation_metrics(pred, true)
    assert m["miou"] == pytest.approx(0.5)                 # (0 + 1) / 2
    assert m["iou_pooled"] == pytest.approx(4 / 6)         # 4 / (2 + 4)


def test_empty_masks_count_as_perfect():
    z = np.zeros((1, 8), bool)
    assert segmentation_metrics(z, z)["miou"] == 1.0


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 5), st.integers(1, 30))
def test_segmentation_properties(seed, n, v):
    rng = np.random.default_rng(seed)
    a, b = rng.random((n, v)) < 0.5, rng.random((n, v)) < 0.3
    m, ms = segmentation_metrics(a, b), segmentation_metrics(b, a)
    for k in m:
        assert 0.0 <= m[k] <= 1.0
        assert m[k] == pytest.approx(ms[k])                 # symmetric in the two masks
    same = segmentation_metrics(a, a)
    assert all(x == 1.0 for x in same.values())
    assert segmentation_metrics(a, ~a)["pixel_accuracy"] == 0.0


def test_threshold_sweep_consistent_with_direct():
    g = torch.Generator().manual_seed(0)
    prob = torch.rand(5, 6, 6, 6, generator=g)
    true = torch.rand(5, 6, 6, 6, generator=g) > 0.6
    sw = threshold_sweep(prob, true, [0.2, 0.5, 0.8], chunk=2)
    for i, t in enumerate([0.2, 0.5, 0.8]):
        d = segmentation_metrics(prob > t, true)
        for k in d:
            assert sw[k][i] == pytest.approx(d[k])
    # higher threshold: fewer predicted voxels -> pixel accuracy of an all-background truth rises
    sw0 = threshold_sweep(prob, torch.zeros_like(true), [0.2, 0.5, 0.8])
    assert sw0["pixel_accuracy"] == sorted(sw0["pixel_accuracy"])
    with pytest.raises(ValueError, match="thresholds"):
        threshold_sweep(prob, true, [0.0])


def test_mean_std():
    r = mean_std([1.0, 2.0, 3.0])
    assert r == {"mean": 2.0, "std": 1.0, "n": 3}
    assert mean_std([5.0])["std"] is None
    with pytest.raises(ValueError):
        mean_std([])


def test_difference_ci_t_matches_scipy_welch():
    from scipy import stats

    a, b = [0.80, 0.83, 0.78, 0.82], [0.60, 0.65, 0.55]
    r = difference_ci(a, b, method="t")
    ref = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert r["diff"] == pytest.approx(np.mean(a) - np.mean(b))
    assert (r["low"], r["high"]) == pytest.approx((ref.low, ref.high))


def test_difference_ci_bootstrap():
    a, b = [0.80, 0.83, 0.78, 0.82], [0.60, 0.65, 0.55]
    r = difference_ci(a, b, method="bootstrap", n_boot=2000, seed=1)
    assert r["low"] <= r["diff"] <= r["high"]
    assert r == difference_ci(a, b, method="bootstrap", n_boot=2000, seed=1)
    # the bootstrap interval lies inside the range of possible differences
    assert r["low"] >= min(a) - max(b) and r["high"] <= max(a) - min(b)
    with pytest.raises(ValueError, match="at least 2"):
        difference_ci([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="method"):
        difference_ci(a, b, method="z")
