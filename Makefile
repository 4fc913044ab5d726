# The two commands a new user needs (see README):
#   make demo   the whole flow on a local control plane, then a trace tree from Jaeger
#   make test   lint, types, unit/golden/property/HTTPS tests and the end-to-end suite
# Everything else here is a step of those two.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint unit e2e binaries images bench clean

# pip is only told the lock and the project; the stamp reinstalls when either changes.
# The bench extra comes too: mypy checks bench/, which imports numpy and matplotlib.
$(STAMP): pyproject.toml requirements-dev.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements-dev.lock -e '.[test,bench]'
	@touch $(STAMP)

binaries: $(STAMP)
	$(BIN)/python -m bench.localcluster.binaries

# The node's container images (pause, collector, demo app) as docker archives; needs root,
# installs mmdebstrap with apt-get when missing.
images: $(STAMP) binaries
	$(BIN)/python -m bench.localcluster.images

demo: $(STAMP) binaries
	$(BIN)/python -m bench.demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest -m 'not e2e'

e2e: $(STAMP) binaries
	$(BIN)/pytest -m e2e

test: lint binaries
	$(BIN)/pytest

bench: $(STAMP) binaries
	$(BIN)/python -m bench.perf $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
