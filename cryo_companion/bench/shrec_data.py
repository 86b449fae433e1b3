"""Time one model of the SHREC 2020 data set (target: a 512³ model in <= 60 s on one H200).

Simulates the test model (9) with the paper's recipe
(:mod:`cryo_companion.papers.shrec2020.dataset`: about 2,600 particles, 41 tilts, multislice in
5 nm slices, WBP into 512 slices) in memory, the noise-free pass that measures the SNR included,
and records the timing with provenance: ``results/bench_shrec_data.json`` at the paper's field
(512), ``bench_shrec_data_fieldN.json`` for a reduced field ``--field N`` (the particle range
scaled by the field's area; the record says it is reduced). Files are not written (their writing
is not part of the target).

Usage: ``cryo-companion bench shrec-data --device cuda`` (paper); on a CPU
``cryo-companion bench shrec-data --device cpu --field 128``.
"""
from __future__ import annotations

import argparse

import torch

from cryo_companion.papers.shrec2020.dataset import DATASET_SEED, make_model, recipe, templates_for
from cryo_companion.runs.results import save_result
from cryo_companion.runs.runtime import setup

#: The target for one paper-scale model on one H200 (seconds).
TARGET_S = 60.0


def run_benchmark(device: str, field: int | None, scale: str, snr: bool = True) -> dict:
    """Simulate one model and return (and save) its timing record.

    Parameters
    ----------
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
    field : int or None
        Field size (voxels); None: the paper's 512.
    scale : str
        ``paper`` writes to ``results/``, ``smoke`` to ``results/smoke/``.
    snr : bool
        Include the noise-free pass that measures the SNR.

    Returns
    -------
    dict
        The record saved.
    """
    run = setup(scale, device, 0, chapter="bench_shrec_data", paper_needs_gpu=False)
    r = recipe("paper") if field is None else recipe("paper", field_vox=int(field))
    templates = templates_for(r)              # preparing the structures is not timed
    model = make_model(r, 9, DATASET_SEED, run.device, templates=templates, snr=snr)
    t = model.stats["timing_s"]
    reduced = r.field_vox != 512
    data = {"field_vox": r.field_vox, "reduced": reduced, "thickness_vox": r.thickness_vox,
            "reconstruction_slices": r.reconstruction_slices,
            "particles": model.stats["n_particles"], "tilts": model.stats["tilts"],
            "snr_pass": snr, "timing_s": t, "torch_threads": torch.get_num_threads(),
            "target_s": TARGET_S,
            "meets_target": (None if reduced or run.device.type != "cuda"
                             else bool(t["total"] <= TARGET_S)),
            "snr": model.stats.get("snr")}
    name = "bench_shrec_data" if not reduced else f"bench_shrec_data_field{r.field_vox}"
    path = save_result(run, data, name=name)
    print(f"{run.device}: field {r.field_vox}, {data['particles']} particles, {data['tilts']} "
          f"tilts: scene {t['scene']:.1f} s, tilt series + WBP {t['tilt_series_and_wbp']:.1f} s, "
          f"SNR pass {t['snr_measurement']:.1f} s, total {t['total']:.1f} s -> {path}")
    return data


def add_args(p: argparse.ArgumentParser) -> None:
    """Options of ``cryo-companion bench shrec-data``."""
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    p.add_argument("--field", type=int, default=None,
                   help="field in voxels (default 512, the paper's; smaller: a reduced model)")
    p.add_argument("--scale", default="paper", choices=["smoke", "paper"],
                   help="paper: write results/; smoke: results/smoke/ (default paper)")
    p.add_argument("--no-snr", action="store_true", help="skip the SNR pass")


def main(a: argparse.Namespace) -> int:
    """Run the benchmark with parsed options; 0 on success."""
    run_benchmark(a.device, a.field, a.scale, snr=not a.no_snr)
    return 0
