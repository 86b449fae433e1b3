"""Table I's and the ablations' GPU jobs: grouping, estimates from the benchmarks' records,
what is already exported, and the real registry's coverage of every arm and seed."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cryo_companion.papers.che2019 import jobs as J
from cryo_companion.papers.che2019.ablation import ABLATION_ARMS, ABLATION_SEEDS
from cryo_companion.papers.che2019.table1 import PAPER_ITERS, TABLE1_ARMS, TABLE1_SEEDS
from cryo_companion.papers.che2019.train import TrainConfig
from cryo_companion.papers.che2019.weights import record_name, weights_name


def _write(root: Path, name: str, data: dict) -> None:
    (root / "results").mkdir(parents=True, exist_ok=True)
    (root / "results" / f"{name}.json").write_text(json.dumps({"data": data}))


def _export(root: Path, arm: str, seed: int, iters: int) -> None:
    """A record and weights file as the export writes them (only what the jobs read)."""
    cfg = TrainConfig(arm=arm, seed=seed, iters=iters, sim_chunk=J.SIM_CHUNK)
    for d in ("training", "weights"):
        (root / "results" / d).mkdir(parents=True, exist_ok=True)
    (root / "results" / "weights" / weights_name(arm, seed)).write_bytes(b"w")
    (root / "results" / "training" / f"{record_name(arm, seed)}.json").write_text(json.dumps(
        {"data": {"config": cfg.to_dict(), "weights": weights_name(arm, seed)}}))


def test_group_names_commands_and_configs() -> None:
    g = J.TrainingGroup("randomized+context", (0, 1, 2), 15_000, "build/r")
    assert g.name == "table1-train-randomized-context-seeds-0-2"
    assert J.TrainingGroup("ablation:fixed_snr", (1,), 5, "b").name == (
        "ablation-train-fixed_snr-seed-1")
    argv = g.argv()
    assert argv[:4] == ("{python}", "-m", "cryo_companion.cli.main", "train-many")
    assert "--export" in argv and argv[argv.index("--seeds") + 1:argv.index("--iters")] == (
        "0", "1", "2")
    assert argv[argv.index("--arms") + 1] == "randomized+context"
    assert [(c.arm, c.seed, c.iters, c.sim_chunk) for c in g.configs()] == [
        ("randomized+context", s, 15_000, J.SIM_CHUNK) for s in (0, 1, 2)]


def test_estimates_from_guesses_and_from_recorded_benchmarks(tmp_path: Path) -> None:
    f = J.step_figures(tmp_path, 2)
    assert f["step_ms"][0] == pytest.approx(2 * J.GUESS_STEP_MS_PER_RUN)
    assert f["step_ms"][1].startswith("guess") and f["sim_ms"][1].startswith("guess")
    assert f["context_ms"][0] == pytest.approx(J.GUESS_SIM_MS_PER_BATCH * J.GUESS_CONTEXT_SLOWDOWN)
    # recorded: the faster mode, scaled from the nearest N; the CPU's context slowdown
    _write(tmp_path, "bench_train", {"cuda": {"settings": {"batch": 32}, "device_name": "H200",
                                              "networks": {"dsrf3d": {"modes": {
                                                  "loop": {"4": {"ms_per_step": 20.0}},
                                                  "vmap": {"4": {"ms_per_step": 16.0}}}}}}})
    _write(tmp_path, "bench_simulate", {"cuda": {"subtomograms_per_s": {"256": 64_000}}})
    _write(tmp_path, "bench_context", {"cpu": {"presets": {
        "no context": {"subtomograms_per_s": 1000.0},
        "context 0-10 %": {"subtomograms_per_s": 500.0},
        "context 0-25 %": {"subtomograms_per_s": 100.0}}}})
    f = J.step_figures(tmp_path, 2)
    assert f["step_ms"] == (pytest.approx(8.0), "bench_train on H200, scaled from 4 runs")
    assert f["sim_ms"][0] == pytest.approx(0.5)
    assert f["context_ms"][0] == pytest.approx(0.5 * 10) and "measured on the CPU" in (
        f["context_ms"][1])
    _write(tmp_path, "bench_context", {"cuda": {"batch": 256, "device_name": "H200", "presets": {
        "context 0-25 %": {"subtomograms_per_s": 3200.0}}}})
    assert J.step_figures(tmp_path, 1)["context_ms"] == (
        pytest.approx(10.0), "bench_context context 0-25 % at batch 256 on H200")
    # a group: overhead + iterations x (step + runs x simulation), context arms at their cost
    plain = J.group_estimate(tmp_path, J.TrainingGroup("randomized", (0, 1), 1000, "b"))
    assert plain.seconds == pytest.approx(J.JOB_OVERHEAD_S + 1000 * (8.0 + 2 * 0.5) / 1e3)
    ctx = J.group_estimate(tmp_path, J.TrainingGroup("baseline+context", (0,), 1000, "b"))
    assert ctx.seconds == pytest.approx(J.JOB_OVERHEAD_S + 1000 * (4.0 + 10.0) / 1e3)
    assert "with context" in ctx.source and "with context" not in plain.source


def test_exported_runs_are_not_counted_again(tmp_path: Path) -> None:
    g = J.TrainingGroup("baseline", (0, 1), 100, "b")
    full = J.group_estimate(tmp_path, g).seconds
    _export(tmp_path, "baseline", 0, 100)
    half = J.group_estimate(tmp_path, g)
    assert half.seconds < full and half.source.startswith("1 runs x 100 iterations")
    _export(tmp_path, "baseline", 1, 50)          # other settings: still to train
    assert J.group_estimate(tmp_path, g).seconds == half.seconds
    _export(tmp_path, "baseline", 1, 100)
    done = J.group_estimate(tmp_path, g)
    assert done.seconds == 15.0 and "only checks" in done.source


def test_groups_fit_the_target_and_keep_seeds_in_order(tmp_path: Path) -> None:
    one = J.plan_groups(tmp_path, "randomized", [0, 1, 2], 15_000, "b", target_s=1.0)
    assert [g.seeds for g in one] == [(0,), (1,), (2,)]      # a group of one may exceed it
    allg = J.plan_groups(tmp_path, "randomized", [0, 1, 2], 10, "b", target_s=1e6)
    assert [g.seeds for g in allg] == [(0, 1, 2)]
    for g in J.plan_groups(tmp_path, "randomized", [0, 1, 2], 15_000, "b"):
        est = J.group_estimate(tmp_path, g, todo=len(g.seeds)).seconds
        assert len(g.seeds) == 1 or est <= J.JOB_TARGET_S
    with pytest.raises(ValueError, match="no seeds"):
        J.plan_groups(tmp_path, "randomized", [], 10, "b")


def test_the_registry_trains_every_arm_and_seed_once_before_its_chapter() -> None:
    by_name = {j.name: j for j in J.JOBS}

    def trained(prefix: str) -> list[tuple[str, int, int]]:
        out = []
        for j in J.JOBS:
            if j.name.startswith(prefix) and j.argv:
                a = list(j.argv)
                seeds = a[a.index("--seeds") + 1:a.index("--iters")]
                out += [(a[a.index("--arms") + 1], int(s), int(a[a.index("--iters") + 1]))
                        for s in seeds]
                assert "--export" in a
        return out

    t1 = trained("table1-train-")
    assert sorted(t1) == sorted((a, s, PAPER_ITERS) for a in TABLE1_ARMS for s in TABLE1_SEEDS)
    assert set(by_name["table1"].after) == {j.name for j in J.JOBS
                                            if j.name.startswith("table1-train-")}
    ab = trained("ablation-train-")
    assert sorted(ab) == sorted((a, s, J.ABLATION_ITERS) for a in ABLATION_ARMS
                                for s in ABLATION_SEEDS)
    assert set(by_name["ablation"].after) == {j.name for j in J.JOBS
                                              if j.name.startswith("ablation-train-")}
    # the context benchmark comes before the trainings whose estimate it feeds
    assert by_name["bench-context-cuda"].priority < min(
        j.priority for j in J.JOBS if "-train-" in j.name)
