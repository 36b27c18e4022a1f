# Two commands on a fresh Debian machine with Python 3.11:
#   make train   set up .venv and run a short real training job
#   make test    set up .venv and run the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
LOGDIR ?= ./logdir/quickstart
# A real task that learns within minutes on a CPU: cartpole_swingup from its state vectors
# at action repeat 8 (PlaNet's for cartpole), 1600 updates of the quickstart preset's small
# networks (configs/quickstart.yaml) with the original's value target head, which keeps
# the actor off the bound of its tanh: the real-task learning test's config
# (docs/results.md section 2 has its seeds, random play and cut runs).
PARAMS ?= {defaults: [dreamer, cpu, proprio, quickstart], tasks: [cartpole_swingup], action_repeat: 8, model_lr: 0.002, value_target_head: true, value_target_period: 1600, max_steps: 25680}
# One test worker per core (at most 4: each holds a TensorFlow runtime), the slowest
# tests listed at the end.
TEST_ARGS ?= -n auto --maxprocesses 4 --dist worksteal --durations=15
# e.g. BENCH_ARGS="--params '{precision: 16, jit: True}' --batch 50 50"
BENCH_ARGS ?=
RENDER_PACKAGES := libegl1 libopengl0 libgl1-mesa-dri

.PHONY: setup system train test benchmark gpu-check clean

setup: system $(STAMP)

# Headless MuJoCo rendering needs EGL and Mesa; install them when we are root on Debian.
system:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    ! dpkg -s $(RENDER_PACKAGES) >/dev/null 2>&1; then \
	  echo "Installing $(RENDER_PACKAGES)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(RENDER_PACKAGES); \
	fi

# The pinned stack goes in with uv (itself pinned, installed by the venv's pip): it downloads
# and unpacks in parallel, and compiles every file to bytecode up front. From empty caches
# on 2 cores: 23 s, against 75 s for pip (docs/benchmarks.md); the same versions resolve.
# Bytecode matters: a machine with PYTHONDONTWRITEBYTECODE=1 (ours set it) never writes it,
# and without it every process that imports TensorFlow compiles it again (about 8 s of CPU).
UV_VERSION := 0.13.9
$(STAMP): requirements.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q uv==$(UV_VERSION)
	$(VENV)/bin/uv pip install -q --python $(VENV)/bin/python --compile-bytecode -r requirements.txt
	$(VENV)/bin/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

train: setup
	$(VENV)/bin/python -m dreamer.scripts.train --logdir $(LOGDIR) --params '$(PARAMS)'

test: setup
	$(VENV)/bin/python -m pytest tests $(TEST_ARGS)

benchmark: setup
	$(VENV)/bin/python scripts/benchmark.py $(BENCH_ARGS)

# On a GPU machine: TensorFlow's CUDA libraries, then the prepared check (scripts/gpu_check.py).
GPU_CHECK_OUT ?= gpu_check.json
gpu-check: setup
	$(VENV)/bin/python -m pip install -q 'tensorflow[and-cuda]==2.21.0'
	$(VENV)/bin/python scripts/gpu_check.py --out $(GPU_CHECK_OUT)

clean:
	rm -rf $(VENV) *.egg-info
