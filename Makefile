# Two commands on a fresh Debian machine with Python 3.11:
#   make train   set up .venv and run a short real training job
#   make test    set up .venv and run the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
LOGDIR ?= ./logdir/quickstart
# A real pixel task, shrunk to show progress on a CPU within minutes (about 7 on 2 cores):
# 2 epochs of 100 updates at B=16, T=50 with half-width networks.
PARAMS ?= {defaults: [dreamer], tasks: [cartpole_balance], batch_shape: [16, 50], \
  cnn_depth: 16, model_size: 100, state_size: 20, num_units: 200, num_seed_episodes: 2, \
  num_seed_steps: 1000, train_steps: 1600, test_steps: 16, collect_every: 1600, \
  max_steps: 3232, train_log_every: 800}
# One test worker per core (at most 4: each holds a TensorFlow runtime), the slowest
# tests listed at the end.
TEST_ARGS ?= -n auto --maxprocesses 4 --dist worksteal --durations=15
# e.g. BENCH_ARGS="--params '{precision: 16, jit: True}' --batch 50 50"
BENCH_ARGS ?=
RENDER_PACKAGES := libegl1 libopengl0 libgl1-mesa-dri

.PHONY: setup system train test benchmark clean

setup: system $(STAMP)

# Headless MuJoCo rendering needs EGL and Mesa; install them when we are root on Debian.
system:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    ! dpkg -s $(RENDER_PACKAGES) >/dev/null 2>&1; then \
	  echo "Installing $(RENDER_PACKAGES)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(RENDER_PACKAGES); \
	fi

$(STAMP): requirements.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q -r requirements.txt
	$(VENV)/bin/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

train: setup
	$(VENV)/bin/python -m dreamer.scripts.train --logdir $(LOGDIR) --params '$(PARAMS)'

test: setup
	$(VENV)/bin/python -m pytest tests $(TEST_ARGS)

benchmark: setup
	$(VENV)/bin/python scripts/benchmark.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) *.egg-info
