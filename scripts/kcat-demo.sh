#!/usr/bin/env bash
# Talks to a running `smartgroups serve` with nothing but kcat: produces a few
# SPEC §4.1 records (a property schema, a smart group, two member profiles and
# an activity), then reads the memberships topic (SPEC §4.2) read_committed
# and prints it, one "<key> <value>" line per event.
#
# Usage: scripts/kcat-demo.sh BROKER [TOPIC_PREFIX]
#   BROKER        host:port of a Kafka broker (serve's --brokers, or its
#                 embedded broker's --embedded-broker address)
#   TOPIC_PREFIX  serve's --topic-prefix (default: smartgroups.)
#
# The topics must exist (serve creates them at start). Member records are
# keyed "<spot>/<member>" and partitioned with librdkafka's murmur2_random,
# the Java client's default partitioner, which the engine expects (SPEC §4.1:
# the member topics are co-partitioned by key).
#
# Expected output: two add events of group "engaged" in spot $KCAT_DEMO_SPOT,
#   <spot>/engaged/u1 {"spot":…,"group":"engaged","member":"u1","op":"add",…,"seq":1}
#   <spot>/engaged/u2 {"spot":…,"group":"engaged","member":"u2","op":"add",…,"seq":1}
# u1 matches through its "vip" tag as soon as its profile arrives, u2 once it
# attended a live. Exits 0 once both events are read, 1 if they do not show
# up within $KCAT_DEMO_TIMEOUT seconds (the memberships read so far are
# printed anyway).
#
# Environment:
#   KCAT_DEMO_SPOT     spot id of the demo records (default: kcatdemo)
#   KCAT_DEMO_TIMEOUT  seconds to wait for the events (default: 60)
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 BROKER [TOPIC_PREFIX]" >&2
  exit 2
fi
BROKER=$1
PREFIX=${2:-smartgroups.}
SPOT=${KCAT_DEMO_SPOT:-kcatdemo}
TIMEOUT=${KCAT_DEMO_TIMEOUT:-60}

log() { printf 'kcat-demo: %s\n' "$*" >&2; }

if ! command -v kcat >/dev/null 2>&1; then
  log "kcat not found (install the Debian package kcat)"
  exit 1
fi

# produce TOPIC_SUFFIX < "key|value" lines
produce() {
  kcat -P -b "$BROKER" -t "$PREFIX$1" -K '|' -X partitioner=murmur2_random
}

TS=2026-11-20T09:00:00Z

log "producing definitions to ${PREFIX}definitions"
produce definitions <<EOF
$SPOT/property/plan|{"kind":"property","spot":"$SPOT","id":"plan","label":"Plan","type":"single_select","options":[{"id":"free","label":"Free"},{"id":"pro","label":"Pro"},{"id":"churned","label":"Churned"}]}
$SPOT/group/engaged|{"kind":"group","spot":"$SPOT","id":"engaged","type":"smart","name":"Engaged members","rule":{"all":[{"field":"profile.status","op":"in","value":["accepted","invited"]},{"not":{"field":"custom.plan","op":"in","value":["churned"]}},{"any":[{"field":"profile.tags","op":"has_any","value":["vip"]},{"activity":"attended_live","count":{"gte":1}}]}]},"ts":"$TS"}
EOF

log "producing two profiles to ${PREFIX}profiles"
produce profiles <<EOF
$SPOT/u1|{"spot":"$SPOT","member":"u1","ts":"$TS","profile":{"first_name":"Ada","last_name":"Lovelace","status":"accepted","tags":["vip"]}}
$SPOT/u2|{"spot":"$SPOT","member":"u2","ts":"$TS","profile":{"first_name":"Grace","last_name":"Hopper","status":"invited","tags":["newcomer"]}}
EOF

log "producing an activity to ${PREFIX}activities"
produce activities <<EOF
$SPOT/u2|{"spot":"$SPOT","member":"u2","ts":"2026-11-20T10:00:00Z","id":"evt-1","type":"attended_live","resource":{"id":"live-42","title":"Weekly AMA"}}
EOF

# read_committed: only events of committed transactions (librdkafka's
# default for consumers, spelled out here).
consume() {
  kcat -C -b "$BROKER" -t "${PREFIX}memberships" -o beginning -e -q \
    -X isolation.level=read_committed -f '%k %s\n'
}

log "waiting for the membership events on ${PREFIX}memberships"
deadline=$((SECONDS + TIMEOUT))
out=""
while :; do
  out=$(consume || true)
  if grep -q "^$SPOT/engaged/u1 .*\"op\":\"add\"" <<<"$out" &&
    grep -q "^$SPOT/engaged/u2 .*\"op\":\"add\"" <<<"$out"; then
    printf '%s\n' "$out"
    exit 0
  fi
  if ((SECONDS >= deadline)); then
    log "the membership events did not show up within ${TIMEOUT}s; read so far:"
    printf '%s\n' "$out"
    exit 1
  fi
  sleep 1
done
