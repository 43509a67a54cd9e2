#!/usr/bin/env bash
# Migrate the local database, create a demo API key and serve on 127.0.0.1:8000.
# Extra arguments are passed to `accounting serve`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/bootstrap.sh
source scripts/packages.sh
# shellcheck disable=SC2046  # one word per package
apt_install $(not_installed "${DOCUMENT_PACKAGES[@]}")

mkdir -p var
accounting db upgrade
# The demo business's seller, printed on its invoices and credit notes.
export ACCOUNTING_SELLERS="${ACCOUNTING_SELLERS:-config/sellers.demo.toml}"

# The key is the last line `keys create` prints.
key="$(accounting keys create --business 1000 --role staff --name demo | tail -n 1)"
if [ -z "$key" ]; then
    echo "run.sh: 'accounting keys create' printed no key" >&2
    exit 1
fi

cat <<INFO

  Demo key (business 1000, staff): $key
  API docs: http://127.0.0.1:8000/docs
  Example:  curl -H 'X-Subscription-Key: $key' http://127.0.0.1:8000/health/live

INFO

exec accounting serve --host 127.0.0.1 --port 8000 "$@"
