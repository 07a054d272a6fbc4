#!/usr/bin/env bash
# Stops the Kafka broker started by start.sh (found through its PID file) and
# waits for it to exit: SIGTERM first (clean shutdown), SIGKILL after a timeout.
#
# Environment (same defaults as start.sh):
#   KAFKA_HOME           install root (default: $HOME/.cache/smartgroups/kafka)
#   KAFKA_PORT           client port, used to name the PID file (default: 19092)
#   KAFKA_PID_FILE       PID file (default: $KAFKA_HOME/kafka-$KAFKA_PORT.pid)
#   KAFKA_STOP_TIMEOUT   seconds to wait after SIGTERM before SIGKILL (default: 30)
set -euo pipefail

KAFKA_HOME=${KAFKA_HOME:-$HOME/.cache/smartgroups/kafka}
KAFKA_PORT=${KAFKA_PORT:-19092}
KAFKA_PID_FILE=${KAFKA_PID_FILE:-$KAFKA_HOME/kafka-$KAFKA_PORT.pid}
KAFKA_STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}

log() { printf 'kafka/stop: %s\n' "$*" >&2; }

if [[ ! -f $KAFKA_PID_FILE ]]; then
  log "no PID file $KAFKA_PID_FILE; nothing to stop"
  exit 0
fi
pid=$(cat "$KAFKA_PID_FILE")
if [[ ! $pid =~ ^[0-9]+$ ]]; then
  log "ignoring malformed PID file $KAFKA_PID_FILE"
  rm -f "$KAFKA_PID_FILE"
  exit 0
fi

# Only signal the process if it still is our broker (the PID may have been reused).
is_broker() {
  [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'kafka\.Kafka'
}

if ! is_broker; then
  log "broker (pid $pid) is not running"
  rm -f "$KAFKA_PID_FILE"
  exit 0
fi

# Alive and not a zombie (an orphan is only reaped if PID 1 does so).
alive() {
  kill -0 "$pid" 2>/dev/null || return 1
  local state
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z ]]
}

log "stopping broker (pid $pid)"
kill -TERM "$pid" 2>/dev/null || true
deadline=$((SECONDS + KAFKA_STOP_TIMEOUT))
while alive; do
  if ((SECONDS >= deadline)); then
    log "broker still running after ${KAFKA_STOP_TIMEOUT}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      alive || break
      sleep 0.1
    done
    break
  fi
  sleep 0.2
done
rm -f "$KAFKA_PID_FILE"
log "stopped"
