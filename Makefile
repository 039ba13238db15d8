# SonoTrace: `make run` to start it, `make test` to check it. See README.md.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
# The extras of pyproject.toml each set installs (scripts/install.sh's EXTRAS; the Debian
# packages follow them): what running needs, and everything (tests, training, lint,
# benchmarks), which includes it.
RUN_EXTRAS := server,client,postgres
ALL_EXTRAS := $(RUN_EXTRAS),train,test
# One stamp per set, rebuilt whenever the pinned dependencies or the installer change.
RUN_STAMP := $(VENV)/.sonotrace-installed-run
ALL_STAMP := $(VENV)/.sonotrace-installed-all
PYTEST_ARGS ?=
HOST ?= 127.0.0.1
# tcsh exports HOST as the machine's own name: that is no bind address asked for, and
# binding to it would open both services to the network.
ifeq ($(origin HOST),environment)
ifeq ($(HOST),$(shell hostname 2>/dev/null))
HOST := 127.0.0.1
endif
endif
SERVER_PORT ?= 5000
CLIENT_PORT ?= 8050

.PHONY: help install install-all test lint run bench clean

help:
	@echo "make install      what running needs: apt packages + $(VENV) with [$(RUN_EXTRAS)]"
	@echo "make install-all  everything, for tests, training, lint, benchmarks: [$(ALL_EXTRAS)]"
	@echo "make run          install, then model server on :$(SERVER_PORT) and annotation client on :$(CLIENT_PORT)"
	@echo "make test         install-all, then the whole pytest suite (browser tests included)"
	@echo "make lint         install-all, then ruff check"
	@echo "make bench        install-all, then the benchmarks in bench/"
	@echo "make clean        remove $(VENV), caches and test artifacts"

install: $(RUN_STAMP)

install-all: $(ALL_STAMP)

# EXTRAS given here, so that one set in the shell cannot change what a stamp stands for.
$(RUN_STAMP): pyproject.toml scripts/install.sh scripts/constraints.txt
	VENV=$(VENV) EXTRAS=$(RUN_EXTRAS) scripts/install.sh
	@touch $@

# Everything includes what running needs: `make run` after `make test` installs nothing.
$(ALL_STAMP): pyproject.toml scripts/install.sh scripts/constraints.txt
	VENV=$(VENV) EXTRAS=$(ALL_EXTRAS) scripts/install.sh
	@touch $@ $(RUN_STAMP)

# pytest exits 5 when it collected no test: that is a failure here, like any other non-zero.
test: install-all
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install-all
	$(PY) -m ruff check .

run: install
	$(PY) scripts/run.py --host $(HOST) --server-port $(SERVER_PORT) --client-port $(CLIENT_PORT)

bench: install-all
	@shopt -s nullglob; scripts=(bench/*.py); \
	if [ $${#scripts[@]} -eq 0 ]; then echo "no benchmarks in bench/"; exit 1; fi; \
	for script in "$${scripts[@]}"; do \
		echo "==> $$script"; $(PY) "$$script"; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis test-artifacts
