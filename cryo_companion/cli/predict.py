"""Classify and segment your own subtomograms with trained Table I weights.

Prints a tab-separated table on standard output, one row per subtomogram (index, predicted
class, its probability) under a header row and nothing else; messages go to standard error.
With --out-masks it writes the mask of the predicted class (1 inside, 0 outside, MRC mode 0)
as a volume (one input volume) or volume stack (a stack of inputs), atomically. The input is
preprocessed as at test time in Che et al. 2019 (IV-B): one global standardisation over the
file, then the Gaussian filter stored with the weights. A box other than the model's (40^3) is
refused unless --resample is given, which resamples each volume trilinearly to the model's box
(and the masks back).

Contrast: the model was trained on mass-bright subtomograms. With --contrast auto (the
default) the contrast recorded beside the input is used (NAME.json next to NAME.mrc, as
`cryo-companion simulate` writes, or the meta.json of a folder written by `testset`); without
a record, mass is assumed dark (raw reconstructions) and a warning says so.

example: cryo-companion predict results/weights/table1_randomized_seed0.pt subtomos.mrc
         --out-masks masks.mrc > classes.tsv
"""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryo_companion._io import OutputPlan

COMMAND = "predict"


def add_args(p: argparse.ArgumentParser) -> None:
    """Arguments of ``cryo-companion predict``."""
    p.add_argument("weights", help="weights file written by `cryo-companion train` (weights.pt)")
    p.add_argument("subtomograms", help="MRC file: one volume (z, y, x) or a volume stack")
    p.add_argument("--out-masks", default=None, metavar="MASKS.mrc",
                   help="write the predicted masks to this MRC file (default: none)")
    p.add_argument("--threshold", type=float, default=None,
                   help="mask probability threshold (default: the one stored with the weights)")
    p.add_argument("--resample", action="store_true",
                   help="resample boxes other than the model's to the model's box")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--contrast", default="auto", choices=["auto", "dark", "bright"],
                   help="how mass appears in your subtomograms: auto (recorded beside the "
                        "input, else dark), dark (raw reconstructions) or bright (already "
                        "inverted); dark data are inverted for the model")
    p.add_argument("--batch-size", type=int, default=64,
                   help="subtomograms per forward pass")


def outputs(args: argparse.Namespace) -> OutputPlan:
    """Return what ``predict`` reads and writes, checked before any work."""
    from cryo_companion._io import OutputPlan

    return OutputPlan(files=[args.out_masks], inputs=[args.weights, args.subtomograms])


def main(args: argparse.Namespace) -> int:
    """Run ``cryo-companion predict``."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from cryo_companion.cli._common import input_contrast
    from cryo_companion.devices import resolve_device
    from cryo_companion.models.dsrf3d import load_weights
    from cryo_companion.mrc import read_mrc, write_mrc
    from cryo_companion.papers.che2019.evaluate import needs_inversion, predict, preprocess

    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    device = resolve_device(args.device)
    model, meta = load_weights(args.weights, map_location=device)
    vol = read_mrc(args.subtomograms, ndim=(3, 4))          # non-MRC, 2-D, NaN: MrcError
    data = vol.data[None] if vol.data.ndim == 3 else vol.data
    shape = data.shape[1:]
    box = model.cfg.box
    if len(set(shape)) != 1:
        raise ValueError(f"{vol.path}: volumes of shape {shape} are not cubic; the model takes "
                         f"cubic boxes of {box}^3 voxels")
    threshold = args.threshold if args.threshold is not None else float(meta["threshold"])
    if not 0 < threshold < 1:
        raise ValueError(f"--threshold must lie in (0, 1), got {threshold}")
    pre = meta["preprocessing"]
    trained_vs = float(pre.get("voxel_size_A", 0) or 0)
    if (trained_vs and abs(vol.voxel_size_A - trained_vs) > 0.01 * trained_vs
            and shape[0] == box and not args.resample):
        raise ValueError(
            f"{vol.path}: voxel size {vol.voxel_size_A:g} Å differs from the model's "
            f"{trained_vs:g} Å; extract {box}^3 boxes at {trained_vs:g} Å, or pass --resample")
    if shape[0] != box and not args.resample:
        raise ValueError(
            f"{vol.path}: box {shape[0]}^3 differs from the model's {box}^3 (trained at "
            f"{pre.get('voxel_size_A')} Å/voxel); extract {box}^3 boxes at that voxel size, "
            f"or pass --resample to resample each volume to {box}^3 (voxel size becomes "
            f"{vol.voxel_size_A * shape[0] / box:.2f} Å)")
    invert = needs_inversion(input_contrast(args.contrast, args.subtomograms, COMMAND),
                             pre.get("contrast", "bright"))
    x = torch.from_numpy(data)
    if shape[0] != box:
        x = F.interpolate(x[:, None], size=(box,) * 3, mode="trilinear",
                          align_corners=False)[:, 0]
    pr = predict(model, preprocess(x, float(pre["gaussian_sigma_vox"]), invert=invert),
                 batch_size=args.batch_size, progress=True)
    prob = pr.mask_prob
    if shape[0] != box:
        prob = F.interpolate(prob[:, None], size=tuple(shape), mode="trilinear",
                             align_corners=False)[:, 0]
    masks = (prob > threshold).numpy().astype(np.uint8)
    if args.out_masks:
        write_mrc(args.out_masks, masks[0] if vol.data.ndim == 3 else masks, vol.voxel_size_A)
    names = model.class_names
    rows = ["index\tclass\tprobability"]
    rows += [f"{i}\t{names[c]}\t{p[c]:.3f}"
             for i, (c, p) in enumerate(zip(pr.pred.tolist(), pr.prob.tolist()))]
    sys.stdout.write("\n".join(rows) + "\n")
    sys.stdout.flush()
    if args.out_masks:
        print(f"cryo-companion predict: masks of the predicted classes (threshold "
              f"{threshold:g}) -> {args.out_masks}", file=sys.stderr)
    return 0
