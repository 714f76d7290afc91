# Billfold's commands. Needs GNU make and python3 >= 3.11; everything else goes into .venv.
# `make` alone lists the targets. docs/operations.md explains the environment variables.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
# pip install runs again only when pyproject.toml changes (or .venv is gone)
INSTALLED := $(VENV)/.installed
# extra arguments for pytest, e.g. make test PYTEST_ARGS="-x tests/celery"
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install run test lint check format migrate seed db-start db-stop bench clean distclean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: $(INSTALLED) ## create .venv and install Billfold with its dev tools

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Billfold needs Python >= 3.11 (PYTHON=$(PYTHON) is older)"; exit 1; }
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null \
		|| { echo "$(PYTHON) cannot create virtualenvs: install python3-venv (Debian/Ubuntu)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	@touch $@

run: install ## web + Celery worker + beat on http://127.0.0.1:$PORT (8000); Ctrl-C stops all
	$(PY) bin/run.py

test: install ## the whole test suite (embedded PostgreSQL unless DATABASE_URL is set)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: install ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy's Django plugin loads the settings; a placeholder DATABASE_URL keeps them from starting
# the embedded PostgreSQL (nothing connects to it)
check: install ## the layering contracts (import-linter) and the type check (mypy)
	$(BIN)/lint-imports
	DATABASE_URL=postgresql://typecheck.invalid/billfold $(BIN)/mypy

format: install ## sort imports and format the code
	$(BIN)/ruff check --select I --fix .
	$(BIN)/ruff format .

migrate: install ## apply the migrations
	$(PY) manage.py migrate

seed: install ## load the demo data (login admin / billfold-demo)
	$(PY) manage.py seed_demo

db-start: install ## start the embedded PostgreSQL (.data/pg) and print its URL
	$(PY) -m config.embedded_pg start

db-stop: install ## stop the embedded PostgreSQL (the data stays)
	$(PY) -m config.embedded_pg stop

bench: install ## the performance benchmark (docs: docs/quality.md, docs/performance.md)
	@if [ -f bin/bench ] && [ -x bin/bench ]; then PATH="$(CURDIR)/$(BIN):$$PATH" bin/bench; \
	elif [ -f bin/bench ]; then $(PY) bin/bench; \
	elif [ -f bin/bench.py ]; then $(PY) bin/bench.py; \
	else echo "make bench: there is no benchmark yet; it arrives with the metering issue (bin/bench)."; \
		exit 1; fi

clean: ## remove caches (keeps .venv and .data)
	find . \( -path ./$(VENV) -o -path ./.data -o -path ./.git \) -prune -o \
		-name __pycache__ -type d -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache .mypy_cache .import_linter_cache .grimp_cache .hypothesis build

distclean: clean ## also stop the embedded PostgreSQL and delete .venv and .data (all local data!)
	@if [ -x $(PY) ] && [ -d .data/pg ]; then $(PY) -m config.embedded_pg stop; fi
	rm -rf $(VENV) .data
