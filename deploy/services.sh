#!/usr/bin/env bash
# Starts/stops the external services sentinelle's integration tests use:
# Kafka (deploy/kafka/kafka.sh), Prometheus (deploy/prometheus/prometheus.sh)
# and PostgreSQL (deploy/postgres/postgres.sh).
#   start: all or nothing - if one fails, whatever this call started is stopped.
#   stop:  best effort - always tries all, exits non-zero if any failed.
#   status: exit 0 only if all run.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KAFKA="$SCRIPT_DIR/kafka/kafka.sh"
PROM="$SCRIPT_DIR/prometheus/prometheus.sh"
POSTGRES="$SCRIPT_DIR/postgres/postgres.sh"

start() {
    local started=()
    # Remember what was already up, so a failed start never stops services
    # someone else started (start is a no-op for those).
    local svc
    for svc in "$KAFKA" "$PROM" "$POSTGRES"; do
        if "$svc" status >/dev/null 2>&1; then
            continue
        fi
        if "$svc" start; then
            started+=("$svc")
        else
            echo "services.sh: $(basename "$svc") failed to start; stopping what this call started" >&2
            local s
            for s in "${started[@]}"; do "$s" stop || true; done
            # Also clear the failed one's state dir / half-started process.
            "$svc" stop || true
            return 1
        fi
    done
    echo "services.sh: kafka 127.0.0.1:${SENTINELLE_KAFKA_PORT:-19092}, prometheus http://127.0.0.1:${SENTINELLE_PROMETHEUS_PORT:-19090}, postgres $("$POSTGRES" dsn)" >&2
}

stop() {
    local rc=0
    "$POSTGRES" stop || rc=1
    "$PROM" stop || rc=1
    "$KAFKA" stop || rc=1
    return "$rc"
}

status() {
    local rc=0
    "$KAFKA" status || rc=1
    "$PROM" status || rc=1
    "$POSTGRES" status || rc=1
    return "$rc"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 {start|stop|status}" >&2; exit 2 ;;
esac
