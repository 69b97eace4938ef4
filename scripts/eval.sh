#!/usr/bin/env bash
# Builds the dev evaluation corpus from ../shared/eval (cached in .test-media/eval-corpus) and scores
# Heimdex on it. Prints the per-kind table; the last line is JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${HEIMDEX_SHARED:-../shared}
SPEC=${1:-$SHARED/eval/dev_spec.json}
CORPUS=.test-media/eval-corpus/$(basename "$SPEC" .json)
if [[ ! -f $CORPUS/manifest.json ]]; then
  .venv/bin/python "$SHARED/eval/make_corpus.py" "$SPEC" "$CORPUS"
fi
HOME_DIR=$(mktemp -d -t heimdex-eval-XXXX)
trap 'rm -rf "$HOME_DIR"' EXIT
.venv/bin/python "$SHARED/eval/run_eval.py" "$CORPUS" --heimdex "$PWD/.venv/bin/heimdex" --home "$HOME_DIR"
