#!/usr/bin/env bash
# The SHREC 2020 data set's GPU checks (issue 18) as one short device call (a few minutes on an
# H200 if the 60 s target holds). From the repository root of a lent GPU machine, after
# `source scripts/gpu_setup.sh <commit>` (the structures carried in .structures):
#   bash scripts/gpu_check_shrec_data.sh "$OUT"
# 1. multislice, tilt-series and data-set tests on CUDA (the `device` fixture runs them there);
# 2. `cryo-companion bench shrec-data --device cuda`: one 512^3 model (~2,600 particles, 41
#    tilts, multislice, the SNR pass included), target <= 60 s; results/bench_shrec_data.json is
#    copied to OUT (commit it);
# 3. the chapter at paper scale (model 9 made under $CRYO_COMPANION_DATA): the executed notebook
#    and results/shrec_data.json are copied to OUT (commit both).
# Every step runs even if an earlier one fails; the exit status says whether all passed.
set -uo pipefail
out=${1:?usage: gpu_check_shrec_data.sh OUT_DIR}
mkdir -p "$out"
status=0
python3 -m pytest -q -p no:cacheprovider tests/test_multislice.py tests/test_tiltseries.py \
  tests/test_shrec_dataset.py 2>&1 | tee "$out/tests.log" | tail -5 || status=1
python3 -m cryo_companion.cli.main bench shrec-data --device cuda 2>&1 \
  | tee "$out/bench.log" | tail -3 || status=1
cp results/bench_shrec_data.json "$out/" || status=1
python3 -m cryo_companion.runs.pipeline --scale paper --device cuda --only shrec_data --force \
  2>&1 | tee "$out/chapter.log" | tail -3 || status=1
cp book/chapters/shrec_data.ipynb results/shrec_data.json "$out/" || status=1
exit $status
