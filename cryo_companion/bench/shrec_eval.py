"""Time the SHREC 2020 evaluation on a benchmark-sized scene (target: under 1 s on a CPU).

A 512 x 512 x 512 int32 occupancy map with 2782 particles (cubes of 12 voxels on a random subset
of a 32^3 grid of 16-voxel cells, the test tomogram's particle count, Table 2) is evaluated
against 3000 detections (most near a particle centre, some on background, a few outside).
Building the scene is not timed; ``evaluate`` (validation, lookups, counters, classification) is,
best of ``--repeat`` runs. Clamping with one dilation (``--outside clip --dilate``, the costly
steps of the benchmark script's rules) is timed too, for reference: the dilation of the whole map
dominates there.

Usage: ``cryo-companion bench shrec-eval [--size 512] [--detections 3000] [--repeat 3]``
"""
from __future__ import annotations

import argparse
import time

from cryo_companion.papers.shrec2020.metrics import Outside, evaluate
from cryo_companion.papers.shrec2020.worked_example import grid_scene

#: The timed settings: label, ``outside`` rule, dilation, and whether it is the default
#: (timed ``--repeat`` times; the other once).
_SETTINGS: tuple[tuple[str, Outside, bool, bool], ...] = (
    ("default (outside=exclude, no dilation)", "exclude", False, True),
    ("clamp + dilation (outside=clip, dilate)", "clip", True, False),
)


def add_args(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``cryo-companion bench shrec-eval``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    """
    parser.add_argument("--size", type=int, default=512, help="edge of the cubic map (default 512)")
    parser.add_argument("--particles", type=int, default=2782, help="particles (default 2782)")
    parser.add_argument("--detections", type=int, default=3000, help="detections (default 3000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs, best kept (default 3)")


def main(args: argparse.Namespace) -> int:
    """Time the evaluation.

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
        If the particles do not fit in the scene's cells.
    """
    t0 = time.perf_counter()
    occ, truth, pred = grid_scene(args.size, args.particles, args.detections)
    print(f"scene: occupancy {occ.shape} {occ.dtype}, {len(truth)} particles, {len(pred)} "
          f"detections (built in {time.perf_counter() - t0:.1f} s, not timed)")
    for label, outside, dilate, default in _SETTINGS:
        times = []
        for _ in range(args.repeat if default else 1):
            t = time.perf_counter()
            ev = evaluate(pred, truth, occ, outside=outside, dilate=dilate)
            times.append(time.perf_counter() - t)
        loc = ev.localisation
        print(f"{label}: {min(times):.3f} s  (TP {loc.TP}, FP {loc.FP}, MH {loc.MH}, "
              f"RO {loc.RO}, F1 {loc.f1:.3f})")
    return 0
