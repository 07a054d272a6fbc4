#!/usr/bin/env bash
# Installs the jars of an Apache Kafka broker (KRaft mode) from Maven Central
# into "$KAFKA_HOME/lib", plus the optional kcat CLI from Debian.
#
# Idempotent: does nothing when the jars of this pom are already installed.
#
# Environment:
#   KAFKA_HOME        install root (default: $HOME/.cache/smartgroups/kafka)
#   KAFKA_MAVEN_REPO  Maven local repository to use (default: Maven's own, ~/.m2/repository)
#   KAFKA_SKIP_KCAT   set to 1 to not install kcat
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POM="$SCRIPT_DIR/pom.xml"
KAFKA_HOME=${KAFKA_HOME:-$HOME/.cache/smartgroups/kafka}
LIB_DIR="$KAFKA_HOME/lib"
MARKER="$LIB_DIR/.installed"

log() { printf 'kafka/install: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Runs a command with its output captured; shows the output only on failure.
quiet() {
  local out rc=0
  out=$(mktemp)
  "$@" >"$out" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]]; then
    log "command failed (exit $rc): $*"
    tail -n 50 "$out" >&2
  fi
  rm -f "$out"
  return "$rc"
}

# Runs `apt-get update` at most once per invocation of this script.
APT_UPDATED=0
apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    log "apt-get not available; cannot install: $*"
    return 1
  fi
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo=(sudo -n)
    else
      log "not root and no sudo; cannot install: $*"
      return 1
    fi
  fi
  if [[ $APT_UPDATED -eq 0 ]]; then
    log "apt-get update"
    quiet "${sudo[@]}" apt-get update || return 1
    APT_UPDATED=1
  fi
  log "apt-get install -y $*"
  quiet "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
}

java_major() {
  # Prints the major version of `java` (e.g. 17), or nothing if unknown.
  java -version 2>&1 | sed -n 's/.*version "\([0-9]*\)[."].*/\1/p' | head -n1
}

# --- Java and Maven -----------------------------------------------------------
if ! command -v java >/dev/null 2>&1; then
  apt_install default-jre-headless || die "java not found and could not be installed"
fi
major=$(java_major)
if [[ -z $major || $major -lt 17 ]]; then
  die "the Kafka 4.x broker needs Java 17 or newer; found: $(java -version 2>&1 | head -n1)"
fi
if ! command -v mvn >/dev/null 2>&1; then
  apt_install maven || die "mvn not found and could not be installed"
fi

# --- Kafka jars ---------------------------------------------------------------
pom_sum=$(sha256sum "$POM" | cut -d' ' -f1)
if [[ -f $MARKER && $(cat "$MARKER") == "$pom_sum" ]]; then
  log "jars already installed in $LIB_DIR"
else
  mkdir -p "$KAFKA_HOME"
  tmp_dir=$(mktemp -d "$KAFKA_HOME/lib.tmp.XXXXXX")
  trap 'rm -rf "$tmp_dir"' EXIT
  mvn_args=(-B -q -f "$POM" dependency:copy-dependencies "-DoutputDirectory=$tmp_dir")
  if [[ -n ${KAFKA_MAVEN_REPO:-} ]]; then
    mvn_args+=("-Dmaven.repo.local=$KAFKA_MAVEN_REPO")
  fi
  log "fetching Kafka jars with Maven into $LIB_DIR"
  quiet mvn "${mvn_args[@]}" || die "mvn dependency:copy-dependencies failed"
  compgen -G "$tmp_dir/kafka_2.13-*.jar" >/dev/null || die "kafka_2.13 jar missing after mvn run"
  printf '%s\n' "$pom_sum" >"$tmp_dir/.installed"
  rm -rf "$LIB_DIR"
  mv "$tmp_dir" "$LIB_DIR"
  trap - EXIT
  log "installed $(find "$LIB_DIR" -name '*.jar' | wc -l) jars ($(basename "$(compgen -G "$LIB_DIR/kafka_2.13-*.jar")" .jar))"
fi

# --- kcat (optional) ----------------------------------------------------------
if [[ ${KAFKA_SKIP_KCAT:-0} == 1 ]]; then
  :
elif command -v kcat >/dev/null 2>&1; then
  log "kcat already installed"
elif apt_install kcat; then
  log "kcat installed"
else
  log "WARNING: could not install kcat (optional: tests that use it will be skipped)"
fi
