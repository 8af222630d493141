# capbench: every workflow is a make target. `make test` builds the venv if it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
ARCH := $(shell uname -m)
ifeq ($(ARCH),aarch64)
TORCH_PINS := torch==2.9.1 torchvision==0.24.1
else
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
endif
PROFILE ?= paper
SCENES_DIR ?= $(or $(CAPBENCH_SCENES),scenes_data)
export CAPBENCH_RESULTS ?= results
PYTEST_ARGS ?=

.PHONY: setup test test-slow lint demo bench leaderboard reproduce-all reproduce-gordo clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned, then capbench with the same pins as constraints so that no
	# dependency can swap the build.
	$(PIP) install -q $(TORCH_PINS)
	printf '%s\n' $(TORCH_PINS) > $(VENV)/torch-pins.txt
	$(PIP) install -q -c $(VENV)/torch-pins.txt -e '.[dev]'
	$(PY) -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
	touch $@

setup: $(VENV)/.installed

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-slow: setup
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check capbench tests benchmarks
	$(VENV)/bin/ruff format --check capbench tests benchmarks

bench: setup
	@for f in benchmarks/perf/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
