"""DSM-Net's paper-scale jobs (papers/dsmnet/jobs.py): every run in exactly one job, the FLOP
figures the estimates rest on, estimates worked by hand, every job inside a window."""
from __future__ import annotations

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from cryo_companion.papers.dsmnet import jobs
from cryo_companion.papers.dsmnet.experiments import parse_rows
from cryo_companion.papers.dsmnet.training import RUNS, build_network, run_spec
from cryo_companion.runs.jobs import all_jobs


def _trained_runs() -> list[str]:
    out = []
    for j in jobs.JOBS:
        argv = j.argv or ()
        if "train" in argv:
            for item in argv[argv.index("train") + 1:]:
                name, _, seeds = item.partition("@")
                out += [f"{name}#{s}" for s in seeds.split(",")]
    return out


def test_every_run_is_in_exactly_one_job() -> None:
    want = sorted(f"{r.name}#{s}" for r in RUNS if r.table != "unseen" for s in r.seeds)
    got = _trained_runs()
    assert sorted(got) == want and len(set(got)) == len(got) == 33
    names = [j.name for j in jobs.JOBS]
    assert names[:3] == ["dsmnet-cuda-tests", "dsmnet-data", "dsmnet-pilot"]
    assert "dsmnet-unseen" in names and names[-1] == "dsmnet"
    pilot = next(j for j in jobs.JOBS if j.name == "dsmnet-pilot")
    assert pilot.argv[-1] == "table2/dsmnet@0"            # the run whose weights are kept
    # the chapter comes after every training job, each training job after the pilot
    chapter = jobs.JOBS[-1]
    assert set(chapter.after) == {j.name for j in jobs.JOBS[2:-1]}
    assert all(j.after == ("dsmnet-pilot",) for j in jobs.JOBS[3:-1])


def test_every_job_fits_a_window_and_the_windows_say_how_many() -> None:
    win = jobs.windows(jobs.JOBS)
    assert [n for w in win for n in w] == [j.name for j in jobs.JOBS]
    assert all(j.guess_s is not None and j.guess_s <= 510 for j in jobs.JOBS)
    # next fit: no window could also take the first job of the next one
    guess = {j.name: float(j.guess_s or 0) for j in jobs.JOBS}
    for a, b in zip(win, win[1:]):
        assert sum(guess[n] for n in a) + guess[b[0]] > 510
    with pytest.raises(ValueError, match="does not fit a window"):
        jobs.windows(jobs.JOBS, budget_s=200)
    # at the declared speed all 34 runs at 100 epochs take about an hour of training
    train_s = sum(jobs.guess_run_s(r) * len(r.seeds) for r in RUNS)
    assert 3000 < train_s < 4000


def test_the_epoch_flops_by_hand() -> None:
    spec = run_spec("table2/dsmnet")
    gflop, ipe = jobs.epoch_gflop(spec)
    assert ipe == 2565 // 64 == 40                       # 3,205 less 2 x 320
    assert gflop == pytest.approx(3.77 * (3 * 40 * 64 + 2 * 320))
    assert jobs.epoch_gflop(run_spec("table3/C/seg"))[1] == 630 // 64
    assert jobs.guess_run_s(spec) == pytest.approx(gflop * 100 / 30e3)
    assert jobs.group_sizes(run_spec("table2/dsrf3d_v2")) == [(0,), (1,), (2,)]
    assert jobs.group_sizes(run_spec("table2/cls")) == [(0, 1, 2)]


@pytest.mark.parametrize("row", ["table2/dsmnet", "table2/cls", "table2/dsrf3d_v2",
                                 "table2/ssn3d_ed"])
def test_forward_flops_are_measured(row) -> None:
    spec = run_spec(row)
    model = build_network(spec, 0).eval()
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(torch.zeros(1, 40, 40, 40))
    assert fc.get_total_flops() / 1e9 == pytest.approx(
        jobs.FORWARD_GFLOP[spec.variant or spec.network], abs=0.01)


def test_estimates_from_records_and_from_the_benchmark(tmp_path) -> None:
    est = jobs.training_estimate([(run_spec("table2/dsmnet"), 2)])
    assert est(tmp_path, {}) is None                     # nothing measured: the guess applies
    bench = {"data": {"cuda": {"settings": {"batch": 32}, "networks": {"dsmnet": {"modes": {
        "loop": {"1": {"ms_per_step": 36.192}}}}}}}}
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "bench_train.json").write_text(json.dumps(bench))
    e = est(tmp_path, {})
    tf = 3 * 3.77 * 32 / 36.192                          # 10 TFLOP/s
    gflop = 2 * jobs.epoch_gflop(run_spec("table2/dsmnet"))[0]
    assert e is not None and e.seconds == pytest.approx(
        gflop * 100 / (tf * 1e3) + jobs.GUESS_DATA_S + jobs.STARTUP_S)
    assert "bench_train.json" in e.source
    # a recorded run: its seconds per epoch give the speed, its epochs the length
    runs = tmp_path / "results" / "dsmnet_runs"
    runs.mkdir()
    rec = {"run": {"table": "table2", "dataset": "A", "row": "cls"}, "iters_per_epoch": 40,
           "epochs_trained": 40, "timing": {"net_ms_per_iter": 20.0, "data_ms_per_iter": 5.0}}
    (runs / "table2_cls_seed0.json").write_text(json.dumps({"data": rec}))
    e = est(tmp_path, {})
    tf = jobs.epoch_gflop(run_spec("table2/cls"))[0] / (0.025 * 40) / 1e3
    assert e is not None and e.seconds == pytest.approx(
        gflop * 50 / (tf * 1e3) + jobs.GUESS_DATA_S + jobs.STARTUP_S)
    assert "1.25 x the most a recorded run took, 40" in e.source


def test_rows_on_the_command_line() -> None:
    runs = parse_rows(["table2/dsmnet@1,2", "table3/C/seg"])
    assert [r.name for r in runs] == ["table2_dsmnet_seed1", "table2_dsmnet_seed2",
                                      "table3_C_seg_seed0"]
    assert [r.seed for r in parse_rows(["table2/cls"], [4])] == [4]
    with pytest.raises(ValueError, match="unknown row 'table9/x'"):
        parse_rows(["table9/x"])
    with pytest.raises(ValueError, match="unknown row 'unseen/dsmnet_21'"):
        parse_rows(["unseen/dsmnet_21"])
    with pytest.raises(ValueError, match="seeds after @ are integers"):
        parse_rows(["table2/cls@a"])


def test_the_runner_lists_them_in_order() -> None:
    names = [j.name for j in all_jobs()]
    mine = [n for n in names if n.startswith("dsmnet")]
    assert mine == [j.name for j in jobs.JOBS]


def test_the_chapter_is_not_estimated_from_a_smoke_run(tmp_path) -> None:
    (tmp_path / "book" / "chapters").mkdir(parents=True)
    nb = tmp_path / "book" / "chapters" / "dsmnet.ipynb"
    nb.write_text(json.dumps({"metadata": {"cryo_companion": {"scale": "smoke",
                                                              "wall_time_s": 19.2}}}))
    e = jobs.chapter_estimate(tmp_path, {})
    assert e.seconds == jobs.GUESS_DATA_S + 60 + jobs.STARTUP_S
    nb.write_text(json.dumps({"metadata": {"cryo_companion": {"scale": "paper",
                                                              "wall_time_s": 150.0}}}))
    assert jobs.chapter_estimate(tmp_path, {}).seconds == 150.0
