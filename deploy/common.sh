# Helpers shared by deploy/{kafka,prometheus,postgres}/*.sh (sourced, not run). Each script
# defines log(), die() and STOP_TIMEOUT before sourcing this file.

# stop_pid PID [SIGNAL]: ask a server to stop (SIGNAL, default TERM: Kafka and Prometheus shut
# down cleanly on it; PostgreSQL's "fast" shutdown is INT — on TERM it would wait for every client
# to leave), wait up to STOP_TIMEOUT seconds,
# then SIGKILL — a stuck server must never hang a test run.
stop_pid() {
    local pid="$1" signal="${2:-TERM}" deadline=$((SECONDS + STOP_TIMEOUT))
    kill "-$signal" "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            log "pid $pid still alive after ${STOP_TIMEOUT}s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    # Reap it if it is our child; wait for it to vanish either way.
    wait "$pid" 2>/dev/null || true
    # After SIGKILL the pid lingers briefly; give it up to 5 s to be gone.
    for _ in {1..25}; do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
}

# apt_install PACKAGE: install a Debian package without letting apt start its service (it
# would grab the package's default port and run from /etc). policy-rc.d exit 101 = "action
# forbidden"; only our own policy is installed (if none exists) and removed after.
# --no-install-recommends keeps extras out (e.g. prometheus-node-exporter); 'apt-get update'
# is retried only if the first try fails (stale lists).
apt_install() {
    local package="$1"
    [[ "$(id -u)" == 0 ]] || die "$package missing and not root; run: sudo apt-get install -y $package"
    export DEBIAN_FRONTEND=noninteractive
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        own_policy=1
    fi
    local rc=0
    apt-get install -y -qq --no-install-recommends "$package" >/dev/null \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$package" >/dev/null; } \
        || rc=$?
    if ((own_policy)); then rm -f "$policy"; fi
    ((rc == 0)) || die "apt-get install $package failed (rc $rc)"
}

# running_pid_of MARKER: the pid in PID_FILE, only if that process is alive AND its command line
# holds MARKER (our config file or data dir) — a stale pid file could name a recycled pid.
running_pid_of() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$1" || return 1
    echo "$pid"
}
