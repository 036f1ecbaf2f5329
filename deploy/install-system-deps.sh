#!/usr/bin/env bash
# Installs the system-level tools sentinelle's integration tests need, then
# pre-fetches the Kafka jars. Idempotent: apt is only touched (and its lists
# only refreshed) when something is actually missing.
#   prometheus/promtool  - metrics backend + rules tests (deploy/prometheus)
#   maven                - resolves Kafka jars from Maven Central (deploy/kafka)
#   java (>= 17)         - runs the Kafka 4 broker
#   curl                 - readiness probe for Prometheus
#   postgresql           - a throwaway historian for the history reader's tests (deploy/postgres)
#   systemd              - systemd-analyze checks the units' hardening offline (tests/unit/test_systemd_units.py)
#   npm (and node)       - the independent OPC-UA peer, node-opcua (deploy/node-opcua)
#   openssl              - certificates of the test Kafka's TLS and SASL_SSL listeners (deploy/kafka)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { echo "install-system-deps.sh: $*" >&2; }

missing=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || missing+=(prometheus)
command -v mvn >/dev/null || missing+=(maven)
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)   # Kafka readiness probe (stdlib only)
# Debian keeps the server binaries off PATH, under /usr/lib/postgresql/<major>/bin.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
# Container images often lack systemd; only its analyze tool is used (offline, on the unit files).
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v npm >/dev/null || missing+=(npm)
command -v openssl >/dev/null || missing+=(openssl)

# Kafka 4 brokers refuse to run on Java < 17.
java_major() {
    java -version 2>&1 | awk -F'"' '/version/ { split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit }'
}
if ! command -v java >/dev/null || (( $(java_major || echo 0) < 17 )); then
    missing+=(default-jre-headless)
fi

if ((${#missing[@]})); then
    [[ "$(id -u)" == 0 ]] || { log "need root to install: ${missing[*]}"; exit 1; }
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Keep apt from starting Debian's own services (prometheus on :9090, postgres on :5432);
    # tests run their own instance. Only add a policy-rc.d if none exists.
    policy=/usr/sbin/policy-rc.d
    own_policy=0
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        own_policy=1
        trap 'rm -f "$policy"' EXIT
    fi
    apt-get update -qq
    # --no-install-recommends: prometheus would otherwise pull node-exporter,
    # maven a full JDK's worth of extras.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if ((own_policy)); then rm -f "$policy"; trap - EXIT; fi
else
    log "system packages already present"
fi

"$SCRIPT_DIR/kafka/kafka.sh" fetch
log "done"
