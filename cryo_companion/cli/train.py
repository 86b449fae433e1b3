"""Train the Che et al. 2019 classifier + segmenter on subtomograms simulated on the fly.

One arm ("randomized": domain randomization; "baseline": fixed parameters; both also with
context randomization; or a one-factor ablation, "ablation:NAME") and one seed per call;
writes OUT/checkpoint.pt (every --checkpoint-every iterations), OUT/weights.pt and
OUT/summary.json. --resume continues an interrupted run exactly from its checkpoint; a folder
that already holds a run is refused unless --resume (continue it) or --force (start over) is
given. Ctrl-C stops the run and prints the command that continues it.

Example: cryo-companion train --arm randomized --seed 0 --iters 15000 --out runs/randomized_seed0
"""
from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryo_companion._io import OutputPlan

COMMAND = "train"


def add_args(p: argparse.ArgumentParser) -> None:
    """Arguments of ``cryo-companion train``."""
    from cryo_companion.papers.che2019.train import all_arms

    p.add_argument("--arm", required=True, choices=list(all_arms()),
                   help="simulator preset: domain randomization or the fixed baseline, each "
                        "also with context randomization (neighbours packed in the box), or a "
                        "one-factor ablation (ablation:NAME, one randomized factor fixed)")
    p.add_argument("--seed", type=int, default=0, help="seed (weights, batches, validation set)")
    p.add_argument("--iters", type=int, default=15_000, help="SGD iterations (paper: 15000)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder of the run")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--batch-size", type=int, default=32, help="subtomograms per iteration (32)")
    p.add_argument("--checkpoint-every", type=int, default=1000,
                   help="iterations between checkpoints (0: only at the end)")
    p.add_argument("--val-every", type=int, default=500,
                   help="iterations between validation evaluations (0: none)")
    p.add_argument("--val-size", type=int, default=256, help="simulated validation subtomograms")
    p.add_argument("--precision", default="tf32", choices=["fp32", "tf32", "bf16"],
                   help="arithmetic on CUDA (default tf32; CPU always runs fp32)")
    p.add_argument("--sim-chunk", type=int, default=1,
                   help="batches simulated per simulator call (must divide --checkpoint-every)")
    p.add_argument("--config-json", default=None,
                   help="the whole TrainConfig as JSON (as train_many passes it); overrides the "
                        "other hyper-parameter options")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _run_files(args: argparse.Namespace) -> list[Path]:
    from cryo_companion.papers.che2019.train import CHECKPOINT, SUMMARY, WEIGHTS

    return [Path(args.out) / f for f in (CHECKPOINT, WEIGHTS, SUMMARY)]


def outputs(args: argparse.Namespace) -> OutputPlan:
    """Return the run's files: an existing run is continued (--resume) or replaced (--force)."""
    from cryo_companion._io import OutputPlan

    return OutputPlan(files=_run_files(args), force=args.force or args.resume,
                      exists_hint="its folder holds a run: pass --resume to continue it, or "
                                  "--force to start over (replacing its checkpoint, weights and "
                                  "summary)")


def interrupted(args: argparse.Namespace) -> str:
    """Return what to tell the user after Ctrl-C: how to continue from the last checkpoint."""
    ckpt = _run_files(args)[0]
    if not ckpt.is_file():
        return "no checkpoint was written yet; rerun the same command to start again"
    argv = [a for a in getattr(args, "argv", None) or ["train", "..."]
            if a not in ("--resume", "--force")]
    cmd = " ".join(shlex.quote(a) for a in ["cryo-companion", *argv, "--resume"])
    return f"continue from the last checkpoint ({ckpt}) with: {cmd}"


def main(args: argparse.Namespace) -> int:
    """Run ``cryo-companion train``."""
    from cryo_companion.devices import resolve_device, tune_cpu_allocator
    from cryo_companion.papers.che2019.train import TrainConfig, train

    tune_cpu_allocator()  # CPU simulation on the fly (no effect on GPU work)

    if args.config_json:
        cfg = TrainConfig.from_dict(json.loads(args.config_json))  # reads the old key lam too
        if (cfg.arm, cfg.seed) != (args.arm, args.seed):
            raise ValueError(f"--config-json is for {cfg.arm} seed {cfg.seed}, not "
                             f"{args.arm} seed {args.seed}")
    else:
        cfg = TrainConfig(arm=args.arm, seed=args.seed, iters=args.iters,
                          batch_size=args.batch_size, checkpoint_every=args.checkpoint_every,
                          val_every=args.val_every, val_size=args.val_size,
                          precision=args.precision, sim_chunk=args.sim_chunk)
    res = train(cfg, args.out, resolve_device(args.device), resume=args.resume,
                progress=not args.quiet)
    t = res.summary["timing"]
    print(f"{cfg.arm} seed {cfg.seed}: {cfg.iters} iterations -> {res.weights}; "
          f"simulation {t['sim_ms_per_iter']:.2f} ms/iter, network {t['net_ms_per_iter']:.2f} "
          f"ms/iter ({100 * t['sim_fraction']:.1f} % simulation)")
    return 0
