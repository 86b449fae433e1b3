"""Figures and table of the reality-gap ladder."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from cryo_companion.book.ladder_figures import ladder_table, plot_ladder, plot_rung_examples
from cryo_companion.dataset import SubtomogramSet
from cryo_companion.papers.che2019 import ladder_eval as le
from cryo_companion.papers.che2019.ladder import RUNGS


def _summary():
    rows = []
    for i, r in enumerate(RUNGS[:-1]):                    # the last rung missing: shown as such
        for arm in ("randomized", "baseline"):
            for prot in ("paper", "matched"):
                for seed in (0, 1):
                    v = 0.9 - 0.1 * i + 0.01 * seed
                    rows.append({"arm": arm, "seed": seed, "rung": r.name, "protocol": prot,
                                 "n": 10, "n_particles": 10, "per_class_accuracy": {"a": v},
                                 **{k: v for k in le.LADDER_METRICS},
                                 **{f"{k}_se": 0.01 for k in le.LADDER_METRICS}})
    return le.summarize_ladder(rows)


def test_plot_ladder_draws_every_arm_and_protocol():
    s = _summary()
    fig = plot_ladder(s)
    assert len(fig.axes) == 3
    for ax in fig.axes:
        assert len(ax.containers) == 4                   # 2 arms x 2 protocols, error bars
        assert next(t.get_text() for t in ax.get_xticklabels()).startswith("isolated")
    plt.close(fig)
    with pytest.raises(ValueError, match="unknown metric"):
        plot_ladder(s, metrics=("f1",))


def test_ladder_table_rows_and_missing():
    t = ladder_table(_summary()).splitlines()
    assert len(t) == 2 + len(RUNGS) - 1
    assert t[2].startswith("| `ideal` | 10 |") and "0.91 ± 0.01" in t[2]   # mean ± std
    assert "randomized: accuracy, particle classes" in t[0]
    with pytest.raises(ValueError, match="unknown metric"):
        ladder_table(_summary(), metrics=("f1",))


def test_rung_examples_one_row_per_rung():
    names = ["ribosome", "membrane", "TRiC", "proteasome"]
    rng = np.random.default_rng(0)
    sets = {r.name: SubtomogramSet(rng.standard_normal((4, 40, 40, 40)), [0, 1, 2, 3], None,
                                   names, 13.68, {"contrast": "dark"}) for r in RUNGS[:3]}
    fig = plot_rung_examples(sets)
    assert len([a for a in fig.axes if a.images]) == 3 * 4
    plt.close(fig)


def test_rungs_and_sets_tables():
    from cryo_companion.book.ladder_figures import rungs_table, sets_table

    t = rungs_table().splitlines()
    assert len(t) == 2 + len(RUNGS) and "| 1 | `ideal` |" in t[2] and "isolated" in t[2]
    assert "membranes" in t[-1] and "`full`" in t[-1]
    s = sets_table([{"rung": "ideal", "n": 6, "counts": {"a": 3, "b": 3, "c": 0},
                     "tomograms": 2, "snr_median": None}]).splitlines()
    assert s[2] == "| `ideal` | 6 | a 3, b 3 | 2 | — |"


def test_per_class_table():
    from cryo_companion.book.ladder_figures import per_class_table

    t = per_class_table(_summary()).splitlines()
    assert t[0] == "| rung | baseline: a | randomized: a |"
    assert len(t) == 2 + len(RUNGS) - 1
    v = f"{(0.9 + 0.91) / 2:.2f}"                           # mean over the two seeds
    assert t[2] == f"| `ideal` | {v} | {v} |"
