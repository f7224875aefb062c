# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench bench-gate install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,bench]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m geofence_cli.main demo

lint: $(STAMP)
	$(VENV)/bin/ruff check geofence streams zones replay benchmarks geofence_cli tests

typecheck: $(STAMP)
	$(VENV)/bin/mypy geofence streams zones replay geofence_cli

pytest: $(STAMP)
	$(VENV)/bin/pytest -q --durations=15

bench-gate: $(STAMP)
	$(PY) -m benchmarks gate

test: lint typecheck pytest bench-gate

bench: $(STAMP)
	$(PY) -m benchmarks all --json --out benchmarks/results/latest.json

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
