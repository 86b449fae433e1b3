"""Time template matching per rotation on a tomogram of the benchmark's size, and project a search.

One locally normalised FFT correlation per rotation (:func:`cryo_companion.detect.
template_matching.match_template`) on a random ``--shape`` volume (default the SHREC 2020
specimen, 200 x 512 x 512) with a TRiC-sized template (29^3 box), for each ``--batch-size``;
the fastest batch size's time per rotation is then multiplied by the rotations of each complex
at its Crowther step (capped by ``--max-rotations``) to project the twelve classes' search, as
the paper's Table 7 reports it (6 min 12 s per class on a GTX 1080 Ti). The projection assumes
the time per rotation of the 29^3 box for every class (the box is small beside the volume).

``--save`` merges the device's entry (``cpu`` or ``cuda``) into
``results/bench_template_matching.json`` with provenance (what the methods' chapter chooses its
rotation cap from: :func:`cryo_companion.papers.shrec2020.tm.rotation_cap`); ``--json PATH``
writes the figures to PATH.

Usage: ``cryo-companion bench template-matching [--device cuda] [--shape 200 512 512]
[--rotations 64] [--batch-size 4 8 16] [--max-rotations N] [--save]``
"""
from __future__ import annotations

import argparse
import time

from cryo_companion.papers.shrec2020.tm import BENCH_RECORD as RECORD


def add_args(parser: argparse.ArgumentParser) -> None:
    """Options of ``cryo-companion bench template-matching``."""
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--shape", type=int, nargs=3, default=[200, 512, 512],
                        metavar=("Z", "Y", "X"), help="volume shape (default 200 512 512)")
    parser.add_argument("--rotations", type=int, default=64,
                        help="rotations timed per batch size (default 64)")
    parser.add_argument("--batch-size", type=int, nargs="+", default=[4, 8, 16],
                        help="rotations per FFT batch to try (default 4 8 16)")
    parser.add_argument("--max-rotations", type=int, default=None,
                        help="cap of rotations per class in the projection (default: none)")
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    parser.add_argument("--save", action="store_true",
                        help=f"merge this device's entry into results/{RECORD}.json")


def main(args: argparse.Namespace) -> int:
    """Time the correlation and print the projection; 0 on success."""
    import torch

    from cryo_companion._io import write_json
    from cryo_companion.detect import template_matching as tm
    from cryo_companion.devices import resolve_device, tune_cpu_allocator
    from cryo_companion.papers.shrec2020.methods import class_radius_vox
    from cryo_companion.papers.shrec2020.metrics import CLASS_ORDER
    from cryo_companion.papers.shrec2020.tm import TMSettings

    dev = resolve_device(args.device)
    if dev.type == "cpu":
        tune_cpu_allocator()
    if args.rotations < 1 or min(args.batch_size) < 1 or min(args.shape) < 29:
        raise ValueError("--rotations and --batch-size must be >= 1 and --shape at least 29")
    g = torch.Generator().manual_seed(0)
    vol = torch.randn(*args.shape, generator=g).to(dev)
    tpl = torch.randn(29, 29, 29, generator=g)
    mask = tm.spherical_mask(29, 11.0, 1.0)
    R = tm.rotation_set(args.rotations)
    tm.match_template(vol, tpl, mask, R[:2], batch_size=2)            # warm-up (plans, kernels)
    best, best_batch = float("inf"), 0
    by_batch: dict[str, float] = {}
    for b in args.batch_size:
        t0 = time.perf_counter()
        res = tm.match_template(vol, tpl, mask, R, batch_size=b)
        wall = time.perf_counter() - t0
        ms = 1000 * res.time_s / len(R)
        by_batch[str(b)] = round(ms, 4)
        print(f"batch {b:3d}: {ms:8.2f} ms per rotation ({len(R)} rotations in {wall:.2f} s, "
              f"volume {tuple(args.shape)} on {dev})")
        if ms < best:
            best, best_batch = ms, b
    s = TMSettings(max_rotations=args.max_rotations)
    total = 0.0
    per_class: dict[str, dict[str, float]] = {}
    print("projection per class (Crowther step at the first CTF zero, radius of the Table 1 "
          "volume as the template's):")
    for c in CLASS_ORDER:
        step = tm.crowther_step_deg(2 * class_radius_vox(c), s.resolution_vox())
        n = tm.n_rotations_for_step(step)
        if args.max_rotations is not None:
            n = min(n, args.max_rotations)
        sec = n * best / 1000
        total += sec
        per_class[c] = {"rotations": n, "step_deg": round(step, 3), "s": round(sec, 2)}
        print(f"  {c}: {n:6d} rotations, {sec:8.1f} s")
    print(f"twelve classes: {total:.0f} s ({total / 60:.1f} min) at {best:.2f} ms per rotation")
    if args.save or args.json:
        from cryo_companion.runs.results import device_name, load_result, provenance, results_dir
        from cryo_companion.runs.runtime import setup

        run = setup("paper", str(dev), 0, chapter=RECORD, paper_needs_gpu=False)
        prov = provenance(run, seeds=[0])
        entry = {"device_name": device_name(dev), "commit": prov["commit"],
                 "dirty": prov["dirty"], "shape": list(args.shape),
                 "rotations_timed": len(R), "template_box": 29,
                 "ms_per_rotation": by_batch,
                 "best": {"batch_size": best_batch, "ms_per_rotation": round(best, 4)},
                 "projection": {"max_rotations": args.max_rotations, "per_class": per_class,
                                "total_s": round(total, 1)}}
        old = (load_result(RECORD) or {}).get("data") if args.save else None
        path = results_dir("paper") / f"{RECORD}.json" if args.save else args.json
        write_json(path, {"name": RECORD, "data": {**(old or {}), dev.type: entry},
                          "provenance": prov})
        print(f"wrote {path}")
    return 0
