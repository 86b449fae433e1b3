"""The Performance page's rows and figure (cryo_companion.book.performance) from records."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from cryo_companion.book import performance as perf
from cryo_companion.tables import format_table


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _entry(batch, proj=None):
    return {"device_name": "Dev", "commit": "0123456789abcdef",
            "settings": {"batch": batch, "iters": 20, "rounds": 3},
            "networks": {"dsrf3d": {
                "modes": {"loop": {"1": {"ms_per_run_iteration": 10.0},
                                   "6": {"ms_per_run_iteration": 4.0}},
                          "vmap": {"1": {"ms_per_run_iteration": 9.0},
                                   "6": {"error": "out of memory"}}},
                "simulator": {"share_of_iteration": {"6": 0.08}},
                "table1_projection": proj}}}


BENCH = {"data": {"cuda": _entry(32, {"mode": "loop", "ms_per_step": 24.0,
                                      "sim_ms_per_iteration": 3.0, "wall_s": 405.0,
                                      "target_wall_s": 240.0}),
                  "cpu": _entry(2)}}


def test_training_rows_and_columns():
    cols = perf.training_columns(BENCH)
    assert cols == ["N=1", "N=6", "batch", "iters x rounds", "commit"]
    rows = perf.training_rows(BENCH)
    assert rows["cuda · loop"] == {"N=1": 10.0, "N=6": 4.0, "batch": 32,
                                   "iters x rounds": "20 x 3", "commit": "0123456"}
    assert rows["cpu · vmap"]["N=6"] is None                  # failed: shown as missing
    text = format_table(rows, cols, first="device · mode")
    assert "cpu · vmap" in text and " - " in text
    assert perf.training_rows(None) == {} and perf.training_rows(BENCH, "ssn3d") == {}


def test_projection_and_simulator_rows():
    p = perf.projection_rows(BENCH)
    assert p["cuda"]["projected wall s"] == 405.0 and p["cuda"]["target s"] == 240.0
    assert p["cpu"]["projected wall s"] is None and p["cpu"]["simulator share (N=6)"] == 0.08
    sim = {"data": {"cuda": {"device_name": "H", "best_subtomograms_per_s": 134332.4,
                             "best_batch": 8192, "need_clean": True},
                    "cpu-no-clean": {"device_name": "C", "best_subtomograms_per_s": 600.0,
                                     "best_batch": 128, "need_clean": False,
                                     "commit": "fedcba987"}}}
    rows = perf.simulator_rows(sim)
    assert rows["cuda"]["subtomograms/s"] == 134332.4 and rows["cuda"]["commit"] is None
    assert rows["cpu-no-clean"]["outputs"] == "noisy + mask"
    assert rows["cpu-no-clean"]["commit"] == "fedcba9"
    assert perf.simulator_rows(None) == {}


def test_figure_one_panel_per_device():
    fig = perf.plot_training_scaling(BENCH)
    axes = fig.axes
    assert len(axes) == 2
    cuda = axes[0]
    assert [ln.get_label() for ln in cuda.lines] == ["loop", "vmap"]
    assert list(cuda.lines[0].get_xdata()) == [1, 6]
    assert list(cuda.lines[1].get_xdata()) == [1]             # the failed N=6 is left out
    assert cuda.get_xscale() == "log" and "ms per run" in cuda.get_ylabel()
    empty = perf.plot_training_scaling({"data": {"cpu": {"networks": {}}}})
    assert empty.axes[0].texts[0].get_text() == "not measured"
    with pytest.raises(ValueError, match="no training benchmark"):
        perf.plot_training_scaling(None)
    with pytest.raises(ValueError, match="1 axes for 2"):
        perf.plot_training_scaling(BENCH, axes=[axes[0]])
