"""Che et al. 2019's paper-scale jobs (see :mod:`cryo_companion.runs.jobs`).

In running order:

- ``bench-context-cuda``: ``cryo-companion bench context --device cuda`` at the training's
  simulator call (32 x :data:`SIM_CHUNK` subtomograms), ``results/bench_context.json``: what
  context randomization costs on the GPU, which the training estimates below read;
- the test-domain chapter (it freezes and shows the held-out test domain);
- **Table I's trainings**: every arm of :data:`~cryo_companion.papers.che2019.table1.TABLE1_ARMS`
  x seeds :data:`~cryo_companion.papers.che2019.table1.TABLE1_SEEDS` x 15,000 iterations, as
  ``cryo-companion train-many --export`` command jobs (:func:`training_jobs`). Each job is one
  group of runs trained together in one process (N runs per step) and exported at its end
  (float16 weights in ``results/weights/``, records in ``results/training/``): a window that
  ends after some jobs keeps them, and a job whose runs are exported with the same settings only
  checks that and ends (seconds), so a later window goes on where the last stopped;
- the Table I chapter (it trains nothing at paper scale: it evaluates the exported runs on both
  frozen test domains under both protocols);
- **the one-factor ablations** (:mod:`cryo_companion.papers.che2019.ablation`): the reference
  and each factor fixed, :data:`ABLATION_SEEDS` x :data:`ABLATION_ITERS` iterations (fewer
  than Table I's 15,000: the ablation chapter says so where the numbers appear), same kind of
  jobs;
- the ablation chapter (both domains, both protocols, the drops).

How the runs are grouped into jobs (:func:`plan_groups`): the seeds of one arm, consecutive, as
many per job as fit in :data:`JOB_TARGET_S` by the estimate (at least one), so that a job fits in
a GPU window (15 minutes of device time in all, 10 minutes per command) beside others. The
estimate of a group (:func:`group_estimate`): ``iterations x (network step of N runs +
simulation of each run's batch) + JOB_OVERHEAD_S``, each figure from a recorded benchmark when
there is one (``results/bench_train.json`` on CUDA: the step of N runs, the faster of loop and
vmap; ``results/bench_simulate.json`` on CUDA: the simulator at 256 subtomograms per call;
``results/bench_context.json`` on CUDA: with context), else a stated guess (the H100 step of one
run, 7.1 ms, issue 13; context at the slowdown measured on the CPU by ``bench context``).
Recording a benchmark can therefore regroup the jobs (their names say their arm and seeds); the
exports, not the job records, say what is trained, so nothing is trained twice.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryo_companion.papers.che2019.ablation import ABLATION_ARMS, ABLATION_ITERS, ABLATION_SEEDS
from cryo_companion.papers.che2019.context import CONTEXT_COMPLEXES
from cryo_companion.papers.che2019.table1 import PAPER_ITERS, TABLE1_ARMS, TABLE1_SEEDS
from cryo_companion.papers.che2019.test_domain import TEST_DOMAIN_CONFIG, class_entries
from cryo_companion.papers.che2019.train import ABLATION_ARM_PREFIX, TrainConfig, arm_preset
from cryo_companion.runs.jobs import Estimate, Estimator, Job, chapter_job, command_job
from cryo_companion.structures.membrane import MEMBRANE_PROTEINS

__all__ = ["ABLATION_ARMS", "ABLATION_ITERS", "ABLATION_SEEDS", "JOBS", "JOB_OVERHEAD_S",
           "JOB_TARGET_S", "SIM_CHUNK", "STRUCTURES", "TRAINING_STRUCTURES", "TrainingGroup",
           "chapter_estimate", "group_estimate", "plan_groups", "step_figures",
           "training_jobs"]

#: The structure entries the test domain (and so Table I's evaluation) reads: the class set's,
#: the test domain's crowders, and every membrane protein (membranes embed one drawn at random).
STRUCTURES = tuple(sorted({*(e for e in class_entries().values() if e),
                           *TEST_DOMAIN_CONFIG["crowders"], *MEMBRANE_PROTEINS}))
#: The entries the training simulator reads: the class set's, the context bank's complexes and
#: the membrane proteins.
TRAINING_STRUCTURES = tuple(sorted({*(e for e in class_entries().values() if e),
                                    *CONTEXT_COMPLEXES, *MEMBRANE_PROTEINS}))
#: Batches simulated per simulator call in the paper-scale runs (a GPU's launch overhead of
#: small batches amortised; each batch an independent draw).
SIM_CHUNK = 8
#: The longest a training job is planned to take by its estimate (a window holds 540 s of jobs).
JOB_TARGET_S = 300.0
#: A training job's fixed cost, a guess: interpreter and CUDA start, the template and context
#: banks (densities computed from the structures on a bare machine), validation sets, and the
#: precision check in the first job of a window that has no recorded one.
JOB_OVERHEAD_S = 60.0
#: Guesses used while nothing is measured on CUDA (said in every estimate that uses them).
GUESS_STEP_MS_PER_RUN = 7.1       # the network step of one run on an H100 (issue 13)
GUESS_SIM_MS_PER_BATCH = 0.6      # 32 subtomograms at 56,000/s, bench_simulate on an H100
GUESS_CONTEXT_SLOWDOWN = 35.0     # bench context on a 2-core CPU, 0-25 % occupancy


def _load(root: Path, name: str) -> dict[str, Any] | None:
    try:
        rec = json.loads((root / "results" / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) else None


def step_figures(root: Path, n_runs: int) -> dict[str, tuple[float, str]]:
    """Collect the per-iteration figures of a group of ``n_runs``, each with its source.

    Parameters
    ----------
    root : Path
        Repository root (``results/bench_*.json``).
    n_runs : int
        Runs trained together.

    Returns
    -------
    dict
        ``{"step_ms": (ms, source), "sim_ms": (ms per batch of 32, source), "context_ms":
        (ms per batch of 32 with context, source)}``.
    """
    out: dict[str, tuple[float, str]] = {}
    train = ((_load(root, "bench_train") or {}).get("data") or {}).get("cuda") or {}
    modes = (((train.get("networks") or {}).get("dsrf3d") or {}).get("modes") or {})
    if (train.get("settings") or {}).get("batch") == 32 and modes:
        measured = {int(n): min(float(m[n]["ms_per_step"]) for m in (modes.get("loop", {}),
                                                                        modes.get("vmap", {}))
                                if n in m and "ms_per_step" in m[n])
                    for n in {k for m in modes.values() for k in m}
                    if any(n in modes.get(s, {}) for s in ("loop", "vmap"))}
        if measured:
            near = min(measured, key=lambda n: (abs(n - n_runs), n))
            ms = measured[near] * n_runs / near
            how = "" if near == n_runs else f", scaled from {near} runs"
            out["step_ms"] = (ms, f"bench_train on {train.get('device_name', 'CUDA')}{how}")
    if "step_ms" not in out:
        out["step_ms"] = (GUESS_STEP_MS_PER_RUN * n_runs,
                          f"guess: {GUESS_STEP_MS_PER_RUN} ms per run (one H100 run, issue 13)")
    sim = ((_load(root, "bench_simulate") or {}).get("data") or {}).get("cuda") or {}
    rate = (sim.get("subtomograms_per_s") or {}).get(str(32 * SIM_CHUNK))
    if rate:
        where = f"bench_simulate at {32 * SIM_CHUNK} per call on {sim.get('device_name', 'CUDA')}"
        out["sim_ms"] = (32e3 / float(rate), where)
    else:
        out["sim_ms"] = (GUESS_SIM_MS_PER_BATCH, f"guess: {GUESS_SIM_MS_PER_BATCH} ms")
    ctx = (_load(root, "bench_context") or {}).get("data") or {}
    cuda = ctx.get("cuda") or {}
    widest = _widest(cuda.get("presets") or {})
    if widest is not None:
        where = (f"bench_context {widest[0]} at batch {cuda.get('batch')} on "
                 f"{cuda.get('device_name', 'CUDA')}")
        out["context_ms"] = (32e3 / widest[1], where)
    else:
        cpu = _widest((ctx.get("cpu") or {}).get("presets") or {})
        plain = ((ctx.get("cpu") or {}).get("presets") or {}).get("no context") or {}
        factor, why = GUESS_CONTEXT_SLOWDOWN, f"{GUESS_CONTEXT_SLOWDOWN:g}x (a guess)"
        if cpu is not None and plain.get("subtomograms_per_s"):
            factor = float(plain["subtomograms_per_s"]) / cpu[1]
            why = f"{factor:.0f}x, the slowdown bench_context measured on the CPU"
        out["context_ms"] = (out["sim_ms"][0] * factor, f"guess: the plain simulator x {why}")
    return out


def _widest(presets: Mapping[str, Any]) -> tuple[str, float] | None:
    """Return the context preset of the widest occupancy range measured, and its rate."""
    ctx = {k: float(v["subtomograms_per_s"]) for k, v in presets.items()
           if k.startswith("context") and v.get("subtomograms_per_s")}
    if not ctx:
        return None
    k = max(ctx, key=lambda name: float(name.split("-")[-1].strip(" %") or 0))
    return k, ctx[k]


@dataclass(frozen=True)
class TrainingGroup:
    """Runs of one arm trained together by one job.

    Attributes
    ----------
    arm : str
        The arm (a Table I arm or ``ablation:NAME``).
    seeds : tuple of int
        Its seeds in this group.
    iters : int
        SGD iterations of every run.
    root : str
        Folder of the run folders (checkpoints), relative to the repository root.
    """

    arm: str
    seeds: tuple[int, ...]
    iters: int
    root: str

    @property
    def name(self) -> str:
        """Job name: ``table1-train-ARM-seeds-A-B`` or ``ablation-train-NAME-seeds-A-B``."""
        if self.arm.startswith(ABLATION_ARM_PREFIX):
            head = f"ablation-train-{self.arm[len(ABLATION_ARM_PREFIX):]}"
        else:
            head = f"table1-train-{self.arm.replace('+', '-')}"
        s = self.seeds
        return head + (f"-seed-{s[0]}" if len(s) == 1 else f"-seeds-{s[0]}-{s[-1]}")

    def argv(self) -> tuple[str, ...]:
        """Return the job's command: ``cryo-companion train-many ... --export``.

        Returns
        -------
        tuple of str
            With ``{python}`` and ``{device}`` for the runner to fill in.
        """
        return ("{python}", "-m", "cryo_companion.cli.main", "train-many", "--root", self.root,
                "--arms", self.arm, "--seeds", *map(str, self.seeds), "--iters",
                str(self.iters), "--sim-chunk", str(SIM_CHUNK), "--precision", "checked",
                "--export", "--device", "{device}", "--quiet")

    def configs(self, precision: str = "tf32") -> list[TrainConfig]:
        """Return the runs' settings as the command builds them.

        Parameters
        ----------
        precision : str
            The precision the command resolves ``checked`` to.

        Returns
        -------
        list of TrainConfig
            One per seed.
        """
        return [TrainConfig(arm=self.arm, seed=s, iters=self.iters, sim_chunk=SIM_CHUNK,
                            precision=precision) for s in self.seeds]


def _exported(root: Path, group: TrainingGroup) -> int:
    """How many of the group's runs are exported in ``root/results`` with these settings."""
    n = 0
    for s in group.seeds:
        try:
            rec = json.loads((root / "results" / "training" /
                              f"{_record_stem(group.arm, s)}.json").read_text())
            cfg = TrainConfig.from_dict(rec["data"]["config"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if (cfg.iters, cfg.sim_chunk, cfg.arm, cfg.seed) == (group.iters, SIM_CHUNK, group.arm,
                                                             s) and (
                root / "results" / "weights" / rec["data"]["weights"]).is_file():
            n += 1
    return n


def _record_stem(arm: str, seed: int) -> str:
    from cryo_companion.papers.che2019.weights import record_name

    return record_name(arm, seed)


def group_estimate(root: Path, group: TrainingGroup, *, todo: int | None = None
                   ) -> Estimate:
    """Estimate a training job: its runs not yet exported, trained together.

    Parameters
    ----------
    root : Path
        Repository root (the benchmarks' records, the exports).
    group : TrainingGroup
        The job's runs.
    todo : int or None
        Runs to train (default: those of the group not exported with its settings).

    Returns
    -------
    Estimate
        ``JOB_OVERHEAD_S + iters x (step of N runs + N x simulation of a batch)``, with where
        each figure comes from; 15 s when every run is exported (the job only checks).
    """
    n = len(group.seeds) - _exported(root, group) if todo is None else todo
    if n <= 0:
        return Estimate(15.0, f"all {len(group.seeds)} runs exported with these settings "
                              "(results/training/): the job only checks them")
    f = step_figures(root, n)
    context = arm_preset(group.arm).has_context
    sim_key = "context_ms" if context else "sim_ms"
    ms = f["step_ms"][0] + n * f[sim_key][0]
    seconds = JOB_OVERHEAD_S + group.iters * ms / 1e3
    return Estimate(seconds, f"{n} runs x {group.iters:,} iterations: step "
                             f"{f['step_ms'][0]:.1f} ms ({f['step_ms'][1]}) + {n} x "
                             f"{f[sim_key][0]:.2f} ms simulation "
                             f"{'with context ' if context else ''}({f[sim_key][1]}) + "
                             f"{JOB_OVERHEAD_S:.0f} s set-up (guess)")


def plan_groups(root: Path, arm: str, seeds: Sequence[int], iters: int, run_root: str, *,
                target_s: float = JOB_TARGET_S) -> list[TrainingGroup]:
    """Split one arm's seeds into jobs of as many runs as fit in ``target_s`` by the estimate.

    Parameters
    ----------
    root : Path
        Repository root (the benchmarks' records).
    arm : str
        The arm.
    seeds : sequence of int
        Its seeds, in order.
    iters : int
        Iterations of every run.
    run_root : str
        Folder of the run folders.
    target_s : float
        The longest a job should take by its estimate (a group of one may take longer).

    Returns
    -------
    list of TrainingGroup
        Consecutive seeds; every group but one-run groups within ``target_s`` (estimated as if
        none of its runs were exported, so the grouping does not change as runs come back).
    """
    if not seeds:
        raise ValueError("no seeds")
    groups: list[TrainingGroup] = []
    cur: list[int] = []
    for s in seeds:
        trial = TrainingGroup(arm, (*cur, s), iters, run_root)
        if cur and group_estimate(root, trial, todo=len(trial.seeds)).seconds > target_s:
            groups.append(TrainingGroup(arm, tuple(cur), iters, run_root))
            cur = [s]
        else:
            cur.append(s)
    groups.append(TrainingGroup(arm, tuple(cur), iters, run_root))
    return groups


def training_jobs(root: Path, arms: Sequence[str], seeds: Sequence[int], iters: int,
                  run_root: str, *, priority: int, description: str,
                  structures: Sequence[str] = TRAINING_STRUCTURES) -> list[Job]:
    """Declare the command jobs that train and export ``arms`` x ``seeds`` (:func:`plan_groups`).

    Parameters
    ----------
    root : Path
        Repository root.
    arms : sequence of str
        The arms.
    seeds : sequence of int
        The seeds of every arm.
    iters : int
        Iterations of every run.
    run_root : str
        Folder of the run folders (not committed).
    priority : int
        Priority of the first job (the next ones follow).
    description : str
        What the runs are for (the plan's line).
    structures : sequence of str
        The structure entries the training reads.

    Returns
    -------
    list of Job
        One per group, each estimated by :func:`group_estimate`.
    """
    jobs = []
    for i, g in enumerate(grp for a in arms for grp in plan_groups(root, a, seeds, iters,
                                                                     run_root)):
        jobs.append(command_job(
            g.name, g.argv(), priority=priority + i, structures=structures,
            estimator=_estimator(g),
            description=(f"{description}: {g.arm} seeds {', '.join(map(str, g.seeds))} x "
                         f"{g.iters:,} iterations, exported to results/weights/")))
    return jobs


def _estimator(group: TrainingGroup) -> Estimator:
    """Return the estimator of one training job (:func:`group_estimate` of its group)."""
    def est(root: Path, params: Mapping[str, Any]) -> Estimate:
        return group_estimate(root, group)

    return est


def chapter_estimate(name: str, guess_s: float, why: str) -> Estimator:
    """Make the estimator of a chapter that evaluates exported runs: its last run, else a guess.

    Parameters
    ----------
    name : str
        The chapter (its result ``results/NAME.json`` and executed notebook).
    guess_s : float
        Seconds guessed while it has not run in this layout.
    why : str
        What the guess rests on.

    Returns
    -------
    callable
        ``(root, params) -> Estimate``: the executed notebook's ``wall_time_s`` if its result
        has the per-domain evaluations of this layout, else the guess.
    """
    def est(root: Path, params: Mapping[str, Any]) -> Estimate:
        res = _load(root, name) or {}
        try:
            nb = json.loads((root / "book" / "chapters" / f"{name}.ipynb").read_text())
            wall = float(nb["metadata"]["cryo_companion"]["wall_time_s"])
        except (OSError, ValueError, KeyError, TypeError):
            wall = None
        if wall and "evaluations" in (res.get("data") or {}):
            return Estimate(wall, f"book/chapters/{name}.ipynb wall_time_s (its last run)")
        return Estimate(guess_s, f"declared guess: {why}")

    return est


def _jobs(root: Path) -> list[Job]:
    table1 = training_jobs(root, TABLE1_ARMS, TABLE1_SEEDS, PAPER_ITERS, "build/table1_runs",
                           priority=111, description="Table I")
    ablations = training_jobs(root, ABLATION_ARMS, ABLATION_SEEDS, ABLATION_ITERS,
                              "build/ablation_runs", priority=140,
                              description="one-factor ablation")
    test_sets = ("both frozen test domains generated at paper scale (the test-domain chapter "
                 "took 120 s for one on an H100, results/test_domain.json) and")
    return [
        command_job(
            "bench-context-cuda",
            ("{python}", "-m", "cryo_companion.cli.main", "bench", "context", "--device",
             "cuda", "--batch-size", str(32 * SIM_CHUNK), "--save"),
            priority=45, structures=TRAINING_STRUCTURES, guess_s=120,
            guess_source="3 rounds x 3 presets x at least 1 s at 256 per call, plus the "
                         "template and context banks",
            description="context randomization's cost on CUDA -> results/bench_context.json"),
        chapter_job("test_domain", priority=100, structures=STRUCTURES,
                    description="the frozen held-out test domain (Table I's test set)"),
        *table1,
        chapter_job("table1", priority=130, after=tuple(j.name for j in table1),
                    structures=STRUCTURES,
                    estimator=chapter_estimate(
                        "table1", 330, f"{test_sets} 12 networks x 2 domains x 2 protocols "
                                       "evaluated on 1,051 subtomograms each (about 90 s)"),
                    description="Table I: 4 arms x 3 seeds (exported runs), 2 domains, "
                                "2 protocols"),
        *ablations,
        chapter_job("ablation", priority=170, after=tuple(j.name for j in ablations),
                    structures=STRUCTURES,
                    estimator=chapter_estimate(
                        "ablation", 330, f"{test_sets} 21 networks x 2 domains x 2 protocols "
                                         "evaluated (about 90 s)"),
                    description="one factor at a time: 7 configurations x 3 seeds, 2 domains"),
    ]


def _root() -> Path:
    from cryo_companion._io import repo_root

    return repo_root()


JOBS = _jobs(_root())
