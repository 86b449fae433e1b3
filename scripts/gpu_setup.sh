#!/usr/bin/env bash
# Source this on the GPU machine (Python 3.12 + torch, no network) from the repository root:
#   source scripts/gpu_setup.sh <commit>
# It installs the carried wheels (.whl/, from scripts/fetch_gpu_wheels.sh) and the package
# (no dependencies, offline), and points the package at the carried structures (.structures/).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site .whl/*.whl || return 1
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
export PATH=/tmp/site/bin:$PATH
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null 2>&1 \
  || export PYTHONPATH=$PWD:$PYTHONPATH
export CRYO_COMPANION_STRUCTURES=$PWD/.structures
export CRYO_COMPANION_COMMIT=${1:-unknown}
export PYTHONUNBUFFERED=1
python3 -c "import torch, cryo_companion, papermill, mrcfile; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '')"
