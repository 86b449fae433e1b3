"""SHREC 2020's networks trained through ``learn``: sources, losses, N runs per step, detectors."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cryo_companion.papers.shrec2020 import train as tr
from cryo_companion.papers.shrec2020.pipelines import load_detector, run_detector
from cryo_companion.papers.shrec2020.training_data import read_model_volumes
from tests.shrec_tiny import PARTICLES, write_tiny_models

#: Tiny networks on the 32 x 48 x 48 test models (smoke settings, smaller still).
TINY = {
    "deepfinder": tr.SETTINGS["smoke"]["deepfinder"].replace(
        network={"n_classes": 13, "patch": 16, "widths": [2, 3, 4]}, batch_size=2,
        sampling={"shift_vox": 2}, iters=4, points=2),
    "yopo": tr.SETTINGS["smoke"]["yopo"].replace(
        network={"n_classes": 13, "widths": [4] * 10, "fc_width": 8, "box": 24}, batch_size=4,
        sampling={"n_background": 12}, iters=4, points=2),
    "umc": tr.SETTINGS["smoke"]["umc"].replace(
        network={"widths": [2, 4], "outputs": [1, 13], "patch": 16}, batch_size=2,
        sampling={"stride": 16}, iters=4, points=2),
}


#: The CPU always; CUDA where present (the GPU window's ``shrec-methods-cuda-tests``).
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                reason="no CUDA device"))]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_shrec")
    return [read_model_volumes(d) for d in write_tiny_models(root, (0, 1))]


def test_settings_are_the_papers_and_refuse_nonsense() -> None:
    p = tr.SETTINGS["paper"]
    assert (p["deepfinder"].batch_size, p["deepfinder"].lr, p["deepfinder"].network["patch"]) \
        == (25, 1e-4, 56)
    assert p["umc"].loss["alpha"] == 0.7 and p["umc"].loss["beta"] == 0.3
    assert p["umc"].network["patch"] == 64 and p["umc"].sampling["stride"] == 16   # 75 %
    assert p["yopo"].sampling["n_background"] == 20_000 and p["yopo"].network["box"] == 24
    with pytest.raises(ValueError, match="unknown method"):
        tr.TrainSettings("unet", {}, 1, 1e-3)
    with pytest.raises(ValueError, match=">= 1"):
        p["yopo"].replace(batch_size=0)


def test_deepfinder_loss_is_dice_summed_over_classes() -> None:
    # perfect logits give 0; uniform softmax over 2 classes on a half/half target: Dice 0.5 each
    labels = torch.zeros(1, 2, 2, 2, dtype=torch.int64)
    labels[..., 1] = 1
    perfect = torch.nn.functional.one_hot(labels, 2).permute(0, 4, 1, 2, 3).float() * 50
    assert float(tr.deepfinder_loss()(perfect, labels)) == pytest.approx(0.0, abs=1e-5)
    assert float(tr.deepfinder_loss()(torch.zeros(1, 2, 2, 2, 2), labels)) == pytest.approx(
        1.0, abs=1e-5)


def test_umc_loss_is_the_weighted_sum_of_its_terms() -> None:
    g = torch.Generator().manual_seed(0)
    den, seg = torch.randn(2, 1, 4, 4, 4, generator=g), torch.randn(2, 3, 4, 4, 4, generator=g)
    target = torch.randn(2, 1, 4, 4, 4, generator=g)
    labels = torch.randint(3, (2, 4, 4, 4), generator=g)
    t = tr.umc_loss(mse_weight=2.0, tversky_weight=0.5)((den, seg), target, labels)
    torch.testing.assert_close(t["mse"], torch.mean((den - target) ** 2))
    torch.testing.assert_close(t["loss"], 2.0 * t["mse"] + 0.5 * t["tversky"])


@pytest.mark.parametrize("method", tr.METHODS)
def test_sources_repeat_with_a_seed_and_fit_the_network(method, models) -> None:
    s = TINY[method]
    a = tr.make_source(s, models, "cpu").next_batch(torch.Generator().manual_seed(3))
    b = tr.make_source(s, models, "cpu").next_batch(torch.Generator().manual_seed(3))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert a[0].shape[0] == s.batch_size and a[0].dtype == torch.float32
    assert int(a[-1].max()) <= 12 and a[-1].dtype == torch.int64


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("method", tr.METHODS)
def test_two_seeds_together_by_vmap_equal_the_loop(method, device, models, tmp_path) -> None:
    """YOPO's batch norm (stacked running statistics) and UMC's two outputs under vmap."""
    s = TINY[method]
    on = tr.models_to(models, device)
    out = {}
    for strategy in ("loop", "vmap"):
        jobs = tr.make_jobs(s, on, (0, 1), tmp_path / strategy, device)
        logs: list[list[float]] = [[], []]
        from cryo_companion.learn.multirun import fit_many

        fit_many(jobs, tr.loss_for(s), s.fit_config(), strategy=strategy, progress=False,
                 loss_logs=logs)
        out[strategy] = (logs, [j.model.state_dict() for j in jobs])
    (l1, w1), (l2, w2) = out["loop"], out["vmap"]
    np.testing.assert_allclose(l1, l2, rtol=1e-4, atol=1e-5)
    assert l1[0] != l1[1]                                    # the seeds differ
    # YOPO's fc.bias feeds a batch norm directly: its gradient is zero but for rounding, which
    # Adam turns into steps of +-lr in either stepper; it and the running mean it shifts are
    # left out (every other weight and statistic must agree)
    noise = {"fc.bias", "fc_norm.running_mean"} if method == "yopo" else set()
    for a, b in zip(w1, w2):
        for k in sorted(set(a) - noise):
            torch.testing.assert_close(a[k].float(), b[k].float(), rtol=1e-3, atol=1e-4)
    if method == "yopo":
        for a, b in zip(w1, w2):
            assert not torch.equal(a["norms.0.running_var"].cpu(), torch.ones(4))  # tracked
            torch.testing.assert_close(a["fc.bias"], b["fc.bias"], rtol=0, atol=5 * s.lr)


@pytest.mark.parametrize("method", tr.METHODS)
def test_train_method_scores_segments_and_writes_detectors(method, models, tmp_path) -> None:
    s = TINY[method]
    calls: list[int] = []

    def score(i, job):
        assert not job.model.training
        calls.append(i)
        return {"f1": 0.5}

    post = {"deepfinder": {"tile": 16, "crop": 2}, "yopo": {"tile": 48, "threshold": 0.0},
            "umc": {"tile": 16, "crop": 2, "min_size": 1}}[method]
    res = tr.train_method(s, models, (0, 1), tmp_path, "cpu", score=score, postprocess=post,
                          strategy="loop", progress=False)
    rec = res.record()
    assert [p["iteration"] for p in rec["points"]] == [2, 4] and calls == [0, 1, 0, 1]
    assert rec["runs_per_step"] == 2 and rec["stopped_by"] == "iterations"
    assert [r["iterations"] for r in rec["runs"]] == [4, 4]
    assert all(len(r["loss"]) == 4 and np.isfinite(r["loss"]).all() for r in rec["runs"])
    name, net, info = load_detector(res.detectors[0])
    assert name == method
    assert info["postprocess"] == post and info["meta"]["iterations"] == 4
    assert net.class_names == tr.CLASS_NAMES
    det = run_detector(method, net, models[0].tomogram, postprocess=info["postprocess"])
    assert len(det) == 0 or (det.label.min() >= 1 and det.label.max() <= 12)
    # the command line runs the weights trained through this path on a tomogram file
    from cryo_companion.cli.main import main
    from cryo_companion.mrc import write_mrc

    write_mrc(tmp_path / "tomo.mrc", models[0].tomogram.numpy(), 10.0)
    out = tmp_path / "picks"
    assert main(["detect", method, str(tmp_path / "tomo.mrc"), "--out", str(out), "--weights",
                 str(res.detectors[0]), "--device", "cpu"]) == 0
    rec = json.loads((tmp_path / "picks.json").read_text())
    assert rec["n_detections"] == len(det)
    assert rec["record"]["trained"]["seed"] == 0
    assert all((tmp_path / f"picks{s}").is_file() for s in (".txt", ".csv", ".star"))


def test_deepfinder_thresholds_are_a_tenth_of_the_median_size_binned(models) -> None:
    sizes = tr.deepfinder_min_sizes(models, fraction=0.1, bin_factor=2)
    # classes 12 (two 7³ cubes), 1 and 6 (5³ cubes): round(0.1 * 343 / 8) = 4, 0.1 * 125 / 8 -> 2
    assert sizes == {1: 2, 6: 2, 12: 4}
    assert set(sizes) == {p[0] for p in PARTICLES}
    with pytest.raises(ValueError, match="fraction"):
        tr.deepfinder_min_sizes(models, fraction=0.0)
