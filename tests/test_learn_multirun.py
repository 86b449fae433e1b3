"""N runs in one step (cryo_companion.learn.multirun): the same losses and weights as the runs
alone, for the loop (bit for bit) and vmap (float tolerance), with batch norm, dropout and
Adam; group checkpoints resume alone and vice versa."""
from __future__ import annotations

import pytest
import torch
from learn_tiny import job, loss

from cryo_companion.learn.fit import FitConfig, run_jobs
from cryo_companion.learn.multirun import choose_strategy, fit_many

CFG = FitConfig(iters=5, validate_every=5)
SEEDS = (0, 1, 2)


def _alone(seeds=SEEDS, cfg=CFG, **kw):
    """The runs trained one by one (``kw`` as :func:`learn_tiny.job`)."""
    out = []
    for s in seeds:
        j, log = job(s, **kw), []
        r = run_jobs([j], loss, cfg, progress=False, loss_logs=[log])[0]
        out.append((log, {k: v.clone() for k, v in j.model.state_dict().items()}, r))
    return out


def _together(strategy, seeds=SEEDS, cfg=CFG, **kw):
    jobs = [job(s, **kw) for s in seeds]
    logs = [[] for _ in jobs]
    res = fit_many(jobs, loss, cfg, strategy=strategy, progress=False, loss_logs=logs)
    return jobs, logs, res


def _compare(alone, jobs, logs, exact):
    """Losses and weights of the runs trained together against the runs alone."""
    for (la, wa, _), j, lb in zip(alone, jobs, logs):
        wb = j.model.state_dict()
        if exact:
            assert la == lb
            assert all(torch.equal(wa[k], wb[k]) for k in wa)
        else:
            assert lb == pytest.approx(la, rel=1e-5, abs=1e-6)
            for k in wa:
                torch.testing.assert_close(wb[k], wa[k], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kw", [{}, {"bn": True}, {"adam": True}, {"precision": "bf16"}],
                         ids=["plain", "batchnorm", "adam", "bf16"])
def test_vmap_equals_runs_alone(kw, device):
    cfg = FitConfig(iters=5, validate_every=5, precision=kw.pop("precision", "fp32"))
    if cfg.precision == "bf16":   # the same autocast inside vmap as in the plain step
        alone = _alone(cfg=cfg, device=device)
        jobs, logs, _ = _together("vmap", cfg=cfg, device=device)
        for (la, _, _), lb in zip(alone, logs):
            assert lb == pytest.approx(la, rel=2e-2)
        return
    alone = _alone(device=device, **kw)
    jobs, logs, res = _together("vmap", device=device, **kw)
    _compare(alone, jobs, logs, exact=False)
    assert [r.stepper for r in res] == ["vmap"] * 3
    assert res[0].timing["runs_per_step"] == 3
    # the runs differ from one another (independent weights and streams)
    assert logs[0] != logs[1]
    # validation and the optimizer state came back into each run's own objects
    for (_, _, ra), rb in zip(alone, res):
        assert rb.history[0]["val_loss"] == pytest.approx(ra.history[0]["val_loss"], rel=1e-4)
    if kw.get("bn"):
        for (_, wa, _), j in zip(alone, jobs):
            assert int(j.model.state_dict()["bn.num_batches_tracked"]) == 5
            torch.testing.assert_close(j.model.state_dict()["bn.running_mean"],
                                       wa["bn.running_mean"], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("kw", [{}, {"dropout": 0.5}], ids=["plain", "dropout"])
def test_loop_equals_runs_alone_bit_for_bit(kw, device):
    """The loop swaps each run's global RNG state in: dropout sees the stream it sees alone
    (bit for bit on the CPU; on CUDA cuDNN's algorithm choice allows rounding differences)."""
    alone = _alone(device=device, **kw)
    jobs, logs, _ = _together("loop", device=device, **kw)
    _compare(alone, jobs, logs, exact=device.type == "cpu")


def test_vmap_refuses_what_it_cannot_train_alike():
    jobs = [job(s, dropout=0.5) for s in SEEDS]
    with pytest.raises(ValueError, match="random numbers.*strategy='loop'"):
        fit_many(jobs, loss, CFG, strategy="vmap", progress=False)
    mixed = [job(0), job(1, adam=True)]
    with pytest.raises(ValueError, match="optimizers differ"):
        fit_many(mixed, loss, CFG, strategy="vmap", progress=False)
    assert choose_strategy(jobs, "auto") == "loop"            # CPU, or dropout
    with pytest.raises(ValueError, match="unknown strategy"):
        choose_strategy(jobs, "grouped")


def test_group_checkpoints_resume_alone_and_in_a_group(tmp_path):
    """A vmap group interrupted at iteration 3 resumes as a group (vmap) and alone (loop) to the
    weights of the uninterrupted runs."""
    cfg = FitConfig(iters=6, checkpoint_every=3)
    alone = _alone(seeds=(0, 1), cfg=cfg, adam=True)
    first = [job(s, out=tmp_path / f"r{s}", adam=True) for s in (0, 1)]
    fit_many(first, loss, FitConfig(iters=3, checkpoint_every=3), strategy="vmap",
             progress=False)
    group = [job(s, out=tmp_path / f"r{s}", adam=True) for s in (0, 1)]
    logs = [[] for _ in group]
    fit_many(group, loss, cfg, strategy="vmap", resume=True, progress=False, loss_logs=logs)
    for (la, _, _), lb in zip(alone, logs):
        assert lb == pytest.approx(la[3:], rel=1e-5)
    _compare(alone, group, [a[0] for a in alone], exact=False)
    # the same checkpoint at iteration 3, resumed alone with the plain loop
    fit_many([job(0, out=tmp_path / "again", adam=True)], loss,
             FitConfig(iters=3, checkpoint_every=3), strategy="vmap", progress=False)
    solo = job(0, out=tmp_path / "again", adam=True)
    run_jobs([solo], loss, cfg, resume=True, progress=False)
    for k, v in alone[0][1].items():
        torch.testing.assert_close(solo.model.state_dict()[k], v, rtol=1e-4, atol=1e-6)


def test_runs_at_different_iterations_are_refused(tmp_path):
    run_jobs([job(0, out=tmp_path / "a")], loss, FitConfig(iters=2), progress=False)
    jobs = [job(0, out=tmp_path / "a"), job(1, out=tmp_path / "b")]
    with pytest.raises(ValueError, match="different iterations"):
        fit_many(jobs, loss, FitConfig(iters=4), strategy="loop", resume=True, progress=False)


def test_auto_takes_the_faster_measured_stepper():
    jobs = [job(s) for s in (0, 1)]
    assert choose_strategy(jobs, "auto", {"loop": 30.0, "vmap": 12.0}) == "vmap"
    assert choose_strategy(jobs, "auto", {"loop": 10.0, "vmap": 12.0, "processes": 1.0}) == "loop"
    assert choose_strategy(jobs[:1], "auto", {"vmap": 1.0}) == "loop"       # one run
    drop = [job(s, dropout=0.5) for s in (0, 1)]
    assert choose_strategy(drop, "auto", {"loop": 30.0, "vmap": 12.0}) == "loop"
