#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft: broker + controller in one JVM) on loopback,
# for sentinelle's integration tests. No systemd, no Kafka tarball: the jars
# come from Maven Central via deploy/kafka/pom.xml and the broker runs as a
# plain background process owned by this script.
#
# Usage: deploy/kafka/kafka.sh {fetch|start|stop|status}
#
# Environment:
#   SENTINELLE_RUN_DIR                 run root (default <repo>/.run); state lives in $SENTINELLE_RUN_DIR/kafka
#   SENTINELLE_KAFKA_PORT              PLAINTEXT listener (default 19092)
#   SENTINELLE_KAFKA_CONTROLLER_PORT   KRaft controller listener (default 19093)
#   SENTINELLE_KAFKA_SASL_PORT         SASL_SSL listener, SCRAM-SHA-512 and PLAIN (default PORT+2)
#   SENTINELLE_KAFKA_SSL_PORT          SSL listener requiring a client certificate (default PORT+3)
#
# The TLS listeners use certificates made at every start in $SENTINELLE_RUN_DIR/kafka/tls: a CA
# (ca.pem), the broker's (IP 127.0.0.1, localhost), a client certificate and key signed by the CA
# (client.pem, client.key) and the password of SASL user "sentinelle" (sasl-password), created
# for SCRAM-SHA-512 with Kafka's own StorageTool (format --add-scram).
#
# ACLs are enforced (StandardAuthorizer). The PLAINTEXT listener's ANONYMOUS principal is a super
# user, so tests on it are unaffected. User:sentinelle (the SASL user, and the client certificate
# CN=sentinelle on the SSL listener) gets exactly the README's ACLs for the daemon's default topics
# and group, set with Kafka's AclCommand, plus the same on the prefix "sentinelle-test-".
#   SENTINELLE_KAFKA_HEAP              JVM heap flags (default "-Xms256m -Xmx512m"; the test box is small)
#   SENTINELLE_KAFKA_START_TIMEOUT     seconds to wait for readiness (default 60)
#   SENTINELLE_KAFKA_STOP_TIMEOUT      seconds to wait for a graceful stop before SIGKILL (default 20)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"

LIB_DIR="$SCRIPT_DIR/lib"
RUN_ROOT="${SENTINELLE_RUN_DIR:-$REPO_ROOT/.run}"
STATE_DIR="$RUN_ROOT/kafka"
DATA_DIR="$STATE_DIR/data"
LOG_DIR="$STATE_DIR/logs"
PROPS="$STATE_DIR/server.properties"
LOG4J_CONF="$STATE_DIR/log4j2.properties"
PID_FILE="$STATE_DIR/kafka.pid"
CONSOLE_LOG="$LOG_DIR/console.log"
SERVER_LOG="$LOG_DIR/server.log"

HOST=127.0.0.1
PORT="${SENTINELLE_KAFKA_PORT:-19092}"
CONTROLLER_PORT="${SENTINELLE_KAFKA_CONTROLLER_PORT:-19093}"
SASL_PORT="${SENTINELLE_KAFKA_SASL_PORT:-$((PORT + 2))}"
SSL_PORT="${SENTINELLE_KAFKA_SSL_PORT:-$((PORT + 3))}"
TLS_DIR="$STATE_DIR/tls"
SASL_USER=sentinelle
HEAP="${SENTINELLE_KAFKA_HEAP:--Xms256m -Xmx512m}"
START_TIMEOUT="${SENTINELLE_KAFKA_START_TIMEOUT:-60}"
STOP_TIMEOUT="${SENTINELLE_KAFKA_STOP_TIMEOUT:-20}"

log() { echo "kafka.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
# shellcheck source=../common.sh
. "$SCRIPT_DIR/../common.sh"

# The broker jar is the marker that fetch already ran (lib/ is gitignored).
# kafka-tools came later (for AclCommand): a lib/ without it is fetched again.
have_jars() { compgen -G "$LIB_DIR/kafka_2.13-*.jar" >/dev/null && compgen -G "$LIB_DIR/kafka-tools-[0-9]*.jar" >/dev/null; }

fetch() {
    if have_jars; then
        return 0
    fi
    command -v mvn >/dev/null || die "mvn not found; run deploy/install-system-deps.sh"
    log "resolving Kafka jars from Maven Central into $LIB_DIR ..."
    # Copy into a temp dir and rename, so an interrupted download never leaves
    # a half-filled lib/ that have_jars would mistake for a complete one.
    local tmp="$SCRIPT_DIR/lib.tmp.$$"
    rm -rf "$tmp"
    # Maven's output is kept in a file and shown only on failure (even -q
    # prints stray ANSI codes on Debian's 3.8.7).
    local mvn_log="$SCRIPT_DIR/mvn.$$.log"
    if ! (cd "$SCRIPT_DIR" && mvn -q -B -Dstyle.color=never \
            dependency:copy-dependencies -DoutputDirectory="$tmp" -DincludeScope=runtime) \
            >"$mvn_log" 2>&1; then
        cat "$mvn_log" >&2
        rm -rf "$tmp" "$mvn_log"
        die "maven could not resolve the Kafka jars (see output above)"
    fi
    rm -f "$mvn_log"
    rm -rf "$LIB_DIR" "$SCRIPT_DIR/target"
    mv "$tmp" "$LIB_DIR"
    have_jars || die "maven finished but no kafka_2.13 jar in $LIB_DIR"
    log "fetched $(find "$LIB_DIR" -name '*.jar' | wc -l) jars"
}

# Our pid, only if that process is alive AND is the broker we started with
# this state dir (a stale pid file could name a recycled pid).
running_pid() { running_pid_of "$PROPS"; }

port_open() {
    # bash's /dev/tcp: no nc/ss dependency. Subshell so the fd closes.
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# A real protocol round trip, not just an open socket: send a Kafka
# MetadataRequest v4 (the oldest Metadata version Kafka 4 still accepts,
# KIP-896) with an empty topic list and require >=1 broker and a controller in
# the answer. Python stdlib only, so it works before the project venv exists.
metadata_ok() {
    python3 - "$HOST" "$PORT" <<'PY' 2>/dev/null
import socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])
client = b"sentinelle-ready"
# header v1: api_key=3 (Metadata), api_version=4, correlation_id, client_id
hdr = struct.pack(">hhih", 3, 4, 42, len(client)) + client
# body v4: topics=[] (empty array => no topics, brokers only), allow_auto_topic_creation=false
body = struct.pack(">i", 0) + b"\x00"
req = hdr + body
with socket.create_connection((host, port), timeout=3) as s:
    s.settimeout(3)
    s.sendall(struct.pack(">i", len(req)) + req)
    def recv(n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf
    (size,) = struct.unpack(">i", recv(4))
    resp = recv(size)
corr, _throttle, nbrokers = struct.unpack(">iii", resp[:12])
off = 12
for _ in range(nbrokers):
    off += 4                                  # node_id
    (hl,) = struct.unpack(">h", resp[off:off + 2]); off += 2 + hl   # host
    off += 4                                  # port
    (rl,) = struct.unpack(">h", resp[off:off + 2]); off += 2 + max(rl, 0)  # rack (nullable)
(cl,) = struct.unpack(">h", resp[off:off + 2]); off += 2 + max(cl, 0)      # cluster_id (nullable)
(controller,) = struct.unpack(">i", resp[off:off + 4])
sys.exit(0 if corr == 42 and nbrokers >= 1 and controller >= 0 else 1)
PY
}

write_config() {
    mkdir -p "$DATA_DIR" "$LOG_DIR"
    cat >"$PROPS" <<EOF
# Generated by deploy/kafka/kafka.sh for tests; rewritten on every start.
process.roles=broker,controller
node.id=1
# Dynamic single-voter quorum, initialised by 'StorageTool format --standalone'.
controller.quorum.bootstrap.servers=$HOST:$CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT,SASL_SSL://$HOST:$SASL_PORT,SSL://$HOST:$SSL_PORT
advertised.listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CONTROLLER_PORT,SASL_SSL://$HOST:$SASL_PORT,SSL://$HOST:$SSL_PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL

# SASL_SSL: SCRAM-SHA-512 (user made by StorageTool format --add-scram) and PLAIN (user in the JAAS line).
sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$(cat "$TLS_DIR/sasl-password")";
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$TLS_DIR/broker-keystore.pem
listener.name.sasl_ssl.ssl.key.password=$(cat "$TLS_DIR/key-password")
# SSL: mutual TLS, the client's certificate signed by the test CA.
listener.name.ssl.ssl.keystore.type=PEM
listener.name.ssl.ssl.keystore.location=$TLS_DIR/broker-keystore.pem
listener.name.ssl.ssl.key.password=$(cat "$TLS_DIR/key-password")
listener.name.ssl.ssl.truststore.type=PEM
listener.name.ssl.ssl.truststore.location=$TLS_DIR/ca.pem
listener.name.ssl.ssl.client.auth=required
# CN=sentinelle -> User:sentinelle: one principal for SASL and mutual TLS.
ssl.principal.mapping.rules=RULE:^CN=([^,]+)\$/\$1/,DEFAULT

authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:ANONYMOUS
log.dirs=$DATA_DIR

# One broker: every internal topic must live with replication factor 1.
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1

# Tests create topics implicitly and expect consumer groups to join at once.
auto.create.topics.enable=true
group.initial.rebalance.delay.ms=0

# Keep the footprint small: few threads, small segments, short retention.
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
background.threads=2
log.segment.bytes=16777216
log.retention.hours=1
log.retention.check.interval.ms=60000
EOF
    # File-only logging: the broker is chatty at INFO, tests should not see it.
    cat >"$LOG4J_CONF" <<EOF
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $SERVER_LOG
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
# These two are the noisiest at INFO and useless for tests.
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
EOF
}

# make_tls: the test CA, the broker's certificate and key (encrypted PKCS#8, as Kafka's PEM keystore
# wants it, with PBE-SHA1-3DES: Java 17 reads no PBES2 key), a client certificate and key, the
# SASL password. openssl only.
make_tls() {
    command -v openssl >/dev/null || die "openssl not found"
    mkdir -p "$TLS_DIR"
    chmod 0700 "$TLS_DIR"
    (
        cd "$TLS_DIR"
        umask 077
        head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >key-password
        head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >sasl-password
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
            -subj "/CN=sentinelle test CA" 2>/dev/null
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >broker.ext
        openssl req -newkey rsa:2048 -nodes -keyout broker.key -out broker.csr -subj "/CN=localhost" 2>/dev/null
        openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out broker.crt -days 2 \
            -extfile broker.ext 2>/dev/null
        openssl pkcs8 -topk8 -in broker.key -v1 PBE-SHA1-3DES -passout "file:key-password" -out broker.p8
        cat broker.p8 broker.crt >broker-keystore.pem
        openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj "/CN=$SASL_USER" 2>/dev/null
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 2>/dev/null
        rm -f ./*.csr broker.key broker.p8 broker.ext
    )
}

# Kafka cluster ids are 16 random bytes, URL-safe base64 without padding (22
# chars). Generated in bash to save a ~1-2 s JVM start ('StorageTool random-uuid').
# Not one starting with '-': StorageTool's argument parser takes "--cluster-id -x…"
# for a missing value and an unknown option (1 start in 64 failed so).
random_cluster_id() {
    local id
    while :; do
        id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | cut -c1-22)"
        [[ "$id" == -* ]] || break
    done
    echo "$id"
}

java_opts() {
    # shellcheck disable=SC2086  # HEAP is intentionally word-split
    echo $HEAP -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$LOG4J_CONF" -Dkafka.logs.dir="$LOG_DIR"
}

tail_logs() {
    local f
    for f in "$CONSOLE_LOG" "$SERVER_LOG"; do
        if [[ -s "$f" ]]; then
            echo "---- last 40 lines of $f ----" >&2
            tail -n 40 "$f" >&2
        fi
    done
}

start() {
    local pid
    if pid="$(running_pid)"; then
        log "already running (pid $pid) on $HOST:$PORT"
        return 0
    fi
    command -v java >/dev/null || die "java not found; run deploy/install-system-deps.sh"
    command -v python3 >/dev/null || die "python3 not found (needed for the readiness probe)"
    # Something else on our ports would make the readiness check lie.
    if port_open "$HOST" "$PORT" || port_open "$HOST" "$CONTROLLER_PORT"; then
        die "port $PORT or $CONTROLLER_PORT on $HOST is already in use by another process"
    fi
    fetch

    # Fresh state every start: tests must not see topics/offsets from a previous run.
    if port_open "$HOST" "$SASL_PORT" || port_open "$HOST" "$SSL_PORT"; then
        die "port $SASL_PORT or $SSL_PORT on $HOST is already in use by another process"
    fi
    rm -rf "$STATE_DIR"
    mkdir -p "$STATE_DIR"
    make_tls
    write_config

    local cluster_id opts
    cluster_id="$(random_cluster_id)"
    read -r -a opts <<<"$(java_opts)"
    if ! java "${opts[@]}" -cp "$LIB_DIR/*" kafka.tools.StorageTool \
            format --config "$PROPS" --cluster-id "$cluster_id" --standalone \
            --add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$(cat "$TLS_DIR/sasl-password")]" \
            >"$LOG_DIR/format.log" 2>&1; then
        cat "$LOG_DIR/format.log" >&2
        die "formatting KRaft storage in $DATA_DIR failed"
    fi

    # setsid: own session, so the broker survives the calling shell/test runner
    # and a Ctrl-C in the terminal does not reach it.
    setsid java "${opts[@]}" -cp "$LIB_DIR/*" kafka.Kafka "$PROPS" \
        >"$CONSOLE_LOG" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$PID_FILE"

    local deadline=$((SECONDS + START_TIMEOUT))
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail_logs
            rm -f "$PID_FILE"
            die "broker process $pid exited during startup"
        fi
        if port_open "$HOST" "$PORT" && metadata_ok; then
            break
        fi
        if ((SECONDS >= deadline)); then
            tail_logs
            stop_pid "$pid"
            die "broker not ready on $HOST:$PORT after ${START_TIMEOUT}s"
        fi
        sleep 0.5
    done
    set_acls
    log "ready: bootstrap $HOST:$PORT, SASL_SSL $HOST:$SASL_PORT, SSL $HOST:$SSL_PORT (pid $pid, cluster id $cluster_id)"
    log "logs: $SERVER_LOG (console: $CONSOLE_LOG)"
}


# The daemon's ACLs as the README gives them (literal names), and the same on the tests' prefix.
set_acls() {
    local opts
    read -r -a opts <<<"$(java_opts)"
    acl() {
        java "${opts[@]}" -cp "$LIB_DIR/*" org.apache.kafka.tools.AclCommand --bootstrap-server "$HOST:$PORT" \
            --add --allow-principal "User:$SASL_USER" "$@" >>"$LOG_DIR/acls.log" 2>&1 \
            || { cat "$LOG_DIR/acls.log" >&2; die "setting ACLs failed"; }
    }
    acl --producer --topic sentinelle.alerts --topic sentinelle.command-replies --idempotent
    acl --consumer --topic sentinelle.commands --group sentinelle
    acl --producer --consumer --idempotent --resource-pattern-type prefixed \
        --topic sentinelle-test- --group sentinelle-test-
}

stop() {
    local pid
    if pid="$(running_pid)"; then
        log "stopping broker (pid $pid)"
        stop_pid "$pid"
    else
        log "not running"
    fi
    rm -rf "$STATE_DIR"
}

status() {
    local pid
    if pid="$(running_pid)"; then
        echo "kafka running (pid $pid) on $HOST:$PORT"
        return 0
    fi
    echo "kafka not running"
    return 1
}

case "${1:-}" in
    fetch) fetch ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 {fetch|start|stop|status}" >&2; exit 2 ;;
esac
