"""Keras' time-based decay of Adam (cryo_companion.learn.optim.TimeDecayAdam)."""
from __future__ import annotations

import copy

import pytest
import torch
from learn_tiny import job, loss

from cryo_companion.learn.fit import FitConfig, run_jobs
from cryo_companion.learn.multirun import fit_many
from cryo_companion.learn.optim import TimeDecayAdam


def _grads(steps: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(5, generator=g) for _ in range(steps)]


def test_update_t_uses_lr_over_one_plus_decay_times_t_minus_one() -> None:
    """Against plain Adam given the rates 1e-2 / (1 + 0.5 (t - 1)) by hand: 1e-2, 1e-2 / 1.5,
    1e-2 / 2, 1e-2 / 2.5."""
    a = torch.zeros(5, requires_grad=True)
    b = torch.zeros(5, requires_grad=True)
    opt_a = TimeDecayAdam([a], lr=1e-2, decay=0.5, betas=(0.9, 0.99), eps=1e-7)
    opt_b = torch.optim.Adam([b], lr=1e-2, betas=(0.9, 0.99), eps=1e-7)
    for t, grad in enumerate(_grads(4), start=1):
        a.grad, b.grad = grad.clone(), grad.clone()
        opt_a.step()
        for g in opt_b.param_groups:
            g["lr"] = 1e-2 / (1 + 0.5 * (t - 1))
        opt_b.step()
        assert opt_a.param_groups[0]["lr"] == pytest.approx(1e-2 / (1 + 0.5 * (t - 1)))
    assert torch.equal(a, b)
    # decay 0 is Adam
    c = torch.zeros(5, requires_grad=True)
    d = torch.zeros(5, requires_grad=True)
    oc, od = TimeDecayAdam([c], lr=1e-2), torch.optim.Adam([d], lr=1e-2)
    for grad in _grads(3):
        c.grad, d.grad = grad.clone(), grad.clone()
        oc.step()
        od.step()
    assert torch.equal(c, d)
    with pytest.raises(ValueError, match="decay must be >= 0"):
        TimeDecayAdam([c], decay=-1.0)


def test_decay_resumes_from_the_state_dict() -> None:
    a = torch.zeros(5, requires_grad=True)
    opt = TimeDecayAdam([a], lr=1e-2, decay=0.5)
    grads = _grads(4)
    for grad in grads[:2]:
        a.grad = grad.clone()
        opt.step()
    b = a.detach().clone().requires_grad_(True)
    opt_b = TimeDecayAdam([b], lr=1e-2, decay=0.5)
    opt_b.load_state_dict(copy.deepcopy(opt.state_dict()))   # as read from a checkpoint
    for grad in grads[2:]:
        a.grad, b.grad = grad.clone(), grad.clone()
        opt.step()
        opt_b.step()
    assert torch.equal(a, b) and opt_b.param_groups[0]["lr"] == pytest.approx(1e-2 / 2.5)


def _decay_job(seed: int):
    j = job(seed, validate=False)
    j.optimizer = TimeDecayAdam(j.model.parameters(), lr=1e-2, decay=0.3, betas=(0.9, 0.99))
    return j


def test_n_runs_decay_alike_under_vmap() -> None:
    cfg = FitConfig(iters=4)
    alone = []
    for s in (0, 1):
        j = _decay_job(s)
        run_jobs([j], loss, cfg, progress=False)
        alone.append(j.model.state_dict())
    jobs = [_decay_job(s) for s in (0, 1)]
    fit_many(jobs, loss, cfg, strategy="vmap", progress=False)
    for a, j in zip(alone, jobs):
        for k, v in j.model.state_dict().items():
            torch.testing.assert_close(v, a[k], rtol=1e-4, atol=1e-6)
        # the exported state holds the 4 updates, from which the next rate is computed
        first = next(iter(j.model.parameters()))
        assert float(j.optimizer.state[first]["step"]) == 4
