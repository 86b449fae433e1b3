"""The DSM-Net chapter's tables and figures (book.dsmnet_figures) on hand-made inputs."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from cryo_companion.book import dsmnet_figures as figs
from cryo_companion.papers.dsmnet import tables, unseen


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_results_table_puts_ours_beside_the_papers() -> None:
    data = {"table2": {"dsmnet": {
        **tables.summarize([{"miou": 0.8, "object_accuracy": 0.5},
                            {"miou": 0.9, "object_accuracy": 0.7}]),
        "converged": [True, False]}}}
    md = figs.results_table(tables.table_rows(data, "table2"))
    lines = md.splitlines()
    assert lines[0].startswith("| Method | Backbone | Pix acc, paper | Pix acc, ours")
    dsm = next(ln for ln in lines if ln.startswith("| DSM-Net"))
    assert "89.00" in dsm and "| 85.00 ± 7.07 (n=2) |" in dsm     # convergence: a cls matter
    assert "60.00 ± 14.14 (n=2), 1 of 2 did not converge" in dsm
    assert "missing" in dsm                                   # pixel accuracy not produced
    dsrf = next(ln for ln in lines if ln.startswith("| DSRF3D-v2"))
    assert "* (fails to converge)" in dsrf
    assert "Backbone" not in figs.results_table(tables.table_rows(None, "table4")).splitlines()[0]


def test_claims_table() -> None:
    md = figs.claims_table(tables.check_claims(None))
    assert md.count("\n") == 1 + len(tables.CLAIMS)
    assert "not produced yet" in md and "| holds |" in md


def test_fig2_rows_are_the_papers_panels() -> None:
    rng = np.random.default_rng(0)
    v = rng.normal(size=(3, 8, 8, 8))
    fig = figs.plot_fig2(v, v, v > 0, v, 13.68, titles=["a", "b", "c"])
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "(a) input" in texts and "(d) recovered density" in texts
    assert [ax.get_title() for ax in fig.axes[:3]] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="share one"):
        figs.plot_fig2(v, v[:2], v, v, 13.68)


def test_tsne_and_fsc_figures() -> None:
    rng = np.random.default_rng(1)
    e, lab = rng.normal(size=(30, 2)), np.arange(30) % 3
    fig = figs.plot_tsne(e, lab, 1, clusters=lab, enriched=1, highlight_name="GroEL")
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert "GroEL" in labels and any("cluster 1" in x for x in labels)
    zz, yy, xx = np.indices((16, 16, 16)) - 7.5
    ref = np.exp(-(xx ** 2 + yy ** 2 + zz ** 2) / 8)
    rep = unseen.structure_fsc(ref, ref + 0.05 * rng.normal(size=ref.shape), 13.68)
    fig2 = figs.plot_fsc(rep)
    ax = fig2.axes[0]
    assert ax.get_xlabel() == "spatial frequency (1/nm)" and ax.get_ylabel() == "FSC"
    assert any("FSC 0.5" in t.get_text() for t in ax.texts)
    assert any("paper's '5' as nm" in t.get_text() for t in ax.texts)


def test_parameters_runs_and_unseen_tables() -> None:
    md = figs.parameters_table({"table2/dsmnet": 2174905, "table2/cls": 1593878})
    assert md.splitlines()[0] == "| run (row) | parameters |" and "| 2,174,905 |" in md
    assert figs.runs_table({}) == "*No run recorded yet at this scale.*"
    rec = {"data": {"epochs_trained": 40, "best_epoch": 25, "stopped_epoch": 40,
                    "converged": True, "stepper": "loop", "timing": {"runs_per_step": 3},
                    "split_sizes": {"train": 2565, "validation": 320, "test": 320}}}
    row = figs.runs_table({"table2_dsmnet_seed0": rec}).splitlines()[2]
    assert row == "| table2_dsmnet_seed0 | 40 | 25 | yes | yes | loop | 3 | 2565 / 320 / 320 |"
    res = {"fsc_0_5": {"resolution_nm": 5.5}, "fsc_0_143": {"resolution_nm": 4.1}}
    u = {"n": 3205, "n_groel": 146, "discovery": {"k": 22, "enriched": {
        "n_target_in_cluster": 120, "purity": 0.8, "recall": 120 / 146}},
         "fsc": {"resolution": res, "paper_score": 5.0, "nyquist_nm": 2.736},
         "reference_fsc": {"resolution": {"fsc_0_5": {"resolution_nm": 7.0}}}}
    md = figs.unseen_table(u)
    assert "| recall of GroEL | 0.822 | - |" in md
    assert "| recovered structure, resolution at FSC 0.5 (nm) | 5.5 | 5 |" in md
    assert "k-means clusters of the 3,205 subtomograms | 22 | 22 |" in md
