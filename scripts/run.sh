#!/usr/bin/env bash
# What `make run` runs after installing: start `heimdex serve` (API, web app and in-process worker)
# on the embedded default (SQLite and files under HEIMDEX_HOME), and say how to log in.
# HEIMDEX_ADMIN_EMAIL and HEIMDEX_ADMIN_PASSWORD create the first administrator if it does not exist.
set -euo pipefail
cd "$(dirname "$0")/.."
HEIMDEX=.venv/bin/heimdex
HOST=${HEIMDEX_HOST:-127.0.0.1}
PORT=${HEIMDEX_PORT:-8000}

users=$("$HEIMDEX" users list --json 2>/dev/null || echo "[]")
if [[ -n "${HEIMDEX_ADMIN_EMAIL:-}" && -n "${HEIMDEX_ADMIN_PASSWORD:-}" ]]; then
  if ! grep -qi "\"${HEIMDEX_ADMIN_EMAIL}\"" <<<"$users"; then
    HEIMDEX_PASSWORD="$HEIMDEX_ADMIN_PASSWORD" "$HEIMDEX" users create "$HEIMDEX_ADMIN_EMAIL" --admin
  fi
  login="log in as ${HEIMDEX_ADMIN_EMAIL} with HEIMDEX_ADMIN_PASSWORD"
elif [[ "$users" == "[]" ]]; then
  login="create the first account at http://${HOST}:${PORT}/register (it becomes the admin),
  or stop and run: .venv/bin/heimdex users create you@example.com --admin"
else
  login="log in with your account (new accounts: http://${HOST}:${PORT}/register)"
fi

cat <<MSG

  Heimdex is starting at http://${HOST}:${PORT}
  - ${login}
  - API reference: http://${HOST}:${PORT}/docs
  - Ctrl-C stops it; indexing resumes where it left off on the next start.

MSG
exec "$HEIMDEX" serve --host "$HOST" --port "$PORT"
