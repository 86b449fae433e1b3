"""Runs spread over torchrun's processes (cryo_companion.learn.distributed): rank parsing,
sharding, and a real 2-process gloo launch whose runs equal the same runs trained alone."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from learn_tiny import job, loss

from cryo_companion.learn.distributed import RankInfo, rank_device, rank_info, run_sharded, shard
from cryo_companion.learn.fit import FitConfig, run_jobs

HERE = Path(__file__).resolve().parent


def test_rank_info_from_the_environment():
    assert rank_info({}) == RankInfo(0, 1, 0) and not rank_info({}).distributed
    info = rank_info({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert info == RankInfo(3, 4, 1) and info.distributed
    with pytest.raises(ValueError, match="inconsistent"):
        rank_info({"RANK": "4", "WORLD_SIZE": "4"})
    with pytest.raises(ValueError, match="integers"):
        rank_info({"WORLD_SIZE": "two"})


def test_shards_partition_the_runs():
    for world in (1, 2, 3, 7):
        parts = [shard(5, RankInfo(r, world, r)) for r in range(world)]
        assert sorted(i for p in parts for i in p) == list(range(5))
    assert shard(5, RankInfo(1, 2, 1)) == [1, 3]
    assert shard(1, RankInfo(1, 2, 1)) == []


def test_single_process_runs_everything_here():
    assert run_sharded(3, lambda idx, dev: [(i, dev.type) for i in idx], "cpu",
                       info=RankInfo()) == [(0, "cpu"), (1, "cpu"), (2, "cpu")]
    assert rank_device("cpu", RankInfo(1, 2, 1)) == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without a GPU")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        rank_device("cuda", RankInfo(0, 2, 0))


def test_torchrun_two_processes_gloo(tmp_path):
    """2 processes, 3 runs: ranks 0, 1, 0 train them; each equals the run trained alone."""
    out = tmp_path / "runs.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node", "2", str(HERE / "distributed_worker.py"),
                           str(out)], env=env, capture_output=True, text=True, timeout=300,
                           check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = json.loads(out.read_text())
    assert [r["rank"] for r in runs] == [0, 1, 0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)               # as the workers: the same reduction order
    try:
        for i, r in enumerate(runs):
            j, log = job(i, validate=False), []
            run_jobs([j], loss, FitConfig(iters=4), progress=False, loss_logs=[log])
            assert r["losses"] == log
            for k, v in j.model.state_dict().items():
                assert torch.equal(torch.tensor(r["weights"][k], dtype=v.dtype), v), k
    finally:
        torch.set_num_threads(threads)
