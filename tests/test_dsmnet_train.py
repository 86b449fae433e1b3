"""DSM-Net's runs trained through learn (papers/dsmnet/train.py, experiments.py): the recipe, the
splits, the weighted loss, the records, skipping what is recorded, Tables 2-4 from the records,
the unseen-structure analysis and the GPU jobs' plan."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from dsmnet_tiny import tiny_crowded

from cryo_companion.models.dsmnet import DSMNet
from cryo_companion.papers.dsmnet import experiments, tables
from cryo_companion.papers.dsmnet.splits import split_sizes
from cryo_companion.papers.dsmnet.train import (
    SeedRun,
    Settings,
    check_training_set,
    make_loss,
    run_record,
    split_of,
    train_runs,
)
from cryo_companion.papers.dsmnet.training import run_spec
from cryo_companion.runs.runtime import setup

#: Narrow networks, 2 epochs of 2 batches of 4 (a tiny set of 40: 32 train, 4 validation, 4 test).
TINY = Settings.for_scale("smoke", widths=(2, 4, 8), fc_width=8)


@pytest.fixture(scope="module")
def data():
    return tiny_crowded(40)


@pytest.fixture(scope="module")
def trained(data):
    return train_runs([SeedRun(run_spec("table2/dsmnet"), s) for s in (0, 1)], data, TINY, "cpu",
                      progress=False)


def test_paper_settings_are_the_recipe() -> None:
    s = Settings.for_scale("paper")
    assert (s.batch_size, s.max_epochs, s.patience, s.lr, s.betas, s.keep) == \
        (64, 100, 15, 1e-3, (0.9, 0.99), "best")
    assert (s.widths, s.fc_width, s.max_iters_per_epoch) == ((32, 64, 128), 1024, None)
    assert SeedRun(run_spec("table3/B/dsmnet"), 2).name == "table3_B_dsmnet_seed2"
    assert SeedRun(run_spec("table4/cls+seg_1:100"), 0).name == "table4_cls_seg_1-100_seed0"
    with pytest.raises(ValueError, match="unknown scale"):
        Settings.for_scale("huge")
    with pytest.raises(ValueError, match="seed must be >= 0"):
        SeedRun(run_spec("table2/cls"), -1)


def test_the_weighted_loss_by_hand() -> None:
    g = torch.Generator().manual_seed(0)
    out = {"class_logits": torch.randn(2, 3, generator=g),
           "segmentation": torch.randn(2, 2, 4, 4, 4, generator=g),
           "recovery": torch.rand(2, 4, 4, 4, generator=g)}
    labels, masks = torch.tensor([0, 2]), torch.rand(2, 4, 4, 4, generator=g) > 0.5
    dens = masks.float()
    got = make_loss({"cls": 1.0, "seg": 10.0, "rec": 1.0})(out, labels, masks, dens)
    ce = float(torch.nn.functional.cross_entropy(out["class_logits"], labels))
    seg = float(torch.nn.functional.cross_entropy(out["segmentation"], masks.long()))
    mse = float(((out["recovery"] - dens) ** 2).mean())
    assert float(got["cls"]) == pytest.approx(ce) and float(got["seg"]) == pytest.approx(seg)
    assert float(got["rec"]) == pytest.approx(mse)
    assert float(got["loss"]) == pytest.approx(ce + 10 * seg + mse, rel=1e-6)


def test_bad_sets_and_runs_are_refused_before_any_work(data) -> None:
    bad = tiny_crowded(12, box=12)
    with pytest.raises(ValueError, match="multiple of 8"):
        check_training_set(bad)
    few = tiny_crowded(8)
    with pytest.raises(ValueError):
        check_training_set(few)
    spec = run_spec("table2/dsmnet")
    with pytest.raises(ValueError, match="distinct seeds of one row"):
        train_runs([SeedRun(spec, 0), SeedRun(spec, 0)], data, TINY, "cpu", progress=False)
    with pytest.raises(ValueError, match="outputs 2 classes; the data set has 22"):
        train_runs([SeedRun(run_spec("table3/C/seg"), 0)], data, TINY, "cpu", progress=False)
    with pytest.raises(ValueError, match="no runs"):
        train_runs([], data, TINY, "cpu")


def test_runs_train_test_and_record(data, trained) -> None:
    sizes = split_sizes(len(data))
    for tr in trained:
        assert isinstance(tr.model, DSMNet) and not tr.model.training
        assert tr.split_sizes["test"] == sizes["test"] and tr.iters_per_epoch == 2
        assert tr.result.iterations <= TINY.max_epochs * 2 and tr.converged in (True, False)
        rec = run_record(tr, TINY, {"name": "tiny"})
        assert rec["stepper"] == "loop"                       # dropout: the loop stepper
        assert rec["n_parameters"] == sum(p.numel() for p in tr.model.parameters())
        assert 1 <= rec["epochs_trained"] <= TINY.max_epochs
        assert rec["best_epoch"] is not None and rec["best_epoch"] <= rec["epochs_trained"]
        assert all("val_loss" in h and "val_fit_cls_loss" in h for h in rec["history"])
        for k in ("object_accuracy", "pixel_accuracy", "miou", "recovery_mse", "loss"):
            assert math.isfinite(tr.test[k])
        assert 0 <= tr.test["miou"] <= 1 and 0 <= tr.test["object_accuracy"] <= 1
    # different seeds, different networks; the same seed alone trains the same network
    a, b = (dict(t.model.state_dict()) for t in trained)
    assert any(not torch.equal(a[k], b[k]) for k in a)
    alone = train_runs([SeedRun(run_spec("table2/dsmnet"), 1)], data, TINY, "cpu",
                       progress=False)[0]
    assert alone.test == pytest.approx(trained[1].test, rel=1e-5, abs=1e-6)


def test_the_held_out_class_is_never_trained_on(data) -> None:
    spec = run_spec("unseen/dsmnet_21")
    lab = np.asarray(data.labels)
    g = data.class_names.index("1KPB GroEL")
    sp = split_of(spec, lab, data.class_names, TINY)
    assert not (lab[sp["train"]] == g).any() and not (lab[sp["validation"]] == g).any()
    tr = train_runs([SeedRun(spec, 0)], data, TINY, "cpu", progress=False)[0]
    assert tr.model.cfg.n_classes == 21 and "1KPB GroEL" not in tr.class_names
    assert tr.test_held_out is not None and tr.test_held_out["n"] == (lab == g).sum()
    assert "object_accuracy" not in tr.test_held_out
    res = experiments.analyze_unseen(tr.model, data, seed=0, k=4, chunk=8, embed=True)
    assert res["n_groel"] == (lab == g).sum() and res["groel"] == g
    assert len(res["discovery"]["clusters"]) == len(data) and len(res["discovery"]["tsne"]) \
        == len(data)
    assert sum(res["groel_predicted"].values()) == res["n_groel"]
    assert set(res["fsc"]["resolution"]) == {"fsc_0_5", "fsc_0_143"}
    e = res["discovery"]["enriched"]
    assert 0 <= e["purity"] <= 1 and 0 <= e["recall"] <= 1
    json.dumps(res, allow_nan=False)                         # recordable as it is


def test_recorded_runs_are_skipped_and_assembled(tmp_path, monkeypatch, data) -> None:
    monkeypatch.setenv("CRYO_COMPANION_RESULTS", str(tmp_path))
    monkeypatch.setattr(experiments, "ensure_data", lambda names, run, **kw: {"A": data})
    run = setup("smoke", "cpu", 0, chapter="dsmnet")
    runs = experiments.seed_runs(["table2/seg", "table2/cls"], max_seeds=2)
    assert [r.name for r in runs] == ["table2_seg_seed0", "table2_seg_seed1",
                                      "table2_cls_seed0", "table2_cls_seed1"]
    recs, _ = experiments.train_recorded(runs, run, TINY, group_size=2, weights=(),
                                         progress=False)
    assert list(recs) == [r.name for r in runs]
    assert sorted(p.name for p in (tmp_path / "smoke" / "dsmnet_runs").iterdir()) == \
        sorted(f"{r.name}.json" for r in runs)
    # a second call trains nothing: every record is current
    monkeypatch.setattr(experiments, "train_runs", lambda *a, **k: pytest.fail("retrained"))
    again, _ = experiments.train_recorded(runs, run, TINY, progress=False)
    assert again == recs
    t = tables.assemble(experiments.collect_records(runs, TINY, "smoke"))
    seg = t["table2"]["seg"]
    assert seg["seeds"] == [0, 1] and len(seg["miou"]["values"]) == 2
    assert seg["miou"]["mean"] == pytest.approx(np.mean(seg["miou"]["values"]))
    assert t["table2"]["cls"]["object_accuracy"]["values"] == [
        recs[f"table2_cls_seed{s}"]["data"]["test"]["object_accuracy"] for s in (0, 1)]
    assert "table3" not in t
    checks = tables.check_claims(t)
    assert checks and all(c.paper in ("holds", "does not hold") for c in checks)
    assert {c.ours for c in checks} <= {"holds", "holds beyond the seeds' spread",
                                        "does not hold", "not produced yet"}


def test_the_seg_subnet_trains_vmapped_as_by_the_loop(data, device) -> None:
    """The Seg Subnet has no dropout: its seeds may share one vmapped step (what "auto" picks
    on CUDA), with the same results as the loop's, on every device."""
    runs = [SeedRun(run_spec("table2/seg"), s) for s in (0, 1)]
    one = Settings.for_scale("smoke", widths=(2, 4, 8), fc_width=8, max_epochs=1)
    vm = train_runs(runs, data, one, device, strategy="vmap", progress=False)
    lp = train_runs(runs, data, one, device, strategy="loop", progress=False)
    assert [t.result.stepper for t in vm] == ["vmap", "vmap"]
    assert [t.result.stepper for t in lp] == ["loop", "loop"]
    for a, b in zip(vm, lp):
        assert a.test == pytest.approx(b.test, rel=1e-3, abs=1e-4)
        assert next(a.model.parameters()).device.type == torch.device(device).type
    auto = train_runs(runs, data, one, device, progress=False)
    assert auto[0].result.stepper == ("vmap" if torch.device(device).type == "cuda" else "loop")
