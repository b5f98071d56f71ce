# Switchboard: `make demo` and `make test` set up everything they need on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install demo test check lint format typecheck bench up clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

demo: install
	$(BIN)/switchboard demo

up: install
	$(BIN)/switchboard up

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check app workers tests migrations
	$(BIN)/ruff format --check app workers tests migrations

typecheck: install
	$(BIN)/mypy

check: lint typecheck test

format: install
	$(BIN)/ruff format app workers tests migrations
	$(BIN)/ruff check --fix app workers tests migrations

bench: install
	$(BIN)/switchboard bench throughput --json

clean:
	rm -rf .switchboard .pytest_cache .mypy_cache .ruff_cache
