"""SSN3D trained through learn (papers/ssn3d/train.py): runs, the recipe, bad input refused before
any work, SSN3D's metrics on the test split, records."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from ssn3d_tiny import tiny_set

from cryo_companion.dataset import SubtomogramSet
from cryo_companion.learn.optim import TimeDecayAdam
from cryo_companion.metrics import two_class_scores
from cryo_companion.papers.ssn3d import train as ssn3d_train
from cryo_companion.papers.ssn3d.paper_tables import TABLE1_IDS
from cryo_companion.papers.ssn3d.train import (
    RunSpec,
    Settings,
    check_training_set,
    class_index,
    evaluate,
    make_job,
    run_record,
    split_of,
    train_runs,
)
from cryo_companion.segment.network import preprocess

#: One epoch of full batches of 2 (a tiny set of 10: 8 train, 1 validation, 1 test).
TINY = Settings.for_scale("smoke", batch_size=2, max_epochs=1, max_iters_per_epoch=None)


@pytest.fixture(scope="module")
def data() -> SubtomogramSet:
    return tiny_set(10)


@pytest.fixture(scope="module")
def trained(data):
    specs = [RunSpec("table2", "ed", "A", 0), RunSpec("table2", "ed", "A", 1)]
    return train_runs(specs, data, TINY, "cpu", progress=False)


def test_runs_name_their_table_and_class() -> None:
    s = RunSpec("table3", "ed", "A", 0, held_out="1kpb")     # Table 1's typo, Table 3's GroEL
    assert s.held_out == "1KP8" and s.name == "table3_ed_A_1KP8_seed0"
    assert class_index("1KP8") == class_index("1KPB") == TABLE1_IDS.index("1KPB") == 6
    assert RunSpec("table2", "v1", "C", 2).name == "table2_v1_C_seed2"
    for kw, msg in [({"table": "table4"}, "unknown table"), ({"variant": "v3"}, "variant"),
                    ({"dataset": "D"}, "data set 'D'"), ({"held_out": "1A1S"}, "held-out"),
                    ({"seed": -1}, "seed")]:
        with pytest.raises(ValueError, match=msg):
            RunSpec(**{"table": "table2", "variant": "ed", "dataset": "A", "seed": 0, **kw})
    with pytest.raises(ValueError, match="unknown SSN3D class '9XYZ'"):
        RunSpec("table3", "ed", "A", 0, held_out="9XYZ")


def test_paper_settings_are_the_recipe() -> None:
    s = Settings.for_scale("paper")
    assert (s.batch_size, s.max_epochs, s.patience, s.lr, s.betas, s.lr_decay) == \
        (128, 200, 10, 1e-3, (0.9, 0.99), 1e-8)
    assert s.keep == "best" and s.eps == 1e-7
    with pytest.raises(ValueError, match="unknown scale"):
        Settings.for_scale("huge")


def _copy(d: SubtomogramSet, **kw) -> SubtomogramSet:
    base = {"volumes": d.volumes.copy(), "labels": d.labels.copy(), "masks": d.masks.copy(),
            "class_names": list(d.class_names), "voxel_size_A": d.voxel_size_A}
    return SubtomogramSet(**{**base, **kw})


def test_bad_training_data_is_refused_before_any_work(data, monkeypatch) -> None:
    def started(*a, **k):
        raise AssertionError("training started")
    monkeypatch.setattr(ssn3d_train, "fit_many", started)
    spec = [RunSpec("table2", "ed", "A", 0)]
    nan = data.volumes.copy()
    nan[3, 1, 2, 3] = np.nan
    bad_labels = _copy(data)
    bad_labels.labels = bad_labels.labels[:-1]          # changed after the set was made
    bad_masks = _copy(data)
    bad_masks.masks = bad_masks.masks[:, :-1]
    cases = [
        (_copy(data, volumes=data.volumes[:, :32, :32, :32], masks=data.masks[:, :32, :32, :32]),
         "boxes of \\(32, 32, 32\\) voxels; the network takes 40\\^3"),
        (_copy(data, volumes=nan), "subtomograms \\[3\\] contain NaN"),
        (_copy(data, masks=None), "no target masks"),
        (_copy(data, labels=data.labels % 4, class_names=["a", "b", "c", "d"]),
         "unknown class set"),
        (bad_labels, "do not match the \\(10, 40, 40, 40\\) volumes"),
        (bad_masks, "do not match"),
    ]
    for d, msg in cases:
        with pytest.raises(ValueError, match=msg):
            train_runs(spec, d, TINY, "cpu", progress=False)
    with pytest.raises(ValueError, match="one network on one data set"):
        train_runs([RunSpec("table2", "ed", "A", 0), RunSpec("table2", "v2", "A", 0)], data,
                   TINY, "cpu")
    check_training_set(data)                          # the good set passes


def test_the_job_is_the_papers_recipe(data) -> None:
    spec = RunSpec("table2", "v2", "A", 3)
    x = preprocess(torch.from_numpy(data.volumes), invert=False)
    m = torch.from_numpy(data.masks)
    job = make_job(spec, TINY, data, (x[:2], m[:2]), torch.device("cpu"))
    opt = job.optimizer
    assert isinstance(opt, TimeDecayAdam)
    g = opt.param_groups[0]
    assert (g["base_lr"], g["betas"], g["decay"], g["eps"]) == (1e-3, (0.9, 0.99), 1e-8, 1e-7)
    assert job.model.cfg.name == "SSN3D-v2" and job.config["run"] == spec.to_dict()
    v = job.validate(job.model.eval())
    assert set(v) == {"loss", "pixel_accuracy", "miou", "target_iou", "background_iou"}


def test_training_tests_on_the_split_with_ssn3d_metrics(data, trained) -> None:
    a, b = trained
    sp = split_of(a.spec, data.labels, TINY)
    assert a.split_sizes == {"train": 8, "validation": 1, "test": 1}
    assert a.iters_per_epoch == 4 and a.result.iterations == 4
    assert a.result.history[-1]["iteration"] == 4 and a.result.best_iteration == 4
    # the recorded test scores are SSN3D's metrics of the arg-max masks of the kept weights
    x = preprocess(torch.from_numpy(data.volumes[sp["test"]]), invert=False)
    m = torch.from_numpy(data.masks[sp["test"]])
    with torch.no_grad():
        out = a.model.eval()(x)
    ref = two_class_scores(out, m)
    for k in ("pixel_accuracy", "miou", "target_iou"):
        assert a.test[k] == pytest.approx(ref[k])
    assert evaluate(a.model, x, m)["miou"] == pytest.approx(a.test["miou"])
    wa = torch.cat([p.flatten() for p in a.model.parameters()])
    wb = torch.cat([p.flatten() for p in b.model.parameters()])
    assert not torch.equal(wa, wb)                    # seeds 0 and 1 differ
    rec = run_record(a, TINY, {"name": "A"})
    assert rec["run"] == a.spec.to_dict() and rec["settings"] == TINY.to_dict()
    assert rec["epochs_trained"] == 1 and rec["n_parameters"] == 895_746
    assert rec["stopped_epoch"] is None and rec["best_epoch"] == 1


def test_dropout_networks_cannot_be_vmapped(data, monkeypatch) -> None:
    with pytest.raises(ValueError, match="draw random numbers"):
        train_runs([RunSpec("table2", "v1", "A", 0), RunSpec("table2", "v1", "A", 1)], data,
                   TINY, "cpu", strategy="vmap")


def test_leave_one_out_split_holds_out_the_class(data) -> None:
    sp = split_of(RunSpec("table3", "ed", "A", 0, held_out="1BXR"), data.labels, TINY)
    assert set(data.labels[sp["test"]].tolist()) == {1}
    assert 1 not in set(data.labels[np.concatenate([sp["train"], sp["validation"]])].tolist())


def test_runs_share_one_vmapped_step_on_cuda(data, device, trained) -> None:
    """On CUDA SSN3D-ED's runs of a group share one vmapped step, their training sets resident
    on the GPU (the CPU trains them by the loop: the module's runs above)."""
    if device.type == "cpu":
        assert [t.result.stepper for t in trained] == ["loop", "loop"]
        return
    out = train_runs([RunSpec("table2", "ed", "A", s) for s in (0, 1)], data, TINY, device,
                     progress=False)
    assert [o.result.stepper for o in out] == ["vmap", "vmap"]
    for o, ref in zip(out, trained):
        assert next(o.model.parameters()).device.type == "cuda"
        assert 0 <= o.test["pixel_accuracy"] <= 1 and o.result.iterations == 4
        # the same batches and initial weights: close to the CPU's runs (TF32 off in the test)
        assert o.test["pixel_accuracy"] == pytest.approx(ref.test["pixel_accuracy"], abs=0.05)
