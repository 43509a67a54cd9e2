# shellcheck shell=bash
# Source this file: creates/updates .venv in the repo root and puts it first on PATH.
# No `set -euo pipefail` here: it would leak into the sourcing shell.

_bootstrap() {
    local root venv stamp hash
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" || return 1
    venv="$root/.venv"
    stamp="$venv/.pyproject.sha256"

    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv" || return 1
    fi

    # Reinstall only when pyproject.toml changed since the last successful install.
    hash="$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)" || return 1
    if [ "$(cat "$stamp" 2>/dev/null)" != "$hash" ]; then
        echo "==> Installing dependencies into .venv"
        (cd "$root" && "$venv/bin/pip" install -q -e '.[dev]') || return 1
        echo "$hash" >"$stamp"
    fi

    export VIRTUAL_ENV="$venv"
    export PATH="$venv/bin:$PATH"
}

_bootstrap
