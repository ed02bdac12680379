# The same commands for every developer and for CI.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROTOS := $(wildcard protos/authsvc/v1/*.proto)
# bench/ is linted once it exists (ruff fails on a missing path).
PY_DIRS := authsvc tests migrations clients/python $(wildcard bench)
# Node tooling (buf, protoc-gen-es, the TypeScript client) lives in node_modules, pinned
# by package-lock.json; `npm ci` runs whenever the lock or a package.json changes.
NPM_STAMP := node_modules/.installed
BUF := node_modules/.bin/buf
# The client's pinned TypeScript: npm nests it under clients/typescript because
# protoc-gen-es pulls another version into the top-level node_modules.
TSC = $(firstword $(wildcard clients/typescript/node_modules/.bin/tsc) node_modules/.bin/tsc)
RELEASED_CONTRACT := protos/released/authsvc-v1.binpb

.PHONY: install gen lint test run bench soak postgres clean release-contract container-test \
	client-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

SERVE_STAMP := $(VENV)/.installed-serve
PIP_INPUTS := pyproject.toml setup.py clients/python/pyproject.toml
# The server depends on authsvc-client by the file URL of ./clients/python (setup.py), so
# pip installs a copy of it; the second command makes that an editable install, so edits
# to clients/python (and `make gen`) take effect without reinstalling.
# `make run` needs only what serving needs: the server and its runtime dependencies.
$(SERVE_STAMP): $(PIP_INPUTS) | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	$(BIN)/pip install --quiet --no-deps -e ./clients/python
	touch $(SERVE_STAMP)

# Everything else (tests, lint, gen) also needs the dev tools.
$(STAMP): $(PIP_INPUTS) | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps -e ./clients/python
	touch $(STAMP) $(SERVE_STAMP)

$(NPM_STAMP): package.json package-lock.json clients/typescript/package.json
	npm ci --no-audit --no-fund
	touch $(NPM_STAMP)

install: $(STAMP) $(NPM_STAMP)

gen: $(STAMP) $(NPM_STAMP)
	$(BIN)/python -m authsvc.runtime.codegen
	$(BUF) generate --template buf.gen.ts.yaml
	$(BUF) generate --template clients/go/buf.gen.yaml

lint: $(STAMP) $(NPM_STAMP)
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BUF) lint
	$(BUF) format protos --diff --exit-code
	$(BUF) breaking protos --against $(RELEASED_CONTRACT)
	$(BIN)/hadolint Dockerfile
	$(TSC) -p clients/typescript --noEmit
	@# The Go client (Go from .ci/deps-go.sh): formatting, then vet of all its packages.
	@unformatted="$$(gofmt -l clients/go)"; if [ -n "$$unformatted" ]; then \
		echo "gofmt needed: $$unformatted"; exit 1; fi
	clients/go/offline-go.sh vet ./...

# Records the current contract as released: `buf breaking` then guards it. Run it only
# deliberately, when a new version of the contract ships, and commit the image.
release-contract: $(NPM_STAMP)
	$(BUF) build protos --exclude-source-info -o $(RELEASED_CONTRACT)

# Starts the local PostgreSQL cluster when it is installed but down.
postgres:
	@bash .ci/ensure-postgres

# The suite runs on two processes by default (pytest-xdist): no test depends on another's
# order or process. PYTEST_ARGS="tests/x.py -x" runs a part of it, in one process.
PYTEST_ARGS ?= -n 2
test: $(STAMP) $(NPM_STAMP) postgres client-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The Go and Java client tests build against Debian's packages (Go, protoc, grpc-java):
# apt-get installs the missing ones (as root, or through sudo); when all are installed
# the scripts only ask dpkg, in about a second, and never touch apt. buf and the
# TypeScript tooling come from node_modules ($(NPM_STAMP)).
client-deps:
	@bash .ci/deps-go.sh
	@bash .ci/deps-java.sh

run: $(SERVE_STAMP)
	$(BIN)/authsvc serve

# The scenarios, then account events: commit-to-delivery with a streaming consumer, and
# how fast one consumer drains a backlog (EVENTS_BENCH_ARGS="--database sqlite" for SQLite);
# access tokens (verify, revocation visibility, rotation); StartPasswordReset in caller and
# smtp mail mode. docs/benchmarks.md says what each measures.
bench: $(STAMP) postgres
	$(BIN)/python -m bench $(BENCH_ARGS)
	$(BIN)/python -m bench.events $(EVENTS_BENCH_ARGS)
	$(BIN)/python -m bench.access_tokens $(ACCESS_TOKEN_BENCH_ARGS)
	$(BIN)/python -m bench.mail_reset $(MAIL_BENCH_ARGS)

# Mixed load on an `authsvc serve` subprocess (PostgreSQL) for 10 minutes: zero
# unexpected errors, RSS growth < 10%. SOAK_ARGS="--minutes 2" for a short run.
soak: $(STAMP) postgres
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

# Builds the Dockerfile with podman on a debootstrapped Debian base, runs the image and
# checks it from the host (root; .ci/deps-container.sh installs podman, runc, debootstrap).
container-test: $(STAMP)
	$(BIN)/python tests/container/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache node_modules clients/typescript/dist
