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
    w = [save_weights(DSRF3DSegNet(cfg, class_names=CHE2019_CLASSES), tmp_path / f"w{i}.pt", training={"arm": "randomized"})
         for i in range(2)]
    res = ab.evaluate_ablation({ab.REFERENCE: w, "fixed_snr": w}, scale="smoke",
                               folder=tmp_path / "data")
    assert set(res["domains"]) == set(DOMAIN_FILES)
    for d, r in res["domains"].items():
        assert r["test_domain"]["hash"] == domain_hash(d) and r["test_domain"]["name"] == d
        same = r["ablations"]["fixed_snr"]
        assert same["accuracy"]["n"] == 2 and np.isfinite(same["accuracy"]["mean"])
        assert same["drop"]["accuracy"]["diff"] == 0.0      # the same weights: no drop
        assert r["ablations"][ab.REFERENCE]["drop"]["accuracy"] is None
    with pytest.raises(ValueError, match="reference"):
        ab.evaluate_ablation({"fixed_snr": w}, scale="smoke")
