# A newcomer's targets. Each creates the virtual environment it needs.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install browser demo test lint bench bench-instructions bench-numbers bench-events bench-reports clean

install: $(STAMP) browser

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The status page's test drives Debian's Chromium and ChromeDriver: installed here when missing and we are
# root (as CI is); elsewhere that test skips, and under CI=true it fails.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "make: installing Debian's chromium and chromium-driver (the status page's browser test)"; \
	    log=$$(mktemp); \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends chromium chromium-driver fonts-liberation; } >"$$log" 2>&1 \
	      || { tail -n 20 "$$log"; rm -f "$$log"; exit 1; }; \
	    rm -f "$$log"; \
	  else \
	    echo "make: no /usr/bin/chromium: the browser test will skip (make install as root installs it)"; \
	  fi; \
	fi

demo: $(STAMP)
	$(VENV)/bin/campaign demo

test: install
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
