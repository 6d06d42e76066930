# flexledger: `make demo` and `make test` install what they need, then run.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMPS := .make
# The native forge of the platform's npm package: node_modules/.bin/forge is a Node wrapper that
# exits 0 whatever forge returned, so a failing test would pass CI. Expanded when a recipe runs,
# after `npm ci` has installed it.
FORGE   = $(or $(firstword $(wildcard node_modules/@foundry-rs/forge-*/bin/forge)),$(error forge's platform package is missing: run `make install`))
# The component distributions, one a folder, each a portion of the namespace package flexledger
# (the edge agent apart); pip installs them with the root's (market/) in one command, from the checkout.
PY_COMPONENTS := core chain identity optimiser oracle edge-agent backend
PYTEST_ARGS ?=
# pytest-xdist workers: one per core. Each worker runs its own anvil and deployment; the service
# tests, which share a database and a broker, take turns (tests/conftest.py). worksteal: the tests
# range from milliseconds to the whole demo, so an idle worker takes over queued ones.
PYTEST_WORKERS ?= auto
# forge's strength: CI (CI=true, as .ci/run is run there) runs the default profile, every fuzz and
# invariant test at the runs its `/// forge-config:` line asks (10,000 for the money-safety
# invariants); elsewhere `make test` runs the `quick` profile of contracts/foundry.toml, the same
# tests with fewer runs. FORGE_PROFILE=default runs the full strength here too.
FORGE_PROFILE ?= $(if $(filter true,$(CI)),default,quick)

.PHONY: help install demo test test-services pytest forge lint typecheck compile check-artifacts bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

install: $(STAMPS)/python $(STAMPS)/node ## Install the Python venv and the pinned Node tools

$(STAMPS)/node: package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm (Node.js 18+) is needed: install Node.js, then run make again"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@mkdir -p $(STAMPS) && touch $@

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is needed (PYTHON=$(PYTHON))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Editable in the default (lenient) mode: each folder is on sys.path, so a new module needs no
# re-install; only a changed pyproject.toml does.
$(STAMPS)/python: pyproject.toml $(PY_COMPONENTS:%=%/pyproject.toml) | $(BIN)/python
	$(BIN)/pip install --quiet $(PY_COMPONENTS:%=-e ./%) -e '.[dev]'
	@mkdir -p $(STAMPS) && touch $@

demo: install ## Run the whole flow end to end on embedded defaults
	$(BIN)/flexledger demo

test: install lint forge pytest ## Install, lint, type-check, run forge and pytest

pytest: install ## pytest on every core (a quick run: PYTEST_ARGS='-m "not slow"')
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# Only the tests that talk to PostgreSQL or an MQTT broker, against the services named by
# FLEXLEDGER_TEST_DATABASE_URL and FLEXLEDGER_TEST_MQTT_URL (see .ci/run).
test-services: install
	$(BIN)/pytest -m services $(PYTEST_ARGS)

forge: install ## Solidity unit, fuzz and invariant tests (offline), gas snapshots checked
	cd contracts && FOUNDRY_PROFILE=$(FORGE_PROFILE) ../$(FORGE) test --gas-snapshot-check=true

lint: install ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/mypy

compile: install ## Compile the contracts and regenerate the Python bindings
	$(BIN)/flexledger compile

check-artifacts: install
	$(BIN)/flexledger compile --check

bench: install ## Run every benchmark (each prints its figures; the last line is JSON)
	@set -e; for b in benchmarks/[!_]*.py; do echo "== $$b"; $(BIN)/python $$b; done

clean: ## Remove the installs and caches (not the committed artifacts)
	rm -rf $(VENV) node_modules $(STAMPS) build contracts/out contracts/cache .mypy_cache .ruff_cache .pytest_cache
