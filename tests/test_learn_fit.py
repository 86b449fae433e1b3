"""The model-agnostic loop (cryo_companion.learn.fit): learning, exact resume, checkpoints,
validation, timing, precision modes, errors."""
from __future__ import annotations

import pytest
import torch
from learn_tiny import Tiny, draw, job, loss

from cryo_companion.learn.batches import DrawnBatches
from cryo_companion.learn.checkpoint import load_checkpoint
from cryo_companion.learn.fit import FitConfig, fit, run_jobs


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_fit_learns_and_records_history():
    """Validation loss falls on an easy task (a mis-wired loss or optimizer would not)."""
    j = job(0)
    with torch.no_grad():
        before = j.validate(j.model)
    r = run_jobs([j], loss, FitConfig(iters=40, validate_every=20), progress=False)[0]
    assert [h["iteration"] for h in r.history] == [20, 40]
    assert set(r.history[0]) == {"iteration", "train_loss", "train_ce", "val_loss",
                                 "val_accuracy"}
    assert r.history[-1]["val_loss"] < 0.7 * before["loss"]
    assert r.iterations == 40 and r.stepper == "loop"
    t = r.timing
    assert t["iters_timed"] == 40 and t["data_s"] > 0 and t["net_s"] > 0
    assert 0 < t["data_fraction"] < 1 and t["runs_per_step"] == 1 and t["synchronised"]


def test_fit_function_equals_job_loop():
    """fit() is the loop with one job: same losses, same weights."""
    a, b = job(3), job(3)
    la: list[float] = []
    lb: list[float] = []
    fit(a.model, loss, a.batches, a.optimizer, FitConfig(iters=5), generator=a.generator,
        progress=False, loss_log=la)
    run_jobs([b], loss, FitConfig(iters=5), progress=False, loss_logs=[lb])
    assert la == lb and len(la) == 5
    for k, v in _weights(a.model).items():
        assert torch.equal(v, _weights(b.model)[k]), k


@pytest.mark.parametrize("chunk", [1, 3])
def test_resume_is_exact_at_any_iteration(tmp_path, chunk):
    """Interrupted after 4 of 7 iterations (inside a chunk of 3 batches): the resumed run ends
    with the weights, history and checkpoint of the uninterrupted one."""
    full = job(1, out=tmp_path / "full", chunk=chunk)
    cfg = FitConfig(iters=7, checkpoint_every=4, validate_every=2)
    ref = run_jobs([full], loss, cfg, progress=False)[0]
    assert load_checkpoint(tmp_path / "full" / "checkpoint.pt",
                           torch.device("cpu"))["iteration"] == 7
    # the interrupted run: 4 iterations with the same settings, then a fresh process resumes
    half = job(1, out=tmp_path / "half", chunk=chunk)
    run_jobs([half], loss, FitConfig(iters=4, checkpoint_every=4, validate_every=2),
             progress=False)
    again = job(1, out=tmp_path / "half", chunk=chunk)
    got = run_jobs([again], loss, cfg, resume=True, progress=False)[0]
    for k, v in _weights(full.model).items():
        assert torch.equal(v, _weights(again.model)[k]), k
    assert got.history == ref.history
    assert torch.equal(full.generator.get_state(), again.generator.get_state())
    assert not list((tmp_path / "half").glob(".checkpoint*"))   # no temporary file left


def test_periodic_checkpoints_hold_their_iteration(tmp_path):
    j = job(2, out=tmp_path)
    seen = []
    orig = j.batches.next_batch

    def spy(gen):
        if (tmp_path / "checkpoint.pt").exists():
            seen.append(load_checkpoint(tmp_path / "checkpoint.pt", torch.device("cpu"))
                        ["iteration"])
        return orig(gen)

    j.batches.next_batch = spy  # type: ignore[method-assign]
    run_jobs([j], loss, FitConfig(iters=6, checkpoint_every=2), progress=False)
    assert seen == [2, 2, 4, 4]
    ck = load_checkpoint(tmp_path / "checkpoint.pt", torch.device("cpu"))
    assert ck["iteration"] == 6 and ck["config"] == {"seed": 2}
    assert {"model", "optimizer", "generator", "rng", "history", "timing", "source"} <= set(ck)


def test_resume_refuses_another_configuration_or_a_later_checkpoint(tmp_path):
    run_jobs([job(4, out=tmp_path)], loss, FitConfig(iters=3), progress=False)
    other = job(4, out=tmp_path)
    other.config = {"seed": 5}
    with pytest.raises(ValueError, match="another configuration"):
        run_jobs([other], loss, FitConfig(iters=5), resume=True, progress=False)
    with pytest.raises(ValueError, match="beyond the 2"):
        run_jobs([job(4, out=tmp_path)], loss, FitConfig(iters=2), resume=True, progress=False)


def test_non_finite_loss_is_an_error_naming_the_iteration():
    j = job(0)
    calls = {"n": 0}

    def bad_loss(out, y):
        calls["n"] += 1
        v = loss(out, y)["loss"]
        return v * float("nan") if calls["n"] == 3 else v

    with pytest.raises(RuntimeError, match="non-finite at iteration 3: seed 0"):
        run_jobs([j], bad_loss, FitConfig(iters=5), progress=False)


def test_unsynchronised_timing_gives_the_same_training():
    a, b = job(6), job(6)
    la: list[float] = []
    lb: list[float] = []
    run_jobs([a], loss, FitConfig(iters=4), progress=False, loss_logs=[la])
    r = run_jobs([b], loss, FitConfig(iters=4, time_split=False), progress=False,
                 loss_logs=[lb])[0]
    assert la == lb and r.timing["synchronised"] is False


def test_bf16_and_channels_last_on_the_cpu():
    """bf16 autocast runs on the CPU too and stays close to fp32; channels-last changes no value
    beyond rounding."""
    logs = {}
    for name, kw in {"fp32": {}, "bf16": {"precision": "bf16"},
                     "cl": {"channels_last": True}}.items():
        log: list[float] = []
        run_jobs([job(7)], loss, FitConfig(iters=3, **kw), progress=False, loss_logs=[log])
        logs[name] = log
    assert logs["cl"] == pytest.approx(logs["fp32"], rel=1e-5)
    assert logs["bf16"] == pytest.approx(logs["fp32"], rel=0.05)
    assert logs["bf16"] != logs["fp32"]   # autocast was on


def test_fit_config_and_loss_validation():
    with pytest.raises(ValueError, match="iters"):
        FitConfig(iters=0)
    with pytest.raises(ValueError, match="precision"):
        FitConfig(iters=1, precision="fp8")
    with pytest.raises(ValueError, match="checkpoint_every"):
        FitConfig(iters=1, checkpoint_every=-1)
    with pytest.raises(ValueError, match="without 'loss'"):
        run_jobs([job(0)], lambda o, y: {"ce": o.sum()}, FitConfig(iters=1), progress=False)
    with pytest.raises(ValueError, match="no runs"):
        run_jobs([], loss, FitConfig(iters=1))
    with pytest.raises(ValueError, match="unknown stepper"):
        run_jobs([job(0)], loss, FitConfig(iters=1), stepper="threads", progress=False)


def test_a_plain_tensor_loss_and_no_validation():
    torch.manual_seed(0)
    model = Tiny()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    r = fit(model, lambda o, y: torch.nn.functional.cross_entropy(o, y),
            DrawnBatches(draw, 4), opt, FitConfig(iters=2, validate_every=1),
            generator=torch.Generator().manual_seed(0), progress=False)
    assert r.history == [] and r.iterations == 2


def test_precision_parity_compares_two_trainings_of_one_run():
    from cryo_companion.learn.parity import precision_parity

    same = precision_parity(lambda: job(0, validate=False), loss, FitConfig(iters=4),
                            reference="fp32", candidate="fp32", window=2)
    assert same["relative_difference"] == 0.0 and same["same"]      # identical runs
    r = precision_parity(lambda: job(0, validate=False), loss, FitConfig(iters=4),
                         reference="fp32", candidate="bf16", window=2, tolerance=0.05)
    assert len(r["fp32"]) == len(r["bf16"]) == 4 and r["fp32"] != r["bf16"]
    a, b = sum(r["fp32"][-2:]) / 2, sum(r["bf16"][-2:]) / 2
    assert r["relative_difference"] == pytest.approx(abs(a - b) / a)
    assert r["same"] == (r["relative_difference"] <= 0.05)
    with pytest.raises(ValueError, match="window"):
        precision_parity(lambda: job(0), loss, FitConfig(iters=1), window=0)
