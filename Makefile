# Two commands do all the set-up on a fresh machine:
#   make run    install into .venv and start Heimdex (embedded: SQLite + files under ~/.local/share/heimdex)
#   make test   install (with test services and media) and run the whole suite
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install install-test run test test-fast lint format eval bench clean

install:
	@bash scripts/install.sh

install-test:
	@HEIMDEX_WITH_TEST_DEPS=1 bash scripts/install.sh

run: install
	@bash scripts/run.sh

test: install-test
	@$(BIN)/python -m ruff check src tests benchmarks
	@$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install-test
	@$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint:
	@$(BIN)/python -m ruff check src tests benchmarks
	@$(BIN)/python -m ruff format --check src tests benchmarks

format:
	@$(BIN)/python -m ruff format src tests benchmarks
	@$(BIN)/python -m ruff check --fix src tests benchmarks

eval: install-test
	@bash scripts/eval.sh

bench: install-test
	@$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .test-media
