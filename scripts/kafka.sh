#!/usr/bin/env bash
# Local single-node Kafka (KRaft broker+controller) for integration tests, from the jars `make tools` copies into
# .tools/kafka/libs. No Docker, no tarball.
#
#   scripts/kafka.sh up      start (no-op when already running and accepting produces); returns once a produce succeeds
#   scripts/kafka.sh down    SIGTERM the broker started by `up` (its PID file only), SIGKILL after 20 s; no error if stopped
#   scripts/kafka.sh status  exit 0 when running and accepting produces, 1 when running but not accepting, 3 when stopped
#   scripts/kafka.sh reset   down, then delete the broker's data directory (topics, offsets, cluster id)
#
# Environment: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), KAFKA_HEAP (256m), KAFKA_START_TIMEOUT (60, seconds),
# KAFKA_JVM_EXTRA_OPTS (-XX:TieredStopAtLevel=1), TOOLS_DIR (<repo>/.tools), JAVA (java),
# KAFKA_STATE_DIR (.tools/kafka): where this broker keeps its config, PID file, lock, log and data. A second broker
# (the bench's, beside the one of the integration tests) needs a directory and ports of its own: with the same
# directory, `up` would find the other broker's PID file and restart it on the new port.
# Files: $KAFKA_STATE_DIR/{server.properties,broker.pid,broker.log}, data in $KAFKA_STATE_DIR/data; the jars always
# come from .tools/kafka/libs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS_DIR=${TOOLS_DIR:-$ROOT/.tools}
KAFKA_HOME=${KAFKA_STATE_DIR:-$TOOLS_DIR/kafka}
LIBS=$TOOLS_DIR/kafka/libs
DATA=$KAFKA_HOME/data
CONF=$KAFKA_HOME/server.properties
PID_FILE=$KAFKA_HOME/broker.pid
LOG_FILE=$KAFKA_HOME/broker.log
TEMPLATE=$ROOT/tools/kafka-broker/server.properties.template
LOG4J2=$ROOT/tools/kafka-broker/log4j2.properties
PROBE=$ROOT/scripts/kafka-probe.mjs

PORT=${KAFKA_PORT:-9092}
CPORT=${KAFKA_CONTROLLER_PORT:-9093}
HEAP=${KAFKA_HEAP:-256m}
START_TIMEOUT=${KAFKA_START_TIMEOUT:-60}
JAVA=${JAVA:-java}
# C1 only (-XX:TieredStopAtLevel=1): smaller RSS and a slightly faster start on 2 cores; figures in
# tools/kafka-broker/README.md. KAFKA_JVM_EXTRA_OPTS= (empty) turns it off.
read -r -a EXTRA_OPTS <<<"${KAFKA_JVM_EXTRA_OPTS--XX:TieredStopAtLevel=1}"

JVM_OPTS=(
  "-Xms$HEAP" "-Xmx$HEAP"
  -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent
  -Djava.awt.headless=true
  "-Dkafka.logs.dir=$DATA/logs"
  "-Dlog4j2.configurationFile=$LOG4J2"
  "${EXTRA_OPTS[@]}"
)

log() { echo "kafka: $*"; }
die() { echo "kafka: error: $*" >&2; exit 1; }
now_ms() { date +%s%3N; }

read_pid() {
  [[ -f $PID_FILE ]] || return 1
  local pid
  pid=$(tr -dc '0-9' <"$PID_FILE")
  [[ -n $pid ]] || return 1
  echo "$pid"
}

# The PID is alive, not a zombie, and is the broker started with our config file (guards against PID reuse).
is_our_broker() {
  local pid=$1 cmdline state
  [[ -r /proc/$pid/cmdline ]] || return 1
  state=$(sed -e 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1) || return 1
  [[ $state != Z && $state != X ]] || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *kafka.Kafka* && $cmdline == *"$CONF"* ]]
}

rss_mib() { awk '/^VmRSS:/ { printf "%d", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo "?"; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

probe() { node "$PROBE" --brokers "127.0.0.1:$PORT" "$@"; }

tail_log() {
  if [[ -f $LOG_FILE ]]; then
    echo "---- last 60 lines of $LOG_FILE ----" >&2
    tail -n 60 "$LOG_FILE" >&2
    echo "----" >&2
  fi
}

# 22-character unpadded base64url of 16 random bytes, not starting with '-' (like org.apache.kafka.common.Uuid).
cluster_id() {
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    [[ $id != -* ]] && { echo "$id"; return; }
  done
}

preflight() {
  [[ -f $LIBS/.complete ]] || die "Kafka jars missing in $LIBS: run 'make tools' first"
  command -v "$JAVA" >/dev/null || die "java not found (Kafka 4.x needs Java 17+)"
  local major
  major=$("$JAVA" -version 2>&1 | awk -F'"' '/version/ { split($2, v, "."); print v[1]; exit }')
  [[ ${major:-0} -ge 17 ]] || die "Java 17+ required, found '${major:-unknown}'"
  command -v node >/dev/null || die "node not found"
  [[ -d $ROOT/node_modules/kafkajs ]] || die "node_modules/kafkajs missing: run 'make node_modules' first"
}

render_config() {
  mkdir -p "$DATA/logs"
  sed -e "s|\${PORT}|$PORT|g" -e "s|\${CPORT}|$CPORT|g" -e "s|\${DATA}|$DATA|g" "$TEMPLATE" >"$CONF.tmp"
  mv "$CONF.tmp" "$CONF"
}

format_storage() {
  if [[ -f $DATA/kraft-logs/meta.properties ]]; then
    FORMAT_MS=0
    return
  fi
  local id t0 out
  id=$(cluster_id)
  log "formatting $DATA/kraft-logs (cluster id $id)"
  t0=$(now_ms)
  if ! out=$("$JAVA" "${JVM_OPTS[@]}" -cp "$LIBS/*" kafka.tools.StorageTool format \
    -t "$id" -c "$CONF" --ignore-formatted 2>&1); then
    echo "$out" >&2
    die "StorageTool format failed"
  fi
  FORMAT_MS=$(($(now_ms) - t0))
  log "formatted in ${FORMAT_MS} ms"
}

stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do # 100 x 0.2 s = 20 s
    is_our_broker "$pid" || return 0
    sleep 0.2
  done
  log "pid $pid still running after 20 s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    is_our_broker "$pid" || return 0
    sleep 0.1
  done
  die "pid $pid did not exit after SIGKILL"
}

cmd_up() {
  preflight
  mkdir -p "$KAFKA_HOME"
  exec 9>"$KAFKA_HOME/.lock"
  flock -w 120 9 || die "another 'kafka.sh' holds $KAFKA_HOME/.lock"

  local pid
  if pid=$(read_pid) && is_our_broker "$pid"; then
    if probe --pid "$pid" --timeout "$((START_TIMEOUT * 1000))" --quiet; then
      log "already running on 127.0.0.1:$PORT (pid $pid, RSS $(rss_mib "$pid") MiB): nothing to do"
      return 0
    fi
    log "pid $pid is running but does not accept produces: restarting it"
    stop_pid "$pid"
  fi
  rm -f "$PID_FILE"

  port_in_use "$PORT" && die "127.0.0.1:$PORT is already in use by another process (set KAFKA_PORT)"
  port_in_use "$CPORT" && die "127.0.0.1:$CPORT is already in use by another process (set KAFKA_CONTROLLER_PORT)"

  render_config
  format_storage

  local t0
  t0=$(now_ms)
  # setsid: own session, so a Ctrl-C in the terminal that ran `make` does not reach the broker; `down` stops it.
  # 9>&-: the broker must not inherit the lock.
  setsid "$JAVA" "${JVM_OPTS[@]}" -cp "$LIBS/*" kafka.Kafka "$CONF" </dev/null >"$LOG_FILE" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$PID_FILE"
  log "started pid $pid (heap $HEAP ${EXTRA_OPTS[*]}), log $LOG_FILE; waiting for a produce to be accepted"

  local rc=0
  probe --pid "$pid" --timeout "$((START_TIMEOUT * 1000))" --quiet || rc=$?
  if [[ $rc -ne 0 ]]; then
    tail_log
    if is_our_broker "$pid"; then
      stop_pid "$pid"
    fi
    rm -f "$PID_FILE"
    if [[ $rc -eq 2 ]]; then die "the broker JVM exited during startup"; fi
    die "the broker did not accept a produce within ${START_TIMEOUT} s"
  fi
  local ready_ms=$(($(now_ms) - t0))
  log "up on 127.0.0.1:$PORT (pid $pid): format ${FORMAT_MS} ms, launch to first accepted produce ${ready_ms} ms," \
    "RSS $(rss_mib "$pid") MiB"
}

cmd_down() {
  mkdir -p "$KAFKA_HOME"
  exec 9>"$KAFKA_HOME/.lock"
  flock -w 60 9 || die "another 'kafka.sh' holds $KAFKA_HOME/.lock"
  local pid
  if ! pid=$(read_pid); then
    log "not running"
    rm -f "$PID_FILE"
    return 0
  fi
  if ! is_our_broker "$pid"; then
    log "not running (removing stale PID file for pid $pid)"
    rm -f "$PID_FILE"
    return 0
  fi
  local t0
  t0=$(now_ms)
  stop_pid "$pid"
  rm -f "$PID_FILE"
  log "stopped pid $pid in $(($(now_ms) - t0)) ms"
}

cmd_status() {
  local pid
  if pid=$(read_pid) && is_our_broker "$pid"; then
    if probe --timeout 3000 --quiet 2>/dev/null; then
      log "running on 127.0.0.1:$PORT (pid $pid, RSS $(rss_mib "$pid") MiB), accepting produces"
      return 0
    fi
    log "running (pid $pid, RSS $(rss_mib "$pid") MiB) but not accepting produces on 127.0.0.1:$PORT"
    return 1
  fi
  log "not running"
  return 3
}

cmd_reset() {
  cmd_down
  rm -rf "$DATA" "$CONF"
  log "deleted $DATA"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  reset) cmd_reset ;;
  *)
    echo "usage: $0 up|down|status|reset" >&2
    exit 64
    ;;
esac
