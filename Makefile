# turkey-pipeline. Quick start: `make run` then `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# The second environment: the default one plus the mlflow and lineage extras (docs/mlflow.md). Its own locks
# (requirements-mlflow.lock replaces two pins of requirements.lock, hence uv's --override).
MLFLOW_VENV := .venv-mlflow
LOCKS := -r requirements.lock $(if $(filter $(MLFLOW_VENV),$(VENV)),-r requirements-mlflow.lock -r requirements-openlineage.lock --override requirements-mlflow.lock)
LOCK_FILES := requirements.lock pyproject.toml $(if $(filter $(MLFLOW_VENV),$(VENV)),requirements-mlflow.lock requirements-openlineage.lock)
STAMP := $(VENV)/.installed-$(shell cat $(LOCK_FILES) | sha1sum | cut -c1-12)
export TURKEY_VENV := $(VENV)
# This environment sets PYTHONDONTWRITEBYTECODE=1; without bytecode caching every TensorFlow import costs ~3x.
unexport PYTHONDONTWRITEBYTECODE
export GX_ANALYTICS_ENABLED := false

.PHONY: run score ui mlflow install-mlflow test-mlflow test test-fast test-faults test-ui test-distributed bench lint install clean lock

install: $(STAMP)

$(STAMP): $(LOCK_FILES)
	@command -v python3 >/dev/null || { echo "python3 (3.11 or 3.12) is required"; exit 1; }
	@test -x $(VENV)/bin/python || { python3 -m pip install -q --disable-pip-version-check uv 2>/dev/null || true; \
	  if python3 -m uv --version >/dev/null 2>&1; then python3 -m uv venv -q $(VENV) --python python3; else python3 -m venv $(VENV); fi; }
	@if [ "$(VENV)" = "$(MLFLOW_VENV)" ] && ! python3 -m uv --version >/dev/null 2>&1; then \
	  echo "make install-mlflow needs uv (python3 -m pip install uv): pip cannot override two pins"; exit 1; fi
	@if python3 -m uv --version >/dev/null 2>&1; then \
	  python3 -m uv pip install -q --python $(PY) $(LOCKS) && python3 -m uv pip install -q --python $(PY) --no-deps -e .; \
	else \
	  $(PY) -m pip install -q -r requirements.lock && $(PY) -m pip install -q --no-deps -e .; \
	fi
	@# setuptools leaves a by-product turkey_pipeline.egg-info in the checkout; with the checkout on sys.path
	@# (python -m from here) it is a second copy of the distribution: entry-point plugins load twice and the
	@# task runner drops the listeners (OpenLineage). The installed metadata is in the venv.
	@rm -rf turkey_pipeline.egg-info
	@rm -f $(VENV)/.installed-*; touch $@
	@echo "installed into $(VENV)"

lock:  ## re-resolve requirements.lock from pyproject.toml (needs network to the package index)
	python3 -m uv pip compile pyproject.toml --extra dev -o requirements.lock --python-version 3.11 --no-header

run: install  ## the whole pipeline through Airflow on the embedded default (SQLite, local files, demo data)
	@bash scripts/run_local.sh

score: install  ## the scoring DAG once on the embedded default: the champion scores every new batch in data/landing/batches/ and the test file
	@bash scripts/run_local.sh --dag turkey_scoring

PORT ?= 8080
ui: install  ## Airflow UI + model console on 127.0.0.1:$(PORT) (API server, scheduler, DAG processor, triggerer); Ctrl-C stops all
	@source scripts/env.sh && exec $(PY) -m scripts.ui --port $(PORT)

# One worker per core (pytest-xdist); expensive states are built once and shared (tests/support/shared.py).
PYTEST_PARALLEL := -n auto --dist worksteal

test: install  ## the whole test suite (the fault-injection suite runs separately: make test-faults)
	@source scripts/env.sh && $(PY) -m pytest -q $(PYTEST_PARALLEL) --ignore=tests/faults --ignore=tests/integrations --cov=ml --cov=plugins --cov=dags --cov-report=term:skip-covered --cov-fail-under=90 --durations=15

test-fast: install  ## without the slow tests (training, Airflow runs)
	@source scripts/env.sh && $(PY) -m pytest -q $(PYTEST_PARALLEL) -m "not slow" --ignore=tests/faults --ignore=tests/integrations

test-faults: install  ## fault injection: SIGKILLs in the registry, promoter races, full/read-only tmpfs (root), damage
	@source scripts/env.sh && $(PY) -m pytest -q -p no:cacheprovider tests/faults; status=$$?; \
	  $(PY) -m tests.faults.summary || true; exit $$status

test-ui: install  ## real Chromium (Debian package) via Playwright against make ui: trigger, Models, rollback
	@source scripts/env.sh && TURKEY_UI_TEST=1 $(PY) -m pytest -q -p no:cacheprovider tests/ui/test_browser.py

test-distributed: install  ## CeleryExecutor on PostgreSQL + Redis, as processes (needs both running)
	@bash scripts/distributed_test.sh

bench: install  ## writes BENCHMARKS.md
	@source scripts/env.sh && $(PY) -m bench.run_bench

install-mlflow:  ## the .venv-mlflow environment: the default one plus the mlflow and lineage extras
	@$(MAKE) --no-print-directory install VENV=$(MLFLOW_VENV)

MLFLOW_PORT ?= 5000
mlflow: install-mlflow  ## an MLflow tracking server on 127.0.0.1:$(MLFLOW_PORT) (SQLite and artifacts in .mlflow/); Ctrl-C stops it
	@source scripts/env.sh && exec $(MLFLOW_VENV)/bin/python -m scripts.mlflow_server --port $(MLFLOW_PORT)

test-mlflow: install-mlflow  ## the MLflow mirror and the OpenLineage events against a real tracking server (tests/integrations)
	@export TURKEY_VENV=$(MLFLOW_VENV) && source scripts/env.sh && $(MLFLOW_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/integrations \
	  --cov=ml.mlflow_mirror --cov=turkey_airflow.mirror --cov=turkey_airflow.lineage --cov=turkey_airflow.lineage_extractor \
	  --cov-config=tests/integrations/coverage.cfg --cov-report=term-missing --cov-fail-under=85

lint: install
	@$(VENV)/bin/ruff check ml plugins dags tests bench

clean:
	rm -rf .airflow artifacts data/rejected
