#!/usr/bin/env bash
# Instructions the service's process executes per correction PUT, counted by callgrind.
#
#   bench/instructions.sh        # 100 PUTs measured (after 20 not measured); about 30 s
#   bench/instructions.sh 300
#   bench/instructions.sh --check   # also fail when over the committed budget by more than 10 %
#
# The budget is bench/instructions-budget.txt (millions per PUT): raise it in the commit that
# makes the PUT do more, saying why; the test command runs the check.
#
# Unlike requests per second or CPU seconds, the count does not move with whatever else the
# machine runs, so two versions of the code compare on any machine at any time. It counts the
# Python process only (from the WSGI call down, through Flask's test client; no socket, no
# gunicorn), in user space: not PostgreSQL, not the kernel. bench/run measures those.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
CHECK=0
if [ "${1:-}" = "--check" ]; then
    CHECK=1
    shift
fi
COUNT="${1:-100}"
source scripts/bootstrap.sh
if ! command -v valgrind >/dev/null 2>&1; then
    as_root=""
    [ "$(id -u)" -eq 0 ] || as_root="sudo"
    $as_root apt-get update -q && $as_root apt-get install -y -q valgrind
fi
source scripts/pg.sh
OUT="$(mktemp -d "${TMPDIR:-/tmp}/instructions.XXXXXX")"
trap 'pg_stop; rm -rf "$OUT"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
pg_start
export DATABASE_URL="$PG_URL"
timeout 120 accounting db upgrade >/dev/null
python bench/instructions.py load "$COUNT" >&2
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/callgrind.out" \
    python bench/instructions.py measure "$COUNT" 2>"$OUT/valgrind.log"
collected="$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$OUT/valgrind.log")"
[ -n "$collected" ] || { cat "$OUT/valgrind.log" >&2; exit 1; }
per_put="$(python3 -c "print(f'{$collected / $COUNT / 1e6:.2f}')")"
echo "instructions per PUT: $per_put million ($COUNT PUTs)"
if [ "$CHECK" = "1" ]; then
    budget="$(tr -d '[:space:]' <bench/instructions-budget.txt)"
    python3 - "$per_put" "$budget" <<'PY'
import sys
measured, budget = float(sys.argv[1]), float(sys.argv[2])
limit = budget * 1.10
verdict = "within" if measured <= limit else "OVER"
print(f"budget: {budget:.2f} million per PUT; limit (+10 %): {limit:.2f}; measured {measured:.2f}: {verdict}")
sys.exit(0 if measured <= limit else 1)
PY
fi
