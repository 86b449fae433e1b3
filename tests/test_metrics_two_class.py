"""Target-vs-background scores as SSN3D's authors compute them: hand-worked cases and their code."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cryo_companion.metrics import target_masks_from_scores, two_class_scores


def _hand_case() -> tuple[np.ndarray, np.ndarray]:
    # two "subtomograms" of 8 voxels each, (N, 2, 2, 2)
    true = np.array([[1, 1, 0, 0, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0, 0, 0]], bool)
    pred = np.array([[1, 0, 1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1, 0, 0]], bool)
    return pred.reshape(2, 2, 2, 2), true.reshape(2, 2, 2, 2)


def test_hand_worked_example() -> None:
    # sample 1: TP 1, FP 1, FN 1, TN 5 -> target IoU 1/3, background IoU 5/7, accuracy 6/8
    # sample 2: TP 4, FP 2, FN 0, TN 2 -> target IoU 2/3, background IoU 1/2, accuracy 6/8
    pred, true = _hand_case()
    s = two_class_scores(pred, true, per_subtomogram=True)
    assert s["pixel_accuracy"] == pytest.approx(0.75)
    assert s["target_iou"] == pytest.approx((1 / 3 + 2 / 3) / 2)
    assert s["background_iou"] == pytest.approx((5 / 7 + 1 / 2) / 2)
    assert s["miou"] == pytest.approx(((1 / 3 + 2 / 3) / 2 + (5 / 7 + 1 / 2) / 2) / 2)
    assert s["miou"] == pytest.approx(93 / 168)
    assert s["target_iou_per_subtomogram"] == pytest.approx([1 / 3, 2 / 3])
    assert s["miou_per_subtomogram"] == pytest.approx([(1 / 3 + 5 / 7) / 2, (2 / 3 + 1 / 2) / 2])


def _authors_mean_iou(y_pred: np.ndarray, y_true: np.ndarray) -> float:
    """The released code's formula (xulabs/projects segmentation/FCN.py, meanIoU), on
    (N, voxels) bool arrays: background TN/(N-TP), target TP/(N-TN), each averaged."""
    al = y_pred.shape[1]
    pos = np.sum(y_pred * y_true, axis=1)
    neg = np.sum((~y_pred) * (~y_true), axis=1)
    return float(np.mean([np.mean(neg / (al - pos)), np.mean(pos / (al - neg))]))


def test_matches_the_authors_formula_on_random_masks() -> None:
    rng = np.random.default_rng(0)
    true = rng.random((20, 6, 6, 6)) < 0.2
    pred = true ^ (rng.random((20, 6, 6, 6)) < 0.1)
    s = two_class_scores(torch.as_tensor(pred), torch.as_tensor(true))
    assert s["miou"] == pytest.approx(_authors_mean_iou(pred.reshape(20, -1),
                                                        true.reshape(20, -1)), rel=1e-12)
    assert s["pixel_accuracy"] == pytest.approx(float((pred == true).mean()), rel=1e-12)


def test_scores_give_the_same_as_their_masks_and_ties_are_background() -> None:
    pred, true = _hand_case()
    logits = np.stack([np.where(pred, -1.0, 0.5), np.where(pred, 2.0, 0.0)], axis=1)
    assert logits.shape == (2, 2, 2, 2, 2)
    assert two_class_scores(logits, true) == two_class_scores(pred, true)
    tie = torch.zeros(1, 2, 2, 2, 2)
    assert not bool(target_masks_from_scores(tie).any())


def test_perfect_and_inverted_predictions() -> None:
    true = np.zeros((3, 4, 4, 4), bool)
    true[:, 1:3, 1:3, 1:3] = True
    s = two_class_scores(true, true)
    assert s == {"pixel_accuracy": 1.0, "miou": 1.0, "target_iou": 1.0, "background_iou": 1.0}
    inv = two_class_scores(~true, true)
    assert inv["pixel_accuracy"] == 0.0 and inv["miou"] == 0.0


def test_empty_target_in_both_masks_counts_as_one() -> None:
    true = np.zeros((1, 4, 4, 4), bool)
    s = two_class_scores(true, true)
    assert s["target_iou"] == 1.0 and s["miou"] == 1.0


def test_all_background_prediction_has_the_background_share_as_accuracy() -> None:
    # the trivial segmenter: accuracy = background fraction, target IoU 0, mIoU ~ half of it
    true = np.zeros((2, 10, 10, 10), bool)
    true[:, :2] = True                      # 20 % target
    s = two_class_scores(np.zeros_like(true), true)
    assert s["pixel_accuracy"] == pytest.approx(0.8)
    assert s["target_iou"] == 0.0
    assert s["miou"] == pytest.approx(0.4)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="must both be"):
        two_class_scores(np.zeros((2, 4, 4, 4)), np.zeros((3, 4, 4, 4)))
    with pytest.raises(ValueError, match=r"scores must be \(N, 2, ...\)"):
        two_class_scores(np.zeros((2, 3, 4, 4, 4)), np.zeros((2, 4, 4, 4)))
    with pytest.raises(ValueError, match="N >= 1"):
        two_class_scores(np.zeros((0, 4, 4, 4)), np.zeros((0, 4, 4, 4)))
