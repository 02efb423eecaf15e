# The two commands a newcomer needs: `make run` and `make test`. Everything else is here too.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python

.PHONY: install system-run system-test run test check lint format typecheck protos protos-check client client-check docs docs-check buf-lint buf-breaking unit bench clean

# Everything: the service, the test suite's tools (a browser driver, fuzzers, mypy, ruff, the generators).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-run

# What `make run` needs and nothing more: the server and the embedded database (a fresh clone serves in
# seconds, not after a minute of test tools). A full install above counts as one. --no-compile: Python
# compiles the modules `up` imports when it first imports them, instead of every module of every package
# now (measured side by side on fresh clones: 17 s against 22 s to serving, on a loaded machine).
$(VENV)/.installed-run: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --no-compile -e '.[server,embedded]'
	touch $@

install: $(VENV)/.installed

## System packages from Debian's archive, installed when missing (scripts/system-deps.sh says which and why).
system-run:
	scripts/system-deps.sh run

system-test:
	scripts/system-deps.sh test

## Start the embedded database and the gRPC server in the foreground (Ctrl-C stops both).
run: $(VENV)/.installed-run system-run
	$(BIN)/pipelinejobs up

## Everything CI checks: generated code (stubs, client, docs), proto lint, ruff, mypy and the whole test suite.
test: install system-test check
	$(PY) -m pytest

check: protos-check client-check docs-check buf-lint lint typecheck

protos: install
	$(PY) scripts/gen_protos.py

protos-check: install
	$(PY) scripts/gen_protos.py --check

## Regenerate the client's derived modules: the blocking client (from aio.py) and the reason tree of its errors.
client: install
	$(PY) scripts/gen_client.py

client-check: install
	$(PY) scripts/gen_client.py --check

## Regenerate the generated parts of the docs: README's state machine, docs/callbacks.md's status tables.
docs: install
	$(PY) scripts/gen_docs.py

docs-check: install
	$(PY) scripts/gen_docs.py --check

buf-lint: install
	$(BIN)/buf lint

## Compare the contract with an earlier version (CI passes the previous commit as AGAINST).
AGAINST ?= .git\#branch=main
buf-breaking: install
	$(BIN)/buf breaking --against '$(AGAINST)'

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: install
	$(BIN)/mypy

## The fast tests only: no tests/system/ suites, nothing marked slow (under two minutes on two cores).
unit: install
	$(PY) -m pytest -m "not slow and not system"

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build *.egg-info
