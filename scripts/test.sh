#!/usr/bin/env bash
# Lint, type-check, then run all test tiers on PostgreSQL, the concurrency tier again through
# PgBouncer in transaction pooling mode, and the end-to-end tier on SQLite.
# Extra arguments are passed to both pytest runs, e.g. `bash scripts/test.sh -x -k invoice`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

step "Bootstrap"
source scripts/bootstrap.sh
source scripts/pg.sh
source scripts/pgbouncer.sh
source scripts/packages.sh

step "ruff check"
ruff check .

step "ruff format --check"
ruff format --check .

step "mypy"
mypy

step "Chromium for the API explorer test, PgBouncer for the pooled concurrency run, Pango and poppler for documents"
# Debian's browser and its matching driver (the test drives it headless on 127.0.0.1 only),
# and Debian's PgBouncer. WeasyPrint lays out the PDFs with Pango and a font; the document
# tests render page 1 with poppler's pdftoppm.
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
command -v pdftoppm >/dev/null || missing+=(poppler-utils)
mapfile -t -O "${#missing[@]}" missing < <(not_installed "${DOCUMENT_PACKAGES[@]}")
apt_install "${missing[@]}"
PATH="$PATH:/usr/sbin"
chromium --version 2>/dev/null || true
pgbouncer --version | head -n 1

step "Start PostgreSQL"
trap 'pgbouncer_stop; pg_stop' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
pg_start
echo "PostgreSQL on 127.0.0.1:$PG_PORT"

step "pytest on PostgreSQL: unit, service, integration, e2e, contract, concurrency (gunicorn), batch"
ACCOUNTING_TEST_DATABASE_URL="$PG_URL" \
    pytest -q -p no:cacheprovider tests/unit tests/service tests/integration tests/e2e \
    tests/contract tests/concurrency tests/batch "$@"

step "pytest through PgBouncer (transaction pooling, no prepared statements): concurrency"
pgbouncer_start
echo "PgBouncer on 127.0.0.1:$PGB_PORT"
ACCOUNTING_TEST_DATABASE_URL="$PGB_URL" ACCOUNTING_DB_PREPARE=off \
    pytest -q -p no:cacheprovider tests/concurrency -k "not postgres_stopped" "$@"
pgbouncer_stop

step "pytest on SQLite: e2e"
ACCOUNTING_TEST_DATABASE_URL=sqlite \
    pytest -q -p no:cacheprovider tests/e2e "$@"

step "Instructions per correction PUT against the committed budget (callgrind)"
# A count, not a time: it does not move with the machine's load (bench/instructions.sh).
bash bench/instructions.sh --check

step "All checks passed"
