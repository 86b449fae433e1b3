"""Training speed: ``cryo-companion bench train`` times N runs per step, in one process and in N.

For every registered network (:func:`cryo_companion.models.registry.network_names`) and every N
of ``--n-runs`` (default 1, 2, 6, 12) it times the training step of N independent runs (each its
own weights, SGD with Nesterov momentum, its own batch) with the steppers of
:mod:`cryo_companion.learn.step`:

- ``loop``: one process, the runs one after the other inside each step;
- ``vmap``: one process, one vmapped step over the stacked weights;
- ``processes``: N processes at once, one run each (CPU threads shared out among them; on CUDA
  all on one GPU), started together behind a barrier.

Each figure is the wall-clock time of a step of all N runs (``ms_per_step``; for processes the
mean over the processes of their own step time) and the cost per run and iteration
(``ms_per_run_iteration`` = step / N in one process; 1 / (sum of the processes' rates) for
processes), the median over ``--rounds``. The batches are fixed example batches
(:attr:`ModelSpec.example_batch`), so the network alone is timed; the simulator's time for one
run's batch is measured separately (``simulator``: the Table I randomized preset on four
synthetic 40³ templates, ``--sim-chunk`` batches per call) and its share of an iteration of N
runs is ``N·sim / (N·sim + step)``. With the paper's batch of 32 the record projects the wall
time of Table I (6 runs x 15,000 iterations, best mode at N = 6).

``--profile`` records the operators that dominate one step (torch.profiler, self time);
``--fast-step`` times one run's step under one change at a time (channels-last 3-D, bf16
autocast, both, foreach SGD, ``torch.compile`` with ``--compile``) against the plain fp32 step.
``--save`` merges the device's entry (``cpu`` or ``cuda``) into ``results/bench_train.json``
with provenance; ``--json PATH`` writes the figures to PATH. The load average before and after
is recorded: on a shared machine the CPU figures are noisy.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from cryo_companion.learn.step import LoopStep, LossFn, VmapStep
from cryo_companion.models.registry import build_model, get_spec, network_names

__all__ = ["LOSSES", "MODES", "N_RUNS", "fast_step_trials", "merge_entry", "profile_step",
           "simulator_ms", "step_ms", "table1_projection"]

N_RUNS = (1, 2, 6, 12)
MODES = ("loop", "vmap", "processes")
#: Table I's training length and number of runs (2 arms x 3 seeds; IV-A: 15,000 iterations).
TABLE1_RUNS, TABLE1_ITERS, PAPER_BATCH = 6, 15_000, 32


def _dsrf3d_loss() -> LossFn:
    from cryo_companion.papers.che2019.train import TrainConfig, table1_loss

    return table1_loss(TrainConfig().cls_weight)


def _shrec_loss(method: str) -> Callable[[], LossFn]:
    def make() -> LossFn:
        from cryo_companion.papers.shrec2020.train import SETTINGS, loss_for

        return loss_for(SETTINGS["paper"][method])
    return make


def _ssn3d_loss() -> LossFn:
    from cryo_companion.papers.ssn3d.train import segmentation_loss

    return segmentation_loss


def _ssn3d_adam(params: Any, foreach: bool | None = None) -> torch.optim.Optimizer:
    from cryo_companion.learn.optim import TimeDecayAdam
    from cryo_companion.papers.ssn3d.train import Settings

    s = Settings()
    return TimeDecayAdam(params, lr=s.lr, decay=s.lr_decay, betas=s.betas, eps=s.eps,
                         foreach=foreach)


def _dsmnet_loss() -> LossFn:
    from cryo_companion.papers.dsmnet.train import make_loss

    return make_loss({"cls": 1.0, "seg": 10.0, "rec": 1.0})     # DSM-Net's 1 : 10 : 1


def _dsrf3d_v2_loss() -> LossFn:
    from cryo_companion.papers.dsmnet.train import make_loss

    loss = make_loss({"cls": 1.0})
    return lambda out, labels: loss(out, labels, None, None)


def _dsmnet_adam(params: Any, foreach: bool | None = None) -> torch.optim.Optimizer:
    from cryo_companion.papers.dsmnet.train import Settings

    s = Settings()
    return torch.optim.Adam(params, lr=s.lr, betas=s.betas, eps=s.eps, foreach=foreach)


#: The training loss each registered network is benchmarked with (its paper's), by name.
LOSSES: dict[str, Callable[[], LossFn]] = {
    "dsrf3d": _dsrf3d_loss, "ssn3d": _ssn3d_loss, "dsmnet": _dsmnet_loss,
    "dsrf3d_v2": _dsrf3d_v2_loss, **{m: _shrec_loss(m) for m in ("deepfinder", "yopo", "umc")}}
#: Optimizers other than SGD with Nesterov momentum (its paper's), by network name.
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "ssn3d": _ssn3d_adam, "dsmnet": _dsmnet_adam, "dsrf3d_v2": _dsmnet_adam}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _runs(network: str, n: int, device: torch.device, batch: int, *, foreach: bool | None = None
          ) -> tuple[list[nn.Module], list[torch.optim.Optimizer], list[tuple[Tensor, ...]]]:
    spec = get_spec(network)
    cfg = spec.config_cls()
    models: list[nn.Module] = []
    opts: list[torch.optim.Optimizer] = []
    batches: list[tuple[Tensor, ...]] = []
    for i in range(n):
        torch.manual_seed(i)
        m = build_model(network, cfg).to(device)
        models.append(m)
        make = OPTIMIZERS.get(network)
        opts.append(make(m.parameters(), foreach=foreach) if make else torch.optim.SGD(
            m.parameters(), lr=5e-3, momentum=0.9, nesterov=True, foreach=foreach))
        batches.append(spec.example_batch(cfg, batch,
                                          torch.Generator(device=device).manual_seed(i)))
    return models, opts, batches


def _time_steps(step: Callable[[], Any], device: torch.device, iters: int, warmup: int
                ) -> tuple[float, float]:
    """(wall-clock ms, this process's CPU ms) per call of ``step``."""
    for _ in range(warmup):
        step()
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(iters):
        step()
    _sync(device)
    return (1e3 * (time.perf_counter() - t0) / iters, 1e3 * (time.process_time() - c0) / iters)


def step_ms(network: str, device: torch.device, n_runs: int, mode: str, *, batch: int,
            iters: int, warmup: int = 2, precision: str = "fp32",
            channels_last: bool = False, foreach: bool | None = None,
            compile_model: bool = False) -> tuple[float, float]:
    """Milliseconds per training step of ``n_runs`` runs in this process.

    Parameters
    ----------
    network : str
        Registered network name.
    device : torch.device
        Device of the step.
    n_runs : int
        Runs stepped together.
    mode : str
        ``"loop"`` or ``"vmap"``.
    batch : int
        Items per run and step.
    iters : int
        Timed steps.
    warmup : int
        Untimed steps first (allocations, cuDNN's algorithm search, compilation).
    precision : str
        ``"fp32"``, ``"tf32"`` or ``"bf16"``.
    channels_last : bool
        Channels-last 3-D layout (loop only).
    foreach : bool or None
        ``foreach`` of the SGD optimizers (None: torch's default).
    compile_model : bool
        ``torch.compile`` each model (loop only).

    Returns
    -------
    tuple of float
        Wall-clock and CPU (this process, all threads) milliseconds of one step of all runs.
    """
    from cryo_companion.learn.precision import configure_backends

    configure_backends(device, precision)
    models, opts, batches = _runs(network, n_runs, device, batch, foreach=foreach)
    loss = LOSSES[network]()
    stepper: LoopStep | VmapStep
    if mode == "vmap":
        stepper = VmapStep(models, opts, loss, device=device, precision=precision)
    elif mode == "loop":
        fwd = [torch.compile(m) if compile_model else m for m in models]
        stepper = LoopStep(fwd, opts, loss, device=device, precision=precision,  # type: ignore[arg-type]
                           channels_last=channels_last)
    else:
        raise ValueError(f"unknown in-process mode {mode!r}; valid: loop, vmap")
    return _time_steps(lambda: stepper.step(batches), device, iters, warmup)


def _process_worker(network: str, device: str, batch: int, iters: int, warmup: int,
                    precision: str, threads: int, barrier: Any, queue: Any) -> None:
    """One of the N processes: one run, started with the others, its ms per step queued."""
    torch.set_num_threads(threads)
    dev = torch.device(device)
    from cryo_companion.learn.precision import configure_backends

    configure_backends(dev, precision)
    models, opts, batches = _runs(network, 1, dev, batch)
    stepper = LoopStep(models, opts, LOSSES[network](), device=dev, precision=precision)
    for _ in range(warmup):
        stepper.step(batches)
    _sync(dev)
    barrier.wait()
    queue.put(_time_steps(lambda: stepper.step(batches), dev, iters, 0))  # (wall, cpu) ms


def processes_ms(network: str, device: torch.device, n_runs: int, *, batch: int, iters: int,
                 warmup: int = 2, precision: str = "fp32") -> tuple[float, float, float]:
    """Time ``n_runs`` processes training one run each, all at once.

    Parameters
    ----------
    network : str
        Registered network name.
    device : torch.device
        Device of every process (one GPU for all on CUDA).
    n_runs : int
        Number of processes.
    batch : int
        Items per run and step.
    iters : int
        Timed steps per process.
    warmup : int
        Untimed steps per process before the common start.
    precision : str
        Precision of every process.

    Returns
    -------
    tuple of float
        ``(mean wall ms per step over the processes, ms per run-iteration of them all,
        mean CPU ms per step of a process)``.
    """
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(n_runs), ctx.Queue()
    threads = max(1, torch.get_num_threads() // n_runs) if device.type == "cpu" else 1
    procs = [ctx.Process(target=_process_worker, args=(network, str(device), batch, iters,
                                                       warmup, precision, threads, barrier,
                                                       queue)) for _ in range(n_runs)]
    for p in procs:
        p.start()
    try:
        times = [queue.get(timeout=3600) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=60)
    if any(p.exitcode != 0 for p in procs):
        raise RuntimeError(f"a benchmark process failed (exit codes {[p.exitcode for p in procs]})")
    walls = [t[0] for t in times]
    return (statistics.fmean(walls), 1.0 / sum(1.0 / t for t in walls),
            statistics.fmean(t[1] for t in times))


def simulator_ms(device: torch.device, batch: int, *, chunk: int = 1, reps: int = 3) -> float:
    """Milliseconds the simulator takes for one run's batch (Table I randomized preset).

    Parameters
    ----------
    device : torch.device
        Simulation device.
    batch : int
        Subtomograms per batch (40³, four synthetic templates: speed does not depend on them).
    chunk : int
        Batches simulated per call (as ``TrainConfig.sim_chunk``).
    reps : int
        Chunks timed (after one untimed).

    Returns
    -------
    float
        Milliseconds per batch, standardisation included.
    """
    from cryo_companion.bench.simulate import synthetic_templates
    from cryo_companion.learn.batches import DrawnBatches, simulator_draw
    from cryo_companion.papers.che2019.presets import get_preset
    from cryo_companion.simulate.subtomogram import Simulator

    sim = Simulator(synthetic_templates(40), torch.arange(4), 13.68, device)
    src = DrawnBatches(simulator_draw(sim, get_preset("randomized")), batch, chunk=chunk,
                       standardize=True)
    gen = torch.Generator(device=device).manual_seed(0)
    return _time_steps(lambda: src.next_batch(gen), device, reps * chunk, chunk)[0]


def profile_step(network: str, device: torch.device, *, batch: int, top: int = 8,
                 precision: str = "fp32") -> list[dict[str, Any]]:
    """List the operators that take most of one training step (self time, torch.profiler).

    Parameters
    ----------
    network : str
        Registered network name.
    device : torch.device
        Device of the step.
    batch : int
        Items per step.
    top : int
        Operators kept.
    precision : str
        Precision of the step.

    Returns
    -------
    list of dict
        ``{"op", "self_ms", "share", "calls"}`` per operator, largest first (share of the
        step's total self time).
    """
    from torch.profiler import ProfilerActivity, profile

    models, opts, batches = _runs(network, 1, device, batch)
    stepper = LoopStep(models, opts, LOSSES[network](), device=device, precision=precision)
    stepper.step(batches)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        stepper.step(batches)
        _sync(device)
    rows = [(e.key, e.self_device_time_total if device.type == "cuda" else e.self_cpu_time_total,
             e.count) for e in prof.key_averages()]
    total = sum(r[1] for r in rows) or 1.0
    rows.sort(key=lambda r: -r[1])
    return [{"op": k, "self_ms": round(t / 1e3, 3), "share": round(t / total, 4), "calls": c}
            for k, t, c in rows[:top]]


#: One change at a time against the plain fp32 step (13.2); ``compile`` only with --compile.
FAST_STEP_OPTIONS: dict[str, dict[str, Any]] = {
    "fp32": {}, "channels_last_3d": {"channels_last": True}, "bf16": {"precision": "bf16"},
    "bf16+channels_last_3d": {"precision": "bf16", "channels_last": True},
    "foreach_sgd": {"foreach": True}, "tf32": {"precision": "tf32"},
    "torch.compile": {"compile_model": True}}


def _trial(network: str, device: torch.device, name: str, kw: dict[str, Any], *, batch: int,
           iters: int, warmup: int) -> tuple[float, float] | str:
    try:
        return step_ms(network, device, 1, "loop", batch=batch, iters=iters,
                       warmup=warmup + (2 if name == "torch.compile" else 0), **kw)
    except Exception as exc:  # noqa: BLE001 - report and go on: the point is the comparison
        return f"{type(exc).__name__}: {exc}"[:300]


def fast_step_trials(network: str, device: torch.device, *, batch: int, iters: int,
                     warmup: int, rounds: int = 1,
                     compile_model: bool = False) -> list[dict[str, Any]]:
    """Time one run's step under each option of :data:`FAST_STEP_OPTIONS`, one change at a time.

    Parameters
    ----------
    network : str
        Registered network name.
    device : torch.device
        Device of the step.
    batch : int
        Items per step.
    iters : int
        Timed steps per option and round.
    warmup : int
        Untimed steps per option (compilation needs more on its first call).
    rounds : int
        Rounds; each times every option once, in turn, so that a busy spell of a shared
        machine slows all options alike; the medians are kept.
    compile_model : bool
        Include ``torch.compile``.

    Returns
    -------
    list of dict
        ``{"option", "ms_per_step", "cpu_ms_per_step", "relative"}`` (relative to ``fp32``,
        wall clock), or ``"error"`` when an option fails on this device.
    """
    opts = {k: v for k, v in FAST_STEP_OPTIONS.items()
            if (k != "torch.compile" or compile_model) and (k != "tf32" or device.type == "cuda")}
    got: dict[str, list[tuple[float, float]]] = {k: [] for k in opts}
    errors: dict[str, str] = {}
    for _ in range(rounds):
        for name, kw in opts.items():
            if name in errors:
                continue
            r = _trial(network, device, name, kw, batch=batch, iters=iters, warmup=warmup)
            if isinstance(r, str):
                errors[name] = r
            else:
                got[name].append(r)
                print(f"{device.type} fast step {name}: {r[0]:.1f} ms/step", flush=True)
    base = statistics.median(w for w, _ in got["fp32"]) if got["fp32"] else None
    out: list[dict[str, Any]] = []
    for name in opts:
        if name in errors:
            out.append({"option": name, "error": errors[name]})
            continue
        wall = statistics.median(w for w, _ in got[name])
        out.append({"option": name, "ms_per_step": round(wall, 3),
                    "cpu_ms_per_step": round(statistics.median(c for _, c in got[name]), 3),
                    "relative": round(wall / base, 3) if base else None, "rounds": rounds})
    return out


def _measure(network: str, device: torch.device, mode: str, n: int, a: argparse.Namespace
             ) -> dict[str, Any]:
    try:
        if mode == "processes":
            per, run_it, cpu = processes_ms(network, device, n, batch=a.batch, iters=a.iters,
                                            warmup=a.warmup, precision=a.precision)
        else:
            per, cpu = step_ms(network, device, n, mode, batch=a.batch, iters=a.iters,
                               warmup=a.warmup, precision=a.precision)
            run_it = per / n
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        return {"error": "out of memory"}
    return {"ms_per_step": per, "ms_per_run_iteration": run_it, "cpu_ms_per_step": cpu}


def _median_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in rounds if "error" not in r]
    if not ok:
        return rounds[0]
    return {k: round(statistics.median(r[k] for r in ok), 3)
            for k in ("ms_per_step", "ms_per_run_iteration", "cpu_ms_per_step")
            } | {"rounds": len(ok)}


def table1_projection(entry: dict[str, Any], sim_ms_per_batch: float | None,
                      batch: int) -> dict[str, Any] | None:
    """Projected wall time of Table I's 6 runs x 15,000 iterations from the N = 6 figures.

    Parameters
    ----------
    entry : dict
        ``modes`` of one network: ``{mode: {"6": {"ms_per_step": ...}}}``.
    sim_ms_per_batch : float or None
        Simulator milliseconds per run's batch.
    batch : int
        The batch the figures were measured at; only the paper's 32 is projected.

    Returns
    -------
    dict or None
        ``{"mode", "ms_per_step", "sim_ms_per_iteration", "wall_s"}`` with the fastest mode at
        N = 6, or None when the batch is not 32 or N = 6 was not measured.
    """
    key = str(TABLE1_RUNS)
    cands = {m: v[key]["ms_per_step"] for m, v in entry.items()
             if key in v and "ms_per_step" in v[key]}
    if batch != PAPER_BATCH or not cands:
        return None
    mode = min(cands, key=lambda m: cands[m])
    sim = TABLE1_RUNS * (sim_ms_per_batch or 0.0) if mode != "processes" else 0.0
    return {"mode": mode, "ms_per_step": cands[mode], "sim_ms_per_iteration": round(sim, 3),
            "wall_s": round(TABLE1_ITERS * (cands[mode] + sim) / 1e3, 1),
            "target_wall_s": 240.0}


def _network_entry(network: str, device: torch.device, a: argparse.Namespace) -> dict[str, Any]:
    # rounds outermost: every (mode, N) once per round, so a busy spell slows all alike
    raw: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in range(a.rounds):
        for mode in a.modes:
            for n in a.n_runs:
                res = _measure(network, device, mode, n, a)
                raw.setdefault((mode, n), []).append(res)
                print(f"{device.type} {network} round {r + 1} {mode} N={n}: " + (
                    res.get("error") or f"{res['ms_per_step']:.1f} ms/step, "
                                        f"{res['ms_per_run_iteration']:.1f} ms/run-iteration"),
                      flush=True)
    modes: dict[str, dict[str, Any]] = {}
    for (mode, n), rounds in raw.items():
        modes.setdefault(mode, {})[str(n)] = _median_rounds(rounds)
    sim = simulator_ms(device, a.batch, chunk=a.sim_chunk)
    shares = {}
    for n in a.n_runs:
        best = [v[str(n)]["ms_per_step"] for m, v in modes.items()
                if m != "processes" and "ms_per_step" in v.get(str(n), {})]
        if best:
            shares[str(n)] = round(n * sim / (n * sim + min(best)), 4)
    entry: dict[str, Any] = {
        "parameters": sum(p.numel() for p in build_model(network).parameters()),
        "optimizer": ("the paper's (Adam, Keras decay)" if network in OPTIMIZERS
                      else "SGD, Nesterov momentum 0.9, lr 5e-3"),
        "modes": modes,
        "simulator": {"batch": a.batch, "chunk": a.sim_chunk, "ms_per_batch": round(sim, 3),
                      "share_of_iteration": shares},
        "table1_projection": table1_projection(modes, sim, a.batch) if network == "dsrf3d"
        else None}
    if a.profile:
        entry["profile"] = profile_step(network, device, batch=a.batch, precision=a.precision)
    if a.fast_step:
        entry["fast_step"] = fast_step_trials(network, device, batch=a.batch, iters=a.iters,
                                              warmup=a.warmup, rounds=a.fast_step_rounds,
                                              compile_model=a.compile)
    return entry


def merge_entry(old: dict[str, Any] | None, key: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Merge a new device entry into the record's data, keeping the other devices.

    A benchmark of some networks (``--networks``) under the same settings as the recorded entry
    of that device adds to it: its networks replace theirs, the others' figures stay (so the
    networks can be measured in separate commands, e.g. one GPU job each). Under other
    settings the new entry replaces the device's entry.

    Parameters
    ----------
    old : dict or None
        The ``data`` of the recorded ``bench_train`` result (None: none yet).
    key : str
        Device key (``"cpu"``, ``"cuda"``).
    entry : dict
        The new figures of that device (``settings`` and ``networks`` among them).

    Returns
    -------
    dict
        The merged ``data``.
    """
    before = (old or {}).get(key)
    if (before and "networks" in before and "networks" in entry
            and before.get("settings") == entry.get("settings")):
        entry = {**entry, "networks": {**before.get("networks", {}), **entry["networks"]}}
    return {**(old or {}), key: entry}


def add_args(p: argparse.ArgumentParser) -> None:
    """Options of ``cryo-companion bench train``."""
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                   choices=["cpu", "cuda"], help="device (default cuda when available)")
    p.add_argument("--networks", nargs="+", default=None,
                   help="registered networks (default all)")
    p.add_argument("--n-runs", type=int, nargs="+", default=list(N_RUNS),
                   help=f"runs per step (default {' '.join(map(str, N_RUNS))})")
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES,
                   help="loop, vmap (one process) and processes (N processes) (default all)")
    p.add_argument("--batch", type=int, default=PAPER_BATCH,
                   help="items per run and step (default 32, Table I)")
    p.add_argument("--iters", type=int, default=20, help="timed steps (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument("--rounds", type=int, default=1,
                   help="repetitions of every figure; the record keeps the median (default 1)")
    p.add_argument("--precision", default="tf32", choices=["fp32", "tf32", "bf16"],
                   help="precision of the steps (default tf32: fp32 on the CPU)")
    p.add_argument("--sim-chunk", type=int, default=None,
                   help="batches per simulator call (default 8 on CUDA, 1 on the CPU)")
    p.add_argument("--profile", action="store_true", help="record the top operators of a step")
    p.add_argument("--fast-step", action="store_true",
                   help="time one change at a time: channels-last, bf16, foreach SGD, ...")
    p.add_argument("--fast-step-rounds", type=int, default=3,
                   help="rounds of --fast-step, options interleaved (default 3)")
    p.add_argument("--compile", action="store_true", help="include torch.compile in --fast-step")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default torch's)")
    p.add_argument("--json", default=None, help="write the figures to this JSON file")
    p.add_argument("--save", action="store_true",
                   help="merge this device's entry into results/bench_train.json")


def _check(a: argparse.Namespace) -> None:
    for name in ("batch", "iters", "rounds", "fast_step_rounds"):
        if getattr(a, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(a, name)}")
    if a.warmup < 0 or any(n < 1 for n in a.n_runs):
        raise ValueError("--warmup must be >= 0 and every --n-runs >= 1")
    if a.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda requested but no CUDA GPU is available here")
    unknown = sorted(set(a.networks or ()) - set(network_names()))
    if unknown:
        raise ValueError(f"unknown networks {unknown}; registered: {', '.join(network_names())}")
    missing = sorted(set(a.networks or network_names()) - set(LOSSES))
    if missing:
        raise ValueError(f"no benchmark loss for {missing}: add it to bench.train.LOSSES")


def main(a: argparse.Namespace) -> int:
    """Run the benchmark with parsed options; 0 on success."""
    from cryo_companion._io import write_json
    from cryo_companion.runs.results import device_name, load_result, provenance, results_dir
    from cryo_companion.runs.runtime import setup, tune_cpu_allocator

    _check(a)
    if a.threads is not None:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    tuned = dev.type == "cpu" and tune_cpu_allocator()
    a.sim_chunk = a.sim_chunk or (8 if dev.type == "cuda" else 1)
    load0 = os.getloadavg()
    networks = {n: _network_entry(n, dev, a) for n in (a.networks or network_names())}
    run = setup("paper", a.device, 0, chapter="bench_train", paper_needs_gpu=False)
    prov = provenance(run, seeds=[0])
    entry = {"device_name": device_name(dev), "commit": prov["commit"], "dirty": prov["dirty"],
             "threads": torch.get_num_threads() if dev.type == "cpu" else None,
             "malloc_tuning": tuned if dev.type == "cpu" else None,
             "load_average": {"start": [round(x, 2) for x in load0],
                              "end": [round(x, 2) for x in os.getloadavg()]},
             "settings": {"batch": a.batch, "iters": a.iters, "warmup": a.warmup,
                          "rounds": a.rounds, "fast_step_rounds": a.fast_step_rounds,
                          "precision": a.precision, "sim_chunk": a.sim_chunk,
                          "n_runs": list(a.n_runs), "modes": list(a.modes),
                          "optimizer": "SGD, Nesterov momentum 0.9, lr 5e-3"},
             "networks": networks}
    for name, e in networks.items():
        if e["table1_projection"]:
            p = e["table1_projection"]
            print(f"{dev.type} {name}: Table I (6 runs x 15,000 iterations) projected "
                  f"{p['wall_s']:.0f} s with {p['mode']} (target {p['target_wall_s']:.0f} s)")
    if a.json or a.save:
        old = (load_result("bench_train") or {}).get("data") if a.save else None
        data = merge_entry(old, dev.type, entry)
        path = results_dir("paper") / "bench_train.json" if a.save else a.json
        write_json(path, {"name": "bench_train", "data": data,
                          "provenance": {**prov, "note": "CPU figures are noisy when the "
                                                         "machine is shared (load_average)"}})
        print(f"wrote {path}")
    return 0

