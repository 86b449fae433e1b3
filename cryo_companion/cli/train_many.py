"""Train several Table I runs (arms x seeds), by default in one process, N runs per step.

Each run gets its own folder ROOT/ARM_seedK (checkpoint.pt, weights.pt, summary.json); a run
already finished with the same settings is skipped, an interrupted one resumes from its
checkpoint. Under torchrun the runs are spread over the processes, each on its own GPU
(cuda:LOCAL_RANK) or the CPU.

--export saves each run, as soon as its group has trained, where the repository keeps it:
its weights in float16 in results/weights/ (table1_ARM_seedK.pt, ablation_NAME_seedK.pt) and
its training record in results/training/, with provenance; a run already exported with the
same settings is not trained again (the GPU windows' jobs train this way). --precision checked
trains in bf16 if the recorded precision check (results/table1_precision_check.json, made once
on this GPU model) finds that it changes nothing, else in TF32.

On one GPU: cryo-companion train-many --root runs/table1 --iters 15000 --sim-chunk 8
--device cuda. On G GPUs of one machine: torchrun --standalone --nproc_per_node G
-m cryo_companion.cli.main train-many (same options).
"""
from __future__ import annotations

import argparse
import json
import sys

COMMAND = "train-many"


def add_args(p: argparse.ArgumentParser) -> None:
    """Arguments of ``cryo-companion train-many``."""
    from cryo_companion.papers.che2019.train import all_arms

    p.add_argument("--root", required=True, help="folder of the run folders")
    p.add_argument("--arms", nargs="+", default=["randomized", "baseline"],
                   choices=list(all_arms()),
                   help="simulator presets (default: the paper's two; ablation:NAME are the "
                        "one-factor ablations)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2],
                   help="seeds per arm (default 0 1 2)")
    p.add_argument("--iters", type=int, default=15_000, help="SGD iterations (paper: 15000)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--batch-size", type=int, default=32, help="subtomograms per iteration (32)")
    p.add_argument("--checkpoint-every", type=int, default=1000,
                   help="iterations between checkpoints (0: only at the end)")
    p.add_argument("--val-every", type=int, default=500,
                   help="iterations between validation evaluations (0: none)")
    p.add_argument("--val-size", type=int, default=256, help="simulated validation subtomograms")
    p.add_argument("--precision", default="tf32", choices=["fp32", "tf32", "bf16", "checked"],
                   help="arithmetic (default tf32: TF32 on CUDA, fp32 on the CPU; checked: bf16 "
                        "where the recorded precision check allows it, else tf32)")
    p.add_argument("--export", action="store_true",
                   help="save each run's float16 weights and training record in results/ as "
                        "soon as its group has trained; skip runs already exported")
    p.add_argument("--sim-chunk", type=int, default=1,
                   help="batches simulated per simulator call (must divide --checkpoint-every)")
    p.add_argument("--strategy", default="auto", choices=["auto", "loop", "vmap"],
                   help="step of the runs trained together (default auto)")
    p.add_argument("--launcher", default="inprocess", choices=["inprocess", "processes"],
                   help="inprocess (default): N runs per step; processes: one subprocess each")
    p.add_argument("--config-json", default=None,
                   help="base TrainConfig as JSON for every run (arm and seed are set per run; "
                        "overrides the other hyper-parameter options)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    """Run ``cryo-companion train-many``."""
    from dataclasses import replace

    from cryo_companion.devices import tune_cpu_allocator
    from cryo_companion.learn.distributed import rank_device, rank_info
    from cryo_companion.papers.che2019.train import TrainConfig, checked_precision, train_many
    from cryo_companion.papers.che2019.weights import as_exported, train_and_export

    tune_cpu_allocator()
    if args.config_json:
        base = TrainConfig.from_dict(json.loads(args.config_json))
    else:
        precision = args.precision
        if precision == "checked":
            precision, rec = checked_precision(rank_device(args.device, rank_info()))
            if rec is not None:
                print(f"precision check (results/{rec['name']}.json): relative difference "
                      f"{100 * rec['data']['relative_difference']:.3f} % -> {precision}",
                      file=sys.stderr)
        base = TrainConfig(iters=args.iters, batch_size=args.batch_size,
                           checkpoint_every=args.checkpoint_every, val_every=args.val_every,
                           val_size=args.val_size, precision=precision,
                           sim_chunk=args.sim_chunk)
    configs = [replace(base, arm=a, seed=s) for a in args.arms for s in args.seeds]
    if args.export and args.precision == "checked":
        # exported in bf16 or tf32 by an earlier window (another check): not trained again
        configs = [as_exported(c) for c in configs]
    if args.export:
        records = train_and_export(configs, args.root, args.device, launcher=args.launcher,
                                   strategy=args.strategy, progress=not args.quiet,
                                   on_export=lambda r: print(
                                       f"exported {r['data']['arm']} seed {r['data']['seed']} "
                                       f"-> results/weights/{r['data']['weights']}",
                                       file=sys.stderr, flush=True))
        if rank_info().rank == 0:
            for record in records:
                d, t = record["data"], record["data"]["timing"]
                print(f"{d['arm']} seed {d['seed']}: {d['config']['iters']} iterations -> "
                      f"results/weights/{d['weights']} ({d['state_dtype']}); simulation "
                      f"{t['sim_ms_per_iter']:.2f} ms/iter, network {t['net_ms_per_iter']:.2f} "
                      "ms/iter")
        return 0
    runs = train_many(configs, args.root, args.device, launcher=args.launcher,
                      strategy=args.strategy, progress=not args.quiet)
    if rank_info().rank == 0:
        for r in runs:
            c, t = r.summary["config"], r.summary["timing"]
            print(f"{c['arm']} seed {c['seed']}: {c['iters']} iterations -> {r.weights}; "
                  f"simulation {t['sim_ms_per_iter']:.2f} ms/iter, network "
                  f"{t['net_ms_per_iter']:.2f} ms/iter")
    return 0
