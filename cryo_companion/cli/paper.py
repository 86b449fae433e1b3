"""Run every pending paper-scale job that fits a GPU window, and pack what comes back.

Lists the jobs (every chapter of _toc.yml, the papers' declared jobs, the simulator's GPU checks)
in priority order with their estimated cost and where the estimate comes from, skips those
already done (a chapter whose executed notebook is current, a check whose record in
results/jobs/ passed with the current code), runs the others that fit the budget, stops a job
that overruns with a margin left, and writes ONE archive DIR/paper-window.tar.gz of the executed
notebooks, results, weights and logs with a manifest, rewritten after every job, in parts of at
most --archive-mib each when it is larger (paper-window.part2.tar.gz, ...; at most 8).
`cryo-companion unpack DIR/paper-window.tar.gz` puts it, with its parts, into the repository.

--stage-structures DIR copies, instead of running, the structure files that the pending jobs of
this plan read (their declared entries; the whole mirror if one declares none) from
$CRYO_COMPANION_STRUCTURES into DIR, to be carried to a GPU machine with no network.

Example: cryo-companion paper --budget-s 540 --out "$OUT"      (--dry-run: the plan only)
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryo_companion.runs.jobs import Job

COMMAND = "paper"


def add_args(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``cryo-companion paper``."""
    parser.add_argument("--budget-s", type=float, default=540.0,
                        help="seconds the whole window may take, from now (default 540)")
    parser.add_argument("--margin-s", type=float, default=30.0,
                        help="seconds kept at the end to stop an overrunning job and pack "
                             "(default 30)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder of the archive paper-window.tar.gz (needed unless --dry-run)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the plan (jobs, estimates, what fits) and exit")
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda; "
                        "on cpu, jobs that need a GPU are listed, not run)")
    parser.add_argument("--only", nargs="+", default=None, metavar="JOB",
                        help="consider only these jobs")
    parser.add_argument("--param", action="append", default=[], metavar="CHAPTER.NAME=VALUE",
                        help="extra papermill parameter of a chapter job (JSON value), e.g. "
                             "table1.iterations=5000; the chapter records and shows it")
    parser.add_argument("--gpu-jobs-only", action="store_true",
                        help="leave out the jobs that need no GPU (run them on any machine)")
    parser.add_argument("--archive-mib", type=float, default=16.0,
                        help="largest archive size in MiB (default 16)")
    parser.add_argument("--stage-structures", type=Path, default=None, metavar="DIR",
                        help="copy the structure files the pending jobs read into DIR and exit")
    parser.add_argument("--force", action="store_true",
                        help="replace an archive already in --out (or staged files in DIR)")


def main(args: argparse.Namespace) -> int:
    """Plan, run and pack (see the module's docstring)."""
    from cryo_companion._io import repo_root
    from cryo_companion.runs.archive import ARCHIVE_NAME
    from cryo_companion.runs.jobs import all_jobs
    from cryo_companion.runs.pipeline import parse_params
    from cryo_companion.runs.runner import run_window, with_params

    root = repo_root()
    if not args.dry_run and args.stage_structures is None:
        if args.out is None:
            raise ValueError("--out DIR is needed unless --dry-run")
        if (args.out / ARCHIVE_NAME).exists() and not args.force:
            raise ValueError(f"{args.out / ARCHIVE_NAME} exists; --force replaces it")
    if not args.archive_mib > 0:
        raise ValueError(f"--archive-mib must be positive, got {args.archive_mib}")
    jobs = with_params(all_jobs(root), parse_params(args.param))
    if args.only:
        unknown = set(args.only) - {j.name for j in jobs}
        if unknown:
            raise ValueError(f"unknown job(s) {sorted(unknown)}; jobs: "
                             f"{', '.join(j.name for j in jobs)}")
        jobs = [j for j in jobs if j.name in args.only]
    steps, _ = run_window(jobs, root, args.out, budget_s=args.budget_s, margin_s=args.margin_s,
                          device=args.device, limit_bytes=int(args.archive_mib * 2**20),
                          dry_run=args.dry_run or args.stage_structures is not None,
                          gpu_jobs_only=args.gpu_jobs_only)
    if args.stage_structures is not None:
        return _stage(args, [s.job for s in steps if s.status not in ("done", "needs a GPU")
                             and not (args.gpu_jobs_only and not s.job.needs_gpu)])
    return 1 if any(s.status in ("failed", "stopped") for s in steps) else 0


def _stage(args: argparse.Namespace, jobs: list[Job]) -> int:
    """Copy the structure files of ``jobs`` into ``--stage-structures DIR``."""
    from cryo_companion.runs.staging import stage_structures, structure_files

    mirror = os.environ.get("CRYO_COMPANION_STRUCTURES")
    if not mirror:
        raise ValueError("CRYO_COMPANION_STRUCTURES is not set: no structures mirror to copy")
    src = Path(mirror)
    files, why = structure_files(jobs, src)
    size = stage_structures(files, src, args.stage_structures, force=args.force)
    print(f"copied {len(files)} files ({size / 2**20:.2f} MiB; {why}) from {src} to "
          f"{args.stage_structures}")
    return 0
