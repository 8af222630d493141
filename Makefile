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

.PHONY: setup test test-slow browser lint demo bench leaderboard reproduce-all reproduce-gordo gpu-check-gordo clean

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

# The slow suite includes the leaderboard page in a real headless browser (Debian's chromium).
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else echo "error: the slow tests need chromium: sudo apt-get install -y chromium" >&2; exit 1; fi; }

test-slow: setup browser
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check capbench tests benchmarks
	$(VENV)/bin/ruff format --check capbench tests benchmarks

bench: setup
	@for f in benchmarks/perf/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info

# --- Gordo & Larlus 2017 (benchmarks/gordo2017): Tables 1-2, Figure 2 curves, Figure 3 pairs.
# PROFILE=paper (default) needs Visual Genome at $CAPBENCH_DATA/visual_genome and an ImageNet
# checkpoint (BACKBONE_WEIGHTS=/path/resnet101.pth); PROFILE=scenes writes the scenes data at demo
# size when absent. Extra `capbench reproduce` options: REPRODUCE_ARGS="--seeds 3 --force".
GORDO_VG := $(or $(CAPBENCH_DATA),data)/visual_genome
GORDO_ARGS := $(if $(BACKBONE_WEIGHTS),--backbone-weights $(BACKBONE_WEIGHTS)) $(REPRODUCE_ARGS)

.PHONY: gordo-data
ifeq ($(PROFILE),scenes)
gordo-data: setup
	@test -f $(SCENES_DIR)/scenes.json || $(VENV)/bin/capbench data scenes --out $(SCENES_DIR) --size demo
else
gordo-data:
	@test -f $(GORDO_VG)/region_descriptions.json || { \
	  echo "error: Visual Genome not found at $(GORDO_VG) (no region_descriptions.json)." >&2; \
	  echo "  See data_cards/visual_genome.md to obtain and lay it out, set CAPBENCH_DATA," >&2; \
	  echo "  or run the embedded default: make reproduce-gordo PROFILE=scenes" >&2; exit 1; }
endif

# One mining round + 3 training steps of the paper profile on random images (ResNet-101, 576 px,
# bf16), with images/s and peak GPU memory; then the activation memory per micro-batch setting.
gpu-check-gordo: setup
	$(PY) benchmarks/gordo2017/gpu_check.py step --out $(CAPBENCH_RESULTS)/gordo2017/gpu_check.json
	$(PY) benchmarks/gordo2017/gpu_check.py memory

reproduce-gordo: gordo-data setup
	CAPBENCH_SCENES=$(SCENES_DIR) $(VENV)/bin/capbench reproduce gordo2017 --profile $(PROFILE) $(GORDO_ARGS)
	$(VENV)/bin/capbench leaderboard render --paper gordo2017
	@cat $(CAPBENCH_RESULTS)/leaderboard/gordo2017.md
	@echo "Figure 3 (grounded pairs): $(CAPBENCH_RESULTS)/gordo2017/figure3-$(PROFILE)/"

# --- Malali & Keller 2022 (benchmarks/malali2022): COCO 1K/5K (continuous and on PQ codes),
# Flickr30k and Flickr8k tables: Malali, its ablations, VSE0, VSE++. PROFILE=paper (default) needs
# COCO with Karpathy splits at $CAPBENCH_DATA/coco (and Flickr30k / Flickr8k beside it) and an
# ImageNet ResNet-152 (BACKBONE_WEIGHTS=/path/resnet152.pth); PROFILE=scenes writes the scenes
# data at demo size when absent. Extra `capbench reproduce` options: REPRODUCE_ARGS="--seeds 3".
MALALI_COCO := $(or $(CAPBENCH_DATA),data)/coco
MALALI_ARGS := $(if $(BACKBONE_WEIGHTS),--backbone-weights $(BACKBONE_WEIGHTS)) $(REPRODUCE_ARGS)

.PHONY: malali-data reproduce-malali
ifeq ($(PROFILE),scenes)
malali-data: setup
	@test -f $(SCENES_DIR)/scenes.json || $(VENV)/bin/capbench data scenes --out $(SCENES_DIR) --size demo
else
malali-data:
	@test -f $(MALALI_COCO)/dataset_coco.json || { \
	  echo "error: COCO with Karpathy splits not found at $(MALALI_COCO) (no dataset_coco.json): see data_cards/coco.md, set CAPBENCH_DATA, or run make reproduce-malali PROFILE=scenes" >&2; exit 1; }
endif

reproduce-malali: malali-data setup
	CAPBENCH_SCENES=$(SCENES_DIR) $(VENV)/bin/capbench reproduce malali2022 --profile $(PROFILE) $(MALALI_ARGS)
	$(VENV)/bin/capbench leaderboard render --paper malali2022
	@cat $(CAPBENCH_RESULTS)/leaderboard/malali2022.md

# --- The leaderboard (capbench/bench): every paper under benchmarks/ with configs for PROFILE.
# `make demo` is the README's main command: scenes data at demo size if absent, every implemented
# paper on the scenes profile, then the leaderboard; it prints the path of index.html last.
# A failing row still lets the leaderboard render; the exit status reports the failure.
leaderboard: setup
	$(VENV)/bin/capbench leaderboard render $(if $(PAPER),--paper $(PAPER))

reproduce-all: setup
	@if [ "$(PROFILE)" = scenes ]; then test -f $(SCENES_DIR)/scenes.json || $(VENV)/bin/capbench data scenes --out $(SCENES_DIR) --size demo; fi
	CAPBENCH_SCENES=$(SCENES_DIR) $(VENV)/bin/capbench reproduce all --profile $(PROFILE) $(REPRODUCE_ARGS); \
	  rc=$$?; $(VENV)/bin/capbench leaderboard render; exit $$rc

demo: setup
	@test -f $(SCENES_DIR)/scenes.json || $(VENV)/bin/capbench data scenes --out $(SCENES_DIR) --size demo
	CAPBENCH_SCENES=$(SCENES_DIR) $(VENV)/bin/capbench reproduce all --profile scenes $(REPRODUCE_ARGS); \
	  rc=$$?; $(VENV)/bin/capbench leaderboard render; exit $$rc
