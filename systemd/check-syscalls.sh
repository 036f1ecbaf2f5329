#!/usr/bin/env bash
# Runs the daemon (the model forecaster, the simulator's OPC-UA server, a /metrics scrape) under
# strace and checks every system call it made against the unit's filter: @system-service minus
# @privileged. Not part of the test command (it needs strace and about a minute); run it when a
# dependency (torch, asyncua, aiokafka) changes. Kafka is off: its client uses the same socket calls.
#   systemd/check-syscalls.sh [seconds to run, default 20]
# Ports: SENTINELLE_SIM_PORT (default 20692) and SENTINELLE_METRICS_PORT (default 20690) on 127.0.0.1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=${VENV:-.venv}
RUN_S=${1:-20}
SIM_PORT=${SENTINELLE_SIM_PORT:-20692}
METRICS_PORT=${SENTINELLE_METRICS_PORT:-20690}
export PYTHONPATH=$PWD/daemon HF_HUB_OFFLINE=1
for tool in strace systemd-analyze curl; do
    command -v "$tool" >/dev/null || { echo "check-syscalls.sh: $tool is missing" >&2; exit 2; }
done
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

sed -e "s#opc.tcp://127.0.0.1:4840/sentinelle/#opc.tcp://127.0.0.1:$SIM_PORT/sentinelle/#" \
    -e "/^\[kafka\]/,/^\[/ s/^enabled = true/enabled = false/" \
    -e "/^\[prometheus\]/,/^\[/ s/^port = 9108/port = $METRICS_PORT/" config/sentinelle.toml >"$work/settings.toml"

"$VENV/bin/python" -m sentinelle.cli simulate --config "$work/settings.toml" --port "$SIM_PORT" --time-scale 10 \
    >"$work/simulator.log" 2>&1 &
pids+=($!)
strace -f -qq -c -o "$work/strace.txt" "$VENV/bin/python" -m sentinelle.cli run --config "$work/settings.toml" \
    >"$work/daemon.log" 2>&1 &
tracer=$!
pids+=("$tracer")
for _ in $(seq 1 120); do grep -q "running:" "$work/daemon.log" && break; sleep 1; done
grep -q "running:" "$work/daemon.log" || { cat "$work/daemon.log" >&2; echo "check-syscalls.sh: the daemon did not start" >&2; exit 1; }
sleep "$RUN_S"
curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics" >/dev/null
daemon=$(pgrep -P "$tracer")
kill -TERM "$daemon"
for _ in $(seq 1 40); do kill -0 "$tracer" 2>/dev/null || break; sleep 1; done
kill -KILL "$daemon" 2>/dev/null || true   # strace writes its summary when the daemon is gone
wait "$tracer" || true

expand() {  # a system-call group, its nested groups expanded
    systemd-analyze syscall-filter "$1" | grep -v '^ *#' | sed 1d | awk '{print $1}' | while read -r x; do
        case "$x" in @*) expand "$x" ;; "") ;; *) echo "$x" ;; esac
    done
}
awk 'NR > 2 && $1 !~ /^-/ && $NF != "total" { print $NF }' "$work/strace.txt" | sort -u >"$work/used"
expand @system-service | sort -u >"$work/allowed"
expand @privileged | sort -u >"$work/privileged"
outside=$(comm -23 "$work/used" "$work/allowed")
denied=$(comm -12 "$work/used" "$work/privileged")
echo "check-syscalls.sh: $(wc -l <"$work/used") distinct system calls used"
if [[ -n "$outside$denied" ]]; then
    echo "outside @system-service: ${outside:-none}; in @privileged (denied): ${denied:-none}" >&2
    exit 1
fi
echo "check-syscalls.sh: all allowed by SystemCallFilter=@system-service ~@privileged"
