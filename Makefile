# cryo_companion — one command each: `make book` (site), `make test` (CI suite), `make paper` (GPU).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export CRYO_COMPANION_STRUCTURES ?= $(abspath ../shared/structures)
export PYTHONUNBUFFERED := 1

.PHONY: env book test lint notebook-outputs paper paper-plan gpu-wheels bench clean

# The environment: CPU torch first (a pinned local wheel, never an unpinned multi-GB CUDA build),
# then the package with its book and test extras.
$(BIN)/cryo-companion: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[book,test,dev]'
	touch $@

env: $(BIN)/cryo-companion

# Build the static site from the committed executed notebooks (nothing is executed).
book: env
	source $(BIN)/activate && jupyter-book build book/

# The CI suite: unit tests (with the book build), then every notebook at smoke scale compared
# with its stored outputs (strict nbval, masks in notebooks/nbval_sanitize.cfg). Two runs: the
# unit tests' conftest points results/ at a scratch folder, the notebooks must see results/.
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with notebooks/nbval_sanitize.cfg
test: env lint
	source $(BIN)/activate && python -m pytest tests -p no:cacheprovider \
	  && python -m pytest notebooks $(NBVAL) -p no:cacheprovider

# Style and types (settings in pyproject.toml): ruff (pycodestyle, pyflakes, isort, numpy
# docstrings, complexity at most 10) on the package, tests and chapters; mypy on the package.
lint: env
	source $(BIN)/activate && ruff check cryo_companion tests notebooks && mypy cryo_companion

# Regenerate the stored smoke-scale outputs of notebooks/*.ipynb that strict nbval compares
# (after a change that moves a smoke-scale number: run it, then read `git diff notebooks/`).
notebook-outputs: env
	source $(BIN)/activate && python -m cryo_companion.runs.notebook_outputs

# Paper scale: execute every chapter on the GPU with papermill, in _toc.yml order (resumable).
paper: env
	source $(BIN)/activate && python -m cryo_companion.runs.pipeline --scale paper --device cuda

# The paper-scale jobs still pending, their estimated cost and what fits one 540 s GPU window.
paper-plan: env
	source $(BIN)/activate && cryo-companion paper --dry-run

# Wheels the GPU machine lacks (papermill, jupytext, mrcfile, ipykernel, ...) into .whl/.
gpu-wheels:
	scripts/fetch_gpu_wheels.sh

bench: env
	source $(BIN)/activate && cryo-companion bench simulate --device all

clean:
	rm -rf book/_build build .pytest_cache
