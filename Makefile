# The two commands a new user needs (see README):
#   make demo   the whole flow on a local cluster with a real node, then the traces from Jaeger
#   make test   lint, types, unit/golden/property/HTTPS tests and the end-to-end suites
# An extra: make cluster keeps that cluster (with the injector) running until Ctrl-C.
# Everything else here is a step of those.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo cluster test lint unit e2e binaries images node-tools bench clean

# pip is only told the lock and the project; the stamp reinstalls when either changes.
# The bench extra comes too: mypy checks bench/, which imports numpy and matplotlib.
$(STAMP): pyproject.toml requirements-dev.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements-dev.lock -e '.[test,bench]'
	@touch $(STAMP)

binaries: $(STAMP)
	$(BIN)/python -m bench.localcluster.binaries
	$(BIN)/python -m bench.localcluster.promtool

# The node's container images (pause, collector, demo app) and otel-injector's own (BuildKit,
# from the Dockerfile; runc from node-tools) as docker archives; needs root, installs
# mmdebstrap with apt-get when missing.
images: $(STAMP) binaries node-tools
	$(BIN)/python -m bench.localcluster.images --injector

# A node needs Debian's runc and iptables (kube-proxy, kubelet). Installed when missing and
# possible (root with apt-get); otherwise the node-less cluster runs and says why.
NODE_TOOLS := runc iptables conntrack
node-tools:
	@missing=""; for t in $(NODE_TOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "node-tools: installing$$missing from Debian's packages"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing >/dev/null; \
	else echo "node-tools: missing$$missing and cannot install them here; the cluster runs without a node"; fi

demo: $(STAMP) binaries node-tools
	$(BIN)/python -m bench.demo $(DEMO_ARGS)

cluster: $(STAMP) binaries node-tools
	$(BIN)/python -m bench.localcluster.node $(CLUSTER_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest -m 'not e2e'

e2e: $(STAMP) binaries node-tools
	$(BIN)/pytest -m e2e

test: lint binaries node-tools
	$(BIN)/pytest

bench: $(STAMP) binaries
	$(BIN)/python -m bench.perf $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
