"""One factor at a time: ablation presets as data, and their evaluation on both test domains."""
from __future__ import annotations

import numpy as np
import pytest

from cryo_companion.models.dsrf3d import (
    CHE2019_CLASSES,
    DSRF3DConfig,
    DSRF3DSegNet,
    save_weights,
)
from cryo_companion.papers.che2019 import ablation as ab
from cryo_companion.papers.che2019.presets import get_preset
from cryo_companion.papers.che2019.test_domain import DOMAIN_FILES, domain_hash


def test_ablations_cover_the_issues_factors():
    assert [a.factor for a in ab.ABLATIONS] == ["", "SNR", "missing wedge", "defocus",
                                               "spherical aberration", "intensity augmentation",
                                               "context"]


@pytest.mark.parametrize("name", [a.name for a in ab.ABLATIONS if a.factor != "context"])
def test_each_ablation_fixes_only_its_factor(name):
    ref, base = ab.base_preset(), get_preset("baseline")
    p = ab.ablation_preset(name)
    fields = ab._ablation(name).fields
    changed = {k for k, v in p.as_dict().items() if v != ref.as_dict()[k]} - {"name", "source"}
    assert changed <= set(fields)
    for f in fields:
        if name == "no_intensity_augmentation":
            assert getattr(p, f) == {"intensity_scale": (1.0, 1.0),
                                     "intensity_offset": (0.0, 0.0)}[f]
        else:
            assert getattr(p, f) == getattr(base, f)      # the baseline arm's value
            assert getattr(p, f)[0] == getattr(p, f)[1]   # fixed
    assert p.name == f"ablation:{name}"


def test_context_slot():
    if ab.context_fields():
        p = ab.ablation_preset("no_context")
        for f in ab.context_fields():
            assert getattr(p, f) == getattr(get_preset("baseline"), f)
        assert "no_context" in ab.available()
    else:
        with pytest.raises(ValueError, match="context fields"):
            ab.ablation_preset("no_context")
        assert "no_context" not in ab.available()
    with pytest.raises(ValueError, match="unknown ablation"):
        ab.ablation_preset("fixed_everything")


def test_training_plan_is_data():
    plan = ab.training_plan(1000, seeds=(0, 1))
    assert len(plan) == 2 * len(ab.available())
    assert {r["ablation"] for r in plan} == set(ab.available())
    assert all(r["iters"] == 1000 and r["preset"]["name"] == f"ablation:{r['ablation']}"
               for r in plan)
    with pytest.raises(ValueError):
        ab.training_plan(0)


def test_evaluate_ablation_on_both_domains(tmp_path):
    cfg = DSRF3DConfig(enc_widths=(2, 2, 2, 2, 2), fc_widths=(4, 4))
    w = [save_weights(DSRF3DSegNet(cfg, class_names=CHE2019_CLASSES), tmp_path / f"w{i}.pt",
                      training={"arm": "randomized"})
         for i in range(2)]
    both = ab.evaluate_ablations({ab.REFERENCE: w, "fixed_snr": w}, scale="smoke",
                                 folder=tmp_path / "data")
    assert {k: (r["sigma_vox"], r["scale"]) for k, r in both.items()} == {
        "paper": (1.0, "smoke"), "matched": (0.0, "smoke")}
    res = both["paper"]
    assert set(res["domains"]) == set(DOMAIN_FILES)
    for d, r in res["domains"].items():
        assert r["test_domain"]["hash"] == domain_hash(d) and r["test_domain"]["name"] == d
        same = r["ablations"]["fixed_snr"]
        assert same["accuracy"]["n"] == 2 and np.isfinite(same["accuracy"]["mean"])
        assert same["drop"]["accuracy"]["diff"] == 0.0      # the same weights: no drop
        assert r["ablations"][ab.REFERENCE]["drop"]["accuracy"] is None
    with pytest.raises(ValueError, match="reference"):
        ab.evaluate_ablation({"fixed_snr": w}, scale="smoke")


def _result(scale: str = "paper") -> dict:
    def cell(acc: float, drop: dict | None, seeds: int = 3) -> dict:
        m = {"mean": acc, "std": 0.01, "n": seeds, "values": [acc] * seeds}
        return {"seeds": seeds, "accuracy": m, "miou": {**m, "mean": acc / 2},
                "drop": {"accuracy": drop, "miou": None}}
    per = {ab.REFERENCE: cell(0.8, None),
           "fixed_snr": cell(0.6, {"diff": 0.2, "low": 0.1, "high": 0.3}),
           "no_context": cell(0.85, {"diff": -0.05, "low": -0.09, "high": -0.01}),
           "fixed_cs": cell(0.79, {"diff": 0.01, "low": -0.02, "high": 0.04})}
    d = list(DOMAIN_FILES)[1]
    return {"threshold": 0.5, "sigma_vox": 0.0, "scale": scale,
            "domains": {d: {"n": 1051, "ablations": per, "test_domain": {"name": d}}}}


def test_drop_tables_and_verdicts_follow_the_intervals():
    res = _result()
    d = next(iter(res["domains"]))
    v = ab.drop_verdicts(res, d)
    assert v == ["SNR: drop in accuracy +0.200 [+0.100, +0.300]: its randomization helps.",
                 "spherical aberration: drop in accuracy +0.010 [-0.020, +0.040]: no "
                 "significant difference.",
                 "context: drop in accuracy -0.050 [-0.090, -0.010]: fixing it helps."]
    assert ab.drop_verdicts(res, d, "miou")[0] == "SNR: too few seeds for an interval."
    t = ab.ablation_table(res, d).splitlines()
    assert t[0] == ("| ablation | factor fixed | seeds | accuracy | drop in accuracy (95 % CI) "
                    "| mIoU | drop in mIoU (95 % CI) |")
    assert t[2].startswith("| all_randomized | none (reference) | 3 | 0.800 ± 0.010 | reference")
    assert [r.split(" | ")[0] for r in t[2:]] == [
        "| all_randomized", "| fixed_snr", "| fixed_cs", "| no_context"]   # ABLATIONS order
    md = ab.ablation_sections({"matched": res})
    assert md.startswith("**Domain B (che2019_test_domain_b, 1,051 subtomograms); the protocol "
                         "that matches training (sigma 0: no filter); mask threshold 0.5**")
    smoke = ab.ablation_sections({"matched": _result("smoke")})
    from cryo_companion.papers.che2019.table1 import SMOKE_NOTE
    assert smoke.startswith(SMOKE_NOTE) and not md.startswith(SMOKE_NOTE)


def test_configurations_and_weights_of_exported_records(tmp_path, monkeypatch):
    table = ab.configurations_table()
    assert "| fixed_wedge | missing wedge | wedge_deg = 30 |" in table
    assert "| no_intensity_augmentation | intensity augmentation | intensity_scale = 1, " \
           "intensity_offset = 0 |" in table
    assert len(table.splitlines()) == 2 + len(ab.available())
    assert ab.ABLATION_ARMS == tuple(f"ablation:{n}" for n in ab.available())
    assert ab.ABLATION_ARMS[0] == f"ablation:{ab.REFERENCE}" and ab.ABLATION_ITERS < 15_000
    from cryo_companion.papers.che2019 import weights as W
    monkeypatch.setattr(W, "weights_dir", lambda scale="paper": tmp_path / scale)
    rec = lambda name: {"data": {"weights": name}}  # noqa: E731
    got = ab.ablation_weights({("ablation:fixed_snr", 1): rec("s1.pt"),
                               ("ablation:fixed_snr", 0): rec("s0.pt"),
                               ("ablation:all_randomized", 0): rec("r0.pt"),
                               ("ablation:fixed_cs", 0): None, ("randomized", 0): rec("x.pt")},
                              "smoke")
    assert got == {ab.REFERENCE: [tmp_path / "smoke" / "r0.pt"],
                   "fixed_snr": [tmp_path / "smoke" / "s0.pt", tmp_path / "smoke" / "s1.pt"]}
    with pytest.raises(ValueError, match="protocols"):
        ab.evaluate_ablations(got, scale="smoke", protocols=())
