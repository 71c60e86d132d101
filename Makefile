# Two commands do everything on a fresh machine:
#   make demo   start the platform on its embedded defaults with the sample consortium
#   make test   run the whole test suite (ruff, then pytest)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

$(BIN)/tongke: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

.PHONY: demo test lint
demo: $(BIN)/tongke
	$(BIN)/tongke serve

lint: $(BIN)/tongke
	$(BIN)/ruff check .

test: lint
	$(BIN)/pytest -ra
