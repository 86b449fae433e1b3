"""Write the density map of a structure (PDB ID, atomic model or MRC map) as an MRC file.

The structure is found as the package finds it (a path; $CRYO_COMPANION_STRUCTURES; the cache;
a download from the PDB), turned into a density the PDB2VOL way (mass-weighted Gaussians,
sigma = resolution / 2) or resampled from a map (mass conserved), centred on its centre of mass
and padded or cropped to the box. The MRC header carries the voxel size.

An existing output is replaced only with --force.

example: cryo-companion density 4v94 --voxel-size 13.68 --box 40 --resolution 13.68 -o tric.mrc
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryo_companion._io import OutputPlan

COMMAND = "density"


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryo-companion density``."""
    parser.add_argument("structure", metavar="ID_OR_PATH",
                        help="PDB ID or name (4v94, 4v4r_50S, mb_5gjv) or a .pdb/.cif/.mrc file "
                             "(plain or .gz)")
    parser.add_argument("--voxel-size", type=float, required=True, metavar="ANGSTROM",
                        help="voxel edge of the output in Å (e.g. 13.68, 10)")
    parser.add_argument("--box", type=int, required=True, metavar="N",
                        help="output edge in voxels (e.g. 40)")
    parser.add_argument("--resolution", type=float, default=None, metavar="ANGSTROM",
                        help="resolution in Å, Gaussian sigma = resolution / 2 "
                             "(default: twice the voxel size)")
    parser.add_argument("-o", "--output", required=True, type=Path, metavar="OUT.mrc",
                        help="output MRC file (written atomically)")
    parser.add_argument("--source", choices=("auto", "atoms", "map"), default="auto",
                        help="use the atomic model or the map (default auto: the model if "
                             "there is one)")
    parser.add_argument("--grow-box", action="store_true",
                        help="enlarge the box when the molecule does not fit (default: error)")
    parser.add_argument("--no-cache", action="store_true",
                        help="neither read nor write the cache of computed volumes")


def outputs(args: argparse.Namespace) -> OutputPlan:
    """Return what ``density`` writes and reads, checked before any work."""
    from cryo_companion._io import OutputPlan

    src = Path(args.structure)
    return OutputPlan(files=[args.output], inputs=[src] if src.is_file() else [])


def main(args: argparse.Namespace) -> int:
    """Validate, compute the density, write the MRC; returns 0 (errors raise)."""
    import numpy as np

    from cryo_companion.cli._common import cli_box_advice
    from cryo_companion.mrc import write_mrc
    from cryo_companion.structures.density import BoxTooSmallError, load_density

    if not (math.isfinite(args.voxel_size) and args.voxel_size > 0):
        raise ValueError(f"--voxel-size {args.voxel_size} must be a positive number of Å")
    if args.box < 4:
        raise ValueError(f"--box {args.box} must be an integer >= 4 voxels")
    if args.resolution is not None and not (math.isfinite(args.resolution)
                                            and args.resolution > 0):
        raise ValueError(f"--resolution {args.resolution} must be a positive number of Å")
    out = Path(args.output)
    if out.suffix.lower() not in (".mrc", ".map", ".rec"):
        raise ValueError(f"output {out} must end in .mrc (or .map, .rec)")
    try:
        vol = load_density(args.structure, args.voxel_size, args.box, args.resolution,
                           source=args.source, grow_box=args.grow_box,
                           use_cache=not args.no_cache)
    except BoxTooSmallError as exc:
        raise ValueError(cli_box_advice(exc, "pass a larger --box, or --grow-box")) from None
    vol = np.asarray(vol, dtype=np.float32)
    write_mrc(out, vol, args.voxel_size)
    mass_kda = float(vol.astype(np.float64).sum()) * args.voxel_size**3 / 1000.0
    grown = "" if vol.shape[0] == args.box else f" (box grown from {args.box})"
    print(f"wrote {out}: {vol.shape[0]}^3 voxels{grown} at {args.voxel_size:g} Å, "
          f"mass {mass_kda:.1f} kDa")
    return 0
