#!/usr/bin/env bash
# A throwaway PostgreSQL cluster on loopback for sentinelle's integration tests
# (the history reader's historian table). Debian's postgresql package provides
# the binaries; the cluster is our own (initdb in the run dir, trust auth for
# 127.0.0.1 only, no Unix socket, fsync off) and runs as a plain background
# process owned by this script. Debian's own "main" cluster is neither used nor
# started.
#
# Usage: deploy/postgres/postgres.sh {install|start|stop|status|dsn}
#
# Environment:
#   SENTINELLE_RUN_DIR                 run root (default <repo>/.run); state lives in $SENTINELLE_RUN_DIR/postgres
#   SENTINELLE_POSTGRES_PORT           TCP port on 127.0.0.1 (default 19432)
#   SENTINELLE_POSTGRES_BIN            directory of initdb/postgres/pg_isready (default: newest /usr/lib/postgresql/*/bin)
#   SENTINELLE_POSTGRES_START_TIMEOUT  seconds to wait for readiness (default 30)
#   SENTINELLE_POSTGRES_STOP_TIMEOUT   seconds to wait for a fast shutdown before SIGKILL (default 15)
#
# PostgreSQL refuses to run as root. As root, the cluster runs as the 'postgres'
# system user the Debian package creates; as anyone else, as the caller. If the
# run dir is not reachable by the 'postgres' user (a checkout under /root), the
# data directory goes to a private temporary directory instead (its path is kept
# in $SENTINELLE_RUN_DIR/postgres/data_dir and removed by stop).
#
# Clients connect with: postgresql://sentinelle@127.0.0.1:$PORT/postgres (see 'dsn').
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"

RUN_ROOT="${SENTINELLE_RUN_DIR:-$REPO_ROOT/.run}"
STATE_DIR="$RUN_ROOT/postgres"
PID_FILE="$STATE_DIR/postgres.pid"
LOG_FILE="$STATE_DIR/postgres.log"
DATA_DIR_FILE="$STATE_DIR/data_dir"

HOST=127.0.0.1
PORT="${SENTINELLE_POSTGRES_PORT:-19432}"
START_TIMEOUT="${SENTINELLE_POSTGRES_START_TIMEOUT:-30}"
STOP_TIMEOUT="${SENTINELLE_POSTGRES_STOP_TIMEOUT:-15}"
DB_USER=sentinelle
DB_NAME=postgres
RUN_AS=postgres

log() { echo "postgres.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=../common.sh
. "$SCRIPT_DIR/../common.sh"

# The newest installed major version's binaries (Debian keeps them off PATH).
bin_dir() {
    if [[ -n "${SENTINELLE_POSTGRES_BIN:-}" ]]; then
        echo "$SENTINELLE_POSTGRES_BIN"
        return 0
    fi
    local newest
    newest="$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null | sort -V | tail -n 1)"
    if [[ -n "$newest" ]]; then
        dirname "$newest"
        return 0
    fi
    local initdb
    initdb="$(command -v initdb || true)"
    [[ -n "$initdb" ]] || return 1
    dirname "$(readlink -f "$initdb")"
}

install() {
    if bin_dir >/dev/null; then
        return 0
    fi
    apt_install postgresql
    bin_dir >/dev/null || die "postgresql installed but no initdb found under /usr/lib/postgresql"
}

# The prefix that runs a command as the cluster's owner. setpriv execs in place
# (no extra process, unlike runuser), so $! of a backgrounded call is the
# server's own pid.
OWNER=()
if [[ "$(id -u)" == 0 ]]; then
    OWNER=(setpriv --reuid="$RUN_AS" --regid="$RUN_AS" --init-groups --)
fi

# From /: the caller's directory may be closed to the owner.
as_owner() { (cd / && exec "${OWNER[@]}" "$@"); }

data_dir() {
    if [[ -f "$DATA_DIR_FILE" ]]; then
        cat "$DATA_DIR_FILE"
    else
        echo "$STATE_DIR/data"
    fi
}

# Our pid, only if that process is alive AND is the server of our data dir
# (a stale pid file could name a recycled pid).
running_pid() { running_pid_of "$(data_dir)"; }

port_open() { (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; }

tail_log() {
    if [[ -s "$LOG_FILE" ]]; then
        echo "---- last 40 lines of $LOG_FILE ----" >&2
        tail -n 40 "$LOG_FILE" >&2
    fi
}

# Where the cluster's files go: the run dir when the owner can write there,
# else a private temporary directory.
prepare_data_dir() {
    local dir="$STATE_DIR/data"
    mkdir -p "$dir"
    if [[ "$(id -u)" == 0 ]]; then
        getent passwd "$RUN_AS" >/dev/null \
            || die "no '$RUN_AS' user (the postgresql package creates it); run deploy/install-system-deps.sh"
        chown "$RUN_AS:" "$dir"
        if ! as_owner test -w "$dir"; then
            rmdir "$dir"
            dir="$(mktemp -d "${TMPDIR:-/tmp}/sentinelle-postgres.XXXXXX")"
            chown "$RUN_AS:" "$dir"
            echo "$dir" >"$DATA_DIR_FILE"
            log "the run dir is not reachable by '$RUN_AS'; data in $dir"
        fi
    fi
    chmod 700 "$dir"
    echo "$dir"
}

start() {
    local pid
    if pid="$(running_pid)"; then
        log "already running (pid $pid) on $HOST:$PORT"
        return 0
    fi
    install
    local bin
    bin="$(bin_dir)"
    # Something else on our port would make the readiness check lie.
    if port_open; then
        die "port $PORT on $HOST is already in use by another process"
    fi

    # Fresh cluster every start: tests must not see tables from a previous run.
    clean_state
    mkdir -p "$STATE_DIR"
    local data
    data="$(prepare_data_dir)"
    if ! as_owner "$bin/initdb" -D "$data" --username="$DB_USER" --auth=trust \
            --encoding=UTF8 --locale=C --no-sync >"$STATE_DIR/initdb.log" 2>&1; then
        cat "$STATE_DIR/initdb.log" >&2
        die "initdb in $data failed"
    fi
    # Loopback TCP only, trust for it and nothing else; no Unix socket (no
    # /var/run/postgresql needed); durability off: the data is thrown away.
    # The role sentinelle_password must log in with a password (SCRAM): the test of secrets read
    # from credential files creates one (tests/integration/test_history_postgres.py).
    cat >"$data/pg_hba.conf" <<EOF
# Generated by deploy/postgres/postgres.sh for tests.
host all sentinelle_password 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
EOF
    cat >>"$data/postgresql.conf" <<EOF

# Added by deploy/postgres/postgres.sh for tests.
listen_addresses = '$HOST'
port = $PORT
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 32MB
max_connections = 20
EOF

    # setsid: own session, so the server survives the calling shell/test runner
    # and a Ctrl-C in the terminal does not reach it.
    (cd / && exec setsid "${OWNER[@]}" "$bin/postgres" -D "$data" >"$LOG_FILE" 2>&1 </dev/null) &
    pid=$!
    echo "$pid" >"$PID_FILE"

    local deadline=$((SECONDS + START_TIMEOUT))
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail_log
            rm -f "$PID_FILE"
            die "postgres process $pid exited during startup"
        fi
        if "$bin/pg_isready" -q -h "$HOST" -p "$PORT" -U "$DB_USER" -d "$DB_NAME" -t 2; then
            break
        fi
        if ((SECONDS >= deadline)); then
            tail_log
            stop_pid "$pid" INT
            die "postgres not ready on $HOST:$PORT after ${START_TIMEOUT}s"
        fi
        sleep 0.3
    done
    log "ready: $(dsn) (pid $pid)"
    log "log: $LOG_FILE"
}


clean_state() {
    if [[ -f "$DATA_DIR_FILE" ]]; then
        local outside
        outside="$(cat "$DATA_DIR_FILE")"
        # Only ever a directory this script made with mktemp.
        if [[ "$outside" == */sentinelle-postgres.* ]]; then rm -rf "$outside"; fi
    fi
    rm -rf "$STATE_DIR"
}

stop() {
    local pid
    if pid="$(running_pid)"; then
        log "stopping postgres (pid $pid)"
        stop_pid "$pid" INT
    else
        log "not running"
    fi
    clean_state
}

status() {
    local pid
    if pid="$(running_pid)"; then
        echo "postgres running (pid $pid) on $HOST:$PORT"
        return 0
    fi
    echo "postgres not running"
    return 1
}

dsn() { echo "postgresql://$DB_USER@$HOST:$PORT/$DB_NAME"; }

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    dsn) dsn ;;
    *) echo "usage: $0 {install|start|stop|status|dsn}" >&2; exit 2 ;;
esac
