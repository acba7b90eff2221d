# tracewatch: set-up, demo and tests on a fresh Debian 12 machine (run as root for apt-get).
VENV ?= .venv
PY := $(VENV)/bin/python
DEBS := babeltrace2 python3-bt2 lttng-tools liblttng-ust-dev python3-lttngust linux-perf gcc make chromium graphite-carbon prometheus
STAMP_DEBS := $(VENV)/.debs-installed
STAMP_PY := $(VENV)/.py-installed

.PHONY: demo test install lint typecheck bench clean

$(STAMP_DEBS):
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@mkdir -p $(VENV) && touch $@

$(STAMP_PY): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

install: $(STAMP_PY)

demo: $(STAMP_PY)
	$(PY) -m tracewatch.demo

test: $(STAMP_DEBS) $(STAMP_PY)
	$(PY) -m pytest -q
	$(PY) -m ruff check src tests bench
	$(PY) -m mypy

lint: $(STAMP_PY)
	$(PY) -m ruff check src tests bench

typecheck: $(STAMP_PY)
	$(PY) -m mypy

bench: $(STAMP_DEBS) $(STAMP_PY)
	$(PY) bench/read.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
