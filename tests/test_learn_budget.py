"""Training in scored segments (learn.budget) and epochs of batches cut on demand (EpochBatches)."""
from __future__ import annotations

import pytest
import torch

from cryo_companion.learn.batches import EpochBatches
from cryo_companion.learn.budget import fit_segments, plan_segment
from cryo_companion.learn.fit import FitConfig
from cryo_companion.learn.multirun import fit_many
from tests import learn_tiny


def _cut(idx: torch.Tensor, g: torch.Generator) -> tuple[torch.Tensor, ...]:
    return idx.clone(), torch.rand(len(idx), generator=g)


def test_epochs_visit_every_item_once_and_resume_exactly() -> None:
    src = EpochBatches(10, 3, _cut)
    g = torch.Generator().manual_seed(0)
    first = torch.cat([src.next_batch(g)[0] for _ in range(3)])      # one epoch: 9 of 10
    assert len(set(first.tolist())) == 9 and src.epoch == 1
    src.next_batch(g)
    assert src.epoch == 2                                             # the 10th is skipped
    state, gstate = src.state_dict(), g.get_state()
    a = [src.next_batch(g) for _ in range(4)]
    again = EpochBatches(10, 3, _cut)
    again.load_state_dict(state)
    g.set_state(gstate)
    b = [again.next_batch(g) for _ in range(4)]
    assert all(torch.equal(x, y) for p, q in zip(a, b) for x, y in zip(p, q))
    with pytest.raises(ValueError, match="exceeds"):
        EpochBatches(2, 3, _cut)


def test_plan_segment_shares_the_budget_left_at_the_speed_so_far() -> None:
    assert plan_segment(0, 10, 3, budget_s=None, spent_s=0.0) == 4        # ceil(10 / 3)
    assert plan_segment(8, 10, 2, budget_s=None, spent_s=0.0) == 1
    # 10 iterations took 5 s: 0.5 s each; 15 s left -> 30 iterations over 3 segments
    assert plan_segment(10, 1000, 3, budget_s=20.0, spent_s=5.0) == 10
    assert plan_segment(10, 12, 3, budget_s=20.0, spent_s=5.0) == 1        # the cap of iters
    assert plan_segment(10, 1000, 3, budget_s=5.2, spent_s=5.0) == 0       # not one more fits
    with pytest.raises(ValueError, match="speed"):
        plan_segment(0, 10, 2, budget_s=1.0, spent_s=0.0)


def test_segments_are_one_run_and_score_every_run(tmp_path) -> None:
    cfg = FitConfig(iters=7)
    whole = [learn_tiny.job(s, out=tmp_path / f"a{s}", adam=True) for s in (0, 1)]
    logs: list[list[float]] = [[], []]
    fit_many(whole, learn_tiny.loss, cfg, strategy="loop", progress=False, loss_logs=logs)
    parts = [learn_tiny.job(s, out=tmp_path / f"b{s}", adam=True) for s in (0, 1)]
    seen: list[tuple[int, bool]] = []

    def score(i, job):
        seen.append((i, job.model.training))
        return {"i": float(i)}

    res = fit_segments(parts, learn_tiny.loss, cfg, points=3, score=score, strategy="loop",
                       progress=False)
    assert [p["iteration"] for p in res.points] == [3, 5, 7]   # ceil(7/3), ceil(4/2), 2
    assert seen == [(0, False), (1, False)] * 3 and all(j.model.training for j in parts)
    assert res.points[-1]["scores"] == [{"i": 0.0}, {"i": 1.0}]
    assert res.stopped_by == "iterations" and res.losses == logs
    for a, b in zip(whole, parts):
        for k, v in a.model.state_dict().items():
            assert torch.equal(v, b.model.state_dict()[k])
    with pytest.raises(ValueError, match="exists"):
        fit_segments(parts, learn_tiny.loss, cfg, points=2, progress=False)


def test_a_budget_stops_training_and_says_so(tmp_path) -> None:
    jobs = [learn_tiny.job(0, out=tmp_path / "c")]
    res = fit_segments(jobs, learn_tiny.loss, FitConfig(iters=100_000), points=2,
                       budget_s=0.3, first_iters=2, progress=False)
    done = res.points[-1]["iteration"]
    assert res.stopped_by == "budget" and 2 <= done < 100_000
    assert res.results[0].iterations == done
    with pytest.raises(ValueError, match="out folder"):
        fit_segments([learn_tiny.job(1)], learn_tiny.loss, FitConfig(iters=2), points=1)
