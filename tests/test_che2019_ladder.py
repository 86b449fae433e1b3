"""The reality-gap ladder: one factor per rung, paired imaging rungs, cache, evaluation,
verdicts."""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch

from cryo_companion.papers.che2019 import ladder
from cryo_companion.papers.che2019 import ladder_eval as le
from cryo_companion.papers.che2019.test_domain import FULL_REALISM, ISOLATED, domain_hash


def _switches(r: ladder.Rung) -> dict:
    return {**dataclasses.asdict(r.realism), "mode": r.mode}


def test_each_rung_adds_exactly_one_factor():
    rungs = ladder.RUNGS
    assert (rungs[0].realism, rungs[0].mode) == (ISOLATED, "ideal")
    assert (rungs[-1].realism, rungs[-1].mode) == (FULL_REALISM, "full")   # the test domain
    for a, b in itertools.pairwise(rungs):
        sa, sb = _switches(a), _switches(b)
        changed = [k for k in sa if sa[k] != sb[k]]
        assert len(changed) == 1, (a.name, b.name, changed)
    assert [r.name for r in rungs][:5] == ["ideal", "projection", "ctf", "shot_noise", "copies"]
    with pytest.raises(ValueError, match="unknown rung"):
        ladder.rung("nope")
    with pytest.raises(ValueError, match="unknown ladder scale"):
        ladder.ladder_sizes("huge")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("ladder")
    return ladder.ensure_ladder(root, "smoke", "cpu"), root


def test_smoke_ladder_sets(smoke):
    sets, _ = smoke
    assert list(sets) == [r.name for r in ladder.RUNGS]
    want = ladder.ladder_sizes("smoke")["counts"]
    lh = ladder.ladder_hash("smoke")
    for name, data in sets.items():
        r = ladder.rung(name)
        assert data.meta["rung"] == name and data.meta["ladder_hash"] == lh
        assert data.meta["test_domain_hash"] == domain_hash()
        assert data.meta["realism"] == r.realism.to_dict() and data.meta["imaging_mode"] == r.mode
        assert data.meta["contrast"] == ("bright" if r.mode in ("ideal", "projection") else "dark")
        assert data.counts == {**want, "membrane": want["membrane"] if name == "membranes" else 0}
        assert np.isfinite(data.volumes).all() and data.masks.reshape(len(data), -1).any(1).all()
    # the four isolated rungs are the same targets imaged four ways
    iso = [sets[n] for n in ("ideal", "projection", "ctf", "shot_noise")]
    for d in iso[1:]:
        assert np.array_equal(d.labels, iso[0].labels) and np.array_equal(d.masks, iso[0].masks)
        assert not np.allclose(d.volumes, iso[0].volumes)


def test_ladder_cache_is_reused_and_completed(smoke, monkeypatch):
    sets, root = smoke
    calls = []
    real = ladder.generate_sets

    def spy(*a, **k):
        calls.append(k["realism"])
        return real(*a, **k)

    monkeypatch.setattr(ladder, "generate_sets", spy)
    again = ladder.ensure_ladder(root, "smoke", "cpu")
    assert calls == [] and np.array_equal(again["ctf"].volumes, sets["ctf"].volumes)
    import shutil

    shutil.rmtree(root / f"ladder_{ladder.DEFAULT_DOMAIN}_smoke" / "contact")
    redone = ladder.ensure_ladder(root, "smoke", "cpu")
    assert calls == [ladder.rung("contact").realism]          # only the missing rung's group
    assert np.array_equal(redone["contact"].volumes, sets["contact"].volumes)  # same seed


def test_rung_metrics_hand_worked():
    from cryo_companion.dataset import SubtomogramSet

    names = ["ribosome", "membrane", "TRiC", "proteasome"]
    masks = np.zeros((4, 40, 40, 40), bool)
    masks[:, :10] = True                                  # 16,000 target voxels each
    data = SubtomogramSet(np.zeros((4, 40, 40, 40)), [0, 1, 2, 3], masks, names, 13.68)
    pred = torch.tensor([0, 1, 1, 1])
    pm = torch.zeros(4, 40, 40, 40, dtype=torch.bool)
    pm[0, :10] = True                                     # IoU 1
    pm[1, :5] = True                                      # IoU 0.5
    pm[2, :20] = True                                     # IoU 0.5
    metrics = {"per_class_accuracy": {n: None for n in names}, "confusion_matrix": []}
    m = le.rung_metrics(metrics, pred, pm, data)
    assert m["accuracy"] == 0.5 and m["particle_accuracy"] == pytest.approx(1 / 3)
    assert m["membrane_called"] == 0.75
    assert m["miou"] == pytest.approx((1 + 0.5 + 0.5 + 0) / 4)
    assert m["miou_particles"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert m["particle_accuracy_se"] == pytest.approx(np.sqrt(1 / 3 * 2 / 3 / 3))


def _rows(values: dict[str, list[float]], arm: str, se: float = 0.02) -> list[dict]:
    """Synthetic evaluation rows: ``values[rung]`` per seed."""
    rows = []
    for r, vs in values.items():
        for seed, v in enumerate(vs):
            rows.append({"arm": arm, "seed": seed, "rung": r, "protocol": "paper", "n": 100,
                         "n_particles": 75, "per_class_accuracy": {"a": v},
                         **{k: v for k in le.LADDER_METRICS},
                         **{f"{k}_se": se for k in le.LADDER_METRICS}})
    return rows


def test_where_the_gap_opens_and_finding_d():
    names = [r.name for r in ladder.RUNGS]
    # arm "x": projection costs 0.4, the copies nothing, crowders 0.2; arm "y": flat
    x = dict(zip(names, [[0.95, 0.97], [0.55, 0.57], [0.55, 0.55], [0.54, 0.56], [0.55, 0.53],
                         [0.35, 0.33], [0.34, 0.34], [0.3, 0.3]]))
    y = {n: [0.9, 0.9] for n in names}
    s = le.summarize_ladder(_rows(x, "x") + _rows(y, "y"))
    assert s["rungs"] == names and s["arms"]["x"]["paper"]["ideal"]["particle_accuracy"][
        "mean"] == pytest.approx(0.96)
    g = le.where_gap_opens(s)
    assert g["x"]["opens"]["to"] == "projection" and g["x"]["opens"]["best_before"] == "ideal"
    assert g["y"]["opens"] is None
    assert g["x"]["first_significant_drop"]["to"] == "projection"
    assert g["x"]["largest_drop"]["to"] == "projection"
    assert g["x"]["largest_drop"]["change"] == pytest.approx(-0.40)
    assert g["y"]["largest_drop"] is None and g["y"]["first_significant_drop"] is None
    f = le.finding_d(s)
    assert f["x"]["cause"] == "projection" and not f["x"]["copies_significant"]
    assert f["x"]["imaging_change"] == pytest.approx(0.55 - 0.96)
    assert f["y"]["cause"] is None
    lines = le.verdict_lines(s)
    assert any("Finding (d), **x**" in line and "projection" in line for line in lines)
    # a rung the next one recovers from does not open the gap: it opens where it stays open
    z = dict(zip(names, [[0.6, 0.6], [0.3, 0.3], [0.95, 0.95], [0.97, 0.97], [0.5, 0.5],
                         [0.02, 0.02], [0.0, 0.0], [0.0, 0.0]]))
    gz = le.where_gap_opens(le.summarize_ladder(_rows(z, "z")))["z"]
    assert gz["first_significant_drop"]["to"] == "projection"
    assert (gz["opens"]["from"], gz["opens"]["to"], gz["opens"]["best_before"]) == (
        "shot_noise", "copies", "shot_noise")
    assert gz["largest_drop"]["to"] == "crowders"
    with pytest.raises(ValueError, match="unknown metric"):
        le.where_gap_opens(s, metric="f1")
    with pytest.raises(ValueError, match="finding"):
        le.finding_d(le.summarize_ladder(_rows({"ideal": [1.0]}, "x")))


def test_evaluate_ladder_on_committed_weights(smoke, tmp_path):
    sets, _ = smoke
    w = [p for p in le.weight_files() if p.name == "table1_randomized_seed0.pt"]
    sub = {k: sets[k] for k in ("shot_noise", "membranes")}
    rows = le.evaluate_ladder(w, sub, protocols=le.PROTOCOLS[:1])
    assert [(r["rung"], r["protocol"]) for r in rows] == [("shot_noise", "paper"),
                                                           ("membranes", "paper")]
    for r in rows:
        assert r["arm"] == "randomized" and r["seed"] == 0 and r["threshold"] == 0.5
        assert r["test_domain"]["hash"] == domain_hash() and r["n"] == len(sub[r["rung"]])
        assert 0 <= r["particle_accuracy"] <= 1 and 0 <= r["miou"] <= 1
    with pytest.raises(ValueError, match="unknown rung"):
        le.evaluate_ladder(w, {"nope": sets["ctf"]})
    from cryo_companion.models.dsrf3d import (
        CHE2019_CLASSES,
        DSRF3DConfig,
        DSRF3DSegNet,
        save_weights,
    )

    tiny = DSRF3DSegNet(DSRF3DConfig(enc_widths=(2, 2, 2, 2, 2), fc_widths=(2, 2)),
                        class_names=CHE2019_CLASSES)
    bad = save_weights(tiny, tmp_path / "w.pt", training={"arm": "context-free"})
    with pytest.raises(ValueError, match="arm"):
        le.evaluate_ladder([bad], sub)


def test_table1_reference_from_confusion_matrices():
    names = ["ribosome", "membrane", "TRiC", "proteasome"]
    cm = [[1, 3, 0, 0], [0, 4, 0, 0], [0, 2, 2, 0], [0, 4, 0, 0]]       # summed over 2 seeds
    res = {"data": {"runs": [{"class_names": names}],
                    "arms": {"randomized": {"accuracy": {"mean": 0.4}, "seeds": [0, 1],
                                            "confusion_matrix": cm}}}}
    r = le.table1_reference(res)["randomized"]
    assert r["particle_accuracy"] == pytest.approx(3 / 12)
    assert r["membrane_called"] == pytest.approx(13 / 16) and r["n"] == 8
    assert le.table1_reference(None) is None
