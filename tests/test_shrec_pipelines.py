"""The methods' inference on hand-made maps (a stand-in network that reads the label map back
from its input), on real networks at small size, and the detector weights files."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from cryo_companion.models import deepfinder as df
from cryo_companion.models import umc as um
from cryo_companion.models import yopo as yp
from cryo_companion.papers.shrec2020 import pipelines as pl


class _LabelReader(nn.Module):
    """Logits that pick, per voxel, the class whose (standardised) value the input has."""

    def __init__(self, volume: torch.Tensor, n_classes: int, *, box: int = 24,
                 outputs: int | None = None) -> None:
        super().__init__()
        v = volume.float()
        values = (torch.arange(n_classes, dtype=torch.float32) - v.mean()) / v.std()
        self.register_buffer("values", values.reshape(1, -1, 1, 1, 1))
        self.cfg = SimpleNamespace(n_classes=n_classes, box=box,
                                   outputs=(1, n_classes) if outputs else None)
        self.cascade = outputs is not None

    def forward(self, x: torch.Tensor):
        logits = -100.0 * (x - self.values) ** 2
        return (x, logits) if self.cascade else logits

    def dense(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[-1]
        b = self.cfg.box
        return self.forward(x[:, :, b // 2:t - b // 2 + 1, b // 2:t - b // 2 + 1,
                              b // 2:t - b // 2 + 1])


def _blobs() -> tuple[torch.Tensor, list[tuple[tuple[int, int, int], int]]]:
    lab = torch.zeros(24, 40, 40)
    z, y, x = torch.meshgrid(*(torch.arange(s) for s in lab.shape), indexing="ij")
    truth = [((8, 9, 10), 3), ((15, 28, 30), 7), ((12, 10, 30), 12)]
    for (cz, cy, cx), k in truth:
        lab[(z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= 9] = float(k)
    return lab, truth


def _check(det, truth, atol: float) -> None:
    assert len(det) == len(truth)
    for (c, k) in truth:
        d = np.sqrt(((det.zyx - np.array(c)) ** 2).sum(1))
        j = int(np.argmin(d))
        assert d[j] <= atol and det.label[j] == k, (c, k, det.zyx, det.label)


def test_umc_pipeline_on_a_hand_made_label_map() -> None:
    vol, truth = _blobs()
    vol[2, 2, 2] = 5.0                                       # a one-voxel speck: under 10 voxels
    net = _LabelReader(vol, 13, outputs=13)
    det = pl.detect_umc(net, vol, tile=16, crop=2)
    _check(det, truth, atol=1e-6)
    assert det.size.tolist() == [123, 123, 123]


def test_deepfinder_pipeline_bins_clusters_and_scales_back() -> None:
    vol, truth = _blobs()
    net = _LabelReader(vol, 13)
    det = pl.detect_deepfinder(net, vol, tile=16, crop=2, bandwidth_vox=3.0)
    _check(det, truth, atol=1.0)                             # mode of a binned ball
    big = pl.detect_deepfinder(net, vol, tile=16, crop=2, bandwidth_vox=3.0,
                               min_size={3: 1000})
    assert 3 not in big.label.tolist() and len(big) == 2


def test_yopo_pipeline_threshold_and_minimum_distance() -> None:
    vol, truth = _blobs()
    net = _LabelReader(vol, 13, box=8)
    det = pl.detect_yopo(net, vol, tile=20, min_distance_vox=6.0)
    # every voxel of a ball is a confident detection: the greedy peaks keep one per ball
    # (the first in scan order among equal scores, within its 3-voxel radius)
    _check(det, truth, atol=3.0)
    assert (det.score > 0.99).all()


def test_real_networks_run_end_to_end_at_small_size() -> None:
    g = torch.Generator().manual_seed(0)
    vol = torch.randn(16, 20, 24, generator=g)
    d = pl.detect_deepfinder(df.DeepFinder(df.DeepFinderConfig(n_classes=13)), vol, tile=24,
                             crop=2, bandwidth_vox=3.0)
    u = pl.detect_umc(um.UMC(um.UMCConfig(widths=(2, 4, 8), outputs=(1, 13), patch=16)), vol,
                      tile=16, crop=2)
    y = pl.detect_yopo(yp.YOPO(yp.YOPOConfig(widths=(2, 3), fc_width=4, box=8)).eval(), vol,
                       tile=16, threshold=0.0, min_distance_vox=4.0)
    for det in (d, u, y):
        assert ((det.label >= 1) & (det.label <= 12)).all()
        assert ((det.zyx >= -0.5) & (det.zyx <= np.array(vol.shape) - 0.5)).all()
    assert len(y) > 0


def test_detector_files_round_trip(tmp_path) -> None:
    net = um.UMC(um.UMCConfig(widths=(2, 4), outputs=(1, 13), patch=16),
                 generator=torch.Generator().manual_seed(1))
    path = pl.save_detector(tmp_path / "umc.pt", "umc", net, voxel_size_A=10.0,
                            postprocess={"min_size": 3}, meta={"seed": 1})
    method, back, info = pl.load_detector(path)
    assert method == "umc" and info["voxel_size_A"] == 10.0
    assert info["postprocess"] == {"min_size": 3} and info["meta"] == {"seed": 1}
    for a, b in zip(net.state_dict().values(), back.state_dict().values()):
        torch.testing.assert_close(a, b)
    (tmp_path / "junk.pt").write_bytes(b"not torch")
    with pytest.raises(ValueError, match="not a weights file"):
        pl.load_detector(tmp_path / "junk.pt")
    torch.save({"a": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a detector file"):
        pl.load_detector(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError):
        pl.load_detector(tmp_path / "none.pt")
    with pytest.raises(ValueError, match="unknown method"):
        pl.save_detector(tmp_path / "x.pt", "resnet", net, voxel_size_A=10.0)
