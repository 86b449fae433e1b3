"""Text tables and the "this companion" rows: missing results stay missing."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from cryo_companion.book.shrec_plots import plot_confusion, plot_cumulative_f1, plot_detection_slice
from cryo_companion.papers.shrec2020.metrics import evaluate
from cryo_companion.papers.shrec2020.paper_tables import TABLE3
from cryo_companion.papers.shrec2020.report import companion_rows
from cryo_companion.papers.shrec2020.worked_example import worked_example
from cryo_companion.tables import format_table


def test_missing_companion_row_is_empty_not_the_paper():
    rows = companion_rows({"other": {"data": {"x": 1}}}, "table3")
    assert rows == {"this companion": {}}
    text = format_table({"UMC (paper)": TABLE3["UMC"], **rows}, list(TABLE3["UMC"]))
    last = text.splitlines()[-1].split()
    assert last[:2] == ["this", "companion"] and set(last[2:]) == {"-"}


def test_companion_rows_read_shrec_eval_results():
    w = worked_example()
    ev = evaluate(w.pred, w.truth, w.occupancy)
    res = {"shrec_unet": {"data": {"shrec_eval": {"method": "U-Net", **ev.to_dict()}}}}
    rows = companion_rows(res, "table3")
    assert rows["U-Net (this companion)"]["TP"] == 4
    assert companion_rows(res, "table4")["U-Net (this companion)"]["1bxn"] == 1.0


def test_figures_draw():
    w = worked_example()
    ev = evaluate(w.pred, w.truth, w.occupancy)
    fig, axs = plt.subplots(1, 3)
    plot_detection_slice(axs[0], w.occupancy, w.z_slice, w.pred, ev.localisation, truth=w.truth)
    plot_confusion(axs[1], ev.classification)
    plot_cumulative_f1(axs[2], {"x": ev.classification.table4_row()})
    labels = axs[0].get_legend_handles_labels()[1]
    assert [lab.split(" ")[0] for lab in labels] == ["TP", "MH", "FP", "RO"]
    plt.close(fig)
