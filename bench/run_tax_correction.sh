#!/usr/bin/env bash
# Benchmark batch tax corrections on a throwaway PostgreSQL (see bench/tax_correction.py).
#   bash bench/run_tax_correction.sh                # 100,000 invoices
#   bash bench/run_tax_correction.sh 20000 100000   # compare sizes
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/bootstrap.sh
source scripts/pg.sh

trap pg_stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
pg_start
DATABASE_URL="$PG_URL" python bench/tax_correction.py "$@"
