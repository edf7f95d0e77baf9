# Caravan developer commands. `make run` and `make test` work on a fresh machine:
# they install the Python side, build the Kubernetes binaries (cached) and start the
# local control plane when no KUBECONFIG is set.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install packages binaries images cluster cluster-down run test test-unit test-cluster \
        test-e2e lint typecheck \
        check bench manifests manifests-check clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "[install] Python dependencies into $(VENV) (log: $(VENV)/install.log)"
	@$(BIN)/pip install --upgrade pip >$(VENV)/install.log 2>&1
	@$(BIN)/pip install -e '.[dev]' >>$(VENV)/install.log 2>&1 || (tail -n 30 $(VENV)/install.log; exit 1)
	@touch $@

# Debian packages: the real node's runtime, image tools, the UI tests' browser. Without
# root or apt (exit 3) it says what is missing and goes on: the cluster then runs kwok's
# fake nodes only, and the tiers that need those packages fail, naming them.
packages:
	@hack/install-debian-packages.sh || [ $$? -eq 3 ]

binaries:
	@hack/build-binaries.sh

# The real node's images (Caravan's from the Dockerfile, the example task, base, pause).
images: packages
	@hack/images.sh build

cluster: install packages
	@hack/cluster.sh up

cluster-down:
	@hack/cluster.sh down

# Runs Caravan against $KUBECONFIG, or against the local control plane (started if needed),
# with the CRD and the chart's pod policy for task pods (as `helm install` would put them;
# the policy binds to the served namespace, its task pods run as its default account).
run: install packages
	@if [ -z "$$KUBECONFIG" ]; then hack/cluster.sh up; export KUBECONFIG=$$(hack/cluster.sh kubeconfig); fi; \
	$(BIN)/kubectl apply -f charts/caravan/files/crds/ >/dev/null && \
	helm="$$(source hack/versions.env && echo "$$HELM_BIN_DIR/helm")"; \
	if [ -x "$$helm" ]; then \
	  "$$helm" template caravan charts/caravan -n "$${CARAVAN_NAMESPACE:-default}" \
	    --show-only templates/podpolicy.yaml --set taskPods.serviceAccount.create=false \
	    --set taskPods.serviceAccount.name=default | $(BIN)/kubectl apply -f - >/dev/null; \
	else echo "[run] helm is not built (make binaries): task pods are held by the operator's check only"; fi; \
	exec $(BIN)/caravan run

# Every test; cluster tests run on $KUBECONFIG when set, else on a local control plane
# the session starts (and stops, unless it was already running).
test: install packages binaries
	@$(BIN)/pytest $(PYTEST_ARGS)

test-unit: install
	@$(BIN)/pytest -m unit $(PYTEST_ARGS)

test-cluster: install packages binaries
	@$(BIN)/pytest -m cluster $(PYTEST_ARGS)

test-e2e: install packages binaries
	@$(BIN)/pytest -m e2e $(PYTEST_ARGS)

lint: install
	@$(BIN)/ruff check caravan tests bench
	@$(BIN)/ruff format --check caravan tests bench
	@$(BIN)/lint-imports --no-cache

typecheck: install
	@$(BIN)/mypy

check: lint typecheck test

bench: install binaries
	@$(BIN)/python bench/bench_events.py
	@$(BIN)/python bench/bench_events_cluster.py
	@$(BIN)/python bench/bench_jobs.py
	@$(BIN)/python bench/bench_logs.py
	@$(BIN)/python bench/bench_realnode.py
	@$(BIN)/python bench/bench_memory.py
	@$(BIN)/python bench/bench_activity.py

manifests:
	@hack/render-manifests.sh

manifests-check:
	@hack/render-manifests.sh --check

clean:
	rm -rf $(VENV) .local .pytest_cache .mypy_cache .ruff_cache
