# shellcheck shell=bash
# Throwaway PostgreSQL for tests and benchmarks. Source this file, then:
#   pg_start   # exports PG_DIR, PG_PORT, PG_URL
#   pg_stop    # stops the server and deletes PG_DIR
# No `set -euo pipefail` here: it would leak into the sourcing shell.

# initdb refuses to run as root, so root runs the server as `postgres`.
_pg_as() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

_pg_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pg_start() {
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        useradd -r -m postgres
    fi

    PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/pg.XXXXXX")" || return 1
    export PG_DIR
    mkdir "$PG_DIR/sock" || return 1
    if [ "$(id -u)" -eq 0 ]; then
        chown -R postgres: "$PG_DIR" || return 1
    fi

    # cd: the postgres user may not be able to read the caller's working directory.
    (cd "$PG_DIR" && _pg_as initdb -D "$PG_DIR/data" --auth=trust -U postgres \
        --encoding=UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1) || {
        cat "$PG_DIR/initdb.log" >&2
        return 1
    }

    # The free port could be taken between probing and binding; retry a few times.
    local attempt
    for attempt in 1 2 3; do
        PG_PORT="$(_pg_free_port)" || return 1
        export PG_PORT
        if (cd "$PG_DIR" && _pg_as pg_ctl -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR/sock" \
            -o "-c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            -o "-c max_connections=200" \
            start >/dev/null); then
            break
        fi
        if [ "$attempt" -eq 3 ]; then
            cat "$PG_DIR/server.log" >&2
            return 1
        fi
    done

    psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
        -c 'CREATE DATABASE accounting' || return 1
    export PG_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/accounting"
}

# Safe to call more than once, and after a failed or partial pg_start.
pg_stop() {
    if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR" ]; then
        if [ -f "$PG_DIR/data/postmaster.pid" ]; then
            (cd "$PG_DIR" && _pg_as pg_ctl -D "$PG_DIR/data" -m fast -w stop >/dev/null) || true
        fi
        rm -rf "$PG_DIR"
    fi
    unset PG_DIR PG_PORT PG_URL
}
