# Every target creates the virtualenv it needs: on a fresh machine `make test` and
# `make demo` are the only two commands a developer must know.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv tools testbed test lint demo bench bench-preemption bench-smoke clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,dev]'
	touch $@

# helm, kubectl, promtool, prometheus, lupa: see scripts/install-tools.sh
tools: $(STAMP)
	VENV=$(VENV) scripts/install-tools.sh

# The real Kubernetes control plane (testbed/, built with Go from the Kubernetes modules) the
# suite runs on beside kubesim: minutes on a fresh machine, nothing once cached (keyed by
# testbed/go.sum, outside the work tree: see operator/src/gpurental_dev/k8s/binary.py).
testbed: $(STAMP)
	$(PY) -m gpurental_dev.k8s build

test: $(STAMP) tools testbed
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check operator/src tests
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

demo: $(STAMP)
	$(PY) -m gpurental_dev.demo $(DEMO_ARGS)

# Stop latency at 10,000 running, provisioning until Running, the steady state's cost at
# 1,000 / 3,000 / 10,000 running and wallet exhaustion, against the emulated cluster
# (BENCH_ARGS="--substrate kubernetes" for the real control plane); minutes, not part of
# `make test` (its smoke run is).
bench: $(STAMP)
	$(PY) -m gpurental_bench $(BENCH_ARGS)

# The preemption figure of interruptible offers: the real control plane's kube-scheduler.
bench-preemption: $(STAMP) testbed
	$(PY) -m gpurental_bench --substrate kubernetes --preemption

bench-smoke: $(STAMP)
	$(PY) -m gpurental_bench --smoke

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
