"""Check a GPU window's archive and unpack it into the repository, for committing.

An archive may come in parts (paper-window.tar.gz, paper-window.part2.tar.gz, ...): give them
all, or the first with the others beside it. Checks that every member is listed in the manifest
with its SHA-256, in its part, and lies in book/chapters/ or results/ (logs go to
build/paper_logs/WINDOW/), that every part of the window is there, then writes the files and
lists each one:
new, updated or unchanged. A file that changed in the repository since the window started
(neither the version the window started from nor the one it brings) is refused, and nothing is
written, unless --force.

Example: cryo-companion unpack /path/to/paper-window.tar.gz   (then git add book/chapters results)
"""
from __future__ import annotations

import argparse
from pathlib import Path

COMMAND = "unpack"


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryo-companion unpack``."""
    parser.add_argument("archive", type=Path, nargs="+",
                        help="the window's paper-window.tar.gz (and its other parts, if not "
                             "beside it)")
    parser.add_argument("--root", type=Path, default=None,
                        help="repository to unpack into (default: this one)")
    parser.add_argument("--force", action="store_true",
                        help="overwrite files that changed here since the window started")
    parser.add_argument("--dry-run", action="store_true", help="check and list; write nothing")


def main(args: argparse.Namespace) -> int:
    """Unpack (see the module's docstring)."""
    from cryo_companion._io import repo_root
    from cryo_companion.runs.archive import unpack
    from cryo_companion.runs.sources import package_sha256

    for a in args.archive:
        if not a.is_file():
            raise FileNotFoundError(f"no archive {a}")
    root = args.root or repo_root()
    manifest, written = unpack(args.archive, root, force=args.force, dry_run=args.dry_run)
    print(f"window {manifest.get('window_id')} at commit {manifest.get('commit')} on "
          f"{manifest.get('device_name')}, {manifest.get('elapsed_s')} s of "
          f"{manifest.get('budget_s')} s:")
    for job in manifest.get("jobs", []):
        wall = "" if job.get("wall_s") is None else f" in {job['wall_s']} s"
        print(f"  {job['name']}: {job['status']}{wall}"
              + (f" ({job['reason']})" if job.get("reason") else ""))
    for x in manifest.get("left_out", []):
        print(f"  left out on the GPU machine: {x['path']} ({x['reason']})")
    verb = "would write" if args.dry_run else "wrote"
    for path, action in written:
        print(f"{verb if action != 'unchanged' else 'kept'} {path} ({action})")
    if manifest.get("package_sha256") != package_sha256(root):
        print("note: the window ran other package sources than this tree's; its chapters will "
              "show as stale here")
    return 0
