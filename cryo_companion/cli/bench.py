"""Benchmark: `cryo-companion bench simulate` measures subtomograms/s of the simulator.

Runs the full randomized pipeline of cryo_companion.simulate.subtomogram (rotation + shift, noise,
CTF, MTF, wedge, band limit, intensity augmentation) at 40^3 voxels on four synthetic templates
(speed does not depend on their content) for several batch sizes, on the CPU and, when present,
CUDA. Prints one line per batch size and ends with one line per device:
`<device> best subtomograms/s: <number>`. --json PATH writes the figures with provenance;
--save writes results/bench_simulate.json (merging the devices measured so far).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

COMMAND = "bench"
CPU_BATCHES = (32, 128, 512)
CUDA_BATCHES = (32, 256, 1024, 4096, 8192)


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", choices=["simulate"], help="what to benchmark")
    p.add_argument("--device", default="all", choices=["cpu", "cuda", "all"],
                   help="device(s) to measure (default all available)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=None,
                   help=f"batch sizes (default CPU {CPU_BATCHES}, CUDA {CUDA_BATCHES})")
    p.add_argument("--box", type=int, default=40, help="box edge in voxels (default 40)")
    p.add_argument("--min-time", type=float, default=1.0,
                   help="seconds of timed runs per batch size (default 1)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default torch's)")
    p.add_argument("--no-compile", action="store_true",
                   help="rotate with grid_sample instead of the torch.compile-fused gather")
    p.add_argument("--no-malloc-tuning", action="store_true",
                   help="leave glibc's allocator as it is (see tune_cpu_allocator)")
    p.add_argument("--no-clean", action="store_true",
                   help="simulate noisy + mask only (need_clean=False, as the trainer does)")
    p.add_argument("--json", type=Path, default=None, help="write the figures to this JSON file")
    p.add_argument("--save", action="store_true", help="write results/bench_simulate.json")


def tune_cpu_allocator() -> bool:
    """Keep large freed blocks in the process heap (glibc ``mallopt``); True if applied.

    By default glibc returns every freed block above a few MB to the kernel, so each batch's
    fresh ``(B, 40, 40, 40)`` tensors page-fault their memory back in, which costs as much as the
    arithmetic on them. Raising ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` to 1 GiB keeps the
    blocks for reuse (the effect of the jemalloc/tcmalloc advice of PyTorch's CPU tuning guide,
    without preloading a library). Process-wide; a no-op off glibc.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)) and bool(
            libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))
    except (OSError, AttributeError):
        return False


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
                 preset: str = "randomized", *, compile: bool = True,
                 need_clean: bool = True) -> dict[int, float]:
    """Subtomograms/s of ``Simulator.sample`` per batch size on ``device``."""
    from cryo_companion.simulate.subtomogram import Simulator

    sim = Simulator(synthetic_templates(box), torch.arange(4), 13.68, device, compile=compile)
    gen = torch.Generator(device=device).manual_seed(0)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    sim.sample(2, preset, gen, need_clean=need_clean)  # compilation (if any), first allocations
    sync()
    print(f"{device.type} first batch (compilation {'on' if sim._bank.compile else 'off'}): "
          f"{time.perf_counter() - t0:.1f} s", flush=True)
    rates = {}
    for bs in batch_sizes:
        try:
            sim.sample(bs, preset, gen, need_clean=need_clean)  # warm-up (cuFFT plans)
            sync()
            reps, t0 = 0, time.perf_counter()
            while True:
                sim.sample(bs, preset, gen, need_clean=need_clean)
                reps += 1
                sync()
                dt = time.perf_counter() - t0
                if dt >= min_time and reps >= 3:
                    break
        except torch.cuda.OutOfMemoryError:
            print(f"{device.type} batch {bs}: out of memory, skipped")
            torch.cuda.empty_cache()
            continue
        rates[bs] = reps * bs / dt
        print(f"{device.type} batch {bs:6d}: {rates[bs]:12.1f} subtomograms/s "
              f"({1e3 * dt / reps:8.2f} ms per batch)", flush=True)
    return rates


def numpy_reference_rate(n: int = 150, box: int = 40) -> float | None:
    """Subtomograms/s of the per-sample NumPy/SciPy reference (``scripts/``), or None if the
    script is not there (an installed package without the repository)."""
    import re
    import subprocess
    import sys

    from cryo_companion.results import repo_root

    script = repo_root() / "scripts" / "bench_simulate_numpy_reference.py"
    if not script.exists():
        return None
    out = subprocess.run([sys.executable, str(script), "--n", str(n), "--box", str(box)],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"subtomograms/s: ([0-9.]+)", out)
    return float(m.group(1)) if m else None


def main(args: argparse.Namespace) -> int:
    from cryo_companion._io import write_json
    from cryo_companion.results import device_name, load_result, provenance, results_dir
    from cryo_companion.runtime import setup

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.batch_sizes is not None and any(b < 1 for b in args.batch_sizes):
        raise ValueError("--batch-sizes must all be >= 1")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda requested but no CUDA GPU is available here")
    tuned = "cpu" in (args.device, "all") and not args.no_malloc_tuning and tune_cpu_allocator()
    devices = ["cpu"] if args.device == "cpu" else ["cuda"] if args.device == "cuda" else (
        ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    results = {}
    for d in devices:
        dev = torch.device(d)
        # the reference runs back-to-back with the CPU measurement, in the same conditions
        ref = numpy_reference_rate(box=args.box) if d == "cpu" else None
        bs = args.batch_sizes or (CUDA_BATCHES if d == "cuda" else CPU_BATCHES)
        rates = bench_device(dev, bs, args.box, args.min_time, compile=not args.no_compile,
                             need_clean=not args.no_clean)
        results[d] = {"device_name": device_name(dev), "box": args.box,
                      "compile": not args.no_compile, "need_clean": not args.no_clean,
                      "malloc_tuning": tuned if d == "cpu" else None,
                      "threads": torch.get_num_threads() if d == "cpu" else None,
                      "subtomograms_per_s": {str(k): round(v, 1) for k, v in rates.items()},
                      "best_subtomograms_per_s": round(max(rates.values()), 1) if rates else None,
                      "commit": provenance(setup("smoke", d, 0, chapter="bench",
                                                 paper_needs_gpu=False))["commit"]}
        if ref is not None:
            best = results[d]["best_subtomograms_per_s"]
            results[d]["numpy_reference_subtomograms_per_s"] = round(ref, 1)
            results[d]["speedup_vs_numpy_reference"] = round(best / ref, 2) if best else None
            print(f"cpu numpy reference subtomograms/s: {ref:.1f} (torch is {best / ref:.1f}x)")
    for d in devices:
        print(f"{d} best subtomograms/s: {results[d]['best_subtomograms_per_s']}")
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
