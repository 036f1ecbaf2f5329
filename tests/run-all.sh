#!/usr/bin/env bash
# The whole test suite, as `make test` and CI run it: static checks, then real
# Kafka, Prometheus and PostgreSQL on loopback, then pytest (unit + integration), then the
# services are stopped whatever happened.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=${VENV:-.venv}
export HF_HUB_OFFLINE=1
export SENTINELLE_RUN_DIR=${SENTINELLE_RUN_DIR:-$PWD/.run}

echo "== ruff"
"$VENV/bin/ruff" check daemon tests bench deploy/grafana
"$VENV/bin/ruff" format --check daemon tests bench deploy/grafana
echo "== mypy"
"$VENV/bin/mypy"
"$VENV/bin/mypy" deploy/grafana
"$VENV/bin/mypy" bench   # benchmarks and experiment scripts are type-checked too (strict, from pyproject)
# The tests too. They are namespace packages (no __init__.py; pytest imports them with --import-mode=importlib)
# whose modules import each other relatively (`from .detect_helpers import ...`): module names from the root.
# Not in pyproject: bench's scripts import their siblings as top-level modules (`import _machine`).
"$VENV/bin/mypy" --explicit-package-bases tests
echo "== dashboards"
"$VENV/bin/python" deploy/grafana/dashboards.py --check
echo "== promtool"
promtool check rules deploy/prometheus/rules.yml
promtool test rules deploy/prometheus/rules_test.yml
# tests/unit/test_systemd_units.py checks the units with it; here a missing tool fails instead of skipping.
command -v systemd-analyze >/dev/null || { echo "systemd-analyze missing: run deploy/install-system-deps.sh" >&2; exit 1; }

echo "== node-opcua (the independent OPC-UA peer of tests/integration/test_opcua_node_peer.py)"
if deploy/node-opcua/node-opcua.sh check; then
    deploy/node-opcua/node-opcua.sh install
else
    echo "node/npm not installed: the node-opcua interoperability tests will be skipped (apt-get install npm)"
fi

echo "== services"
trap 'deploy/services.sh stop || true' EXIT
deploy/services.sh start
export SENTINELLE_TEST_KAFKA_BOOTSTRAP="127.0.0.1:${SENTINELLE_KAFKA_PORT:-19092}"
export SENTINELLE_TEST_KAFKA_SASL_BOOTSTRAP="127.0.0.1:${SENTINELLE_KAFKA_SASL_PORT:-$((${SENTINELLE_KAFKA_PORT:-19092} + 2))}"
export SENTINELLE_TEST_KAFKA_SSL_BOOTSTRAP="127.0.0.1:${SENTINELLE_KAFKA_SSL_PORT:-$((${SENTINELLE_KAFKA_PORT:-19092} + 3))}"
export SENTINELLE_TEST_KAFKA_TLS_DIR="$SENTINELLE_RUN_DIR/kafka/tls"
export SENTINELLE_TEST_PROMETHEUS_URL="http://127.0.0.1:${SENTINELLE_PROMETHEUS_PORT:-19090}"
export SENTINELLE_TEST_PROMETHEUS_TARGETS_DIR="$SENTINELLE_RUN_DIR/prometheus/targets"
SENTINELLE_TEST_POSTGRES_DSN="$(deploy/postgres/postgres.sh dsn)"
export SENTINELLE_TEST_POSTGRES_DSN

echo "== pytest"
"$VENV/bin/python" -m pytest "$@"
