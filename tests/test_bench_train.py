"""cryo-companion bench train (cryo_companion.bench.train): the timers, the record, its merge."""
from __future__ import annotations

import json

import pytest
import torch
from learn_tiny import TINY_SPEC, loss

import cryo_companion.bench.train as bt
from cryo_companion.models import registry


@pytest.fixture
def tiny(monkeypatch):
    """A millisecond network registered for the duration of a test."""
    registry.network_names()
    monkeypatch.setitem(registry._REGISTRY, "tiny", TINY_SPEC)
    monkeypatch.setitem(bt.LOSSES, "tiny", lambda: loss)
    return "tiny"


def test_every_registered_network_has_a_benchmark_loss():
    assert set(registry.network_names()) <= set(bt.LOSSES)
    from cryo_companion.bench import TARGETS

    assert TARGETS["train"] == "train" and "train-step" not in TARGETS


def test_in_process_timers(tiny):
    cpu = torch.device("cpu")
    for mode in ("loop", "vmap"):
        wall, proc = bt.step_ms(tiny, cpu, 3, mode, batch=2, iters=2, warmup=1)
        assert wall > 0 and proc > 0
    with pytest.raises(ValueError, match="unknown in-process mode"):
        bt.step_ms(tiny, cpu, 1, "threads", batch=2, iters=1)
    trials = bt.fast_step_trials(tiny, cpu, batch=2, iters=1, warmup=0, rounds=2)
    names = [t["option"] for t in trials]
    assert names[0] == "fp32" and "channels_last_3d" in names and "bf16" in names
    assert "torch.compile" not in names and "tf32" not in names     # CPU, no --compile
    assert trials[0]["relative"] == 1.0 and trials[0]["rounds"] == 2
    prof = bt.profile_step(tiny, cpu, batch=2, top=3)
    assert len(prof) == 3 and prof[0]["share"] >= prof[1]["share"] > 0


def test_processes_timer_with_the_table1_network():
    """Two processes, one DSRF3D run each, started together (spawned: a registered network)."""
    per, run_it, cpu = bt.processes_ms("dsrf3d", torch.device("cpu"), 2, batch=2, iters=1,
                                       warmup=0)
    # per run-iteration is the harmonic combination 1 / (1/t1 + 1/t2) <= mean(t) / 2
    assert per > 0 and cpu > 0 and 0 < run_it <= per / 2 * (1 + 1e-9)


def test_ssn3d_is_timed_with_its_papers_adam():
    from cryo_companion.learn.optim import TimeDecayAdam

    models, opts, batches = bt._runs("ssn3d", 2, torch.device("cpu"), 1)
    assert all(isinstance(o, TimeDecayAdam) for o in opts)
    assert opts[0].param_groups[0]["betas"] == (0.9, 0.99)
    x, label, mask = batches[0]
    assert x.shape == mask.shape == (1, 40, 40, 40) and label.shape == (1,)
    loss_fn = bt.LOSSES["ssn3d"]()
    assert float(loss_fn(models[0](x), label, mask).detach()) > 0


def test_table1_projection_by_hand():
    modes = {"loop": {"6": {"ms_per_step": 30.0}}, "vmap": {"6": {"ms_per_step": 12.0}},
             "processes": {"6": {"ms_per_step": 40.0}}}
    p = bt.table1_projection(modes, 0.5, 32)
    # 15,000 x (12 ms + 6 runs x 0.5 ms of simulation) = 225 s
    assert p == {"mode": "vmap", "ms_per_step": 12.0, "sim_ms_per_iteration": 3.0,
                 "wall_s": 225.0, "target_wall_s": 240.0}
    assert bt.table1_projection(modes, 0.5, 4) is None       # not the paper's batch
    assert bt.table1_projection({"loop": {"1": {"ms_per_step": 1.0}}}, 0.5, 32) is None


def test_merge_keeps_the_other_devices():
    old = {"cuda": {"x": 1}, "cpu": {"x": 2}}
    assert bt.merge_entry(old, "cpu", {"x": 3}) == {"cuda": {"x": 1}, "cpu": {"x": 3}}
    assert bt.merge_entry(None, "cuda", {"x": 4}) == {"cuda": {"x": 4}}


def test_networks_measured_apart_under_the_same_settings_add_up():
    """One GPU job per paper's networks: the second keeps the first's figures; other settings
    replace the device's entry (figures of different settings are never mixed)."""
    first = {"settings": {"batch": 32}, "commit": "a", "networks": {"dsrf3d": 1, "ssn3d": 2}}
    second = {"settings": {"batch": 32}, "commit": "b", "networks": {"ssn3d": 3, "umc": 4}}
    merged = bt.merge_entry({"cpu": {"x": 0}, "cuda": first}, "cuda", second)
    assert merged["cpu"] == {"x": 0} and merged["cuda"]["commit"] == "b"
    assert merged["cuda"]["networks"] == {"dsrf3d": 1, "ssn3d": 3, "umc": 4}
    other = {**second, "settings": {"batch": 16}}
    assert bt.merge_entry({"cuda": first}, "cuda", other)["cuda"]["networks"] == {"ssn3d": 3,
                                                                                  "umc": 4}


def test_the_cuda_benchmark_jobs_cover_every_network_once():
    from cryo_companion.models.registry import network_names
    from cryo_companion.runs.checks import JOBS

    nets = [n for j in JOBS if j.name.startswith("bench-train-cuda-")
            for n in j.argv[j.argv.index("--networks") + 1:j.argv.index("--save")]]
    assert sorted(nets) == sorted(network_names())


def test_cli_writes_a_record_with_its_settings(tiny, tmp_path, capsys):
    from cryo_companion.cli.main import main

    out = tmp_path / "bench.json"
    assert main(["bench", "train", "--device", "cpu", "--networks", tiny, "--n-runs", "1", "2",
                 "--modes", "loop", "vmap", "--batch", "2", "--iters", "1", "--warmup", "0",
                 "--profile", "--json", str(out)]) == 0
    rec = json.loads(out.read_text())
    e = rec["data"]["cpu"]
    assert e["settings"] == {"batch": 2, "iters": 1, "warmup": 0, "rounds": 1,
                             "fast_step_rounds": 3, "precision": "tf32", "sim_chunk": 1,
                             "n_runs": [1, 2], "modes": ["loop", "vmap"],
                             "optimizer": "SGD, Nesterov momentum 0.9, lr 5e-3"}
    net = e["networks"][tiny]
    assert set(net["modes"]) == {"loop", "vmap"} and set(net["modes"]["vmap"]) == {"1", "2"}
    assert 0 < net["simulator"]["share_of_iteration"]["2"] < 1
    assert net["table1_projection"] is None and len(net["profile"]) > 0
    assert rec["provenance"]["commit"] and "load_average" in e
    assert "tiny round 1 vmap N=2" in capsys.readouterr().out
    assert main(["bench", "train", "--device", "cpu", "--networks", "nope"]) == 2
    assert main(["bench", "train", "--device", "cpu", "--iters", "0"]) == 2
