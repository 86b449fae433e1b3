"""Simulate the held-out test domain (stand-in for Che et al. 2019's 1,051 real subtomograms).

Writes DIR/*.mrc (40³ at 13.68 Å), DIR/*_mask.mrc (the target's segmentation), DIR/labels.csv
(file,class,mask) and DIR/meta.json (config hash, measured SNR, baseline preset). The folder
appears complete or not at all.
"""
from __future__ import annotations

import argparse

COMMAND = "testset"


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (replaced if it exists)")
    parser.add_argument("--scale", choices=["smoke", "paper"], default="paper",
                        help="paper: 80/460/125/386 subtomograms; smoke: a few per class")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--seed", type=int, default=None,
                        help="base seed (default: the pre-registered one)")


def main(args: argparse.Namespace) -> int:
    from cryo_companion.dataset import save_subtomograms
    from cryo_companion.papers.che2019.test_domain import make_testset

    data = make_testset(args.scale, args.device, args.seed)
    save_subtomograms(args.out, data)
    snr = data.meta["snr"]["median"]
    print(f"wrote {len(data)} subtomograms {data.counts} to {args.out} "
          f"(measured SNR {snr:.3g}, config hash {data.meta['test_domain_hash'][:12]})")
    return 0
