"""Table I on both domains and protocols: the target's verdict, the titles, the reality gap read
back, how long the runs trained; on hand-made evaluations whose answers are worked out here."""
from __future__ import annotations

import pytest

from cryo_companion.papers.che2019 import table1, table1_runs, table1_target
from cryo_companion.papers.che2019.evaluate import comparison_name
from cryo_companion.papers.che2019.test_domain import DOMAIN_FILES

A, B = list(DOMAIN_FILES)[:2]
TARGET_VS_BASELINE = comparison_name("randomized+context", "baseline")


def _m(mean: float, n: int = 3, std: float | None = 0.01) -> dict:
    return {"mean": mean, "std": std, "n": n, "values": [mean] * n}


def _summary(acc: float, miou: float, low: float, *, with_target: bool = True) -> dict:
    """Arms baseline and (optionally) randomized+context; the difference's interval [low, ...]."""
    arms = {"baseline": {"threshold": 0.2, "accuracy": _m(0.5), "miou": _m(0.2)}}
    if with_target:
        arms["randomized+context"] = {"threshold": 0.5, "accuracy": _m(acc), "miou": _m(miou)}
    diffs = {TARGET_VS_BASELINE: {
        "accuracy": {"t": {"diff": acc - 0.5, "low": low, "high": acc - 0.5 + 0.1}},
        "miou": {"t": {"diff": miou - 0.2, "low": low, "high": miou - 0.2 + 0.1}}}} \
        if with_target else {}
    return {"arms": arms, "differences": diffs}


def _evaluation(per_domain: dict[str, dict], scale: str = "paper") -> dict:
    return {"scale": scale, "domains": {
        d: {"test_domain": {"name": d, "hash": "ab" * 32, "version": 1}, "n": 9,
            "counts": {"ribosome": 9}, "protocols": {"paper": {"summary": s, "runs": []},
                                                     "matched": {"summary": s, "runs": []}}}
        for d, s in per_domain.items()}}


def test_target_met_only_when_both_metrics_reach_the_paper_on_every_domain() -> None:
    ok = _evaluation({A: _summary(0.85, 0.35, 0.05), B: _summary(0.82, 0.31, 0.01)})
    t = table1_target.target_verdict(ok)
    assert t["targets"] == {"accuracy": 0.818, "miou": 0.300}
    assert t["met"] and all(c["met"] for c in t["domains"].values())
    assert t["domains"][A]["accuracy"]["difference"]["low"] == 0.05
    lines = table1_target.target_lines(t)
    assert lines[0].startswith("**Target met** (paper protocol): randomized+context reaches")
    assert lines[1].startswith("Domain A: accuracy 0.850 ± 0.010 (reaches 0.818;")
    assert lines[2].endswith("— met.")
    # domain B below the paper's accuracy (0.80 < 0.818): not met, though its CI is above zero
    low_acc = table1_target.target_verdict(_evaluation({A: _summary(0.85, 0.35, 0.05),
                                                        B: _summary(0.80, 0.35, 0.05)}))
    assert not low_acc["met"] and low_acc["domains"][A]["met"]
    assert not low_acc["domains"][B]["accuracy"]["reached"]
    assert low_acc["domains"][B]["miou"]["reached"]
    # every mean reached but an interval touching zero: not met
    ci0 = table1_target.target_verdict(_evaluation({A: _summary(0.9, 0.4, 0.0),
                                                    B: _summary(0.9, 0.4, 0.05)}))
    assert not ci0["met"] and not ci0["domains"][A]["accuracy"]["above_zero"]
    assert "not above zero" in table1_target.target_lines(ci0)[1]


def test_target_not_met_and_says_why_without_runs_or_intervals() -> None:
    no_arm = table1_target.target_verdict(_evaluation({A: _summary(0, 0, 0, with_target=False),
                                                       B: _summary(0.9, 0.4, 0.1)}))
    assert not no_arm["met"] and no_arm["domains"][A]["missing"] == "no runs of randomized+context"
    assert table1_target.target_lines(no_arm)[1] == "Domain A: no runs of randomized+context."
    one_seed = _summary(0.9, 0.4, 0.1)
    one_seed["differences"] = {}
    t = table1_target.target_verdict(_evaluation({A: one_seed}), "matched")
    assert not t["met"] and "no interval" in t["domains"][A]["missing"]
    assert t["domains"][A]["accuracy"]["difference"] is None
    assert table1_target.target_lines(t)[0].startswith("**Target not met** (matched protocol)")
    assert not table1_target.target_verdict({"domains": {}})["met"]


def test_target_markdown_says_smoke_and_every_protocol() -> None:
    ev = _evaluation({A: _summary(0.85, 0.35, 0.05)}, scale="smoke")
    md = table1_target.target_markdown({p: table1_target.target_verdict(ev, p)
                                        for p in ("paper", "matched")})
    assert md.startswith(table1.SMOKE_NOTE)
    assert "(paper protocol)" in md and "(matched protocol)" in md
    assert table1_target.target_markdown({}) == "No runs to test the target on."


def test_reality_gap_is_read_with_its_source() -> None:
    assert table1_target.reality_gap_lines(None) == [
        "The reality-gap ladder has no recorded result yet (results/reality_gap.json)."]
    res = {"provenance": {"commit": "0123456789abcdef"},
           "data": {"scale": {"reduced": True},
                    "weights": ["table1_randomized_seed0.pt", "table1_baseline_seed1.pt"],
                    "verdicts": {"paper": ["gap opens at crowders"], "matched": ["m"]}}}
    lines = table1_target.reality_gap_lines(res, "paper")
    assert lines[0] == ("From results/reality_gap.json (commit 0123456, reduced ladder scale, 2 "
                        "weight files of the arms baseline, randomized; paper protocol):")
    assert lines[1:] == ["gap opens at crowders"]
    md = table1_target.reality_gap_markdown(res)
    assert "- gap opens at crowders" in md and "matched protocol):\n- m" in md


def test_sections_say_which_domain_and_protocol() -> None:
    summ = _summary(0.85, 0.35, 0.05)
    summ["arms"]["baseline"].update(pixel_accuracy=_m(0.9))
    ev = _evaluation({A: summ, B: summ}, scale="smoke")
    md = table1.table1_sections(ev, ("baseline", "randomized+context", "randomized"))
    assert md.startswith(table1.SMOKE_NOTE)
    assert md.count("**Domain A (") == 2 and md.count("**Domain B (") == 2
    assert "Table I's test domain, 9 subtomograms); the paper's protocol" in md
    assert "frozen before any context arm was evaluated, 9 subtomograms); the protocol that " \
           "matches training" in md
    assert f"{table1.ARM_ROWS['randomized']} (missing)" in md and table1.MISSING in md
    assert f"{TARGET_VS_BASELINE} = +0.350 (95 % CI [+0.050, +0.450]): above zero." in md
    with pytest.raises(ValueError, match="unknown protocol"):
        table1.protocol_title({"name": A}, "nope")
    assert table1.domain_letter(A) == "A" and table1.domain_letter("other") == "?"


def test_training_lengths_say_reduced_and_missing() -> None:
    def rec(iters: int) -> dict:
        return {"data": {"config": {"iters": iters}}}
    text = table1_runs.training_lengths({("randomized", 0): rec(15_000),
                                         ("randomized", 1): rec(15_000),
                                         ("baseline", 0): rec(5_000), ("baseline", 1): None,
                                         ("baseline+context", 0): None})
    lines = text.splitlines()
    assert lines[0] == "- randomized: 2 seeds (0, 1), 15,000 iterations each"
    assert lines[1] == ("- baseline: 1 seed (0), 5,000 iterations each (**reduced**: the paper "
                        "trained 15,000); missing: seed 1")
    assert lines[2] == "- baseline+context: no run yet; missing: seed 0"
    assert table1_runs.training_lengths({}, scale="smoke").startswith(table1.SMOKE_NOTE)
    assert table1_runs.missing_runs({("a", 0): None, ("a", 1): {}}) == ["a seed 0"]


def test_first_runs_and_headline() -> None:
    w = {("baseline", 2): "b2", ("baseline", 1): "b1", ("randomized", 0): "r0",
         ("ablation:fixed_snr", 0): "x"}
    assert list(table1_runs.first_runs(w).items()) == [
        ("randomized", "r0"), ("baseline", "b1"), ("ablation:fixed_snr", "x")]
    summ = _summary(0.85, 0.35, 0.05)
    ev = _evaluation({A: summ, B: _summary(0.1, 0.1, -1)})
    ev["domains"][A]["protocols"]["paper"]["runs"] = [
        {"arm": "baseline", "seed": 0, "metrics": {"accuracy": 0.5}}]
    head = table1_runs.headline(ev)
    assert head["arms"] == summ["arms"]
    assert head["runs"] == [{"arm": "baseline", "seed": 0, "accuracy": 0.5}]
    assert table1_runs.headline(ev, B)["arms"]["randomized+context"]["accuracy"]["mean"] == 0.1


def test_evaluate_table1_every_run_on_both_domains_under_both_protocols(tmp_path) -> None:
    """Each run's metrics are evaluate()'s at its base arm's threshold and the protocol's
    filter; the summary is over seeds; the domains' records are the frozen ones."""
    import torch

    from cryo_companion.models.dsrf3d import DSRF3DConfig, DSRF3DSegNet, save_weights
    from cryo_companion.papers.che2019.evaluate import evaluate
    from cryo_companion.papers.che2019.ladder_eval import PROTOCOLS
    from cryo_companion.papers.che2019.test_domain import domain_hash, ensure_testset

    cfg = DSRF3DConfig(enc_widths=(2, 2, 2, 2, 2), fc_widths=(4, 4))
    sets = {d: ensure_testset(tmp_path / "data", "smoke", "cpu", domain=d) for d in (A, B)}
    weights, models = {}, {}
    for i, key in enumerate([("randomized", 0), ("randomized", 1), ("baseline+context", 0)]):
        torch.manual_seed(i)
        models[key] = DSRF3DSegNet(cfg, class_names=sets[A].class_names).eval()
        weights[key] = save_weights(models[key], tmp_path / f"w{i}.pt", training={"arm": key[0]})
    ev = table1_runs.evaluate_table1(weights, sets, sweep=(0.5,), scale="smoke")
    assert ev["scale"] == "smoke" and list(ev["domains"]) == [A, B]
    for d, dom in ev["domains"].items():
        assert dom["test_domain"]["hash"] == domain_hash(d) and dom["n"] == len(sets[d])
        assert list(dom["protocols"]) == [p.name for p in PROTOCOLS]
        for p in PROTOCOLS:
            pr = dom["protocols"][p.name]
            assert pr["sigma_vox"] == p.sigma_vox
            got = {(r["arm"], r["seed"]): r["metrics"] for r in pr["runs"]}
            assert set(got) == set(weights)
            ctx = got[("baseline+context", 0)]
            assert ctx["threshold"] == 0.2          # the baseline's threshold (V)
            want = evaluate(models[("baseline+context", 0)], sets[d], threshold=0.2,
                            sigma_vox=p.sigma_vox, sweep=(0.5,)).metrics
            assert ctx["accuracy"] == want["accuracy"] and ctx["miou"] == pytest.approx(
                want["miou"])
            assert pr["summary"]["arms"]["randomized"]["accuracy"]["n"] == 2
    with pytest.raises(ValueError, match="no weights"):
        table1_runs.evaluate_table1({}, sets)
    with pytest.raises(ValueError, match="no test sets"):
        table1_runs.evaluate_table1(weights, {})
