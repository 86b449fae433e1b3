"""Figures of the Table I chapter: every arm drawn, and the Fig. 5 panels as the networks saw
the data."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from cryo_companion.book import table1 as figs  # noqa: E402
from cryo_companion.dataset import SubtomogramSet  # noqa: E402
from cryo_companion.models.dsrf3d import CHE2019_CLASSES, DSRF3DConfig, DSRF3DSegNet  # noqa: E402
from cryo_companion.papers.che2019.evaluate import predict, preprocess  # noqa: E402

ARMS = ("baseline+context", "randomized", "baseline", "randomized+context")


def _set() -> SubtomogramSet:
    g = np.random.default_rng(0)
    labels = np.array([1, 0, 1, 3])          # class 2 absent: three columns, first of each
    vols = g.normal(size=(4, 40, 40, 40)).astype(np.float32)
    masks = g.random((4, 40, 40, 40)) > 0.5
    return SubtomogramSet(volumes=vols, labels=labels, masks=masks,
                          class_names=list(CHE2019_CLASSES), voxel_size_A=13.68,
                          meta={"contrast": "bright"})


def test_fig5_panels_are_the_preprocessed_input_the_truth_and_each_arms_mask() -> None:
    test = _set()
    cfg = DSRF3DConfig(enc_widths=(2, 2, 2, 2, 2), fc_widths=(4, 4))
    models = {}
    for i, arm in enumerate(("randomized", "baseline+context")):
        torch.manual_seed(i)
        models[arm] = DSRF3DSegNet(cfg, class_names=CHE2019_CLASSES).eval()
    thr = {"randomized": 0.5, "baseline+context": 0.2}
    grid, rows, cols = figs.fig5_images(test, models, thr)
    assert grid.shape == (4, 3, 40, 40)
    assert rows == ["input", "ground truth", "randomized", "baseline+context"]
    assert cols == [CHE2019_CLASSES[0], CHE2019_CLASSES[1], CHE2019_CLASSES[3]]   # class order
    idx = [1, 0, 3]                  # the first subtomogram of each class
    x = preprocess(torch.from_numpy(test.volumes), 1.0)    # bright data: not inverted
    np.testing.assert_allclose(grid[0], x[idx, 20].numpy(), rtol=1e-6)
    np.testing.assert_array_equal(grid[1], test.masks[idx, 20].astype(float))
    want = predict(models["baseline+context"], x[idx]).masks(0.2)[:, 20].float().numpy()
    np.testing.assert_array_equal(grid[3], want)
    fig = figs.plot_fig5(test, models, thr)
    plt.close(fig)
    with pytest.raises(ValueError, match="masks"):
        figs.fig5_images(SubtomogramSet(test.volumes, test.labels, None, test.class_names,
                                        13.68), models, thr)


def _summary() -> dict:
    sweep = {"threshold": [0.2, 0.5], "miou": {"mean": [0.1, 0.2], "std": [0.0, 0.1]},
             "pixel_accuracy": {"mean": [0.8, 0.9], "std": [0.0, 0.0]}}
    cm = [[1, 0], [1, 2]]
    return {"arms": {a: {"sweep": sweep, "confusion_matrix": cm} for a in ARMS}}


def test_every_arm_is_drawn_in_the_tables_order() -> None:
    s = _summary()
    fig = figs.plot_threshold_sweep(s, {"miou": "mIoU", "pixel_accuracy": "pixel accuracy"},
                                    {"randomized": 0.5, "baseline": 0.2})
    labels = [ln.get_label() for ln in fig.axes[0].get_lines()
              if not ln.get_label().startswith("_")]
    assert labels == ["randomized", "baseline", "randomized+context", "baseline+context"]
    plt.close(fig)
    fig = figs.plot_arm_confusions(s, ["a", "b"])
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titled == ["randomized", "baseline", "randomized+context", "baseline+context"]
    plt.close(fig)
    with pytest.raises(ValueError, match="no arms"):
        figs.plot_arm_confusions({"arms": {}}, ["a"])
    hist = [{"iteration": 1, "val_loss": 1.0, "val_accuracy": 0.5}]
    fig = figs.plot_validation([{"history": hist, "config": {"arm": a, "seed": s}}
                                for a in ARMS for s in (0, 1)])
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert sorted(legend) == sorted(ARMS)          # one entry per arm, not per seed
    assert len(fig.axes[0].get_lines()) == 8
    plt.close(fig)
