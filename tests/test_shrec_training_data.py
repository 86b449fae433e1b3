"""The networks' training samples cut from a model of the benchmark's layout."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cryo_companion.papers.shrec2020 import training_data as td
from cryo_companion.papers.shrec2020.dataset import ShrecModel
from cryo_companion.papers.shrec2020.layout import write_model


def _model() -> ShrecModel:
    rng = np.random.default_rng(0)
    occ = np.zeros((20, 40, 40), dtype=np.int16)
    cm = np.zeros_like(occ)
    occ[8:13, 8:13, 8:13], cm[8:13, 8:13, 8:13] = 1, 12
    occ[6:9, 28:31, 20:23], cm[6:9, 28:31, 20:23] = 2, 1
    rec = rng.normal(size=(30, 40, 40)).astype(np.float32)
    rec[5:25][occ > 0] -= 3.0                                  # mass dark, in slices 5-24
    gm = (occ > 0).astype(np.float32) * 2.5 + 4.5
    parts = [{"pdb": "4d8q", "xyz": [10, 10, 10], "zxz_deg": [0, 0, 0]},
             {"pdb": "1s3x", "xyz": [21, 29, 7], "zxz_deg": [0, 0, 0]}]
    return ShrecModel(index=3, reconstruction=rec, grandmodel=gm, grandmodel_noisefree=gm,
                      class_mask=cm, occupancy=occ, particles=parts)


@pytest.fixture()
def volumes(tmp_path) -> td.ModelVolumes:
    write_model(tmp_path, _model(), 10.0, {"recipe": {}})
    return td.read_model_volumes(tmp_path / "model_3")


def test_read_model_volumes_crops_the_ground_truth_slices(volumes: td.ModelVolumes) -> None:
    m = _model()
    assert volumes.tomogram.shape == (20, 40, 40)
    np.testing.assert_array_equal(volumes.tomogram.numpy(), m.reconstruction[5:25])
    assert volumes.labels.tolist() == [12, 1]
    np.testing.assert_array_equal(volumes.centres_zyx, [[10, 10, 10], [7, 29, 21]])
    assert volumes.voxel_size_A == pytest.approx(10.0)
    assert int(volumes.class_mask[10, 10, 10]) == 12


def test_deepfinder_batches_hold_particles_and_repeat_with_a_seed(volumes) -> None:
    g = torch.Generator().manual_seed(0)
    x, y = td.deepfinder_batch([volumes], 6, g, patch=16, shift_vox=3)
    assert x.shape == (6, 1, 16, 16, 16) and y.shape == (6, 16, 16, 16)
    assert y.dtype == torch.int64 and (y > 0).any(dim=(1, 2, 3)).all()
    torch.testing.assert_close(x.mean(dim=(1, 2, 3, 4)), torch.zeros(6), atol=1e-5, rtol=0)
    x2, y2 = td.deepfinder_batch([volumes], 6, torch.Generator().manual_seed(0), patch=16,
                                 shift_vox=3)
    torch.testing.assert_close(x, x2)
    assert torch.equal(y, y2)
    with pytest.raises(ValueError, match="smaller"):
        td.deepfinder_batch([volumes], 1, g, patch=24)


def test_yopo_boxes_particles_then_background(volumes) -> None:
    x, y = td.yopo_boxes([volumes], 5, torch.Generator().manual_seed(1), box=8)
    assert x.shape == (7, 1, 8, 8, 8) and y.tolist() == [12, 1, 0, 0, 0, 0, 0]
    std = (volumes.tomogram - volumes.tomogram.mean()) / volumes.tomogram.std()
    torch.testing.assert_close(x[0, 0, 4, 4, 4], std[10, 10, 10])   # centre of an even box: 4
    assert (x[2:, 0, 4, 4, 4] != 0).all()


def test_umc_grid_and_flipped_batches(volumes) -> None:
    corners = td.umc_corners(volumes.tomogram.shape, patch=16, stride=4)
    assert corners[0] == (0, 0, 0) and corners[-1] == (4, 24, 24)
    assert len(corners) == 2 * 7 * 7
    x, d, y = td.umc_batch([volumes], [(0, c) for c in corners[:5]],
                           torch.Generator().manual_seed(2), patch=16)
    assert x.shape == d.shape == (5, 1, 16, 16, 16) and y.shape == (5, 16, 16, 16)
    # the flips move input, denoising target and labels together
    for k in range(5):
        assert torch.equal((d[k, 0] > d[k, 0].min()), y[k] > 0)
    with pytest.raises(ValueError, match="no patches"):
        td.umc_batch([volumes], [], torch.Generator())
