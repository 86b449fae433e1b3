r"""Simulate the SHREC 2020 data set (ten models) in the benchmark's layout.

Writes DIR/model_K/ for each model K: reconstruction.mrc (512 slices at paper scale; the ground
truth in slices 156-355), grandmodel.mrc, grandmodel_noisefree.mrc, class_mask.mrc and
occupancy_mask.mrc (int16), particle_locations.txt (pdb x y z rot_Z1 rot_X rot_Z2, 0-based,
ZXZ degrees) and meta.json (recipe, seeds, statistics, provenance), and DIR/shrec_data.json
(what this command made). --scale smoke (default) is a 96^2 field with about a hundred
particles per model, for a CPU; --scale paper is the benchmark's 512^3 (a GPU). Existing
model files are refused unless --force; the output place is checked before any work.
Evaluate a submission on the test model with
  cryo-companion shrec-eval --pred SUB.txt --truth-list DIR/model_9/particle_locations.txt \\
      --occupancy DIR/model_9/occupancy_mask.mrc [--benchmark-script]
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

COMMAND = "shrec-data"


def parse_models(text: str) -> list[int]:
    """Parse model numbers from ``"0-9"``, ``"9"`` or ``"0,3,5-7"``.

    Parameters
    ----------
    text : str
        Numbers and ranges separated by commas, each model in 0-9 at most once.

    Returns
    -------
    list[int]
        The model numbers in the order given.

    Raises
    ------
    ValueError
        A part is not a number or range, a range runs backwards, a model is outside 0-9 or
        repeated, or there is none.
    """
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            if "-" in part:
                a, b = (int(v) for v in part.split("-", 1))
                if b < a:
                    raise ValueError
                out.extend(range(a, b + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise ValueError(f"--models {text!r}: expected numbers or ranges such as 0-9, 9 or "
                             "0,3,5-7") from None
    bad = [k for k in out if not 0 <= k <= 9]
    if bad or len(set(out)) != len(out) or not out:
        raise ValueError(f"--models {text!r}: the benchmark's models are 0-9 (9 is the test "
                         "model), each at most once")
    return out


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryo-companion shrec-data``."""
    parser.add_argument("--out", required=True, type=Path, help="output folder DIR")
    parser.add_argument("--models", default="0-9", help="models to make (default 0-9)")
    parser.add_argument("--scale", choices=("smoke", "paper"), default="smoke",
                        help="smoke: 96^2 field, ~100 particles (CPU); paper: 512^3 (GPU)")
    parser.add_argument("--field", type=int, default=None,
                        help="field size in voxels (x, y) instead of the scale's; the particle "
                             "range scales with its area")
    parser.add_argument("--particles", type=int, nargs=2, default=None, metavar=("LOW", "HIGH"),
                        help="particles per model, uniform in [LOW, HIGH]")
    parser.add_argument("--tilt-step", type=float, default=None,
                        help="tilt step in degrees (default 3: 41 tilts from -60 to +60)")
    parser.add_argument("--classes", nargs="+", default=None,
                        help="PDB IDs to place (default: the twelve of Table 1)")
    parser.add_argument("--no-snr", action="store_true",
                        help="skip the noise-free pass that measures the SNR")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, default=None,
                        help="data-set seed (default: the package's, DATASET_SEED = 2020)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite this command's files of the chosen models")


def _check_output(out: Path, models: list[int], force: bool) -> None:
    from cryo_companion.papers.shrec2020.layout import existing_outputs

    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    anc = out
    while not anc.exists():
        anc = anc.parent
    if not anc.is_dir() or not os.access(anc, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: {anc} is not a writable folder")
    existing = existing_outputs(out, models)
    if (out / "shrec_data.json").exists():
        existing.append(out / "shrec_data.json")
    if existing and not force:
        raise ValueError(f"{len(existing)} files of these models exist already (e.g. "
                         f"{existing[0]}); use --force to overwrite them, or another --out")


def main(args: argparse.Namespace) -> int:
    """Check everything, simulate the models, write them and the summary."""
    from cryo_companion._io import write_json
    from cryo_companion.papers.shrec2020.dataset import CHOICES, DATASET_SEED, recipe
    from cryo_companion.papers.shrec2020.layout import ensure_models
    from cryo_companion.runs.results import provenance
    from cryo_companion.runs.runtime import setup

    models = parse_models(args.models)
    over: dict = {}
    if args.field is not None:
        over["field_vox"] = args.field
    if args.particles is not None:
        over["particles"] = tuple(args.particles)
    if args.tilt_step is not None:
        over["tilt_step_deg"] = args.tilt_step
    if args.classes is not None:
        over["classes"] = tuple(dict.fromkeys(c.lower() for c in args.classes))
    r = recipe(args.scale, **over)
    r.imaging()                                     # tilt range and step checked here
    seed = DATASET_SEED if args.seed is None else int(args.seed)
    if seed < 0:
        raise ValueError(f"--seed must be >= 0, got {seed}")
    out = Path(args.out)
    _check_output(out, models, args.force)
    run = setup(args.scale, args.device, seed, chapter="shrec_data",
                paper_needs_gpu=args.scale == "paper" and args.device == "auto")
    t0 = time.perf_counter()
    stats = ensure_models(out, models, r, seed, run.device,
                          meta={"scale": args.scale, "provenance": provenance(run)},
                          regenerate=True, snr=not args.no_snr, progress=True)
    wall = time.perf_counter() - t0
    write_json(out / "shrec_data.json", {
        "models": models, "scale": args.scale, "recipe": r.to_dict(), "dataset_seed": seed,
        "stats": stats, "choices": [list(c) for c in CHOICES], "wall_time_s": round(wall, 2),
        "provenance": provenance(run)})
    n = sum(s["n_particles"] for s in stats)
    print(f"wrote {len(models)} models ({n} particles) to {out} in {wall:.1f} s on {run.device}")
    return 0
