"""The Xu & Alber 2013 style target segmentation on cases with a known answer."""
from __future__ import annotations

import numpy as np
import pytest

from cryo_companion.segment.target_region import (
    TargetSegmentation,
    segment_target,
    segment_targets,
)

D = 40
_Z, _Y, _X = np.mgrid[:D, :D, :D]
C = (D - 1) / 2


def _ball(cz: float, cy: float, cx: float, r: float) -> np.ndarray:
    return ((_Z - cz) ** 2 + (_Y - cy) ** 2 + (_X - cx) ** 2) <= r * r


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.mark.parametrize("noise", [0.0, 0.5])
def test_two_blobs_the_centre_one_is_found_the_neighbour_excluded(noise: float) -> None:
    target, neighbour = _ball(C, C, C, 6), _ball(C, C + 1, C + 14, 5)
    rng = np.random.default_rng(1)
    vol = -(target * 1.0 + neighbour * 1.0) + noise * rng.standard_normal((D, D, D))
    m = segment_target(vol, contrast="dark", seed=0)
    assert _iou(m, target) > 0.6
    assert (m & neighbour).sum() < 0.05 * neighbour.sum()


def test_contrast_sign_and_off_centre_target() -> None:
    target, neighbour = _ball(C + 2, C - 1, C, 5), _ball(C - 13, C, C, 5)
    bright = target * 1.0 + neighbour * 1.0
    m = segment_target(bright, contrast="bright", seed=0)
    assert _iou(m, target) > 0.6 and not (m & neighbour).any()
    assert np.array_equal(m, segment_target(-bright, contrast="dark", seed=0))
    # the wrong sign segments the background, not the target
    assert _iou(segment_target(bright, contrast="dark", seed=0), target) < 0.2


def test_flat_volume_has_no_target_and_same_seed_same_mask() -> None:
    assert not segment_target(np.zeros((16, 16, 16)), contrast="bright").any()
    rng = np.random.default_rng(0)
    vol = -1.0 * _ball(C, C, C, 6) + 0.8 * rng.standard_normal((D, D, D))
    assert np.array_equal(segment_target(vol, seed=3), segment_target(vol, seed=3))


def test_batch_and_parameters() -> None:
    vols = np.stack([-1.0 * _ball(C, C, C, 6), -1.0 * _ball(C, C, C, 4)]).astype(np.float32)
    masks = segment_targets(vols, contrast="dark", progress=False)
    assert masks.shape == vols.shape and masks.dtype == bool
    assert masks[0].sum() > masks[1].sum() > 0
    assert TargetSegmentation(sigma_vox=1.0).to_dict()["sigma_vox"] == 1.0


def test_bad_input() -> None:
    vol = np.zeros((D, D, D))
    with pytest.raises(ValueError, match="contrast 'grey' is unknown; valid: dark, bright"):
        segment_target(vol, contrast="grey")
    with pytest.raises(ValueError, match=r"cube \(D, D, D\)"):
        segment_target(np.zeros((8, 8, 9)))
    bad = vol.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        segment_target(bad)
    with pytest.raises(ValueError, match=r"volumes \[1\] contain NaN"):
        segment_targets(np.stack([vol, bad]), progress=False)
    with pytest.raises(ValueError, match=r"\(N, D, D, D\)"):
        segment_targets(vol, progress=False)
    with pytest.raises(ValueError, match="sigma_vox"):
        TargetSegmentation(sigma_vox=-1.0)
