#!/usr/bin/env bash
# Run the whole test suite: lint, then unit, integration (real model, SQLite and a throwaway
# PostgreSQL server) and end-to-end tests (the real server process driven by real clients).
set -euo pipefail
cd "$(dirname "$0")/.."

pg_dir=$(mktemp -d /tmp/sogni-pg.XXXXXX)
stop_postgres() {
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$bin" ] && [ -f "$pg_dir/data/postmaster.pid" ]; then
    if [ "$(id -u)" = 0 ]; then
      runuser -u postgres -- "$bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
    else
      "$bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
    fi
  fi
  rm -rf "$pg_dir"
}
trap stop_postgres EXIT
SOGNI_TEST_POSTGRES_URL=$(scripts/postgres-for-tests.sh "$pg_dir")
export SOGNI_TEST_POSTGRES_URL

.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
# Each test has its own time limit (pyproject); this one catches a run that cannot exit.
timeout --foreground --kill-after=30 45m .venv/bin/python -m pytest -q "$@"
