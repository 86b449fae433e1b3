"""Simulate one crowded tomogram: scene, tilt series, WBP reconstruction and ground truth.

Writes to DIR (new or empty; with --force it may hold an earlier output of this command, which
is replaced): tomogram.mrc (WBP at --voxel-size, mass dark as in a raw reconstruction),
tiltseries.mrc (MRC image stack, one image per tilt) with tiltseries.tlt and tiltseries.rawtlt
(the tilt angles in degrees, one per line, IMOD's format), class_mask.mrc (0 = background,
k+1 = class k of meta.json's class_names) and occupancy.mrc (0 = none, i+1 = particle i) in
integer MRC modes, particles.csv (id,class,x_vox,y_vox,z_vox,phi_deg,theta_deg,psi_deg:
0-based tomogram voxels, ZYZ Euler angles, R = Rz(phi) Ry(theta) Rz(psi) active; row i is
occupancy label i, so `shrec-eval --truth-list particles.csv --occupancy occupancy.mrc` reads
them; a membrane's row is a voxel on it, its sphere in meta.json), particles.star (the same
centres and classes for RELION-style tools) and meta.json.
All inputs and DIR are checked before any work; the files appear together at the end.

example: cryo-companion tomogram --out tomo --shape 64 128 128 --particles 40 --device cpu
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from cryo_companion.cli._common import finite_float, int_at_least, positive_float

if TYPE_CHECKING:
    import torch

    from cryo_companion._io import OutputPlan

COMMAND = "tomogram"

#: The files this command writes into its folder.
FILES = ("tomogram.mrc", "tiltseries.mrc", "tiltseries.tlt", "tiltseries.rawtlt",
         "class_mask.mrc", "occupancy.mrc", "particles.csv", "particles.star", "meta.json")
DEFAULT_CLASSES = ["1bxn", "1qvr", "1s3x", "1u6g", "2cg9", "3cf3", "3d2f", "3gl1", "3h84",
                   "3qm1", "4cr2", "4v94"]


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryo-companion tomogram``."""
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder (new or empty; --force replaces an earlier output "
                             "of this command)")
    parser.add_argument("--shape", type=int_at_least(8), nargs=3, default=[100, 256, 256],
                        metavar=("Z", "Y", "X"), help="tomogram size in voxels (z y x), each >= 8")
    parser.add_argument("--voxel-size", type=positive_float, default=10.0, metavar="ANGSTROM",
                        help="tomogram voxel edge in Å")
    parser.add_argument("--oversample", type=int_at_least(1), default=2,
                        help="simulation voxels per tomogram voxel (detector pixel = voxel/this)")
    parser.add_argument("--classes", nargs="+", default=DEFAULT_CLASSES, metavar="ID",
                        help="structure entries to pack (equal numbers of each)")
    parser.add_argument("--particles", type=int_at_least(0), default=300,
                        help="number of complexes")
    parser.add_argument("--vesicles", type=int_at_least(0), default=1,
                        help="number of membrane vesicles (need ice a few membranes thick)")
    parser.add_argument("--sheets", type=int_at_least(0), default=0,
                        help="number of gently curved membrane sheets crossing the ice")
    parser.add_argument("--ice", type=positive_float, default=None, metavar="ANGSTROM",
                        help="ice thickness in Å (default: 90%% of the tomogram height)")
    parser.add_argument("--tilt-range", type=finite_float, nargs=2, default=[-60.0, 60.0],
                        metavar=("MIN", "MAX"), help="tilt range in degrees, inside (-90, 90)")
    parser.add_argument("--tilt-step", type=positive_float, default=2.0,
                        help="tilt step in degrees; must divide the range")
    parser.add_argument("--defocus", type=finite_float, default=-3.0, metavar="UM",
                        help="defocus in µm, negative = underfocus")
    parser.add_argument("--dose", type=positive_float, default=100.0,
                        help="total dose of the series in e/Å²")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same output)")


def previous_output(folder: Path) -> set[str] | None:
    """Return the entries of an earlier ``tomogram`` output in ``folder`` (it has meta.json).

    Parameters
    ----------
    folder : pathlib.Path
        The output folder.

    Returns
    -------
    set[str] or None
        The names the command writes, when ``folder`` holds an earlier output; else None.
    """
    return set(FILES) if (Path(folder) / "meta.json").is_file() else None


def outputs(args: argparse.Namespace) -> OutputPlan:
    """Return the output folder, checked before any work."""
    from cryo_companion._io import OutputPlan

    return OutputPlan(folders=[(args.out, previous_output)])


def _sync(dev: torch.device) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _packing_advice(exc: Exception, ice_A: float, default_ice: bool) -> str:
    """Return the packing error with what to change on the command line."""
    msg = str(exc)
    if "vesicle" in msg and "thin" in msg:
        where = (" (by default 90% of the height --shape Z x --voxel-size)" if default_ice
                 else "")
        return (f"{msg}: the ice is {ice_A:g} Å thick{where}; pass --vesicles 0, or make the "
                "tomogram taller (--shape Z) and the ice thicker (--ice)")
    return f"{msg} (command line: --particles, --vesicles, --sheets, --shape, --ice)"


def main(args: argparse.Namespace) -> int:
    """Run ``cryo-companion tomogram``."""
    import numpy as np
    import torch

    from cryo_companion._io import output_folder, write_json
    from cryo_companion.devices import resolve_device
    from cryo_companion.mrc import write_mrc
    from cryo_companion.papers.che2019.test_domain import load_templates, simulate_tomogram
    from cryo_companion.papers.shrec2020.particles import (
        particle_list_from_scene,
        write_particle_list,
    )
    from cryo_companion.simulate.scene import PackingError, SceneSpec, make_scene
    from cryo_companion.simulate.tiltseries import Imaging, write_tilt_series
    from cryo_companion.simulate.tomogram import scene_to_tomogram_vox

    Z, Y, X = args.shape
    os_ = int(args.oversample)
    vs = args.voxel_size / os_
    ice = args.ice if args.ice is not None else 0.9 * Z * args.voxel_size
    imaging = Imaging(tilt_min_deg=args.tilt_range[0], tilt_max_deg=args.tilt_range[1],
                      tilt_step_deg=args.tilt_step, defocus_um=args.defocus,
                      total_dose_e_A2=args.dose, ice_thickness_A=ice)
    dev = resolve_device(args.device)
    names = list(dict.fromkeys(args.classes))
    templates = load_templates({n: n for n in names}, vs)   # unknown structure: KeyError here
    per = [args.particles // len(names) + (1 if i < args.particles % len(names) else 0)
           for i in range(len(names))]
    spec = SceneSpec(shape=(Z * os_, Y * os_, X * os_), voxel_size_A=vs, ice_thickness_A=ice,
                     counts=dict(zip(names, per)), vesicles=args.vesicles, sheets=args.sheets)
    g = torch.Generator().manual_seed(args.seed)
    t0 = time.perf_counter()
    try:
        scene = make_scene(spec, templates, names + ["membrane"], g, dev, progress=True)
    except PackingError as exc:
        raise PackingError(_packing_advice(exc, ice, args.ice is None)) from None
    _sync(dev)
    t1 = time.perf_counter()
    series, tomo = simulate_tomogram(scene, imaging, os_, g, progress=True)
    _sync(dev)
    t2 = time.perf_counter()
    occ = scene.occupancy.float()[None, None]
    if os_ > 1:
        # ground truth on the tomogram grid: the object covering most of each voxel
        occ_t = torch.nn.functional.max_pool3d(occ, os_)[0, 0]
        cm = torch.nn.functional.max_pool3d(scene.class_mask.float()[None, None], os_)[0, 0]
    else:
        occ_t, cm = occ[0, 0], scene.class_mask.float()
    occ_np, cm_np = occ_t.cpu().numpy().astype(np.int64), cm.cpu().numpy().astype(np.int64)
    truth = particle_list_from_scene(scene, occ_np, os_)
    out = Path(args.out)
    with output_folder(out, force=args.force, previous=previous_output) as stage:
        write_mrc(stage / "tomogram.mrc", tomo.cpu().numpy(), args.voxel_size)
        write_tilt_series(stage / "tiltseries.mrc", series)
        write_mrc(stage / "class_mask.mrc", cm_np, args.voxel_size)
        write_mrc(stage / "occupancy.mrc", occ_np, args.voxel_size)
        write_particle_list(stage / "particles.csv", truth,
                            angle_columns=("phi_deg", "theta_deg", "psi_deg"))
        write_particle_list(stage / "particles.star", truth)
        write_json(stage / "meta.json", {
            "voxel_size_A": args.voxel_size, "class_names": names + ["membrane"],
            "contrast": "dark",  # physical sign of a raw reconstruction (read by `predict`)
            "conventions": "volumes z-y-x; particle centres x, y, z in 0-based tomogram voxel "
                           "indices; Euler ZYZ degrees, R = Rz(phi) Ry(theta) Rz(psi), active; "
                           "class_mask k+1 = class_names[k]; occupancy i+1 = row i+1 of "
                           "particles.csv",
            "imaging": imaging.to_dict(), "tilts_deg": series.tilts_deg,
            "defocus_um": series.defocus_um, "tilt_series_pixel_A": series.pixel_size_A,
            "membranes": [{"row": i + 1, "kind": p["kind"], "radius_A": p.get("radius_A"),
                           "sphere_centre_xyz_vox": [scene_to_tomogram_vox(v, os_)
                                                     for v in p["centre_xyz_vox"]]}
                          for i, p in enumerate(scene.particles)
                          if p.get("kind") in ("vesicle", "sheet")],
            "stats": scene.stats, "seed": args.seed,
            "timing_s": {"scene": t1 - t0, "tilt_series_and_wbp": t2 - t1, "total": t2 - t0},
            "device": str(dev)})
    print(f"wrote {out}: tomogram {tuple(tomo.shape)}, {len(scene.particles)} objects, "
          f"{len(series.tilts_deg)} tilts; scene {t1 - t0:.1f} s, tilt series + WBP "
          f"{t2 - t1:.1f} s on {dev}")
    return 0
