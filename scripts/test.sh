#!/usr/bin/env bash
# Lint, type-check, then run all test tiers on PostgreSQL and the end-to-end tier on SQLite.
# Extra arguments are passed to both pytest runs, e.g. `bash scripts/test.sh -x -k invoice`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

step "Bootstrap"
source scripts/bootstrap.sh
source scripts/pg.sh

step "ruff check"
ruff check .

step "ruff format --check"
ruff format --check .

step "mypy"
mypy

step "Start PostgreSQL"
trap pg_stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
pg_start
echo "PostgreSQL on 127.0.0.1:$PG_PORT"

step "pytest on PostgreSQL: unit, integration, e2e, concurrency (gunicorn)"
ACCOUNTING_TEST_DATABASE_URL="$PG_URL" \
    pytest -q -p no:cacheprovider tests/unit tests/integration tests/e2e tests/concurrency "$@"

step "pytest on SQLite: e2e"
ACCOUNTING_TEST_DATABASE_URL=sqlite \
    pytest -q -p no:cacheprovider tests/e2e "$@"

step "All checks passed"
