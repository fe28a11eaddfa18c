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
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	  echo "== gpufence audit examples/neocloud/inventory.yaml --evidence examples/neocloud/evidence --max-evidence-age 3650d --store $$tmp/store.db"; \
	  $(BIN)/gpufence audit examples/neocloud/inventory.yaml --evidence examples/neocloud/evidence \
	    --max-evidence-age 3650d --store "$$tmp/store.db"; \
	  status=$$?; echo; \
	  echo "(exit code $$status: 0 clean, 1 findings at/above --fail-on, 2 bad input, 3 internal error)"; \
	  test $$status -le 1 || exit $$status; \
	  echo; echo "== a change: IPMI over LAN turned off on rtx-l01-bmc, h200-a01-bmc back on default credentials"; \
	  cp -R examples/neocloud "$$tmp/neocloud"; \
	  sed -i -e 's/ipmi_over_lan: true}/ipmi_over_lan: false}/' \
	    -e 's/\(h200-a01-bmc, .*default_credentials: \)false/\1true/' "$$tmp/neocloud/inventory.yaml"; \
	  echo "== gpufence audit <changed copy> --store $$tmp/store.db --quiet --severity critical,high"; \
	  $(BIN)/gpufence audit "$$tmp/neocloud/inventory.yaml" --evidence "$$tmp/neocloud/evidence" \
	    --max-evidence-age 3650d --store "$$tmp/store.db" --quiet --severity critical,high; \
	  status=$$?; test $$status -le 1 || exit $$status; \
	  echo; echo "== gpufence runs --store $$tmp/store.db"; \
	  $(BIN)/gpufence runs --store "$$tmp/store.db" || exit $$?; \
	  echo; echo "== gpufence diff --store $$tmp/store.db   (the last two runs)"; \
	  $(BIN)/gpufence diff --store "$$tmp/store.db"

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
