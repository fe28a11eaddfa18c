# gpufence: `make demo` (set up + audit the bundled example), `make test` (set up + whole suite).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	@echo "== gpufence audit examples/neocloud/inventory.yaml --evidence examples/neocloud/evidence"
	@$(BIN)/gpufence audit examples/neocloud/inventory.yaml --evidence examples/neocloud/evidence; \
	  status=$$?; echo; \
	  echo "(exit code $$status: 0 clean, 1 findings at/above --fail-on, 2 bad input, 3 internal error)"; \
	  test $$status -le 1

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -n auto --dist loadgroup -q

test: lint typecheck unit

docs: $(STAMP)
	$(BIN)/gpufence controls --format markdown > docs/controls.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
