"""Table I assembly and its verdicts, on a hand-made summary of runs."""
from __future__ import annotations

import pytest

from cryo_companion.papers.che2019 import table1

NAMES = ["ribosome", "membrane", "TRiC", "proteasome"]


def _metric(mean: float, std: float | None = 0.01, n: int = 3) -> dict:
    return {"mean": mean, "std": std, "n": n, "values": [mean] * n}


def _arm(acc: float, threshold: float, cm: list[list[int]]) -> dict:
    return {"threshold": threshold, "accuracy": _metric(acc), "pixel_accuracy": _metric(0.9),
            "miou": _metric(0.3), "iou_pooled": _metric(0.31), "miou_fg_bg": _metric(0.6),
            "confusion_matrix": cm,
            "per_class_accuracy": {"ribosome": 0.5, "membrane": 1.0, "TRiC": None,
                                   "proteasome": 0.25}}


def _ci(diff: float, low: float, high: float) -> dict:
    return {"t": {"diff": diff, "low": low, "high": high}}


CM_R = [[1, 1, 0, 0], [0, 4, 0, 0], [0, 2, 0, 0], [0, 3, 0, 1]]   # 10 of 12 predicted membrane
CM_B = [[2, 0, 0, 0], [0, 4, 0, 0], [0, 1, 1, 0], [0, 1, 0, 3]]   # 6 of 12
SUMMARY = {"arms": {"randomized": _arm(0.8, 0.5, CM_R), "baseline": _arm(0.6, 0.2, CM_B)},
           "difference": {"accuracy": _ci(0.2, 0.1, 0.3), "pixel_accuracy": _ci(-0.05, -0.1, -0.01),
                          "miou": _ci(0.01, -0.02, 0.04)}}


def test_table_has_both_arms_beside_the_paper_and_the_difference() -> None:
    md = table1.table1_markdown(SUMMARY)
    lines = md.splitlines()
    assert lines[0].startswith("| arm | classification accuracy |")
    assert "| w/o domain randomization (t = 0.2, 3 seeds) | 0.600 ± 0.010 (paper 0.605) |" in md
    assert "0.800 ± 0.010 (paper 0.818)" in md
    assert "+0.200 [+0.100, +0.300]" in md
    assert md.count("n/a") == 2           # no interval for the two extra metrics
    assert len(lines) == 2 + 3


def test_difference_verdicts_follow_the_intervals() -> None:
    acc, pix, miou = table1.difference_verdicts(SUMMARY)
    assert "randomization helps; the same direction as the paper's +0.213" in acc
    assert "randomization hurts; the opposite direction to the paper's +0.017" in pix
    assert "no significant difference; the same direction as" in miou
    no_ci = table1.difference_verdicts({"arms": SUMMARY["arms"], "difference": {}}, ["miou"])
    assert no_ci == ["mIoU (target IoU, mean): too few seeds for an interval."]


def test_claim_verdicts_cover_every_cited_value() -> None:
    v = table1.claim_verdicts(SUMMARY)
    assert len(v) == 6
    assert any("classification accuracy: ours 0.800 ± 0.010 agrees with the paper's 0.818" in s
               for s in v)


def test_predicted_share_and_reasons_hand_worked() -> None:
    share = table1.predicted_share(SUMMARY, NAMES, "membrane")
    assert share == {"randomized": pytest.approx(10 / 12), "baseline": pytest.approx(6 / 12)}
    reasons = table1.difference_reasons(SUMMARY, NAMES, {"ribosome": 2, "membrane": 4, "TRiC": 2,
                                                         "proteasome": 4}, 40, 13.68, None,
                                        (0.03, 10.0), 5000)
    assert "randomized 83 %; baseline 50 %" in reasons[0]
    assert "true share of 33 %" in reasons[0]
    assert "55 nm" in reasons[0]
    assert reasons[1] == "*Noise.* The test domain's SNR is not recorded."
    assert "5,000 iterations" in reasons[2]


def test_training_time_is_honest_about_resumed_runs() -> None:
    runs = [{"sim_ms_per_iter": 4.0, "net_ms_per_iter": 36.0, "sim_s": 20.0, "net_s": 180.0}] * 2
    resumed = table1.training_time_summary(runs, 0.04, "GPU X")
    assert "10.0 % simulation" in resumed and "200–200 s" in resumed
    assert "finished in an earlier session" in resumed and "0.0 s wall clock" not in resumed
    fresh = table1.training_time_summary(runs, 250.0, "GPU X")
    assert "took 250 s of wall clock in this session" in fresh
    with pytest.raises(ValueError):
        table1.training_time_summary([], 1.0, "cpu")


def test_small_tables() -> None:
    runs = table1.runs_table([{"arm": "baseline", "seed": 0, "metrics": {
        "threshold": 0.2, "accuracy": 0.6, "pixel_accuracy": 0.9, "miou": 0.25}}])
    assert runs.splitlines()[2] == "| baseline | 0 | 0.2 | 0.600 | 0.900 | 0.250 |"
    pc = table1.per_class_table(SUMMARY)
    assert "| randomized | 0.500 | 1.000 | - | 0.250 |" in pc
    t = table1.timing_table({"r0": {"sim_ms_per_iter": 4.4, "net_ms_per_iter": 38.5,
                                    "sim_fraction": 0.1025}})
    assert t.splitlines()[2] == "| r0 | 4.40 | 38.50 | 10.2 % |"
    assert table1.first_evaluation_summary(None) is None
