"""Classify, segment and recover your own subtomograms with trained DSM-Net weights.

Prints a tab-separated table on standard output, one row per subtomogram under a header row:
its index, the predicted class and its probability (weights with a classification head) and
the number of voxels of its target mask (weights with a segmentation head); messages go to
standard error. --out-masks writes the target masks (1 inside, 0 outside, MRC mode 0) and
--out-density the recovered densities (float32, in the network's unit: the protein fraction of
each voxel, about 0 in solvent and 1 inside a complex), each as a volume (one input volume) or
a volume stack, atomically.

The input must be cubic boxes of the model's size (40^3) at its voxel size (13.68 A), as the
weights were trained on; each box is standardised on its own, as in training. Contrast: the
weights were trained on raw reconstructions (mass dark). With --contrast auto (the default)
the contrast recorded beside the input is used (NAME.json next to NAME.mrc, or the meta.json
of its folder); without a record, mass is assumed dark and a warning says so.

example: cryo-companion dsmnet results/weights/dsmnet.pt subtomos.mrc --out-masks masks.mrc
         --out-density density.mrc > classes.tsv
"""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from cryo_companion.cli._common import int_at_least

if TYPE_CHECKING:
    from cryo_companion._io import OutputPlan

COMMAND = "dsmnet"


def add_args(p: argparse.ArgumentParser) -> None:
    """Arguments of ``cryo-companion dsmnet``."""
    p.add_argument("weights", help="DSM-Net weights file (.pt, cryo_companion.dsmnet format)")
    p.add_argument("subtomograms", help="MRC file: one volume (z, y, x) or a volume stack")
    p.add_argument("--out-masks", default=None, metavar="MASKS.mrc",
                   help="write the target masks to this MRC file (default: none)")
    p.add_argument("--out-density", default=None, metavar="DENSITY.mrc",
                   help="write the recovered densities to this MRC file (default: none)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--contrast", default="auto", choices=["auto", "dark", "bright"],
                   help="how mass appears in your subtomograms: auto (recorded beside the "
                        "input, else dark), dark (raw reconstructions) or bright (inverted)")
    p.add_argument("--batch-size", type=int_at_least(1), default=64,
                   help="subtomograms per forward pass")


def outputs(args: argparse.Namespace) -> OutputPlan:
    """Return what ``dsmnet`` reads and writes, checked before any work."""
    from cryo_companion._io import OutputPlan

    return OutputPlan(files=[args.out_masks, args.out_density],
                      inputs=[args.weights, args.subtomograms])


def main(args: argparse.Namespace) -> int:
    """Run ``cryo-companion dsmnet``."""
    from cryo_companion.cli._common import input_contrast
    from cryo_companion.devices import resolve_device
    from cryo_companion.models.dsmnet import load_weights
    from cryo_companion.mrc import read_mrc, write_mrc
    from cryo_companion.papers.dsmnet.apply import apply_network, check_inputs

    device = resolve_device(args.device)
    model, meta = load_weights(args.weights, map_location=device)
    heads = model.cfg.heads
    for opt, head in (("--out-masks", "seg"), ("--out-density", "rec")):
        if getattr(args, opt[2:].replace("-", "_")) and head not in heads:
            raise ValueError(f"{opt}: these weights ({model.cfg.name}) have no "
                             f"{'segmentation' if head == 'seg' else 'recovery'} head")
    vol = read_mrc(args.subtomograms, ndim=(3, 4))          # non-MRC, 2-D, NaN: MrcError
    data = vol.data[None] if vol.data.ndim == 3 else vol.data
    contrast = input_contrast(args.contrast, args.subtomograms, COMMAND)
    invert = check_inputs(model, meta, tuple(data.shape), vol.voxel_size_A, contrast)
    res = apply_network(model, data, invert=invert, batch_size=args.batch_size, progress=True)
    one = vol.data.ndim == 3
    if args.out_masks:
        m = res["masks"].numpy().astype("uint8")
        write_mrc(args.out_masks, m[0] if one else m, vol.voxel_size_A)
    if args.out_density:
        d = res["recovery"].numpy()
        write_mrc(args.out_density, d[0] if one else d, vol.voxel_size_A)
    columns = ["index"] + (["class", "probability"] if "class_index" in res else []) \
        + (["target_voxels"] if "masks" in res else [])
    rows = ["\t".join(columns)]
    for i in range(data.shape[0]):
        cells = [str(i)]
        if "class_index" in res:
            cells += [model.class_names[int(res["class_index"][i])],
                      f"{float(res['probability'][i]):.3f}"]
        if "masks" in res:
            cells.append(str(int(res["masks"][i].sum())))
        rows.append("\t".join(cells))
    sys.stdout.write("\n".join(rows) + "\n")
    sys.stdout.flush()
    for path, what in ((args.out_masks, "target masks"), (args.out_density,
                                                          "recovered densities")):
        if path:
            print(f"cryo-companion dsmnet: {what} -> {path}", file=sys.stderr)
    return 0
