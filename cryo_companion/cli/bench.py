"""Benchmarks: simulator throughput, tomogram simulation, SHREC evaluation, training step."""
from __future__ import annotations

import argparse
import importlib
from types import ModuleType

from cryo_companion.bench import TARGETS


def _module(target: str) -> ModuleType:
    return importlib.import_module(f"cryo_companion.bench.{TARGETS[target]}")


def add_args(p: argparse.ArgumentParser) -> None:
    """One sub-command per benchmark target, each with its own options."""
    sub = p.add_subparsers(dest="target", required=True, metavar="TARGET")
    for name in TARGETS:
        mod = _module(name)
        sp = sub.add_parser(name, help=(mod.__doc__ or name).strip().splitlines()[0],
                            description=mod.__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        mod.add_args(sp)


def main(args: argparse.Namespace) -> int:
    """Run the chosen benchmark."""
    return int(_module(args.target).main(args))
