"""Context randomization's cost: ``cryo-companion bench context`` measures subtomograms/s with it.

The training simulator of the Che et al. 2019 chapter (its template bank at 13.68 Å, 40³, the
context bank of :func:`cryo_companion.papers.che2019.context.context_bank`) simulates batches of
noisy + mask (``need_clean=False``, as the trainer does) under ``"randomized"`` and under
``"randomized"`` with each occupancy range asked for (default 0-10 % and the context arms' 0-25 %).
The presets alternate batch by batch within each round, so a machine whose speed swings slows
them alike; figures are medians over rounds. A stage profile of the widest range follows (the
"context" stage is the packing). Prints one line per round and, per device, the cost:
``<device> context 0-25 %: <rate>/s, <x> times slower than without``. --json PATH writes the
figures with provenance; --save writes results/bench_context.json (one entry per device).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from statistics import median

import torch

from cryo_companion.simulate.randomization import Preset
from cryo_companion.simulate.subtomogram import Simulator


def add_args(p: argparse.ArgumentParser) -> None:
    """Options of ``cryo-companion bench context``."""
    p.add_argument("--device", default="all", choices=["cpu", "cuda", "all"],
                   help="device(s) to measure (default all available)")
    p.add_argument("--batch-size", type=int, default=32, help="batch size (default 32, Table I)")
    p.add_argument("--ranges", type=float, nargs="+", default=[0.10, 0.25], metavar="HI",
                   help="upper ends of the occupancy ranges (0, HI) (default 0.10 0.25)")
    p.add_argument("--min-time", type=float, default=1.0,
                   help="seconds of timed batches per preset and round (default 1)")
    p.add_argument("--rounds", type=int, default=3, help="measurement rounds (default 3)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default torch's)")
    p.add_argument("--compile", action="store_true",
                   help="rotate with the torch.compile-fused gather (simulator and context bank)")
    p.add_argument("--json", type=Path, default=None, help="write the figures to this JSON file")
    p.add_argument("--save", action="store_true", help="write results/bench_context.json")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(sim: Simulator, presets: dict[str, Preset], batch: int, *, rounds: int = 3,
            min_time: float = 1.0, seed: int = 0) -> dict[str, dict[str, object]]:
    """Measure subtomograms/s of ``sim.sample(batch, preset)`` for each preset, interleaved.

    Parameters
    ----------
    sim : Simulator
        The simulator (with a context bank if a preset asks for context).
    presets : dict[str, Preset]
        Name -> preset; in each round every preset runs one batch in turn until each has run
        ``min_time`` seconds (and three batches).
    batch : int
        Batch size.
    rounds : int
        Measurement rounds; the rate reported is the median over rounds.
    min_time : float
        Seconds of timed batches per preset and round.
    seed : int
        Seed of the batches.

    Returns
    -------
    dict
        Per preset: ``subtomograms_per_s`` (median), ``per_round`` rates and, with context, the
        mean occupancy drawn and measured and the mean number of neighbours.
    """
    dev = sim.device
    gen = torch.Generator(device=dev).manual_seed(seed)
    for p in presets.values():  # warm-up: allocations, compilation
        sim.sample(batch, p, gen, need_clean=False)
    _sync(dev)
    rates: dict[str, list[float]] = {k: [] for k in presets}
    occ: dict[str, list[tuple[float, float, float]]] = {k: [] for k in presets}
    for _ in range(rounds):
        spent = dict.fromkeys(presets, 0.0)
        done = dict.fromkeys(presets, 0)
        while min(spent.values()) < min_time or min(done.values()) < 3:
            for k, p in presets.items():
                t0 = time.perf_counter()
                b = sim.sample(batch, p, gen, need_clean=False)
                _sync(dev)
                spent[k] += time.perf_counter() - t0
                done[k] += 1
                if "context_fraction" in b.params:
                    drawn, got, count = (float(b.params[x].float().mean()) for x in (
                        "context_fraction", "context_fraction_measured", "context_count"))
                    occ[k].append((drawn, got, count))
        for k in presets:
            rates[k].append(done[k] * batch / spent[k])
    out: dict[str, dict[str, object]] = {}
    for k in presets:
        entry: dict[str, object] = {"subtomograms_per_s": round(median(rates[k]), 1),
                                    "per_round": [round(r, 1) for r in rates[k]]}
        if occ[k]:
            drawn, got, count = (sum(v) / len(v) for v in zip(*occ[k]))
            entry.update(occupancy_drawn_mean=round(drawn, 4),
                         occupancy_measured_mean=round(got, 4), neighbours_mean=round(count, 1))
        out[k] = entry
    return out


def _simulator(device: torch.device, compile: bool) -> Simulator:
    """Return the che2019 training simulator with its context bank on ``device``."""
    from cryo_companion.papers.che2019.context import context_bank
    from cryo_companion.structures.templates import template_bank

    tb = template_bank("che2019", 13.68, 40, progress=False)
    return Simulator.from_template_bank(tb, 13.68, device, compile=compile,
                                        context=context_bank(tb, device=device, compile=compile))


def main(args: argparse.Namespace) -> int:
    """Run the benchmark with parsed options; 0 on success."""
    from cryo_companion._io import write_json
    from cryo_companion.bench.simulate import stage_profile
    from cryo_companion.papers.che2019.presets import get_preset
    from cryo_companion.runs.results import device_name, provenance, results_dir
    from cryo_companion.runs.runtime import setup

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.batch_size < 1 or args.rounds < 1:
        raise ValueError("--batch-size and --rounds must be >= 1")
    if any(not 0 < hi <= 0.5 for hi in args.ranges):
        raise ValueError(f"--ranges must lie in (0, 0.5], got {args.ranges}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda requested but no CUDA GPU is available here")
    devices = ["cpu", "cuda"] if args.device == "all" and torch.cuda.is_available() else (
        ["cpu"] if args.device == "all" else [args.device])
    base = get_preset("randomized")
    presets = {"no context": base, **{f"context 0-{hi:.0%}": base.replace(
        name=f"randomized+context 0-{hi:.0%}", context_fraction=(0.0, hi)) for hi in args.ranges}}
    results: dict[str, object] = {}
    for d in devices:
        dev = torch.device(d)
        sim = _simulator(dev, args.compile)
        figures = measure(sim, presets, args.batch_size, rounds=args.rounds,
                          min_time=args.min_time)
        widest = list(presets)[-1]
        stages = stage_profile(sim, args.batch_size, presets[widest],
                               torch.Generator(device=dev).manual_seed(1), need_clean=False)
        # measure's rows are JSON records (values typed object); this entry is a float
        plain = float(figures["no context"]["subtomograms_per_s"])  # type: ignore[arg-type]
        for k, v in figures.items():
            rate = float(v["subtomograms_per_s"])  # type: ignore[arg-type]
            v["slowdown"] = round(plain / rate, 2)
            print(f"{d} {k}: {rate:.1f}/s" + ("" if k == "no context" else
                  f", {plain / rate:.1f} times slower than without (occupancy drawn "
                  f"{v['occupancy_drawn_mean']:.3f}, measured {v['occupancy_measured_mean']:.3f},"
                  f" {v['neighbours_mean']:.0f} neighbours)"), flush=True)
        print(f"{d} stages with {widest} (ms per subtomogram): " + ", ".join(
            f"{k} {v:.2f}" for k, v in stages.items()), flush=True)
        results[d] = {"device_name": device_name(dev), "batch": args.batch_size,
                      "compile": args.compile, "rounds": args.rounds,
                      "threads": torch.get_num_threads() if d == "cpu" else None,
                      "presets": figures, "stages_ms_per_subtomogram": stages}
    if args.json or args.save:
        run = setup("paper", devices[-1], 0, chapter="bench_context", paper_needs_gpu=False)
        path = results_dir("paper") / "bench_context.json" if args.save else args.json
        write_json(path, {"name": "bench_context", "data": results,
                          "provenance": provenance(run, seeds=[0], note="CPU figures are noisy "
                                                   "when the machine is shared")})
        print(f"wrote {path}")
    return 0
