"""Simulate the held-out test domain (stand-in for Che et al. 2019's 1,051 real subtomograms).

Writes DIR/*.mrc (40³ at 13.68 Å, mass dark as in a raw reconstruction), DIR/*_mask.mrc (the
target's segmentation, 0/1 in MRC mode 0), DIR/labels.csv (file,class,mask) and DIR/meta.json
(config hash, measured SNR, baseline preset, "contrast": "dark"). DIR must be new or empty;
with --force it may hold an earlier test set, which is replaced (a folder holding anything else
is refused). The files appear together when all are written.

example: cryo-companion testset --scale smoke --out data/test_domain_smoke
"""
from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryo_companion._io import OutputPlan

COMMAND = "testset"


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryo-companion testset``."""
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output folder (new or empty; --force replaces an earlier test set)")
    parser.add_argument("--scale", choices=["smoke", "paper"], default="paper",
                        help="paper: 80/460/125/386 subtomograms; smoke: a few per class")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, default=None,
                        help="base seed (default: the pre-registered one)")


def outputs(args: argparse.Namespace) -> OutputPlan:
    """Return the output folder, checked before any work."""
    from cryo_companion._io import OutputPlan
    from cryo_companion.dataset import previous_subtomograms

    return OutputPlan(folders=[(args.out, previous_subtomograms)])


def main(args: argparse.Namespace) -> int:
    """Run ``cryo-companion testset``."""
    from cryo_companion.dataset import save_subtomograms
    from cryo_companion.papers.che2019.test_domain import make_testset

    data = make_testset(args.scale, args.device, args.seed)
    save_subtomograms(args.out, data, overwrite=args.force)
    snr = data.meta["snr"]["median"]
    print(f"wrote {len(data)} subtomograms {data.counts} to {args.out} "
          f"(measured SNR {snr:.3g}, config hash {data.meta['test_domain_hash'][:12]})")
    return 0
