# The two set-up commands: `make run` and `make test`. Both work on a fresh
# machine with only Python: they create .venv and install the project first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	@echo "ledgerops: installing (first run only)… this takes about a minute"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) app.py

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

# lint: format, ruff's rules, the import contracts in pyproject.toml ([tool.importlinter]),
# types of sync/, connectors/ and storage/ ([tool.mypy])
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) bench/throughput.py

clean:
	rm -rf $(VENV) .pytest_cache
