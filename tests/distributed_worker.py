"""Launched by tests/test_learn_distributed.py under torchrun: three tiny runs over the ranks.

Usage: ``torchrun --standalone --nproc_per_node 2 tests/distributed_worker.py OUT.json``. Every
rank trains its share (cryo_companion.learn.distributed.run_sharded); rank 0 writes each run's
rank, losses and final weights to OUT.json.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from learn_tiny import job, loss

from cryo_companion.learn.distributed import rank_info, run_sharded
from cryo_companion.learn.fit import FitConfig
from cryo_companion.learn.multirun import fit_many

ITERS = 4


def work(idx: list[int], device: torch.device) -> list[dict]:
    jobs = [job(i, validate=False) for i in idx]
    logs: list[list[float]] = [[] for _ in jobs]
    if jobs:
        fit_many(jobs, loss, FitConfig(iters=ITERS), strategy="loop", progress=False,
                 loss_logs=logs)
    return [{"rank": rank_info().rank, "device": str(device), "losses": log,
             "weights": {k: v.tolist() for k, v in j.model.state_dict().items()}}
            for j, log in zip(jobs, logs)]


if __name__ == "__main__":
    torch.set_num_threads(1)
    results = run_sharded(3, work, "cpu")
    if rank_info().rank == 0:
        Path(sys.argv[1]).write_text(json.dumps(results))
