"""Tiling: a tile-wise network stitched back equals the network on the whole volume."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cryo_companion.detect.tiling import bin_mean, extract_boxes, tile_starts, tiled_map


def test_tile_starts_cover_and_end_at_the_edge() -> None:
    assert tile_starts(10, 4, 4) == [0, 4, 6]
    assert tile_starts(8, 4, 4) == [0, 4]
    assert tile_starts(4, 4, 2) == [0]
    assert tile_starts(9, 4, 2) == [0, 2, 4, 5]
    with pytest.raises(ValueError, match="does not fit"):
        tile_starts(3, 4, 4)
    with pytest.raises(ValueError, match="stride"):
        tile_starts(10, 4, 5)


@pytest.mark.parametrize("tile, crop, stride", [(8, 0, None), (8, 2, None), (10, 1, 3),
                                                (16, 3, None)])
def test_identity_network_gives_back_the_volume(tile: int, crop: int, stride: int | None,
                                                device: torch.device) -> None:
    g = torch.Generator().manual_seed(0)
    vol = torch.randn(7, 11, 13, generator=g).to(device)
    out = tiled_map(vol, lambda x: x, 1, tile=tile, crop=crop, stride=stride, batch_size=3)
    assert out.shape == (1, 7, 11, 13) and out.device == vol.device
    torch.testing.assert_close(out[0], vol)


def test_crop_removes_the_tile_border_artefacts_of_a_padded_filter() -> None:
    # A 3x3x3 box filter with zero padding is wrong within one voxel of a tile face; with
    # crop = 1 the stitched map equals the filter applied to the whole (zero-padded) volume.
    vol = torch.randn(12, 14, 9, generator=torch.Generator().manual_seed(1))

    def box(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool3d(x, 3, stride=1, padding=1, count_include_pad=True)

    whole = box(vol[None, None])[0]
    torch.testing.assert_close(tiled_map(vol, box, 1, tile=8, crop=1), whole)
    assert not torch.allclose(tiled_map(vol, box, 1, tile=8, crop=0), whole)


def test_valid_network_margin_maps_outputs_to_their_input_voxels() -> None:
    # YOPO's dense form: output j of a tile starting at s is the box centred at s + 12
    vol = torch.randn(30, 26, 28, generator=torch.Generator().manual_seed(2))

    def centre(x: torch.Tensor) -> torch.Tensor:
        t = x.shape[-1]
        return x[:, :, 12:t - 11, 12:t - 11, 12:t - 11] * 2.0

    out = tiled_map(vol, centre, 1, tile=32, margin=(12, 11))
    torch.testing.assert_close(out[0], 2.0 * vol)


def test_several_channels_and_a_wrong_output_shape() -> None:
    vol = torch.arange(6 * 6 * 6, dtype=torch.float32).reshape(6, 6, 6)
    out = tiled_map(vol, lambda x: torch.cat([x, -x], 1), 2, tile=4)
    torch.testing.assert_close(out[1], -vol)
    with pytest.raises(ValueError, match="expected"):
        tiled_map(vol, lambda x: x[:, :, 1:], 1, tile=4)
    with pytest.raises(ValueError, match="no core"):
        tiled_map(vol, lambda x: x, 1, tile=4, crop=2)


def test_extract_boxes_centres_and_zero_padding() -> None:
    vol = torch.arange(5 * 6 * 7, dtype=torch.float32).reshape(5, 6, 7) + 1
    b = extract_boxes(vol, np.array([[2, 3, 3], [0, 0, 0], [2.4, 2.6, 3.5]]), 3)
    assert b.shape == (3, 3, 3, 3)
    torch.testing.assert_close(b[0], vol[1:4, 2:5, 2:5])
    assert float(b[1][0].abs().sum()) == 0 and float(b[1][1, 1, 1]) == float(vol[0, 0, 0])
    torch.testing.assert_close(b[2], vol[1:4, 2:5, 3:6])     # rounded (3.5 -> 4, half to even)
    even = extract_boxes(vol, np.array([[2, 3, 3]]), 4)
    assert float(even[0, 2, 2, 2]) == float(vol[2, 3, 3])     # centre of an even box: index 2
    assert extract_boxes(vol, np.zeros((0, 3)), 3).shape == (0, 3, 3, 3)
    two = extract_boxes(torch.stack([vol, -vol]), np.array([[2, 3, 3]]), 3)
    assert two.shape == (1, 2, 3, 3, 3)


def test_bin_mean_by_hand() -> None:
    m = torch.arange(3 * 2 * 2, dtype=torch.float32).reshape(3, 2, 2)
    b = bin_mean(m, 2)
    assert b.shape == (2, 1, 1)
    assert float(b[0, 0, 0]) == pytest.approx(float(m[:2].mean()))
    assert float(b[1, 0, 0]) == pytest.approx(float(m[2].mean()))   # the partial block alone
    assert bin_mean(m[None].repeat(2, 1, 1, 1), 2).shape == (2, 2, 1, 1)
