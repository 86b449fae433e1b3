"""SHREC 2020's networks: DeepFinder, YOPO, UMC (parameter counts, shapes, dense YOPO) and the
Tversky loss."""
from __future__ import annotations

import pytest
import torch

from cryo_companion.models import deepfinder as df
from cryo_companion.models import umc as um
from cryo_companion.models import yopo as yp
from cryo_companion.models.tversky import tversky_index, tversky_loss


def test_deepfinder_has_the_published_size() -> None:
    net = df.deepfinder(seed=0)
    assert net.n_parameters() == df.parameter_count_formula(net.cfg) == 903_357
    assert abs(net.n_parameters() - df.APPROX_PARAMETER_COUNT) < 1_000
    small = df.DeepFinder(df.DeepFinderConfig(n_classes=3))
    assert small.n_parameters() == df.parameter_count_formula(small.cfg)


def test_umc_has_the_papers_8_82_million() -> None:
    net = um.umc(seed=0)
    assert net.n_parameters() == um.parameter_count_formula(net.cfg) == 8_822_334
    assert round(net.n_parameters() / 1e6, 2) == um.PAPER_PARAMETERS_M
    three = um.UMCConfig(widths=(4, 8, 16), outputs=(1, 2, 3), patch=16)
    assert um.UMC(three).n_parameters() == um.parameter_count_formula(three)


def test_yopo_size_matches_its_formula() -> None:
    net = yp.yopo(seed=0)
    assert net.cfg.widths == (64, 80, 96, 112, 128, 144, 160, 176, 192, 208)
    assert net.n_parameters() == yp.parameter_count_formula(net.cfg)


def test_deepfinder_shapes_and_input_checks() -> None:
    net = df.DeepFinder(df.DeepFinderConfig(n_classes=4), generator=torch.Generator().manual_seed(0))
    out = net(torch.randn(2, 8, 12, 16))
    assert out.shape == (2, 4, 8, 12, 16)
    with pytest.raises(ValueError, match="divisible by 4"):
        net(torch.randn(1, 1, 10, 12, 12))
    with pytest.raises(ValueError, match="multiple of 4"):
        df.DeepFinderConfig(patch=54)


def test_umc_cascade_outputs_and_the_second_decoder_uses_the_first() -> None:
    cfg = um.UMCConfig(widths=(4, 8, 16), outputs=(1, 5), patch=16)
    net = um.UMC(cfg, generator=torch.Generator().manual_seed(0))
    den, seg = net(torch.randn(2, 1, 8, 12, 16))
    assert den.shape == (2, 1, 8, 12, 16) and seg.shape == (2, 5, 8, 12, 16)
    seg.sum().backward()
    first = net.decoders[0][0].a.weight.grad          # reaches decoder 1 only via its skips
    assert first is not None and float(first.abs().sum()) > 0
    assert net.heads[0].weight.grad is None           # the denoising head does not feed decoder 2
    with pytest.raises(ValueError, match="divisible by 4"):
        net(torch.randn(1, 1, 6, 8, 8))


def test_same_seed_same_weights() -> None:
    a, b = df.deepfinder(seed=3), df.deepfinder(seed=3)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb)
    c = df.deepfinder(seed=4)
    assert not torch.equal(next(a.parameters()), next(c.parameters()))


def _small_yopo() -> yp.YOPO:
    cfg = yp.YOPOConfig(n_classes=4, widths=(3, 4, 5), fc_width=6, box=8)
    net = yp.YOPO(cfg, generator=torch.Generator().manual_seed(1))
    # non-trivial batch-norm statistics, as after training
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(16, 1, 8, 8, 8) * 2 + 1)
    return net.eval()


def test_yopo_dense_equals_box_by_box() -> None:
    net = _small_yopo()
    x = torch.randn(1, 1, 12, 11, 10, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        dense = net.dense(x)
        assert dense.shape == (1, 4, 5, 4, 3)
        for z, y, w in [(0, 0, 0), (4, 3, 2), (2, 1, 1)]:
            box = net(x[:, :, z:z + 8, y:y + 8, w:w + 8])
            torch.testing.assert_close(dense[0, :, z, y, w], box[0], atol=1e-5, rtol=1e-5)


def test_yopo_refuses_wrong_boxes_and_dense_in_training() -> None:
    net = _small_yopo()
    with pytest.raises(ValueError, match="8\\^3"):
        net(torch.randn(2, 1, 9, 8, 8))
    net.train()
    with pytest.raises(RuntimeError, match="eval"):
        net.dense(torch.randn(1, 1, 10, 10, 10))
    assert yp.DENSE_MARGIN == (12, 11)
    with pytest.raises(ValueError, match="must exceed"):
        yp.YOPOConfig(box=20)


def test_tversky_by_hand() -> None:
    # one voxel row of 4, two classes: truth [1, 1, 0, 0], prediction p(class 1) = [1, .5, .5, 0]
    p1 = torch.tensor([1.0, 0.5, 0.5, 0.0])
    probs = torch.stack([1 - p1, p1]).reshape(1, 2, 1, 1, 4)
    target = torch.tensor([1, 1, 0, 0]).reshape(1, 1, 1, 4)
    t = tversky_index(probs, target, eps=1e-12)
    # class 1: TP 1.5, FP 0.5, FN 0.5 -> Dice 1.5 / 2 = 0.75; class 0 the same by symmetry
    torch.testing.assert_close(t, torch.tensor([0.75, 0.75]))
    t2 = tversky_index(probs, target, alpha=0.7, beta=0.3, eps=1e-12)
    torch.testing.assert_close(t2, torch.tensor([0.75, 0.75]))   # FP = FN here
    q1 = torch.tensor([1.0, 1.0, 1.0, 0.0])
    probs2 = torch.stack([1 - q1, q1]).reshape(1, 2, 1, 1, 4)
    # class 1 now predicts [1, 1, 1, 0]: TP 2, FP 1, FN 0: alpha weighs the FP
    t3 = tversky_index(probs2, target, alpha=0.7, beta=0.3, eps=1e-12)
    assert float(t3[1]) == pytest.approx(2 / (2 + 0.7))
    assert float(tversky_loss(probs, target, eps=1e-12)) == pytest.approx(2 - 1.5)


def test_tversky_perfect_and_one_hot_targets() -> None:
    labels = torch.randint(0, 3, (2, 4, 4, 4), generator=torch.Generator().manual_seed(0))
    onehot = torch.nn.functional.one_hot(labels, 3).permute(0, 4, 1, 2, 3).float()
    assert float(tversky_loss(onehot, labels)) == pytest.approx(0.0, abs=1e-6)
    assert float(tversky_loss(onehot, onehot)) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="outside"):
        tversky_loss(onehot, labels + 1)
