r"""Find and classify the SHREC 2020 complexes in a tomogram (template matching or a network).

METHOD is tm-t or tm-f (template matching of SHREC 2020, Sec. 3.7: no training; the twelve
complexes' templates are made at the tomogram's voxel size) or deepfinder, yopo or umc (a
network trained on the SHREC 2020 data set: pass its weights with --weights; the tomogram must
have the voxel size it was trained at, 10 A for the benchmark). The tomogram is an MRC volume
(z, y, x) with physical contrast (mass dark, as reconstructed). Writes PREFIX.txt (`class x y z`
per line, the benchmark's format), PREFIX.csv, PREFIX.star (starfile) and PREFIX.json (the
settings, timings and counts); coordinates are 0-based voxels of the whole tomogram, also with
--z-range. The detections per class go to standard output, messages to standard error.
On the benchmark's reconstructions search the specimen's slices, --z-range 156 355: the
official evaluation moves a whole list by 156 slices when any detection lies outside them.
Score a list on the benchmark's test model with
  cryo-companion shrec-eval --pred PREFIX.txt --truth-list DIR/model_9/particle_locations.txt \\
      --occupancy DIR/model_9/occupancy_mask.mrc --benchmark-script

example: cryo-companion detect tm-f model_9/reconstruction.mrc --out picks/tmf --z-range 156 355
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryo_companion.cli._common import finite_float, int_at_least, positive_float

if TYPE_CHECKING:
    import torch

    from cryo_companion._io import OutputPlan

COMMAND = "detect"
METHODS = ("tm-t", "tm-f", "deepfinder", "yopo", "umc")
#: MRC headers that do not set the voxel size read as 1 Å.
_UNSET_VOXEL_A = 1.0


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryo-companion detect``."""
    parser.add_argument("method", choices=METHODS, help="tm-t, tm-f, deepfinder, yopo or umc")
    parser.add_argument("tomogram", type=Path, help="the tomogram, an MRC volume (z, y, x)")
    parser.add_argument("--out", required=True, type=Path,
                        help="prefix of the outputs PREFIX.txt, .csv, .star and .json")
    parser.add_argument("--weights", type=Path, default=None,
                        help="trained network (deepfinder, yopo, umc): a detector file")
    parser.add_argument("--voxel-size", type=positive_float, default=None,
                        help="voxel size in A, when the header's is wrong or unset")
    parser.add_argument("--z-range", type=int, nargs=2, default=None, metavar=("FIRST", "LAST"),
                        help="search only these slices (inclusive), e.g. 156 355 for the "
                             "benchmark's specimen")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--batch-size", type=int_at_least(1), default=4,
                        help="rotations (template matching) or tiles (networks) per batch")
    tm = parser.add_argument_group("template matching (tm-t, tm-f)")
    tm.add_argument("--classes", nargs="+", default=None,
                    help="PDB IDs or names of Table 1 to search (default: all twelve)")
    tm.add_argument("--angular-step", type=positive_float, default=None,
                    help="angular step in degrees (default: each complex's Crowther step)")
    tm.add_argument("--max-rotations", type=int_at_least(1), default=None,
                    help="at most this many rotations per class (coarsens the step)")
    tm.add_argument("--template-bfactor", type=finite_float, default=0.0,
                    help="B-factor (A^2) of an envelope on the templates besides the CTF (0: the "
                         "paper's plain CTF; the data set's decay is 10000 at 10 A)")
    tm.add_argument("--candidates", type=int_at_least(1), default=2000,
                    help="peaks kept per class")
    tm.add_argument("--n-per-class", type=int_at_least(1), default=217,
                    help="particles selected per class")


def _out_files(prefix: Path) -> list[Path]:
    return [prefix.with_name(prefix.name + s) for s in (".txt", ".csv", ".star", ".json")]


def outputs(args: argparse.Namespace) -> OutputPlan:
    """Return what ``detect`` reads and writes, checked before any work."""
    from cryo_companion._io import OutputPlan

    return OutputPlan(files=_out_files(args.out), inputs=[args.tomogram, args.weights])


def _voxel_size(args: argparse.Namespace, header_A: float, trained_A: float | None) -> float:
    vs = float(args.voxel_size) if args.voxel_size is not None else header_A
    if args.voxel_size is None and abs(vs - _UNSET_VOXEL_A) < 1e-6:
        raise ValueError(f"{args.tomogram}: the header's voxel size is 1 A, the value of an "
                         "unset header; pass the tomogram's voxel size with --voxel-size")
    if trained_A is not None and abs(vs - trained_A) > 0.01 * trained_A:
        raise ValueError(f"{args.tomogram}: voxel size {vs:g} A differs from the {trained_A:g} A "
                         f"the network was trained at; resample the tomogram to {trained_A:g} "
                         "A per voxel (or pass --voxel-size if the header is wrong)")
    return vs


def _check(args: argparse.Namespace) -> None:
    if args.method in ("deepfinder", "yopo", "umc") and args.weights is None:
        raise ValueError(f"{args.method} is a trained network: pass its weights with --weights "
                         "(template matching, tm-t or tm-f, needs none)")
    if args.method in ("tm-t", "tm-f") and args.weights is not None:
        raise ValueError(f"{args.method} is template matching and takes no --weights")
    tm_only = {"--classes": args.classes, "--angular-step": args.angular_step,
               "--max-rotations": args.max_rotations,
               "--template-bfactor": args.template_bfactor or None}
    given = [k for k, v in tm_only.items() if v is not None]
    if args.method not in ("tm-t", "tm-f") and given:
        raise ValueError(f"{', '.join(given)} apply to template matching (tm-t, tm-f) only; "
                         f"{args.method} finds every class it was trained on")
    if args.z_range is not None and not 0 <= args.z_range[0] <= args.z_range[1]:
        raise ValueError(f"--z-range {args.z_range[0]} {args.z_range[1]}: need 0 <= FIRST <= "
                         "LAST")


def _template_matching(args: argparse.Namespace, volume: torch.Tensor, vs: float
                       ) -> tuple[Any, dict[str, Any]]:
    from cryo_companion.papers.shrec2020 import tm
    from cryo_companion.papers.shrec2020.dataset import recipe, templates_for
    from cryo_companion.papers.shrec2020.metrics import CLASS_ORDER
    from cryo_companion.papers.shrec2020.particles import resolve_class

    classes = (tuple(dict.fromkeys(resolve_class(c) for c in args.classes)) if args.classes
               else CLASS_ORDER)
    s = tm.TMSettings(voxel_size_A=vs, angular_step_deg=args.angular_step,
                      max_rotations=args.max_rotations, n_candidates=args.candidates,
                      bfactor_A2=args.template_bfactor, batch_size=args.batch_size)
    templates = templates_for(recipe("paper", voxel_size_A=vs, classes=classes))
    found = tm.search(volume, templates, s, classes=classes, progress=True)
    lists = tm.tm_lists(found, n_per_class=args.n_per_class)
    return lists["TM-T" if args.method == "tm-t" else "TM-F"], found.record


def _network(args: argparse.Namespace, volume: torch.Tensor, info: dict[str, Any],
             net: torch.nn.Module) -> tuple[Any, dict[str, Any]]:
    from cryo_companion.papers.shrec2020.pipelines import run_detector

    t0 = time.perf_counter()
    det = run_detector(args.method, net, volume, postprocess=info["postprocess"],
                       batch_size=args.batch_size, progress=True)
    return det, {"inference_s": time.perf_counter() - t0, "postprocess": info["postprocess"],
                 "trained": info["meta"], "config": info["config"]}


def main(args: argparse.Namespace) -> int:
    """Check everything, detect, write the lists and the record."""
    import torch

    from cryo_companion import __version__
    from cryo_companion._io import write_json
    from cryo_companion.devices import resolve_device, tune_cpu_allocator
    from cryo_companion.mrc import read_mrc
    from cryo_companion.papers.shrec2020.methods import to_particle_list
    from cryo_companion.papers.shrec2020.particles import write_particle_list

    _check(args)
    device = resolve_device(args.device)
    if device.type == "cpu":
        tune_cpu_allocator()          # FFT-sized arrays are freed and made again per batch
    net, trained = None, None
    info: dict = {}
    if args.weights is not None:
        from cryo_companion.papers.shrec2020.pipelines import load_detector

        method, net, info = load_detector(args.weights, map_location=device)
        if method != args.method:
            raise ValueError(f"{args.weights} holds a {method} network, not {args.method}")
        trained = float(info["voxel_size_A"])
    vol = read_mrc(args.tomogram)
    vs = _voxel_size(args, vol.voxel_size_A, trained)
    first = 0
    data = vol.data
    if args.z_range is not None:
        first, last = args.z_range
        if last >= data.shape[0]:
            raise ValueError(f"--z-range {first} {last}: the tomogram has {data.shape[0]} "
                             "slices (0-based)")
        data = data[first:last + 1]
    volume = torch.from_numpy(data.copy()).to(device)
    t0 = time.perf_counter()
    if net is None:
        det, record = _template_matching(args, volume, vs)
    else:
        det, record = _network(args, volume, info, net)
    wall = time.perf_counter() - t0
    particles = to_particle_list(det, z_offset=first)  # type: ignore[arg-type]
    txt, csv, star, js = _out_files(args.out)
    txt.parent.mkdir(parents=True, exist_ok=True)
    for path, fmt in ((txt, "text"), (csv, "csv"), (star, "star")):
        write_particle_list(path, particles, fmt=fmt)
    counts = {c: particles.classes.count(c) for c in dict.fromkeys(particles.classes)}
    write_json(js, {"method": args.method, "tomogram": str(args.tomogram),
                    "weights": str(args.weights) if args.weights else None,
                    "voxel_size_A": vs, "shape_zyx": list(vol.data.shape),
                    "z_range": list(args.z_range) if args.z_range else None,
                    "coordinates": "x y z, 0-based voxels of the whole tomogram",
                    "n_detections": len(particles), "counts": counts, "wall_time_s": wall,
                    "record": record, "device": str(device), "version": __version__})
    sys.stdout.write("class\tdetections\n" + "".join(f"{c}\t{n}\n" for c, n in counts.items()))
    sys.stdout.flush()
    print(f"cryo-companion detect: {len(particles)} detections ({args.method}, {wall:.1f} s on "
          f"{device}) -> {txt}, {csv.name}, {star.name}, {js.name}", file=sys.stderr)
    return 0
