# Two commands set everything up on a fresh machine with Python 3.11+: `make demo`, `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/zoho-deleted: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/zoho-deleted
	$(BIN)/zoho-deleted demo

test: $(BIN)/zoho-deleted
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 2

lint: $(BIN)/zoho-deleted
	$(BIN)/ruff check .

bench: $(BIN)/zoho-deleted
	$(BIN)/python benchmarks/bench.py

clean:
	rm -rf $(VENV) .zoho-demo *.egg-info  # never *.duckdb: a real run may have written it
