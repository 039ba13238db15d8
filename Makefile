# SonoTrace: `make run` to start it, `make test` to check it. See README.md.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
# Rebuilt whenever the pinned dependencies or the installer change.
STAMP := $(VENV)/.sonotrace-installed
PYTEST_ARGS ?=
HOST ?= 127.0.0.1
SERVER_PORT ?= 5000
CLIENT_PORT ?= 8050

.PHONY: help install test lint run bench clean

help:
	@echo "make install  system packages (apt) + $(VENV) with the pinned dependencies"
	@echo "make run      model server on :$(SERVER_PORT) and annotation client on :$(CLIENT_PORT)"
	@echo "make test     install, then the whole pytest suite (browser tests included)"
	@echo "make lint     ruff check"
	@echo "make bench    run the benchmarks in bench/"
	@echo "make clean    remove $(VENV), caches and test artifacts"

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install.sh
	VENV=$(VENV) scripts/install.sh
	@touch $@

# pytest exits 5 when it collected no test: that is a failure here, like any other non-zero.
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(PY) -m ruff check .

run: install
	$(PY) scripts/run.py --host $(HOST) --server-port $(SERVER_PORT) --client-port $(CLIENT_PORT)

bench: install
	@shopt -s nullglob; scripts=(bench/*.py); \
	if [ $${#scripts[@]} -eq 0 ]; then echo "no benchmarks in bench/"; exit 1; fi; \
	for script in "$${scripts[@]}"; do \
		echo "==> $$script"; $(PY) "$$script"; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis test-artifacts
