#!/usr/bin/env bash
# The simulator's GPU checks (issue 4) as one short device call (about 5 minutes on an H100/H200).
# From the repository root of a lent GPU machine, after `source scripts/gpu_setup.sh <commit>`:
#   bash scripts/gpu_check_simulator.sh "$OUT"
# 1. the simulator's, the noise streams' and the rotation's tests on CUDA (the `device` fixture
#    runs them there; nothing is skipped for want of a GPU);
# 2. `cryo-companion bench simulate --device cuda --save` (target: >= 80,000 subtomograms/s at
#    large batch); results/bench_simulate.json is copied to OUT (commit it here: the benchmark
#    merges its entries, one per device and output set, with those already recorded);
# 3. one Table I training run alone on the GPU (batch 32, 300 iterations, 8 batches simulated per
#    call as the paper-scale chapter does), which prints the simulation's share of an iteration
#    (target: under 10 %); its summary.json is copied to OUT.
# Every step runs even if an earlier one fails; the exit status says whether all passed.
set -uo pipefail
out=${1:?usage: gpu_check_simulator.sh OUT_DIR}
mkdir -p "$out"
status=0
python3 -m pytest -q -p no:cacheprovider tests/test_simulate_subtomogram.py tests/test_rng.py \
  tests/test_rotation.py 2>&1 | tee "$out/tests.log" | tail -5 || status=1
python3 -m cryo_companion.cli.main bench simulate --device cuda --save 2>&1 \
  | tee "$out/bench.log" | tail -4 || status=1
cp results/bench_simulate.json "$out/" || status=1
python3 -m cryo_companion.cli.main train --arm randomized --seed 0 --iters 300 --sim-chunk 8 \
  --checkpoint-every 0 --val-every 0 --precision bf16 --device cuda --quiet \
  --out "$out/train_check" 2>&1 | tee "$out/train.log" | tail -2 || status=1
cp "$out/train_check/summary.json" "$out/train_summary.json" && rm -rf "$out/train_check" \
  || status=1
exit $status
