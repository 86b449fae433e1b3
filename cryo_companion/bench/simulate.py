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
from pathlib import Path

import torch

from cryo_companion.papers.che2019.presets import get_preset
from cryo_companion.simulate.randomization import Preset

CPU_BATCHES = (32, 64, 128)
CUDA_BATCHES = (32, 256, 1024, 4096, 8192)


def add_args(p: argparse.ArgumentParser) -> None:
    """Options of ``cryo-companion bench simulate``."""
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
    """``k`` blob templates ``(k, box, box, box)`` (a few Gaussian blobs each)."""
    g = torch.Generator().manual_seed(0)
    c = (box - 1) / 2
    z, y, x = torch.meshgrid(*[torch.arange(box, dtype=torch.float32) - c] * 3, indexing="ij")
    out = torch.zeros(k, box, box, box)
    for i in range(k):
        for _ in range(3):
            p = (torch.rand(3, generator=g) - 0.5) * box / 3
            s = 1 + 3 * torch.rand(1, generator=g).item()
            out[i] += torch.exp(-((z - p[0]) ** 2 + (y - p[1]) ** 2 + (x - p[2]) ** 2) / (2 * s * s))
    return out


def bench_device(device: torch.device, batch_sizes, box: int = 40, min_time: float = 1.0,
                 preset: str | Preset = "randomized", *, compile: bool = True, need_clean: bool = True,
                 rounds: int = 1, reference=None) -> tuple[list[dict], dict[str, float]]:
    """Subtomograms/s of ``Simulator.sample`` per batch size on ``device``, ``rounds`` times.

    ``reference`` (optional) is ``run(n) -> seconds`` of the NumPy reference: it is then
    interleaved with the simulator, one short reference chunk before every batch, so that both
    see the same spells of a shared machine (whose speed swings within seconds);
    each (round, batch size) records both rates. Returns one ``{"rates": {batch: subtomograms/s},
    "reference": {batch: subtomograms/s}}`` per round (``reference`` empty without one), and the
    :func:`stage_profile` at the best batch size ({} if none ran).
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
    out, skip = [], set()
    for r in range(rounds):
        rates, refs = {}, {}
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


def stage_profile(sim, batch: int, preset: str | Preset, generator: torch.Generator, *,
                  need_clean: bool = True, reps: int = 5) -> dict[str, float]:
    """Milliseconds per subtomogram in each stage of ``sim.sample`` (see
    :data:`cryo_companion.simulate.subtomogram.TIMED_STAGES`), mean over ``reps`` calls of
    ``batch``.

    The device is synchronised at every stage boundary, so the stages add up to the whole call
    (on CUDA that removes the overlap of launches with work: the sum exceeds the pipelined rate).
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


def summarise(rounds: list[dict]) -> dict:
    """Medians over rounds: per batch size, the best batch size, and the speedup.

    The speedup of a round is the simulator's rate at the best batch size (by median) divided by
    the reference rate interleaved with it; its median and range describe the machine's noise.
    """
    from statistics import median

    batches = sorted({b for r in rounds for b in r["rates"]})
    per_batch = {b: median(r["rates"][b] for r in rounds if b in r["rates"]) for b in batches}
    best_b = max(per_batch, key=per_batch.get) if per_batch else None
    out = {"rounds": len(rounds),
           "subtomograms_per_s": {str(b): round(v, 1) for b, v in per_batch.items()},
           "best_batch": best_b,
           "best_subtomograms_per_s": round(per_batch[best_b], 1) if best_b else None}
    paired = [r for r in rounds if best_b in r["reference"] and best_b in r["rates"]]
    if paired:
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
    """The NumPy reference script in its own process (``--serve``): ``ref(n)`` simulates ``n``
    subtomograms there and returns the seconds it took.

    Its own process, with the default allocator, is how a plain script runs; this process's
    allocator tuning (:func:`cryo_companion.runs.runtime.tune_cpu_allocator`) does not reach it.
    """

    def __init__(self, box: int = 40) -> None:
        import subprocess
        import sys

        self._proc = subprocess.Popen([sys.executable, "-m", "cryo_companion.bench.numpy_reference",
                                       "--serve", "--box", str(box)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self._proc.stdout.readline().strip() != "ready":
            self.close()
            raise RuntimeError("the NumPy reference process did not start")

    def __call__(self, n: int) -> float:
        self._proc.stdin.write(f"{int(n)}\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("the NumPy reference process ended unexpectedly")
        return float(line)

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()
            self._proc.wait(timeout=30)

    def __enter__(self) -> NumpyReference:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def main(args: argparse.Namespace) -> int:
    """Run the benchmark with parsed options; 0 on success."""
    from cryo_companion._io import write_json
    from cryo_companion.runs.results import device_name, load_result, provenance, results_dir
    from cryo_companion.runs.runtime import setup, tune_cpu_allocator

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.batch_sizes is not None and any(b < 1 for b in args.batch_sizes):
        raise ValueError("--batch-sizes must all be >= 1")
    if args.rounds < 1:
        raise ValueError(f"--rounds must be >= 1, got {args.rounds}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda requested but no CUDA GPU is available here")
    if args.no_malloc_tuning:  # also for the setup() calls below, which tune on the CPU
        os.environ["CRYO_COMPANION_MALLOC_TUNING"] = "0"
    tuned = "cpu" in (args.device, "all") and tune_cpu_allocator()
    devices = ["cpu"] if args.device == "cpu" else ["cuda"] if args.device == "cuda" else (
        ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    results = {}
    for d in devices:
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
        results[key] = {"device_name": device_name(dev), "box": args.box,
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
