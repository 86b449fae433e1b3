"""SSN3D's paper-scale jobs (papers/ssn3d/jobs.py): the plan's order and the estimates, worked by
hand from recorded figures."""
from __future__ import annotations

import json

import pytest

from cryo_companion.papers.ssn3d import jobs
from cryo_companion.papers.ssn3d.paper_tables import TABLE3
from cryo_companion.runs.jobs import all_jobs, order_jobs


def _write(path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def test_jobs_cover_both_tables_in_order() -> None:
    by = {j.name: j for j in jobs.JOBS}
    assert len(by) == len(jobs.JOBS)
    assert sorted(c for p in jobs.TABLE3_PARTS for c in p) == sorted(TABLE3)
    assert all(len(p) == 2 for p in jobs.TABLE3_PARTS)
    order = [j.name for j in order_jobs(jobs.JOBS)]
    assert order[:3] == ["ssn3d-cuda-tests", "ssn3d-data", "ssn3d-table2-ed-a-seed0"]
    assert order[-1] == "ssn3d"
    assert set(by["ssn3d"].after) == set(by) - {"ssn3d", "ssn3d-data", "ssn3d-cuda-tests"}
    argv = by["ssn3d-table2-v1-a"].command("py", "cuda")
    assert argv == ["py", "-m", "cryo_companion.papers.ssn3d.experiments", "--device", "cuda",
                    "table2", "--variant", "v1", "--dataset", "A", "--seeds", "0", "1", "2"]
    assert by["ssn3d-table3-part1"].command("py", "cuda")[-6:] == [
        "table3", "--seeds", "0", "--classes", "2AWB", "1FNT"]
    assert all(j.structures == jobs.STRUCTURES for j in jobs.JOBS if j.name != "ssn3d-cuda-tests")
    assert by["ssn3d-cuda-tests"].structures == () and len(jobs.STRUCTURES) == 22
    names = [j.name for j in all_jobs()]
    assert "ssn3d" in names and names.index("ssn3d-data") < names.index("ssn3d")


def test_training_estimate_from_the_bench_then_from_records(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CRYO_COMPANION_DATA", str(tmp_path / "data"))
    est = jobs.training_estimate(3, "v1", "B", "table2")
    assert est(tmp_path, {}) is None                     # nothing measured: the guess applies
    _write(tmp_path / "results" / "bench_train.json", {"data": {"cuda": {
        "settings": {"batch": 32},
        "networks": {"ssn3d": {"modes": {"loop": {"1": {"ms_per_step": 10.0}}}}}}}})
    e = est(tmp_path, {})
    # 3 runs x 200 epochs x 21 steps x (10 ms x 128 / 32) x 1.05 + 120 s data + 20 s start-up
    assert e.seconds == pytest.approx(3 * 200 * 21 * 0.04 * 1.05 + 120 + 20)
    assert "results/bench_train.json" in e.source and "declared guess" in e.source
    # a recorded paper-scale run: 40 epochs of 21 iterations at 30 + 2 ms a run-iteration
    rec = {"run": {"variant": "ed"}, "epochs_trained": 40, "iters_per_epoch": 21,
           "timing": {"net_ms_per_iter": 30.0, "data_ms_per_iter": 2.0}}
    _write(tmp_path / "results" / "ssn3d_runs" / "table2_ed_A_seed0.json", {"data": rec})
    _write(tmp_path / "results" / "jobs" / "ssn3d-data.json", {"status": "ok", "wall_s": 300.0})
    e = est(tmp_path, {})
    # 3 runs x 50 epochs (1.25 x 40) x 0.672 s a run-epoch + 300 / 3 s data + 20 s
    assert e.seconds == pytest.approx(3 * 50 * 21 * 0.032 + 100 + 20)
    assert "1 SSN3D record(s)" in e.source and "ssn3d-data's last run" in e.source
    # the data set in the cache: 15 s to read it
    _write(tmp_path / "results" / "ssn3d_data.json", {"data": {"B": {"config_hash": "ab" * 32}}})
    _write(tmp_path / "data" / "crowded" / f"liu22_{'ab' * 8}" / "config.json", {})
    assert est(tmp_path, {}).seconds == pytest.approx(3 * 50 * 21 * 0.032 + 15 + 20)


def test_chapter_estimate(tmp_path) -> None:
    e = jobs.chapter_estimate(tmp_path, {})
    assert e.seconds == pytest.approx(jobs.GUESS_DATA_S + 60 + jobs.STARTUP_S)
    _write(tmp_path / "book" / "chapters" / "ssn3d.ipynb",
           {"metadata": {"cryo_companion": {"scale": "smoke", "wall_time_s": 30.0}}})
    assert jobs.chapter_estimate(tmp_path, {}).seconds > 30     # a smoke run says nothing
    _write(tmp_path / "book" / "chapters" / "ssn3d.ipynb",
           {"metadata": {"cryo_companion": {"scale": "paper", "wall_time_s": 95.0}}})
    assert jobs.chapter_estimate(tmp_path, {}).seconds == 95.0
