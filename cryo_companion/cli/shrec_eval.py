"""Score a particle list with the SHREC 2020 metrics (localisation Table 3, classification Table 4).

Conventions: lists are `class x y z [...]` (class = PDB ID or Table 1 name), CSV with a header
(`id,class,x_vox,y_vox,z_vox,...` as `cryo-companion tomogram` writes) or STAR, in 0-based voxel
indices (use --pred-origin/--truth-origin 1 for 1-based files); maps are MRC volumes indexed
[z, y, x]; occupancy label i is the i-th particle of the truth list (0 = background). Classes
outside SHREC 2020's Table 1 (a simulated tomogram's membranes, say) may appear in the truth
list and are scored in extra columns; a prediction may use them too. By default a detection
outside the volume counts only as RO and the occupancy regions are used as given;
--benchmark-script reproduces the official evaluation script number for number (the mask in
slices 156-355 of a 512-slice volume, truth z + 156 and the script's auto-shift of
submissions in the mask's 0-199 frame, clamping, one dilation before the padding). The tables
go to standard output, notes to standard error.

example: cryo-companion shrec-eval --pred picks.star --truth-list tomo/particles.csv
         --occupancy tomo/occupancy.mrc --json scores.json
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cryo_companion._io import OutputPlan, write_json
from cryo_companion.mrc import read_mrc
from cryo_companion.papers.shrec2020.metrics import BENCHMARK_SCRIPT, evaluate
from cryo_companion.papers.shrec2020.particles import read_particle_list
from cryo_companion.papers.shrec2020.report import format_evaluation

COMMAND = "shrec-eval"


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryo-companion shrec-eval``."""
    parser.add_argument("--pred", required=True, type=Path,
                        help="predicted particle list (text/CSV `class x y z ...` or STAR)")
    parser.add_argument("--truth-list", required=True, type=Path,
                        help="ground-truth particle list (line i = occupancy label i)")
    parser.add_argument("--occupancy", required=True, type=Path,
                        help="occupancy map MRC (voxel -> particle index, 0 background)")
    parser.add_argument("--class-mask", type=Path, default=None,
                        help="class mask MRC, checked against the occupancy map and truth list")
    parser.add_argument("--json", type=Path, default=None,
                        help="write all results to this JSON file (atomically; default: none)")
    parser.add_argument("--pred-origin", type=int, choices=(0, 1), default=0,
                        help="0 (default) if --pred coordinates are 0-based voxels, 1 if 1-based")
    parser.add_argument("--truth-origin", type=int, choices=(0, 1), default=0,
                        help="0 (default) if --truth-list coordinates are 0-based, 1 if 1-based")
    parser.add_argument("--star-class-column", default=None,
                        help="STAR column holding the class (default: _shrecClass, "
                             "_rlnClassName)")
    parser.add_argument("--outside", choices=("exclude", "clip", "script"), default="exclude",
                        help="detections outside the volume: only RO (exclude, default), "
                             "clamped into the map and looked up (clip), or the benchmark "
                             "script's 512-slice frame (script)")
    parser.add_argument("--dilate", action="store_true",
                        help="dilate the occupancy map once before lookup (benchmark script)")
    parser.add_argument("--benchmark-script", action="store_true",
                        help="the benchmark script's settings: --outside script --dilate")
    parser.add_argument("--hits-only", action="store_true",
                        help="per-class F1 over hit particles only (default: particles not "
                             "found count as false negatives of their class, as the script)")


def outputs(args: argparse.Namespace) -> OutputPlan:
    """Return what ``shrec-eval`` reads and writes, checked before any work."""
    return OutputPlan(files=[args.json],
                      inputs=[args.pred, args.truth_list, args.occupancy, args.class_mask])


def main(args: argparse.Namespace) -> int:
    """Read the inputs, evaluate, print the Table 3/4 rows, write JSON."""
    outside, dilate = args.outside, args.dilate
    if args.benchmark_script:
        outside, dilate = BENCHMARK_SCRIPT["outside"], BENCHMARK_SCRIPT["dilate"]
    truth = read_particle_list(args.truth_list, origin=args.truth_origin,
                               class_column=args.star_class_column, any_class=True)
    pred = read_particle_list(args.pred, origin=args.pred_origin,
                              class_column=args.star_class_column,
                              extra_classes=set(truth.classes))
    occ = read_mrc(args.occupancy).data
    mask = read_mrc(args.class_mask).data if args.class_mask is not None else None
    ev = evaluate(pred, truth, occ, class_mask=mask, outside=outside, dilate=dilate,
                  count_missed_as_fn=not args.hits_only)
    print(format_evaluation(ev, name=args.pred.name))
    if ev.localisation.RO:
        print(f"cryo-companion shrec-eval: note: {ev.localisation.RO} detections lie outside "
              f"the occupancy map (z, y, x) = {tuple(occ.shape)}; check --pred-origin and the "
              "axis order", file=sys.stderr)
    if args.json is not None:
        inputs = {"pred": str(args.pred), "truth_list": str(args.truth_list),
                  "occupancy": str(args.occupancy),
                  "class_mask": str(args.class_mask) if args.class_mask else None,
                  "pred_origin": args.pred_origin, "truth_origin": args.truth_origin}
        write_json(args.json, {"inputs": inputs, **ev.to_dict()})
        print(f"cryo-companion shrec-eval: wrote {args.json}", file=sys.stderr)
    return 0
