# A newcomer's targets. Each creates the virtual environment it needs.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench bench-instructions bench-numbers bench-events bench-reports clean

install: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/campaign demo

test: $(STAMP)
	$(PY) -m pytest

# BENCH_ARGS=--million for 1,000,000 recipients; see `python -m ops.bench --help`.
bench: $(STAMP)
	$(PY) -m ops.bench $(BENCH_ARGS)

# Instructions per message of the worker and the producer, counted by callgrind: repeatable where timings are not.
bench-instructions: $(STAMP)
	$(PY) -m ops.bench.instructions

bench-numbers: $(STAMP)
	$(PY) -m ops.bench.numbers

# Single messages over HTTP: `campaign serve`, the workers and the simulator, on a redis-server of its own.
bench-events: $(STAMP)
	$(PY) -m ops.bench.events

# Delivery reports a second into one `campaign serve` process, each stored durably (AOF) before its 200.
bench-reports: $(STAMP)
	$(PY) -m ops.bench.reports

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy schemas redis_model producer worker campaign ops examples

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
