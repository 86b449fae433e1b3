"""The paper's cited tables agree with the metric definitions implemented (Gubins et al. 2020)."""
from __future__ import annotations

import pytest

from cryo_companion.papers.shrec2020.classes import SHREC2020_CLASSES
from cryo_companion.papers.shrec2020.metrics import CLASS_ORDER
from cryo_companion.papers.shrec2020.paper_tables import (
    N_TEST_PARTICLES,
    TABLE2_COUNTS,
    TABLE3,
    TABLE4,
    TABLE4_COLUMNS,
    TABLE6,
    TABLE8,
    TABLE9,
)


def test_test_tomogram_has_2782_particles():
    assert sum(TABLE2_COUNTS.values()) == N_TEST_PARTICLES
    for row in TABLE3.values():
        assert row["TP"] + row["FN"] == N_TEST_PARTICLES


@pytest.mark.parametrize("name", list(TABLE3))
def test_table3_scores_follow_from_counts(name):
    # Recall = TP / particles, precision = TP / RR (Table 3 caption), F1 harmonic mean (Eq. 5).
    # The paper prints three decimals, sometimes truncated: tolerance 1.5e-3.
    r = TABLE3[name]
    recall, precision = r["TP"] / N_TEST_PARTICLES, r["TP"] / r["RR"]
    assert r["Recall"] == pytest.approx(recall, abs=1.5e-3)
    assert r["Precision"] == pytest.approx(precision, abs=1.5e-3)
    assert r["Miss rate"] == pytest.approx(1 - recall, abs=1.5e-3)
    assert r["F1 Score"] == pytest.approx(2 * recall * precision / (recall + precision), abs=2e-3)
    assert r["TP"] + r["FP"] <= r["RR"]  # the rest are duplicate hits (and RO)


def test_table8_2020_rows_consistent():
    for name in ("TM-T-2020", "TM-F-2020"):
        r = TABLE8[name]
        assert r["TP"] + r["FN"] == N_TEST_PARTICLES
        assert r["Precision"] == pytest.approx(r["TP"] / r["RR"], abs=1.5e-3)


def test_class_columns_are_table1_weight_order():
    assert TABLE4_COLUMNS == CLASS_ORDER == tuple(c.pdb_id for c in SHREC2020_CLASSES)
    for table in (TABLE4, TABLE9):
        for row in table.values():
            assert set(row) == set(CLASS_ORDER)
    assert TABLE4["DeepFinder"]["1bxn"] == 1.0
    # Section 5: DeepFinder's average classification F1 is 0.871 (mean of its Table 4 row)
    assert sum(TABLE4["DeepFinder"].values()) / 12 == pytest.approx(0.871, abs=5e-4)


def test_table6_rows_present():
    assert set(TABLE6) == set(TABLE4) == set(TABLE3)
    assert TABLE3["3D MS-D"]["MH"] is None  # blank in the paper
