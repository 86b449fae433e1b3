"""Simulator throughput: ``cryo-companion bench simulate`` measures subtomograms/s.

Runs the full randomized pipeline of cryo_companion.simulate.subtomogram (rotation + shift, noise,
CTF, MTF, wedge, band limit, intensity augmentation) at 40^3 voxels on four synthetic templates
(speed does not depend on their content) for several batch sizes, on the CPU and, when present,
CUDA. Measures in rounds (--rounds, default 5); on the CPU the per-sample NumPy/SciPy reference
(:mod:`cryo_companion.bench.numpy_reference`) is interleaved with the simulator, a short chunk
before every batch, so that both see the same spells of a machine whose speed swings, and the
figures are medians over rounds, with the range of the speedup. Prints one line per round
and ends with one line per device: `<device> best subtomograms/s: <number>`. The reference is
its own process (the allocator tuning of this one does not reach it) and returns what the
simulator returns (noisy, noise-free, mask). At the best batch size a stage profile follows: the
milliseconds per subtomogram of each stage of the pipeline (the device synchronised at every
stage boundary), printed and recorded as ``stages_ms_per_subtomogram``. --json PATH writes the
figures with provenance; --save writes results/bench_simulate.json, merging with the entries
measured before (one per device, and per output set: "cpu" returns noisy + clean + mask,
"cpu-no-clean" noisy + mask).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import torch

from cryo_companion.papers.che2019.presets import get_preset
from cryo_companion.simulate.randomization import Preset

if TYPE_CHECKING:
    from cryo_companion.simulate.subtomogram import Simulator

CPU_BATCHES = (32, 64, 128)
CUDA_BATCHES = (32, 256, 1024, 4096, 8192)

#: ``reference(n)``: seconds the NumPy reference takes for ``n`` subtomograms.
Reference = Callable[[int], float]
#: One measurement round: ``{"rates": {batch: /s}, "reference": {batch: /s}}``.
Round = dict[str, dict[int, float]]


def add_args(p: argparse.ArgumentParser) -> None:
    """Add the options of ``cryo-companion bench simulate``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    """
    p.add_argument("--device", default="all", choices=["cpu", "cuda", "all"],
                   help="device(s) to measure (default all available)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=None,
                   help=f"batch sizes (default CPU {CPU_BATCHES}, CUDA {CUDA_BATCHES})")
    p.add_argument("--box", type=int, default=40, help="box edge in voxels (default 40)")
    p.add_argument("--min-time", type=float, default=1.0,
                   help="seconds of timed runs per batch size and round (default 1)")
    p.add_argument("--rounds", type=int, default=5,
                   help="measurement rounds, each with the NumPy reference on the CPU first; "
                        "figures are medians over rounds (default 5)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default torch's)")
    p.add_argument("--no-compile", action="store_true",
                   help="rotate with grid_sample instead of the torch.compile-fused gather")
    p.add_argument("--no-malloc-tuning", action="store_true",
                   help="leave glibc's allocator as it is (see "
                        "cryo_companion.runs.runtime.tune_cpu_allocator)")
    p.add_argument("--no-clean", action="store_true",
                   help="simulate noisy + mask only (need_clean=False, as the trainer does)")
    p.add_argument("--json", type=Path, default=None, help="write the figures to this JSON file")
    p.add_argument("--save", action="store_true", help="write results/bench_simulate.json")


def synthetic_templates(box: int = 40, k: int = 4) -> torch.Tensor:
    """Make ``k`` blob templates (a few Gaussian blobs each, seeded).

    Parameters
    ----------
    box : int
        Edge in voxels.
    k : int
        Number of templates.

    Returns
    -------
    torch.Tensor
        `(k, box, box, box)` float32 templates.
    """
    g = torch.Generator().manual_seed(0)
    c = (box - 1) / 2
    z, y, x = torch.meshgrid(*[torch.arange(box, dtype=torch.float32) - c] * 3, indexing="ij")
    out = torch.zeros(k, box, box, box)
    for i in range(k):
        for _ in range(3):
            p = (torch.rand(3, generator=g) - 0.5) * box / 3
            s = 1 + 3 * torch.rand(1, generator=g).item()
            r2 = (z - p[0]) ** 2 + (y - p[1]) ** 2 + (x - p[2]) ** 2
            out[i] += torch.exp(-r2 / (2 * s * s))
    return out


def bench_device(device: torch.device, batch_sizes: Sequence[int], box: int = 40,
                 min_time: float = 1.0, preset: str | Preset = "randomized", *,
                 compile: bool = True, need_clean: bool = True, rounds: int = 1,
                 reference: Reference | None = None) -> tuple[list[Round], dict[str, float]]:
    """Measure the subtomograms/s of ``Simulator.sample`` per batch size, ``rounds`` times.

    Parameters
    ----------
    device : torch.device
        Where the simulator runs.
    batch_sizes : sequence of int
        Batch sizes to measure (one that runs out of CUDA memory is skipped from then on).
    box : int
        Box edge in voxels.
    min_time : float
        Seconds of timed runs per batch size and round (at least three runs).
    preset : str or Preset
        The randomization preset.
    compile : bool
        Use the compiled rotation and filter.
    need_clean : bool
        Also simulate the noise-free volumes.
    rounds : int
        Measurement rounds.
    reference : callable or None
        ``reference(n) -> seconds`` of the NumPy reference: it is then interleaved with the
        simulator, one short reference chunk before every batch, so that both see the same
        spells of a shared machine (whose speed swings within seconds); each (round, batch
        size) records both rates.

    Returns
    -------
    rounds : list of dict
        One ``{"rates": {batch: subtomograms/s}, "reference": {batch: subtomograms/s}}`` per
        round (``reference`` empty without one).
    stages : dict of str to float
        The :func:`stage_profile` at the best batch size ({} if none ran).
    """
    preset = get_preset(preset)
    from cryo_companion.simulate.subtomogram import Simulator

    sim = Simulator(synthetic_templates(box), torch.arange(4), 13.68, device, compile=compile)
    gen = torch.Generator(device=device).manual_seed(0)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    sim.sample(2, preset, gen, need_clean=need_clean)  # compilation (if any), first allocations
    sync()
    print(f"{device.type} first batch (compilation {'on' if sim._bank.compile else 'off'}): "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    out: list[Round] = []
    skip: set[int] = set()
    for r in range(rounds):
        rates: dict[int, float] = {}
        refs: dict[int, float] = {}
        for bs in batch_sizes:
            if bs in skip:
                continue
            try:
                sim.sample(bs, preset, gen, need_clean=need_clean)  # warm-up (allocations, plans)
                sync()
                reps = ref_n = 0
                dt = ref_dt = 0.0
                while dt < min_time or reps < 3:
                    if reference is not None:  # ~ as long as one batch, at the 10x target
                        n_ref = max(1, round(bs / 10))
                        ref_dt += reference(n_ref)
                        ref_n += n_ref
                    t0 = time.perf_counter()
                    sim.sample(bs, preset, gen, need_clean=need_clean)
                    sync()
                    dt += time.perf_counter() - t0
                    reps += 1
            except torch.cuda.OutOfMemoryError:
                print(f"{device.type} batch {bs}: out of memory, skipped")
                torch.cuda.empty_cache()
                skip.add(bs)
                continue
            rates[bs] = reps * bs / dt
            if reference is not None:
                refs[bs] = ref_n / ref_dt
        out.append({"rates": rates, "reference": refs})
        print(f"{device.type} round {r + 1}/{rounds}: " + ", ".join(
            f"batch {b} {v:.1f}/s" + (f" (reference {refs[b]:.1f}/s, {v / refs[b]:.1f}x)"
                                      if b in refs else "") for b, v in rates.items()), flush=True)
    best = summarise(out)["best_batch"]
    stages = {} if best is None else stage_profile(sim, best, preset, gen, need_clean=need_clean)
    if stages:
        print(f"{device.type} stages at batch {best} (ms per subtomogram): " + ", ".join(
            f"{k} {v:.3f}" for k, v in stages.items()), flush=True)
    return out, stages


def stage_profile(sim: Simulator, batch: int, preset: str | Preset,
                  generator: torch.Generator, *, need_clean: bool = True,
                  reps: int = 5) -> dict[str, float]:
    """Time each stage of ``sim.sample``: milliseconds per subtomogram, mean over ``reps`` calls.

    The stages are :data:`cryo_companion.simulate.subtomogram.TIMED_STAGES`. The device is
    synchronised at every stage boundary, so the stages add up to the whole call (on CUDA that
    removes the overlap of launches with work: the sum exceeds the pipelined rate).

    Parameters
    ----------
    sim : Simulator
        The simulator.
    batch : int
        Batch size of each call.
    preset : str or Preset
        The randomization preset.
    generator : torch.Generator
        Generator on the simulator's device.
    need_clean : bool
        Also simulate the noise-free volumes.
    reps : int
        Timed calls (after one warm-up call).

    Returns
    -------
    dict of str to float
        ``{stage: ms per subtomogram}``.
    """
    preset = get_preset(preset)
    from cryo_companion.simulate.subtomogram import TIMED_STAGES

    dev = sim.device
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    acc = dict.fromkeys(TIMED_STAGES, 0.0)
    last = [0.0]

    def mark(stage: str) -> None:
        sync()
        now = time.perf_counter()
        acc[stage] += now - last[0]
        last[0] = now

    sim.sample(batch, preset, generator, need_clean=need_clean)  # warm
    for _ in range(reps):
        sync()
        last[0] = time.perf_counter()
        with sim.timed(mark):
            sim.sample(batch, preset, generator, need_clean=need_clean)
    return {k: round(1e3 * v / (reps * batch), 4) for k, v in acc.items()}


def summarise(rounds: Sequence[Round]) -> dict[str, Any]:
    """Summarise the rounds by medians: per batch size, the best batch size, and the speedup.

    The speedup of a round is the simulator's rate at the best batch size (by median) divided by
    the reference rate interleaved with it; its median and range describe the machine's noise.

    Parameters
    ----------
    rounds : sequence of dict
        The rounds of :func:`bench_device`.

    Returns
    -------
    dict
        ``rounds``, ``subtomograms_per_s`` (per batch size), ``best_batch``,
        ``best_subtomograms_per_s`` and, with a reference, its rate, the median speedup, its
        range and the rounds themselves.
    """
    from statistics import median

    batches = sorted({b for r in rounds for b in r["rates"]})
    per_batch = {b: median(r["rates"][b] for r in rounds if b in r["rates"]) for b in batches}
    best_b = max(per_batch, key=lambda b: per_batch[b]) if per_batch else None
    out: dict[str, Any] = {"rounds": len(rounds),
           "subtomograms_per_s": {str(b): round(v, 1) for b, v in per_batch.items()},
           "best_batch": best_b,
           "best_subtomograms_per_s": round(per_batch[best_b], 1) if best_b else None}
    paired = [r for r in rounds if best_b in r["reference"] and best_b in r["rates"]]
    if paired and best_b is not None:
        ratios = [r["rates"][best_b] / r["reference"][best_b] for r in paired]
        out.update({
            "numpy_reference_subtomograms_per_s": round(
                median(r["reference"][best_b] for r in paired), 1),
            "speedup_vs_numpy_reference": round(median(ratios), 2),
            "speedup_range": [round(min(ratios), 2), round(max(ratios), 2)],
            "per_round": [{"rates": {str(b): round(v, 1) for b, v in r["rates"].items()},
                           "reference": {str(b): round(v, 1) for b, v in r["reference"].items()}}
                          for r in rounds]})
    return out


class NumpyReference:
    """The NumPy reference script in its own process (``--serve``).

    ``ref(n)`` simulates ``n`` subtomograms there and returns the seconds it took. Its own
    process, with the default allocator, is how a plain script runs; this process's allocator
    tuning (:func:`cryo_companion.runs.runtime.tune_cpu_allocator`) does not reach it.

    Parameters
    ----------
    box : int
        Box edge in voxels.

    Raises
    ------
    RuntimeError
        If the process does not start.
    """

    def __init__(self, box: int = 40) -> None:
        import subprocess
        import sys

        self._proc = subprocess.Popen([sys.executable, "-m",
                                       "cryo_companion.bench.numpy_reference",
                                       "--serve", "--box", str(box)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        stdin, stdout = self._proc.stdin, self._proc.stdout
        if stdin is None or stdout is None:  # not with PIPE; checked for the type checker
            raise RuntimeError("the NumPy reference process has no pipes")
        self._stdin, self._stdout = stdin, stdout
        if self._stdout.readline().strip() != "ready":
            self.close()
            raise RuntimeError("the NumPy reference process did not start")

    def __call__(self, n: int) -> float:
        """Simulate ``n`` subtomograms in the reference process; return the seconds taken."""
        self._stdin.write(f"{int(n)}\n")
        self._stdin.flush()
        line = self._stdout.readline()
        if not line:
            raise RuntimeError("the NumPy reference process ended unexpectedly")
        return float(line)

    def close(self) -> None:
        """End the reference process (it exits when its input closes)."""
        if self._proc.poll() is None:
            self._stdin.close()
            self._proc.wait(timeout=30)

    def __enter__(self) -> NumpyReference:
        """Return the running reference."""
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """End the reference process."""
        self.close()


def _check_args(args: argparse.Namespace) -> None:
    """Refuse options out of range before any work."""
    if args.batch_sizes is not None and any(b < 1 for b in args.batch_sizes):
        raise ValueError("--batch-sizes must all be >= 1")
    if args.rounds < 1:
        raise ValueError(f"--rounds must be >= 1, got {args.rounds}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda requested but no CUDA GPU is available here")


def _bench_one(d: str, args: argparse.Namespace, tuned: bool) -> tuple[str, dict[str, Any]]:
    """Measure one device; return its entry's key and the entry."""
    from cryo_companion.runs.results import device_name, provenance
    from cryo_companion.runs.runtime import setup

    dev = torch.device(d)
    # on the CPU the reference is interleaved with the simulator, batch by batch, so that a
    # slow or busy spell of the machine slows both
    use_ref = d == "cpu"
    bs = args.batch_sizes or (CUDA_BATCHES if d == "cuda" else CPU_BATCHES)
    with (NumpyReference(args.box) if use_ref else contextlib.nullcontext()) as reference:
        rounds, stages = bench_device(dev, bs, args.box, args.min_time,
                                      compile=not args.no_compile,
                                      need_clean=not args.no_clean, rounds=args.rounds,
                                      reference=reference)
    summary = summarise(rounds)
    # one entry per device and output set (noisy + clean + mask, or noisy + mask)
    key = d if not args.no_clean else f"{d}-no-clean"
    entry = {"device_name": device_name(dev), "box": args.box,
             "compile": not args.no_compile, "need_clean": not args.no_clean,
             "malloc_tuning": tuned if d == "cpu" else None,
             "threads": torch.get_num_threads() if d == "cpu" else None,
             **summary, "stages_ms_per_subtomogram": stages,
             **{k: v for k, v in provenance(setup(
                 "smoke", d, 0, chapter="bench", paper_needs_gpu=False)).items()
                if k in ("commit", "dirty")}}
    if "speedup_vs_numpy_reference" in summary:
        lo, hi = summary["speedup_range"]
        print(f"cpu numpy reference subtomograms/s: "
              f"{summary['numpy_reference_subtomograms_per_s']:.1f} (interleaved; median of "
              f"{summary['rounds']} rounds); torch at batch {summary['best_batch']} is "
              f"{summary['speedup_vs_numpy_reference']:.1f}x "
              f"(median; range {lo:.1f}-{hi:.1f}x)")
    return key, entry


def main(args: argparse.Namespace) -> int:
    """Run the benchmark with parsed options.

    Parameters
    ----------
    args : argparse.Namespace
        The options of :func:`add_args`.

    Returns
    -------
    int
        0 on success.

    Raises
    ------
    ValueError
        For a batch size < 1 or fewer than one round.
    RuntimeError
        For ``--device cuda`` without a GPU, or a reference process that does not start.
    """
    from cryo_companion._io import write_json
    from cryo_companion.runs.results import load_result, provenance, results_dir
    from cryo_companion.runs.runtime import setup, tune_cpu_allocator

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    _check_args(args)
    if args.no_malloc_tuning:  # also for the setup() calls below, which tune on the CPU
        os.environ["CRYO_COMPANION_MALLOC_TUNING"] = "0"
    tuned = "cpu" in (args.device, "all") and tune_cpu_allocator()
    devices = ["cpu"] if args.device == "cpu" else ["cuda"] if args.device == "cuda" else (
        ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    results = dict(_bench_one(d, args, tuned) for d in devices)
    for key, val in results.items():
        print(f"{key.split('-')[0]} best subtomograms/s: {val['best_subtomograms_per_s']}")
    if args.json or args.save:
        run = setup("paper", devices[-1], 0, chapter="bench_simulate", paper_needs_gpu=False)
        if args.save:
            old = (load_result("bench_simulate") or {}).get("data", {})
            data = {**old, **results}
            path = results_dir("paper") / "bench_simulate.json"
        else:
            data, path = results, args.json
        write_json(path, {"name": "bench_simulate", "data": data,
                          "provenance": provenance(run, seeds=[0],
                                                   note="CPU figures are noisy when the "
                                                        "machine is shared")})
        print(f"wrote {path}")
    return 0
