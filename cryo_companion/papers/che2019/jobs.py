"""Che et al. 2019's paper-scale jobs (see :mod:`cryo_companion.runs.jobs`).

The test-domain chapter comes first (it freezes and shows the held-out test domain that Table I
is evaluated on), then Table I, whose cost is mostly its 2 arms x 3 seeds of training: it is
estimated from the per-iteration times that its last paper-scale run recorded, times the
iterations the pending run will train.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryo_companion.papers.che2019.test_domain import TEST_DOMAIN_CONFIG, class_entries
from cryo_companion.papers.che2019.train import TrainConfig
from cryo_companion.runs.jobs import Estimate, chapter_job
from cryo_companion.structures.membrane import MEMBRANE_PROTEINS

__all__ = ["JOBS", "STRUCTURES", "table1_estimate"]

#: The structure entries both chapters read: the class set's (the training simulator and the
#: test domain), the test domain's crowders, and every membrane protein (membranes embed one
#: drawn at random).
STRUCTURES = tuple(sorted({*(e for e in class_entries().values() if e),
                           *TEST_DOMAIN_CONFIG["crowders"], *MEMBRANE_PROTEINS}))


def _measured_projection(root: Path, iters: int) -> tuple[float, str] | None:
    """Training seconds from ``results/bench_train.json``'s CUDA projection, when measured."""
    try:
        bench = json.loads((root / "results" / "bench_train.json").read_text())
        p = bench["data"]["cuda"]["networks"]["dsrf3d"]["table1_projection"]
        wall_s = float(p["wall_s"]) * iters / TrainConfig().iters
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return wall_s, (f"6 runs in one process ({p['mode']}, {p['ms_per_step']:.1f} ms per step + "
                    f"{p['sim_ms_per_iteration']:.1f} ms simulation, results/bench_train.json "
                    f"on CUDA) x {iters:,} iterations")


def table1_estimate(root: Path, params: Mapping[str, Any]) -> Estimate | None:
    """Estimate the Table I chapter at paper scale from the measured training speed.

    The training time comes from the CUDA projection of ``cryo-companion bench train`` when it
    has been measured (all 6 runs in one process, as the chapter trains them), else from the
    chapter's last recorded run.

    Parameters
    ----------
    root : Path
        Repository root (``results/table1.json``, ``book/chapters/table1.ipynb``).
    params : Mapping
        The pending run's papermill parameters (``iterations``: 0 or absent for the paper's
        15,000).

    Returns
    -------
    Estimate or None
        Training time (the recorded training wall time scaled to the pending iterations, or,
        when that run resumed from checkpoints, the recorded per-iteration time of the
        concurrent runs, simulation plus network, times the iterations) plus the rest of the
        chapter (its recorded wall time less its training); None when nothing is recorded.
    """
    try:
        res = json.loads((root / "results" / "table1.json").read_text())
        nb = json.loads((root / "book" / "chapters" / "table1.ipynb").read_text())
        chapter_s = float(nb["metadata"]["cryo_companion"]["wall_time_s"])
        train, timing = res["data"]["training"], res["data"]["timing"]
        ms = float(timing["sim_ms_per_iter_mean"]) + float(timing["net_ms_per_iter_mean"])
        rec_iters, rec_train_s = int(train["iters"]), float(train["wall_s_all_runs"])
        runs, device = int(train["concurrent_runs"]), res["provenance"]["device"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    iters = int(params.get("iterations") or TrainConfig().iters)
    measured = _measured_projection(root, iters)
    if measured is not None:
        train_s, how = measured
    elif rec_train_s >= 1.0:
        train_s = rec_train_s * iters / rec_iters
        how = (f"{rec_train_s:.0f} s of training for {rec_iters:,} iterations (results/table1.json "
               f"on {device}), scaled to {iters:,}")
    else:
        train_s = iters * ms / 1000.0
        how = (f"{iters:,} iterations x {ms:.1f} ms (simulation + network per iteration, {runs} "
               f"runs at once on {device}, results/table1.json)")
    rest_s = max(chapter_s - rec_train_s, 0.0)
    return Estimate(rest_s + train_s, f"{how} + {rest_s:.0f} s for the rest of the chapter "
                    "(book/chapters/table1.ipynb wall_time_s less its training)")


JOBS = [
    chapter_job("test_domain", priority=100, structures=STRUCTURES,
                description="the frozen held-out test domain (Table I's test set)"),
    chapter_job("table1", priority=110, estimator=table1_estimate, structures=STRUCTURES,
                description="Table I: 2 arms x 3 seeds trained and tested"),
]
