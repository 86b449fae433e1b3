"""Our rows beside the paper's, seed summaries, Fig. 11's data and Section 5's findings."""
from __future__ import annotations

import math

import pytest

from cryo_companion.papers.shrec2020 import comparison as cmp
from cryo_companion.papers.shrec2020.metrics import CLASS_ORDER, evaluate
from cryo_companion.papers.shrec2020.paper_tables import TABLE3, TABLE4, TABLE6
from cryo_companion.papers.shrec2020.worked_example import EXPECTED, worked_example


def test_the_papers_own_tables_support_its_findings() -> None:
    found = {f.key: f for f in cmp.paper_findings()}
    assert set(found) == {"learned_beat_tm", "size_correlation", "tm_small_gap", "unet_best"}
    assert all(f.holds for f in found.values()), [f.text for f in found.values()]
    ev = found["learned_beat_tm"].evidence["localisation F1"]
    assert ev["best_learned"] == ("UMC", 0.949) and ev["best_template_matching"] == ("TM-F",
                                                                                    0.841)
    gaps = found["tm_small_gap"].evidence["gap_learned_minus_tm"]
    assert gaps["Small"] == pytest.approx(0.826 - 0.399)
    assert gaps["Large"] == pytest.approx(0.999 - 0.957)
    assert found["unet_best"].evidence["best_classification"][0] == "UMC"
    assert found["size_correlation"].evidence["spearman_rho"]["TM-T"] > 0.8
    assert found["unet_best"].text.startswith("Holds: best localisation F1 UMC 0.949")


def test_findings_that_fail_and_that_cannot_be_checked() -> None:
    t3 = {"YOPO": {"F1 Score": 0.5}, "TM-F": {"F1 Score": 0.6}}
    t4 = {"YOPO": {c: 1.0 - i / 20 for i, c in enumerate(CLASS_ORDER)},   # falls with weight
          "TM-F": {c: 0.5 for c in CLASS_ORDER}}
    t6 = {"YOPO": {"Small": 0.9, "Medium": 0.8, "Large": 0.5},
          "TM-F": {"Small": 0.5, "Medium": 0.5, "Large": 0.1}}
    found = {f.key: f for f in cmp.findings(t3, t4, t6)}
    assert found["learned_beat_tm"].holds is False        # TM-F localises better
    assert found["size_correlation"].holds is False       # YOPO's F1 falls with weight
    assert found["tm_small_gap"].holds is False           # equal gaps (0.4): not larger
    assert found["tm_small_gap"].evidence["gap_learned_minus_tm"]["Small"] == pytest.approx(0.4)
    assert found["unet_best"].holds is False              # no U-Net among the rows
    none = {f.key: f for f in cmp.findings({}, {}, {})}
    assert all(f.holds is None for f in none.values())
    assert none["unet_best"].text == "Not checked: the numbers it needs are missing."


def test_spearman_by_hand() -> None:
    assert cmp.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert cmp.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # x ranks 0 1 2 3, y ranks 0.5 0.5 2 3 (a tie): rho = 0.9486...
    assert cmp.spearman([1, 2, 3, 4], [1, 1, 2, 3]) == pytest.approx(0.9486832980505138)
    assert math.isnan(cmp.spearman([1], [2]))


def test_summaries_over_seeds() -> None:
    assert cmp.summarise([0.5, 0.7, None, float("nan")]) == {
        "mean": pytest.approx(0.6), "std": pytest.approx(math.sqrt(0.02)), "n": 2}
    assert cmp.summarise([0.5]) == {"mean": 0.5, "std": None, "n": 1}
    assert cmp.summarise([]) == {"mean": None, "std": None, "n": 0}
    ex = worked_example()
    ev = evaluate(ex.pred, ex.truth, ex.occupancy).to_dict()
    s = cmp.method_summary([ev, ev])
    assert s["table3"]["RR"] == {"mean": 7.0, "std": 0.0, "n": 2}
    assert s["headline"]["localisation_f1"]["mean"] == pytest.approx(EXPECTED["f1"])
    assert s["headline"]["classification_mean_f1"]["mean"] == pytest.approx(
        cmp.mean_f1(ev["table4"]))


def test_beside_paper_interleaves_and_keeps_missing_missing() -> None:
    ours = {"UMC": {"F1 Score": {"mean": 0.8, "std": 0.01, "n": 2}}, "YOPO": {},
            "New method": {"F1 Score": 0.1}}
    rows = cmp.beside_paper("table3", ours)
    labels = list(rows)
    assert labels[:2] == ["3D MS-D (paper)", "DeepFinder (paper)"]
    i = labels.index("UMC (paper)")
    assert labels[i + 1] == "UMC (this companion)"
    assert rows["UMC (this companion)"]["F1 Score"]["mean"] == 0.8
    assert rows["UMC (this companion)"]["RR"] is None
    assert all(v is None for v in rows["YOPO (this companion)"].values())
    assert labels[-1] == "New method (this companion)"
    assert rows["UMC (paper)"] == TABLE3["UMC"]
    t7 = cmp.beside_paper("table7", {"UMC": {"Training stage": 180.0}})
    assert t7["UMC (paper)"]["Training stage"] == 16 * 3600
    with pytest.raises(ValueError, match="unknown table"):
        cmp.beside_paper("table5", {})
    assert set(cmp.beside_paper("table6", {})) == {f"{n} (paper)" for n in TABLE6}


def test_fig11_points_by_weight() -> None:
    pts = cmp.f1_vs_weight(TABLE4["DeepFinder"])
    assert [p["pdb"] for p in pts] == list(CLASS_ORDER)
    assert pts[0] == {"pdb": "1s3x", "mw_kda": 42.75, "f1": 0.61}
    assert cmp.f1_vs_weight({})[0]["f1"] is None


def test_the_landing_claims_read_our_summaries() -> None:
    from cryo_companion.papers.claims import claims, compare
    from cryo_companion.papers.shrec2020.claims import RESULT

    ex = worked_example()
    ev = evaluate(ex.pred, ex.truth, ex.occupancy).to_dict()
    data = {"methods": {k: {"summary": cmp.method_summary([ev])} for k in cmp.METHOD_KEYS}}
    rows = [compare(c, data) for c in claims(result=RESULT)]
    assert len(rows) == 2 * len(cmp.METHOD_KEYS)
    assert {r["row"] for r in rows} == set(cmp.METHOD_KEYS.values())
    loc = [r for r in rows if r["where"] == "Table 3"]
    assert all(r["ours"] == pytest.approx(EXPECTED["f1"]) for r in loc)
    assert all(r["ours"] is None for r in (compare(c, {}) for c in claims(result=RESULT)))


def test_a_correlation_of_equal_f1s_is_undefined_not_nan() -> None:
    flat = {c: 0.0 for c in CLASS_ORDER}
    found = {f.key: f for f in cmp.findings({}, {"YOPO": flat}, {})}
    size = found["size_correlation"]
    assert size.evidence["spearman_rho"] == {"YOPO": None} and size.holds is None
    import json

    json.dumps(size.to_dict(), allow_nan=False)                      # a result file takes it
    rising = {c: k / 12 for k, c in enumerate(CLASS_ORDER)}            # by weight: rho = 1
    mixed = {f.key: f for f in cmp.findings({}, {"YOPO": flat, "UMC": rising}, {})}
    assert mixed["size_correlation"].holds is None                    # not for all methods
    assert mixed["size_correlation"].evidence["spearman_rho"]["UMC"] == pytest.approx(1.0)
