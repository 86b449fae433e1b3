"""Early stopping (cryo_companion.learn.early_stopping and its use in learn.fit): Keras' rule,
the kept weights, each of N runs per step stopping on its own, and resume."""
from __future__ import annotations

import math

import pytest
import torch
from learn_tiny import job, loss

from cryo_companion.learn.checkpoint import load_checkpoint
from cryo_companion.learn.early_stopping import EarlyStopping, StopState
from cryo_companion.learn.fit import FitConfig, run_jobs
from cryo_companion.learn.multirun import fit_many


def test_rule_is_keras_early_stopping() -> None:
    r = EarlyStopping("acc", patience=2, min_delta=0.01)
    assert r.improves(0.1, None) and r.improves(0.52, 0.5) and not r.improves(0.505, 0.5)
    assert not r.improves(math.nan, 0.5)
    lo = EarlyStopping("loss", patience=1, mode="min")
    assert lo.improves(0.4, 0.5) and not lo.improves(0.5, 0.5)
    # hand-worked: 0.50 (best), 0.60 (best), 0.605 (< min_delta: wait 1), 0.59 (wait 2: stop)
    st, m = StopState(), torch.nn.Linear(1, 1)
    stops = [st.update(r, {"acc": v}, it, m) for it, v in enumerate([0.5, 0.6, 0.605, 0.59], 1)]
    assert stops == [False, False, False, True]
    assert (st.best, st.best_iteration, st.stopped_at, st.wait) == (0.6, 2, 4, 2)
    assert StopState.from_state_dict(st.state_dict()).state_dict().keys() == st.state_dict().keys()
    with pytest.raises(KeyError, match="monitors 'acc'.*returns \\['loss'\\]"):
        StopState().update(r, {"loss": 1.0}, 1, m)
    for kw, msg in [({"patience": 0}, "patience must be >= 1"), ({"mode": "up"}, "mode 'up'"),
                    ({"keep": "first"}, "keep 'first'"), ({"min_delta": -1.0}, "min_delta")]:
        with pytest.raises(ValueError, match=msg):
            EarlyStopping("acc", **{"patience": 3, **kw})
    with pytest.raises(ValueError, match="validate_every >= 1"):
        FitConfig(iters=5, early_stopping=r)


def _scripted(values):
    """A validation hook returning ``values`` in turn (a shared counter survives a resume)."""
    calls = {"n": 0}

    def hook(model):
        v = values[min(calls["n"], len(values) - 1)]
        calls["n"] += 1
        return {"acc": v}
    return hook


#: Validated every iteration: best at iteration 2, stop at 4 with patience 2.
VALUES = [0.1, 0.5, 0.4, 0.3, 0.9, 0.9]


def _weights(j):
    return {k: v.clone() for k, v in j.model.state_dict().items()}


def _plain(seed, iters):
    """The same run trained ``iters`` iterations without early stopping."""
    j = job(seed)
    run_jobs([j], loss, FitConfig(iters=iters), progress=False)
    return _weights(j)


@pytest.mark.parametrize("keep,expected_iters", [("best", 2), ("last", 4)])
def test_a_run_stops_and_keeps_the_weights_asked_for(keep, expected_iters) -> None:
    rule = EarlyStopping("acc", patience=2, keep=keep)
    j = job(0)
    j.validate = _scripted(VALUES)
    log: list[float] = []
    r = run_jobs([j], loss, FitConfig(iters=8, validate_every=1, early_stopping=rule),
                 progress=False, loss_logs=[log])[0]
    assert (r.stopped_at, r.iterations, r.best_iteration, r.best_value) == (4, 4, 2, 0.5)
    assert len(log) == 4 and [h["iteration"] for h in r.history] == [1, 2, 3, 4]
    w = _weights(j)
    ref = _plain(0, expected_iters)
    assert all(torch.equal(w[k], ref[k]) for k in w)


@pytest.mark.parametrize("strategy", ["loop", "vmap"])
def test_each_of_n_runs_stops_on_its_own(strategy) -> None:
    """Run 0 stops at 4, run 1 at 6, run 2 trains to the end: each as if trained alone."""
    rule = EarlyStopping("acc", patience=2, keep="last")
    scripts = [VALUES, [0.1, 0.2, 0.3, 0.5, 0.4, 0.3, 1.0, 1.0], [0.1 * i for i in range(1, 9)]]
    jobs = [job(s) for s in range(3)]
    for j, v in zip(jobs, scripts):
        j.validate = _scripted(v)
    cfg = FitConfig(iters=8, validate_every=1, early_stopping=rule)
    res = fit_many(jobs, loss, cfg, strategy=strategy, progress=False)
    assert [r.stopped_at for r in res] == [4, 6, None]
    assert [r.iterations for r in res] == [4, 6, 8]
    for s, (j, n) in enumerate(zip(jobs, (4, 6, 8))):
        ref, w = _plain(s, n), _weights(j)
        for k in w:
            if strategy == "loop":
                assert torch.equal(w[k], ref[k]), (s, k)
            else:
                torch.testing.assert_close(w[k], ref[k], rtol=1e-4, atol=1e-6)


def test_resume_continues_the_count_and_a_stopped_run_stays_stopped(tmp_path) -> None:
    rule = EarlyStopping("acc", patience=2, keep="best")
    cfg = FitConfig(iters=8, validate_every=1, early_stopping=rule)
    # uninterrupted
    a = job(0)
    a.validate = _scripted(VALUES)
    ra = run_jobs([a], loss, cfg, progress=False)[0]
    # interrupted after 3 iterations (one validation without improvement), then resumed
    hook = _scripted(VALUES)
    b = job(0, out=tmp_path / "b")
    b.validate = hook
    run_jobs([b], loss, FitConfig(iters=3, validate_every=1, early_stopping=rule),
             progress=False)
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt", torch.device("cpu"))[
        "early_stopping"]["wait"] == 1
    b = job(0, out=tmp_path / "b")
    b.validate = hook
    rb = run_jobs([b], loss, cfg, resume=True, progress=False)[0]
    assert (rb.stopped_at, rb.best_iteration) == (ra.stopped_at, ra.best_iteration) == (4, 2)
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    ck = load_checkpoint(tmp_path / "b" / "checkpoint.pt", torch.device("cpu"))
    assert ck["iteration"] == 4 and ck["early_stopping"]["stopped_at"] == 4
    # resuming the stopped run trains nothing more and gives the same weights
    c = job(0, out=tmp_path / "b")
    c.validate = _scripted([0.0])
    rc = run_jobs([c], loss, FitConfig(iters=20, validate_every=1, early_stopping=rule),
                  resume=True, progress=False)[0]
    assert (rc.iterations, rc.stopped_at) == (4, 4)
    wc = _weights(c)
    assert all(torch.equal(wa[k], wc[k]) for k in wa)


def test_early_stopping_needs_a_hook_in_every_run() -> None:
    cfg = FitConfig(iters=3, validate_every=1, early_stopping=EarlyStopping("acc", patience=1))
    with pytest.raises(ValueError, match="validation hook in every run"):
        run_jobs([job(0), job(1, validate=False)], loss, cfg, progress=False)
