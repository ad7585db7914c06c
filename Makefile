# TradePulse: `make demo` and `make test` each set up everything they need.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORE_COV := --cov=tradepulse.data --cov=tradepulse.indicators --cov=tradepulse.errors \
	--cov=tradepulse.strategy --cov=tradepulse.domain --cov=tradepulse.execution \
	--cov=tradepulse.backtest --cov=tradepulse.costs --cov=tradepulse.metrics \
	--cov=tradepulse.executor --cov=tradepulse.stress --cov=tradepulse.yamlfile --cov=tradepulse.live \
	--cov=tradepulse.sweep --cov=tradepulse.golden

.PHONY: help setup demo test lint typecheck pytest services bench golden-update golden-data clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) ## Create .venv and install TradePulse with its dev tools

demo: $(STAMP) ## Run the main job on the shipped real data (writes reports/)
	$(BIN)/tradepulse demo

lint: $(STAMP) ## ruff lint + format check, mypy --strict on the package
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

typecheck: $(STAMP) ## mypy --strict on tradepulse/
	$(BIN)/mypy

services: ## Install what the tests need outside Python (Prometheus, via apt as root)
	bash observability/install-prometheus.sh

pytest: $(STAMP) services ## Run the test suite with core coverage >= 90%
	$(BIN)/pytest $(CORE_COV) --cov-report=term --cov-fail-under=90

test: lint pytest ## Lint, type-check and run the whole test suite

bench: $(STAMP) ## Run the benchmarks and print their figures
	$(BIN)/python benchmarks/run_all.py

golden-update: $(STAMP) ## Regenerate golden/indicators, golden/backtests and golden/stress (review the diff)
	$(BIN)/tradepulse golden update

golden-data: $(STAMP) ## Re-export golden/data from the arch package (maintainers only)
	$(BIN)/python -m pip install --quiet 'arch==8.0.0'
	$(BIN)/python -m tradepulse.data.samples

clean: ## Remove the virtualenv, caches and reports
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis reports/*
