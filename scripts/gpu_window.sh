#!/usr/bin/env bash
# One GPU window: set up (scripts/gpu_setup.sh), then run every pending paper-scale job that fits
# and pack what comes back into OUT/paper-window.tar.gz (`cryo-companion paper`). BUDGET_S counts
# from this script's start (the set-up is taken out of it); give the command that runs this
# script a limit above BUDGET_S. Extra arguments go to `cryo-companion paper`.
#   CRYO_COMPANION_COMMIT=<commit> bash scripts/gpu_window.sh OUT BUDGET_S [--gpu-jobs-only ...]
# Afterwards, where the repository is: cryo-companion unpack OUT/paper-window.tar.gz
set -uo pipefail
start=$(date +%s)
out=${1:?usage: gpu_window.sh OUT BUDGET_S [paper options]}
budget=${2:?usage: gpu_window.sh OUT BUDGET_S [paper options]}
shift 2
mkdir -p "$out" && out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
# shellcheck source=scripts/gpu_setup.sh
source scripts/gpu_setup.sh "${CRYO_COMPANION_COMMIT:-}" \
  || { echo "gpu_window: set-up failed" >&2; exit 3; }
left=$(( budget - ($(date +%s) - start) ))
echo "gpu_window: set-up took $(( $(date +%s) - start )) s; ${left} s left for the jobs"
exec python3 -m cryo_companion.cli.main paper --budget-s "$left" --out "$out" "$@"
