# shellcheck shell=bash
# PgBouncer in transaction pooling mode in front of the throwaway PostgreSQL (scripts/pg.sh),
# on 127.0.0.1 only. Source this file after pg.sh's pg_start, then:
#   pgbouncer_start   # exports PGB_DIR, PGB_PORT, PGB_URL
#   pgbouncer_stop    # stops it and deletes PGB_DIR
# No `set -euo pipefail` here: it would leak into the sourcing shell.

pgbouncer_start() {
    PGB_DIR="$(mktemp -d "${TMPDIR:-/tmp}/pgbouncer.XXXXXX")" || return 1
    export PGB_DIR
    PGB_PORT="$(_pg_free_port)" || return 1
    export PGB_PORT
    echo '"postgres" ""' >"$PGB_DIR/userlist.txt"
    # The service sets lock and statement timeouts per transaction (app/adapters/batch.py);
    # its connection options are ignored here, as behind any pooler that multiplexes them.
    cat >"$PGB_DIR/pgbouncer.ini" <<INI
[databases]
accounting = host=127.0.0.1 port=$PG_PORT dbname=accounting user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = trust
auth_file = $PGB_DIR/userlist.txt
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 60
ignore_startup_parameters = extra_float_digits,options
logfile = $PGB_DIR/pgbouncer.log
pidfile = $PGB_DIR/pgbouncer.pid
INI
    if [ "$(id -u)" -eq 0 ]; then
        chown -R postgres: "$PGB_DIR" || return 1
    fi
    # PgBouncer refuses to run as root: root runs it as postgres, like the server.
    (cd "$PGB_DIR" && _pg_as pgbouncer -d "$PGB_DIR/pgbouncer.ini") || {
        cat "$PGB_DIR/pgbouncer.log" >&2
        return 1
    }
    local waited
    for waited in $(seq 1 50); do
        if psql -X -q -h 127.0.0.1 -p "$PGB_PORT" -U postgres -d accounting -c 'SELECT 1' \
            >/dev/null 2>&1; then
            export PGB_URL="postgresql+psycopg://postgres@127.0.0.1:$PGB_PORT/accounting"
            return 0
        fi
        sleep 0.1
    done
    cat "$PGB_DIR/pgbouncer.log" >&2
    return 1
}

# Safe to call more than once, and after a failed or partial pgbouncer_start.
pgbouncer_stop() {
    if [ -n "${PGB_DIR:-}" ] && [ -d "$PGB_DIR" ]; then
        if [ -f "$PGB_DIR/pgbouncer.pid" ]; then
            kill "$(cat "$PGB_DIR/pgbouncer.pid")" 2>/dev/null || true
            sleep 0.2
        fi
        rm -rf "$PGB_DIR"
    fi
    unset PGB_DIR PGB_PORT PGB_URL
}
