# Two entry points (see README): `make demo` runs the whole pipeline on the embedded default
# data; `make test` runs the test suite. Both install everything they need first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/python jobs/pipeline.py --config configs/demo.yaml

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	for b in bench/*.py; do $(BIN)/python $$b; done

clean:
	rm -rf $(VENV) data/demo
