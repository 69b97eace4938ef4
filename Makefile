# Two commands do all the set-up on a fresh machine:
#   make run    install into .venv and start Heimdex (embedded: SQLite + files under ~/.local/share/heimdex)
#   make test   install (with test services and media) and run the whole suite
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install install-test run test test-fast lint format eval bench screenshots clean

install:
	@bash scripts/install.sh

install-test:
	@HEIMDEX_WITH_TEST_DEPS=1 bash scripts/install.sh

run: install
	@bash scripts/run.sh

test: install-test
	@$(BIN)/python -m ruff check src tests benchmarks eval
	@$(BIN)/python -m ruff format --check src tests benchmarks eval
	@$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install-test
	@$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint:
	@$(BIN)/python -m ruff check src tests benchmarks eval
	@$(BIN)/python -m ruff format --check src tests benchmarks eval

format:
	@$(BIN)/python -m ruff format src tests benchmarks eval
	@$(BIN)/python -m ruff check --fix src tests benchmarks eval

# Search quality on an evaluation spec (eval/*.json; corpus built once, cached in .test-media/):
#   make eval                                  eval/dev_spec_v2.json on SQLite
#   make eval SPEC=eval/dev_spec.json          another spec
#   HEIMDEX_EVAL_BACKEND=postgres make eval    the store on PostgreSQL + pgvector
# Per-query results go to build/eval/ (see scripts/eval.sh).
SPEC ?= eval/dev_spec_v2.json
eval: install-test
	@bash scripts/eval.sh $(SPEC)

# Every benchmark once at a quick size (a few minutes in all), one JSON line each; the full-size
# runs behind docs/PERFORMANCE.md are the commands in each benchmark's docstring.
#   make bench BENCH_ARGS="--only search store"   a subset
bench: install-test
	@$(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

# The browser tests write their screenshots to build/screenshots/; this runs them and refreshes the
# committed copies in docs/screenshots/.
screenshots: install-test
	@HEIMDEX_UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest tests/web/test_browser.py $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .test-media
