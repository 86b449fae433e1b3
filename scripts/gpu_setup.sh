#!/usr/bin/env bash
# Source this from the repository root on a GPU machine that has Python 3 and torch:
#   source scripts/gpu_setup.sh [COMMIT]
# - installs the carried wheels (.whl/, from scripts/fetch_gpu_wheels.sh) into /tmp/site, if the
#   folder is there (a machine with network installs the package's extras instead: README);
# - puts the package on the path (no install: the tree is the package);
# - points the package at the carried structures (.structures/, from `cryo-companion paper
#   --stage-structures .structures`) and turns downloads off, if that folder is there;
# - records COMMIT (or $CRYO_COMPANION_COMMIT) in the provenance, for a copy of the tree without
#   .git; writes go into the tree's results/ (CRYO_COMPANION_RESULTS is unset).
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --root-user-action=ignore \
    --target /tmp/site .whl/*.whl || return 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH} PATH=/tmp/site/bin:$PATH
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if [ -d .structures ]; then
  export CRYO_COMPANION_STRUCTURES=$PWD/.structures CRYO_COMPANION_OFFLINE=1
fi
if [ -n "${1:-}" ]; then export CRYO_COMPANION_COMMIT=$1; fi
unset CRYO_COMPANION_RESULTS
export PYTHONUNBUFFERED=1
python3 -c "import torch, papermill, jupytext, mrcfile, cryo_companion
gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'
print('torch', torch.__version__, '| cuda:', gpu)" || return 1
