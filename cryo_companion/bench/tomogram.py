"""Benchmark the tomogram simulator: a SHREC-sized tomogram, timed, recorded in results/.

Default: 200 x 512 x 512 voxels at 10 Å, 2x oversampled, ~2,500 particles, 61 tilts
(-60..+60 deg, 2 deg step). Writes results/bench_tomogram.json (with provenance) at
``--scale paper``. Usage: ``cryo-companion bench tomogram --device cuda``
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from cryo_companion.cli.main import main as cli
from cryo_companion.runs.results import save_result
from cryo_companion.runs.runtime import setup


def run_benchmark(device: str, shape: tuple[int, int, int], particles: int,
                  scale: str) -> dict[str, Any]:
    """Simulate one tomogram with ``cryo-companion tomogram`` and record its timing.

    Parameters
    ----------
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    shape : tuple of int
        Tomogram shape ``(Z, Y, X)`` in voxels.
    particles : int
        Particles requested.
    scale : str
        ``"paper"`` (``results/bench_tomogram.json``) or ``"smoke"`` (``results/smoke/``).

    Returns
    -------
    dict
        The recorded data: shape, voxel size, oversampling, particles, objects placed, tilts
        and the stage timings in seconds.

    Raises
    ------
    SystemExit
        With the command's exit code when ``cryo-companion tomogram`` fails.
    """
    run = setup(scale, device, 0, chapter="bench_tomogram", paper_needs_gpu=False)
    with tempfile.TemporaryDirectory() as tmp:
        rc = cli(["tomogram", "--out", tmp, "--shape", *map(str, shape), "--voxel-size", "10",
                  "--oversample", "2", "--particles", str(particles), "--tilt-range", "-60", "60",
                  "--tilt-step", "2", "--device", device])
        if rc:
            raise SystemExit(rc)
        meta = json.loads((Path(tmp) / "meta.json").read_text())
    data = {"shape_zyx": list(shape), "voxel_size_A": 10.0, "oversample": 2,
            "particles_requested": particles, "objects": meta["stats"],
            "tilts": len(meta["tilts_deg"]), "timing_s": meta["timing_s"]}
    path = save_result(run, data)
    print(f"{meta['device']}: scene {meta['timing_s']['scene']:.1f} s, tilt series + WBP "
          f"{meta['timing_s']['tilt_series_and_wbp']:.1f} s, total {meta['timing_s']['total']:.1f}"
          f" s -> {path}")
    return data


def add_args(p: argparse.ArgumentParser) -> None:
    """Add the options of ``cryo-companion bench tomogram``.

    Parameters
    ----------
    p : argparse.ArgumentParser
        The subcommand's parser.
    """
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--shape", type=int, nargs=3, default=(200, 512, 512), metavar=("Z", "Y", "X"),
                   help="tomogram shape in voxels (default 200 512 512)")
    p.add_argument("--particles", type=int, default=2500, help="particles (default 2500)")
    p.add_argument("--scale", default="paper", choices=["smoke", "paper"],
                   help="paper: write results/bench_tomogram.json; smoke: results/smoke/ "
                        "(default paper)")


def main(a: argparse.Namespace) -> int:
    """Run the benchmark with parsed options.

    Parameters
    ----------
    a : argparse.Namespace
        The options of :func:`add_args`.

    Returns
    -------
    int
        0 on success.
    """
    run_benchmark(a.device, tuple(a.shape), a.particles, a.scale)
    return 0
