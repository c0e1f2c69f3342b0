# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv, install torch (CPU wheel, pinned first so nothing pulls a CUDA build),
# then nnlab with its dev extras.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test facts bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/nnlab demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

facts: $(STAMP)
	$(BIN)/nnlab facts

clean:
	rm -rf $(VENV) runs .pytest_cache
