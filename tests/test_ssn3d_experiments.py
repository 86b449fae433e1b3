"""SSN3D's experiments (papers/ssn3d/experiments.py): runs recorded one by one, not trained again,
weights kept for the segment command, the Xu baseline scored on the same test split."""
from __future__ import annotations

import pytest
import torch
from ssn3d_tiny import tiny_set

from cryo_companion.papers.ssn3d import experiments
from cryo_companion.papers.ssn3d.experiments import (
    current_record,
    load_records,
    run_baseline,
    table2_specs,
    table3_specs,
    train_specs,
    weights_path,
)
from cryo_companion.papers.ssn3d.train import RunSpec, Settings, split_of
from cryo_companion.runs.runtime import setup
from cryo_companion.segment.network import load_weights

TINY = Settings.for_scale("smoke", batch_size=2, max_epochs=1, max_iters_per_epoch=None)


class _Cal:
    dose_e_A2 = 12.0


@pytest.fixture
def smoke(tmp_path, monkeypatch):
    """Results in a scratch folder; the data set is the tiny one, never generated."""
    monkeypatch.setenv("CRYO_COMPANION_RESULTS", str(tmp_path / "results"))
    data = tiny_set(10)
    data.meta.update({"snr": {"median": 0.5}, "config_hash": "tiny"})
    monkeypatch.setattr(experiments, "ensure_data",
                        lambda names, run, **k: {n: (data, _Cal()) for n in names})
    return setup("smoke", "cpu", 0, chapter="ssn3d"), data


def test_specs_of_the_tables() -> None:
    t2 = table2_specs([0, 1, 2])
    assert len(t2) == 15 and t2[0].name == "table2_v1_A_seed0" and t2[-1].name == "table2_ed_C_seed2"
    t3 = table3_specs([0])
    assert len(t3) == 22 and {s.dataset for s in t3} == {"A"} and {s.variant for s in t3} == {"ed"}
    assert [s.held_out for s in table3_specs([0], ["1A1S", "1KPB"])] == ["1A1S", "1KP8"]


def test_runs_are_recorded_once_and_their_weights_kept(smoke, monkeypatch) -> None:
    run, _ = smoke
    specs = [RunSpec("table2", "ed", "A", 0), RunSpec("table2", "ed", "A", 1)]
    recs = train_specs(specs, run, TINY, weights=["table2_ed_A_seed0"], progress=False)
    assert sorted(recs) == ["table2_ed_A_seed0", "table2_ed_A_seed1"]
    r0 = recs["table2_ed_A_seed0"]
    assert r0["data"]["weights"] == "ssn3d_table2_ed_A_seed0.pt" and "weights" not in recs[
        "table2_ed_A_seed1"]["data"]
    assert r0["provenance"]["scale"] == "smoke" and r0["data"]["dataset"]["dose_e_A2"] == 12.0
    model, meta = load_weights(weights_path("table2_ed_A_seed0", "smoke"))
    assert model.cfg.name == "SSN3D-ED" and not model.training
    assert meta["preprocessing"] == {"standardize": "per_subtomogram", "voxel_size_A": 13.68,
                                     "contrast": "dark", "box": 40}
    assert meta["training"]["seed"] == 0 and meta["training"]["epochs_trained"] == 1
    assert sorted(load_records("smoke")) == sorted(recs)
    # a second call finds them current and trains nothing
    monkeypatch.setattr(experiments, "train_runs",
                        lambda *a, **k: pytest.fail("a recorded run was trained again"))
    again = train_specs(specs, run, TINY, progress=False)
    assert again["table2_ed_A_seed0"]["data"]["test"] == r0["data"]["test"]
    # other settings or other package sources: not current
    assert current_record(specs[0], TINY, "smoke") is not None
    assert current_record(specs[0], Settings.for_scale("smoke", batch_size=4), "smoke") is None
    assert current_record(specs[0], TINY, "smoke", package="0" * 64) is None


def test_groups_are_trained_n_runs_per_step(smoke, monkeypatch) -> None:
    run, _ = smoke
    seen = []

    def spy(group, *a, **k):
        seen.append([s.name for s in group])
        return []
    monkeypatch.setattr(experiments, "train_runs", spy)
    specs = [RunSpec("table2", "ed", "A", s) for s in range(3)]
    train_specs(specs, run, TINY, group_size=2, weights=(), progress=False)
    assert seen == [["table2_ed_A_seed0", "table2_ed_A_seed1"], ["table2_ed_A_seed2"]]


def test_the_baseline_is_scored_on_the_networks_test_split(smoke) -> None:
    run, data = smoke
    rec = run_baseline("A", run, TINY, progress=False)["data"]
    test = split_of(RunSpec("table2", "ed", "A", 0), data.labels, TINY)["test"]
    assert rec["n_test"] == len(test) and rec["dataset"] == "A"
    assert 0 <= rec["test"]["miou"] <= 1 and set(rec["test"]) >= {"pixel_accuracy",
                                                                  "target_iou"}
    assert torch.isfinite(torch.tensor(rec["test"]["pixel_accuracy"]))
