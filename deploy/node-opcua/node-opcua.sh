#!/usr/bin/env bash
# The independent OPC-UA peer of the integration tests: node-opcua (npm), a secured server.
#
#   deploy/node-opcua/node-opcua.sh install   npm ci from package-lock.json (once; again when the lock changes),
#                                             cache in $SENTINELLE_RUN_DIR/npm-cache; ~15-25 s the first time
#   deploy/node-opcua/node-opcua.sh check     exit 0 when node and npm are installed
#
# The tests start server.js themselves (one server per test, with its own PKI folder).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
run_dir="${SENTINELLE_RUN_DIR:-$here/../../.run}"
log() { echo "node-opcua: $*" >&2; }
die() { log "$*"; exit 1; }

case "${1:-}" in
check)
    command -v node >/dev/null && command -v npm >/dev/null
    ;;
install)
    command -v npm >/dev/null || die "npm not found (Debian: apt-get install npm)"
    stamp="$here/node_modules/.sentinelle-lock"
    if [[ -f "$stamp" ]] && cmp -s "$stamp" "$here/package-lock.json"; then
        exit 0
    fi
    mkdir -p "$run_dir/npm-cache"
    log "installing node-opcua (npm ci)"
    began=$SECONDS
    npm ci --prefix "$here" --cache "$run_dir/npm-cache" --no-audit --no-fund --loglevel=error >&2
    cp "$here/package-lock.json" "$stamp"
    log "installed in $((SECONDS - began)) s"
    ;;
*)
    die "usage: $0 install|check"
    ;;
esac
