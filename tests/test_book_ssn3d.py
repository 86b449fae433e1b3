"""The SSN3D chapter's tables and figures (cryo_companion.book.ssn3d): hand-worked rows, axes in
nm, isosurfaces, learning curves with the best epoch."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from cryo_companion.book import ssn3d as b
from cryo_companion.papers.ssn3d.training import PAPER, RELEASED_CODE


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


SUMMARY = {"A": {"target_snr": 0.5, "snr": {"median": 0.4937, "q25": 0.31, "q75": 0.72,
                                            "n_boxes": 45},
                 "dose_e_A2": 236.87, "calibration": [{}, {}], "n": 3380,
                 "complexes_placed": 10000, "extractable": 7612, "target_fraction": 0.0121}}


def _record(seed, accs):
    hist = [{"iteration": 10 * (i + 1), "val_pixel_accuracy": a, "val_loss": 1 - a}
            for i, a in enumerate(accs)]
    return {"data": {"run": {"table": "table2", "variant": "ed", "dataset": "A", "seed": seed},
                     "history": hist, "iters_per_epoch": 10, "epochs_trained": len(accs),
                     "best_epoch": int(np.argmax(accs)) + 1, "stopped_epoch": None,
                     "split_sizes": {"test": 338},
                     "test": {"pixel_accuracy": 0.99, "miou": 0.8612, "target_iou": 0.73},
                     "timing": {"runs_per_step": 3}, "stepper": "vmap"}}


def test_tables() -> None:
    md = b.dataset_table(SUMMARY)
    assert md.splitlines()[2] == ("| A | 0.5 | 0.494 | 0.31 – 0.72 | 45 | 236.9 | 2 | 3,380 | "
                                  "10,000 | 7,612 | 1.21 |")
    md = b.networks_table({"SSN3D-ED": 895_746}, {"SSN3D-ED": 895_746})
    assert md.splitlines()[2] == "| SSN3D-ED | 895,746 | 895,746 | yes |"
    md = b.recipe_table(PAPER.to_dict(), RELEASED_CODE.to_dict())
    assert "| betas | [0.9, 0.99] | [0.9, 0.999] | no |" in md
    assert "| batch_size | 128 | 128 | yes |" in md
    md = b.runs_table({"table2_ed_A_seed0": _record(0, [0.9, 0.95, 0.94])})
    assert md.splitlines()[2] == ("| table2_ed_A_seed0 | 3 | 2 | no | 338 | 99.00 | 86.12 | "
                                  "73.00 | 3 | vmap |")
    assert b.runs_table({}) == "*No training run recorded yet.*"


def test_figures_have_axes_in_nm() -> None:
    tomo = np.random.default_rng(0).standard_normal((8, 16, 20)).astype(np.float32)
    fig = b.plot_tomogram_slices([tomo, tomo], ["A (SNR 0.5)", "C (SNR 0.01)"], 13.68)
    titled = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titled == ["A (SNR 0.5)", "C (SNR 0.01)"]
    assert {ax.get_ylabel() for ax in fig.axes} >= {"y (nm)", "z (nm)"}
    img = fig.axes[2].images[0]                    # xz slice of the first tomogram
    assert img.get_extent() == pytest.approx([0, 20 * 1.368, 8 * 1.368, 0])
    d = 12
    z, y, x = np.mgrid[:d, :d, :d]
    ball = (z - 6) ** 2 + (y - 6) ** 2 + (x - 6) ** 2 <= 9
    vols = np.where(ball, -1.0, 0.0)[None].repeat(2, 0)
    fig = b.plot_subtomograms(vols, ball[None].repeat(2, 0), ["a", "b"], 10.0)
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"] and fig.axes[0].collections
    fig = b.plot_fig5(vols, ball[None].repeat(2, 0), np.zeros((2, d, d, d), bool), ["a", "b"],
                      10.0)
    three_d = [ax for ax in fig.axes if ax.name == "3d"]
    assert len(three_d) == 4
    assert len(three_d[0].collections) == 1 and len(three_d[2].collections) == 0  # empty mask
    assert three_d[0].get_xlabel() == "x (nm)"


def test_learning_curves_mark_the_best_epoch() -> None:
    fig = b.plot_learning_curves({"r0": _record(0, [0.9, 0.95, 0.94]),
                                  "r1": _record(1, [0.8, 0.85, 0.97])})
    a1 = fig.axes[0]
    assert a1.get_xlabel() == "epoch" and a1.get_ylabel() == "validation pixel accuracy (%)"
    marks = [ln for ln in a1.lines if ln.get_marker() == "o"]
    assert [tuple(m.get_xydata()[0]) for m in marks] == [(2.0, 95.0), (3.0, 97.0)]
    assert [t.get_text() for t in a1.get_legend().get_texts()] == ["SSN3D-ed on A"]
