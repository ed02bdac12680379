# The same commands for every developer and for CI.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROTOS := $(wildcard protos/authsvc/v1/*.proto)

.PHONY: install gen lint test run bench postgres clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

gen: $(STAMP)
	$(BIN)/python -m authsvc.gen

lint: $(STAMP)
	$(BIN)/ruff check authsvc tests bench migrations
	$(BIN)/ruff format --check authsvc tests bench migrations
	$(BIN)/mypy

# Starts the local PostgreSQL cluster when it is installed but down.
postgres:
	@bash .ci/ensure-postgres

test: $(STAMP) postgres
	$(BIN)/python -m pytest $(PYTEST_ARGS)

run: $(STAMP)
	$(BIN)/authsvc serve

bench: $(STAMP) postgres
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
