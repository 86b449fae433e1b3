"""Segment the centre complex of your subtomograms with trained SSN3D weights.

Prints a tab-separated table on standard output, one row per subtomogram under a header row
and nothing else (index, target voxels, their fraction of the box, the mean target probability
inside the mask, whether the box centre is in the mask); messages go to standard error. With
--out-masks it writes the target masks (1 inside, 0 outside, MRC mode 0), with --out-prob the
target probability (float32), each as a volume (one input volume) or volume stack, atomically.

The subtomograms must be boxes of the network's size at its voxel size (both recorded in the
weights; the book's weights: 40^3 at 13.68 Å, trained on data set A, B or C of SSN3D). Each
box is standardised on its own (zero mean, unit variance). Contrast: the weights record the
contrast they were trained on (the book's: mass dark, as in a raw reconstruction); with
--contrast auto (the default) the contrast recorded beside the input is used (NAME.json next
to NAME.mrc, or meta.json in its folder); without a record mass is assumed dark and a warning
says so.

example: cryo-companion segment results/weights/ssn3d_table2_ed_A_seed0.pt subtomos.mrc
         --out-masks masks.mrc > segments.tsv
"""
from __future__ import annotations

import argparse
import sys

from cryo_companion.cli._common import int_at_least

COMMAND = "segment"


def add_args(p: argparse.ArgumentParser) -> None:
    """Arguments of ``cryo-companion segment``."""
    p.add_argument("weights", help="SSN3D weights file (results/weights/ssn3d_*.pt)")
    p.add_argument("subtomograms", help="MRC file: one volume (z, y, x) or a volume stack")
    p.add_argument("--out-masks", default=None, metavar="MASKS.mrc",
                   help="write the target masks to this MRC file (default: none)")
    p.add_argument("--out-prob", default=None, metavar="PROB.mrc",
                   help="write the target probability to this MRC file (default: none)")
    p.add_argument("--contrast", default="auto", choices=["auto", "dark", "bright"],
                   help="how mass appears in your subtomograms: auto (recorded beside the "
                        "input, else dark), dark (raw reconstructions) or bright (inverted)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--batch-size", type=int_at_least(1), default=32,
                   help="subtomograms per forward pass")


def outputs(args: argparse.Namespace):
    """Return what ``segment`` reads and writes, checked before any work."""
    from cryo_companion._io import OutputPlan

    return OutputPlan(files=[args.out_masks, args.out_prob],
                      inputs=[args.weights, args.subtomograms])


def _contrast(choice: str, path: str) -> str:
    from cryo_companion.dataset import recorded_contrast

    recorded, side = recorded_contrast(path)
    if choice != "auto":
        if recorded is not None and recorded != choice:
            _warn(f"--contrast {choice} overrides the contrast {recorded!r} recorded in {side}")
        return choice
    if recorded is None:
        _warn(f"no contrast recorded beside {path} (no NAME.json or meta.json saying "
              "\"contrast\"); assuming mass is dark (raw reconstructions): pass --contrast "
              "bright if it is bright")
        return "dark"
    return recorded


def _warn(message: str) -> None:
    print(f"cryo-companion segment: warning: {message}", file=sys.stderr)


def main(args: argparse.Namespace) -> int:
    """Run ``cryo-companion segment``."""
    import numpy as np
    import torch

    from cryo_companion.devices import resolve_device
    from cryo_companion.mrc import read_mrc, write_mrc
    from cryo_companion.segment.network import (
        check_volumes,
        load_weights,
        needs_inversion,
        segment_subtomograms,
    )

    device = resolve_device(args.device)
    model, meta = load_weights(args.weights, map_location=device)
    vol = read_mrc(args.subtomograms, ndim=(3, 4))          # non-MRC, 2-D, NaN: MrcError
    data = vol.data[None] if vol.data.ndim == 3 else vol.data
    box, pre = model.cfg.box, meta["preprocessing"]
    trained_vs = float(pre["voxel_size_A"])
    check_volumes(data, box, f"{vol.path}: the subtomograms")
    if abs(vol.voxel_size_A - trained_vs) > 0.01 * trained_vs:
        raise ValueError(f"{vol.path}: voxel size {vol.voxel_size_A:g} Å differs from the "
                         f"network's {trained_vs:g} Å; extract {box}^3 boxes at {trained_vs:g} "
                         "Å per voxel")
    invert = needs_inversion(_contrast(args.contrast, args.subtomograms), pre["contrast"])
    prob, mask = segment_subtomograms(model, torch.from_numpy(np.ascontiguousarray(data)),
                                      invert=invert, batch_size=args.batch_size,
                                      progress=True)
    single = vol.data.ndim == 3
    if args.out_masks:
        m = mask.numpy().astype(np.uint8)
        write_mrc(args.out_masks, m[0] if single else m, vol.voxel_size_A)
    if args.out_prob:
        p = prob.numpy().astype(np.float32)
        write_mrc(args.out_prob, p[0] if single else p, vol.voxel_size_A)
    c = box // 2
    n_vox = mask.flatten(1).sum(1)
    mean_p = (prob * mask).flatten(1).sum(1) / n_vox.clamp(min=1)
    rows = ["index\ttarget_voxels\ttarget_fraction\tmean_target_probability\tcentre_in_target"]
    rows += [f"{i}\t{int(n)}\t{float(n) / box ** 3:.4f}\t{float(p):.3f}\t"
             f"{'yes' if bool(mask[i, c, c, c]) else 'no'}"
             for i, (n, p) in enumerate(zip(n_vox.tolist(), mean_p.tolist()))]
    sys.stdout.write("\n".join(rows) + "\n")
    sys.stdout.flush()
    for what, path in (("masks", args.out_masks), ("target probabilities", args.out_prob)):
        if path:
            print(f"cryo-companion segment: {what} -> {path}", file=sys.stderr)
    return 0
