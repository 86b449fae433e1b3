"""Simulate one crowded tomogram: scene, tilt series, WBP reconstruction and ground truth.

Writes to DIR: tomogram.mrc (WBP, voxel --voxel-size), tiltseries.mrc (stack of the T images),
class_mask.mrc (0 = background, k+1 = class k), occupancy.mrc (0 = none, i+1 = particle i),
particles.csv (class, centre x y z in tomogram voxels, ZYZ Euler angles in degrees) and
meta.json. Every file is written atomically; all inputs are checked before any work.
"""
from __future__ import annotations

import argparse
import csv
import io
import time
from pathlib import Path

COMMAND = "tomogram"


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--shape", type=int, nargs=3, default=[100, 256, 256],
                        metavar=("Z", "Y", "X"), help="tomogram size in voxels (z y x)")
    parser.add_argument("--voxel-size", type=float, default=10.0, help="tomogram voxel (Å)")
    parser.add_argument("--oversample", type=int, default=2,
                        help="simulation voxels per tomogram voxel (detector pixel = voxel/this)")
    parser.add_argument("--classes", nargs="+",
                        default=["1bxn", "1qvr", "1s3x", "1u6g", "2cg9", "3cf3", "3d2f", "3gl1",
                                 "3h84", "3qm1", "4cr2", "4v94"],
                        help="structure entries to pack (equal numbers of each)")
    parser.add_argument("--particles", type=int, default=300, help="number of complexes")
    parser.add_argument("--vesicles", type=int, default=1)
    parser.add_argument("--sheets", type=int, default=0)
    parser.add_argument("--ice", type=float, default=None, help="ice thickness (Å; default: "
                        "the tomogram height minus 10%%)")
    parser.add_argument("--tilt-range", type=float, nargs=2, default=[-60.0, 60.0],
                        metavar=("MIN", "MAX"), help="degrees, inside (-90, 90)")
    parser.add_argument("--tilt-step", type=float, default=2.0, help="degrees; must divide the range")
    parser.add_argument("--defocus", type=float, default=-3.0, help="µm, negative = underfocus")
    parser.add_argument("--dose", type=float, default=100.0, help="total e/Å²")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)


def _sync(dev) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def main(args: argparse.Namespace) -> int:
    import torch

    from cryo_companion._io import write_json, write_text
    from cryo_companion.devices import resolve_device
    from cryo_companion.mrc import write_mrc
    from cryo_companion.papers.che2019.test_domain import (
        load_templates,
        scene_to_tomogram_vox,
        simulate_tomogram,
    )
    from cryo_companion.simulate.scene import SceneSpec, make_scene
    from cryo_companion.simulate.tiltseries import Imaging

    Z, Y, X = args.shape
    os_ = int(args.oversample)
    if os_ < 1:
        raise ValueError(f"--oversample must be >= 1, got {os_}")
    if min(Z, Y, X) < 8:
        raise ValueError(f"--shape {args.shape}: every size must be >= 8")
    vs = args.voxel_size / os_
    ice = args.ice if args.ice is not None else 0.9 * Z * args.voxel_size
    imaging = Imaging(tilt_min_deg=args.tilt_range[0], tilt_max_deg=args.tilt_range[1],
                      tilt_step_deg=args.tilt_step, defocus_um=args.defocus,
                      total_dose_e_A2=args.dose, ice_thickness_A=ice)
    if args.particles < 0:
        raise ValueError(f"--particles must be >= 0, got {args.particles}")
    dev = resolve_device(args.device)
    names = list(dict.fromkeys(args.classes))
    templates = load_templates({n: n for n in names}, vs)   # unknown structure: KeyError here
    per = [args.particles // len(names) + (1 if i < args.particles % len(names) else 0)
           for i in range(len(names))]
    spec = SceneSpec(shape=(Z * os_, Y * os_, X * os_), voxel_size_A=vs, ice_thickness_A=ice,
                     counts=dict(zip(names, per)), vesicles=args.vesicles, sheets=args.sheets)
    g = torch.Generator().manual_seed(args.seed)
    t0 = time.perf_counter()
    scene = make_scene(spec, templates, names + ["membrane"], g, dev, progress=True)
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
    out = Path(args.out)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "class", "x_vox", "y_vox", "z_vox", "phi_deg", "theta_deg", "psi_deg"])
    for i, p in enumerate(scene.particles):
        c = [scene_to_tomogram_vox(v, os_) for v in p["centre_xyz_vox"]]
        w.writerow([i + 1, p["class_name"], *(f"{v:.3f}" for v in c),
                    *(f"{v:.3f}" for v in p["euler_zyz_deg"])])
    write_mrc(out / "tomogram.mrc", tomo.cpu().numpy(), args.voxel_size)
    write_mrc(out / "tiltseries.mrc", series.images.cpu().numpy()[:, None], args.voxel_size)
    write_mrc(out / "class_mask.mrc", cm.cpu().numpy(), args.voxel_size)
    write_mrc(out / "occupancy.mrc", occ_t.cpu().numpy(), args.voxel_size)
    write_text(out / "particles.csv", buf.getvalue())
    write_json(out / "meta.json", {
        "voxel_size_A": args.voxel_size, "class_names": names + ["membrane"],
        "conventions": "volumes z-y-x; particle centres x, y, z in tomogram voxel indices; "
                       "Euler ZYZ degrees, R = Rz(phi) Ry(theta) Rz(psi), active",
        "imaging": imaging.to_dict(), "tilts_deg": series.tilts_deg,
        "defocus_um": series.defocus_um, "stats": scene.stats, "seed": args.seed,
        "timing_s": {"scene": t1 - t0, "tilt_series_and_wbp": t2 - t1, "total": t2 - t0},
        "device": str(dev)})
    print(f"wrote {out}: tomogram {tuple(tomo.shape)}, {len(scene.particles)} objects, "
          f"{len(series.tilts_deg)} tilts; scene {t1 - t0:.1f} s, tilt series + WBP "
          f"{t2 - t1:.1f} s on {dev}")
    return 0
