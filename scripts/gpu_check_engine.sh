#!/usr/bin/env bash
# The training engine's GPU checks (issues 12 and 13) as one short device call (about 6 minutes
# on an H200). From the repository root of a lent GPU machine, after
# `source scripts/gpu_setup.sh <commit>`:
#   bash scripts/gpu_check_engine.sh "$OUT"
# 1. learn's tests on CUDA (the `device` fixture): N runs in one step (vmap and loop) against the
#    same runs alone, the loop, the batch sources;
# 2. `cryo-companion bench train --device cuda --save`: ms per step for N = 1, 2, 6, 12 runs in
#    one process (vmap, loop) and in N processes, bf16 as Table I trains, the profile of one
#    step and the fast-step trials (channels-last, bf16, foreach SGD, TF32, torch.compile); the
#    record projects Table I's 6 runs x 15,000 iterations (target <= 240 s) and the simulator's
#    share (target < 10 %); results/bench_train.json is copied to OUT (commit it here: the
#    benchmark merges its device entry with those already recorded);
# 3. Table I's 6 runs trained together in one process for 300 iterations (train-many, bf16, 8
#    batches simulated per call), the six summaries in one file.
# At most 5 files come back. Every step runs even if an earlier one fails; the exit status says
# whether all passed.
set -uo pipefail
out=${1:?usage: gpu_check_engine.sh OUT_DIR}
mkdir -p "$out"
status=0
python3 -m pytest -q -p no:cacheprovider tests/test_learn_multirun.py tests/test_learn_fit.py \
  tests/test_learn_batches.py tests/test_learn_predict.py 2>&1 | tee "$out/tests.log" | tail -5 \
  || status=1
python3 -m cryo_companion.cli.main bench train --device cuda --precision bf16 --iters 20 \
  --warmup 5 --rounds 2 --profile --fast-step --compile --save 2>&1 \
  | tee "$out/bench_train.log" | tail -14 || status=1
cp results/bench_train.json "$out/" || status=1
group=$(mktemp -d)
python3 -m cryo_companion.cli.main train-many --root "$group" --iters 300 --sim-chunk 8 \
  --checkpoint-every 0 --val-every 0 --precision bf16 --device cuda --quiet 2>&1 \
  | tee "$out/train_many.log" | tail -7 || status=1
python3 - "$group" "$out/train_many_summaries.json" <<'PY' || status=1
import json, pathlib, sys
root = pathlib.Path(sys.argv[1])
runs = {d.name: json.loads((d / "summary.json").read_text()) for d in sorted(root.iterdir())}
pathlib.Path(sys.argv[2]).write_text(json.dumps(runs, indent=1))
PY
rm -rf "$group"
exit $status
