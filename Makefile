# Two entry points (see README): `make demo` runs the whole pipeline on the embedded default
# data; `make test` runs the test suite. Both install everything they need first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

RUNNER := tools/pinets-runner
NODE_STAMP := $(RUNNER)/node_modules/.installed

.PHONY: setup services demo test bench clean clean-kernels pine-parser lint

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,vision]'
	touch $(STAMP)

# PineTS (AGPL, a test/verification tool kept out of the product) for Pine parity checks;
# skipped with a note when npm is missing (scripts are then exported unverified).
$(NODE_STAMP): $(RUNNER)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix $(RUNNER) --no-audit --no-fund --loglevel=error && touch $(NODE_STAMP); \
	else echo "npm not found: Pine scripts will be exported without the PineTS parity check"; fi

# The dashboard's charting library (lightweight-charts, Apache-2.0), served by the app itself.
VENDOR := serve/static/vendor/lightweight-charts.standalone.production.js
$(VENDOR): serve/web/package-lock.json
	@if command -v npm >/dev/null 2>&1; then bash serve/vendor.sh; \
	else echo "npm not found: the dashboard will have no charts"; fi

# The Pine parser's learnt prediction tables, kept in the user's cache (~/.cache/aio-ray):
# learnt once per machine (about 1-2 min on 2 cores), loaded in 0.4 s by every later process.
pine-parser: $(STAMP)
	@$(BIN)/python -m aio_ray.pine.parser_cache

setup: $(STAMP) $(NODE_STAMP) $(VENDOR) pine-parser

demo: setup
	$(BIN)/python jobs/pipeline.py --config configs/demo.yaml --serve

# Node.js, Chromium and a PostgreSQL server for the tests (installed when missing, as root).
services:
	bash .ci/services.sh > .services.env

# Lint and types first (seconds), then the suite.
lint: $(STAMP)
	$(BIN)/ruff check aio_ray serve jobs bench tests tools
	$(BIN)/ruff format --check aio_ray serve jobs bench tests tools
	$(BIN)/mypy

test: services setup lint
	source .services.env && $(BIN)/python -m pytest -q

bench: setup
	for b in bench/*.py; do $(BIN)/python $$b; done

# numba's on-disk cache keys a kernel on its own file only: after editing a kernel module
# (aio_ray/**/_*nb.py, _engine_layout.py, strategies/fills.py) clear the compiled caches.
clean-kernels:
	find aio_ray -path '*/__pycache__/*' \( -name '*.nbi' -o -name '*.nbc' \) -delete

clean: clean-kernels
	rm -rf $(VENV) data/demo .services.env
