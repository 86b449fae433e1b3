"""Simulate subtomograms of one structure (Che et al. 2019, III-A) into an MRC stack + JSON.

Each subtomogram gets a uniform random rotation and a sub-box shift; with fixed --snr/--wedge/
--defocus/--cs (defaults: the baseline preset, i.e. the values measured on the test domain
in results/test_domain.json when present, else the paper's SNR 0.1, 30 deg, -6 um, 2.7 mm) and
no intensity augmentation, or with --randomize every subtomogram draws its own parameters from
the "randomized" preset (cryo_companion.simulate.randomization). Defocus is negative for
underfocus; the beam is along z and the tilt axis is y. Mass is bright (the training
simulator's convention); the JSON next to the stack (same name, .json) says so ("contrast":
"bright", read by `predict`) and lists every parameter of every subtomogram. The same --seed
gives the same output; --snr inf gives the noise-free volumes, and a finite SNR with the same
seed the same volumes plus noise. Existing outputs are replaced only with --force.

example: cryo-companion simulate --structure 4v94 --n 64 --randomize -o tric.mrc
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from cryo_companion._progress import progress as progress_bar
from cryo_companion.cli._common import int_at_least, positive_float

if TYPE_CHECKING:
    from cryo_companion._io import OutputPlan
    from cryo_companion.simulate.randomization import Preset

COMMAND = "simulate"
CHUNK = 256  # subtomograms per batch (fixed: part of what a seed reproduces)


def _snr(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"SNR {text!r} is not a number (or 'inf')") from None
    return v


def add_args(p: argparse.ArgumentParser) -> None:
    """Arguments of ``cryo-companion simulate``."""
    p.add_argument("--structure", required=True,
                   help="structure ID (e.g. 4v94), 'membrane', or a PDB/mmCIF/MRC file")
    p.add_argument("--snr", type=_snr, default=None,
                   help="SNR > 0, or inf (default: the baseline preset's, see above)")
    p.add_argument("--wedge", type=float, default=None,
                   help="missing-wedge angle in deg, [0, 90): tilts cover ±(90-wedge) "
                        "(default: the baseline preset's; the paper's 30)")
    p.add_argument("--defocus", type=float, default=None,
                   help="defocus Dz in um, negative = underfocus (default: the baseline "
                        "preset's; the paper's -6)")
    p.add_argument("--cs", type=float, default=None,
                   help="spherical aberration in mm (default: the baseline preset's; the "
                        "paper's 2.7)")
    p.add_argument("--n", type=int, default=16, help="number of subtomograms (default 16)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("-o", "--output", required=True, type=Path,
                   help="output MRC stack (.mrc); the parameters go to the same name with .json")
    p.add_argument("--randomize", action="store_true",
                   help="draw every parameter from the 'randomized' preset (Che et al. III-B)")
    p.add_argument("--box", type=int_at_least(8), default=40,
                   help="box edge in voxels, >= 8 (default 40)")
    p.add_argument("--voxel-size", type=positive_float, default=13.68,
                   help="voxel size in Å (default 13.68)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")


def outputs(args: argparse.Namespace) -> OutputPlan:
    """Return what ``simulate`` writes (stack and JSON) and reads, checked before any work."""
    from cryo_companion._io import OutputPlan

    src = Path(args.structure)
    return OutputPlan(files=[args.output, args.output.with_suffix(".json")],
                      inputs=[src] if src.is_file() else [])


def _density(structure: str, voxel_size_A: float, box: int, seed: int) -> np.ndarray:
    if structure.lower() == "membrane":
        from cryo_companion.structures.membrane import membrane_patch

        return np.asarray(membrane_patch(box, voxel_size_A, np.random.default_rng(seed)),
                          dtype=np.float32)
    from cryo_companion.cli._common import cli_box_advice
    from cryo_companion.structures.density import BoxTooSmallError, load_density

    try:
        return np.asarray(load_density(structure, voxel_size_A, box), dtype=np.float32)
    except BoxTooSmallError as exc:
        raise ValueError(cli_box_advice(
            exc, "pass a larger --box or a larger --voxel-size (every subtomogram of the "
                 "stack has the same box)")) from None


def _preset(args: argparse.Namespace) -> Preset:
    from cryo_companion.papers.che2019.presets import get_preset

    fixed = {"snr": args.snr, "wedge_deg": args.wedge, "defocus_um": args.defocus,
             "cs_mm": args.cs}
    if args.randomize:
        given = [k for k, v in fixed.items() if v is not None]
        if given:
            raise ValueError(f"--randomize draws every parameter; do not also give {given}")
        return get_preset("randomized")
    base = get_preset("baseline")
    values = {k: (v if v is not None else getattr(base, k)[0]) for k, v in fixed.items()}
    # fixed physics, exactly as requested: no intensity augmentation
    return base.replace(name="fixed", **values, intensity_scale=(1.0, 1.0),
                        intensity_offset=(0.0, 0.0),
                        source="command line (defaults: " + base.source + ")")


def main(args: argparse.Namespace) -> int:
    """Run ``cryo-companion simulate``."""
    from cryo_companion._io import write_json
    from cryo_companion.devices import resolve_device, tune_cpu_allocator
    from cryo_companion.mrc import write_mrc
    from cryo_companion.simulate.subtomogram import Simulator

    if args.n < 1:
        raise ValueError(f"--n must be >= 1, got {args.n}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if args.output.suffix.lower() != ".mrc":
        raise ValueError(f"output {args.output} must end in .mrc")
    preset = _preset(args)  # validates SNR, wedge, Cs before any work
    device = resolve_device(args.device)
    if device.type == "cpu":
        tune_cpu_allocator()
    dens = _density(args.structure, args.voxel_size, args.box, args.seed)
    sim = Simulator(torch.from_numpy(dens)[None], torch.zeros(1, dtype=torch.long),
                    args.voxel_size, device, box=args.box)
    gen = torch.Generator(device=device).manual_seed(args.seed)
    vols, records = [], []
    with progress_bar(total=args.n, desc="simulate", unit="subtomo", show=args.n > CHUNK) as bar:
        for start in range(0, args.n, CHUNK):
            m = min(CHUNK, args.n - start)
            b = sim.sample(m, preset, gen)
            vols.append(b.noisy.cpu().numpy())
            params = {k: v.cpu().tolist() for k, v in b.params.items()}
            for i in range(m):
                rec: dict[str, object] = {"index": start + i}
                for k, v in params.items():
                    x = v[i]
                    rec[k] = x if (isinstance(x, int) or math.isfinite(x)) else "inf"
                records.append(rec)
            bar.update(m)
    stack = np.concatenate(vols, 0).astype(np.float32)
    meta = {
        "contrast": "bright",  # read by `predict` (cryo_companion.dataset.recorded_contrast)
        "structure": args.structure, "n": args.n, "seed": args.seed, "box": args.box,
        "voxel_size_A": args.voxel_size, "device": str(device), "preset": preset.as_dict(),
        "conventions": {
            "axes": "volumes z-y-x; beam along z; tilt axis y",
            "defocus": "um, negative = underfocus",
            "wedge": "tilts cover ±(90 - wedge_deg) about y",
            "snr": "var(clean) / var(noise) on the final volume",
            "euler": "ZYZ intrinsic, R = Rz(phi) Ry(theta) Rz(psi), acting on (x, y, z)",
            "contrast": "particles bright (CTF sign inverted, AITom convention)",
        },
        "subtomograms": records,
    }
    json_path = args.output.with_suffix(".json")
    write_mrc(args.output, stack, args.voxel_size)
    write_json(json_path, meta)
    print(f"wrote {args.output} ({args.n} x {args.box}^3) and {json_path}")
    return 0
