#!/usr/bin/env bash
# Runs the commands of the README's sections "Producing input", "Consuming
# memberships" and "Writing rules" as written, in order, against a fresh
# `smartgroups serve`, and checks what they print.
#
# It builds the binary and starts serve with its embedded broker, a
# temporary data dir, an admin token in SMARTGROUPS_API_TOKEN (exported to
# the commands, as the README asks) and free ports; in each command the
# README's addresses 127.0.0.1:9092 and 127.0.0.1:8080 become the ports
# serve got. Every ```sh block of those sections starts with a "# title"
# line, and the table below says what to do with it and what its output
# must contain; a block without an entry, or an entry without a block,
# fails the run, so the README and this script stay in step. On exit it
# stops serve and removes what it created.
#
# Needs go, kcat (Debian package kcat) and curl; scripts/install-kcat.sh
# installs the last two.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log() { printf 'readme-walkthrough: %s\n' "$*" >&2; }
fail() {
  log "FAIL: $*"
  exit 1
}

for tool in go kcat curl; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool not found (scripts/install-kcat.sh installs kcat and curl)"
done

work=$(mktemp -d)
pid=""
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# --- what to do with each block, by its title -------------------------------
# expect TITLE MODE [PATTERN...]
#   skip        not run (the script does it its own way)
#   once        run once; every PATTERN (grep -E) must match its output
#   eventually  run until every PATTERN matches (60s at most): for reads of
#               what the engine produces asynchronously
#   resume      run once (PATTERNs must match), then again: the second run
#               must print nothing (a consumer resuming from its offsets)
titles=()
modes=()
patterns=()
expect() {
  titles+=("$1")
  modes+=("$2")
  shift 2
  local IFS=$'\n'
  patterns+=("$*")
}

ev() { # ev KEY OP REASON SEQ: a membership event line of kcat -f '%k %s\n'
  printf '^%s \\{.*"op":"%s".*"reason":"%s".*"seq":%s\\}$' "$1" "$2" "$3" "$4"
}

expect "start serve with an admin token (keep it running; run the rest in a shell with the same token)" skip
expect "definitions: a property schema and a smart group" once
expect "profiles: two members" once
expect "properties: a custom property value" once
expect "activities: u2 attends a live" once
expect "erase u1, then create it again" once
expect "the same from Go (franz-go): member u3, tagged vip, on the pro plan, attended a live" once \
  '^acme/u3 smartgroups\.profiles\[[0-9]+\]@[0-9]+$' '^acme/u3 smartgroups\.activities\[[0-9]+\]@[0-9]+$'
expect "every membership event so far, committed ones only, then exit (-e)" eventually \
  "$(ev acme/engaged/u1 add eligibility 1)" "$(ev acme/engaged/u2 add rule 1)" \
  "$(ev acme/engaged/u1 remove erased 2)" "$(ev acme/engaged/u1 add '[a-z]+' 3)" \
  "$(ev acme/engaged/u3 add '[a-z]+' 1)"
expect "as a consumer group: each run prints what came since the offsets the previous run committed" resume \
  "$(ev acme/engaged/u1 add '[a-z]+' 3)" "$(ev acme/engaged/u3 add '[a-z]+' 1)"
expect "create a smart group: VIPs on the pro plan" once '"id":"pro-vips"' '"member_count":1[,}]'
expect "preview a rule" once '^\{"count":2,"members":\[' '"member":"u2"' '"member":"u3"'
expect "dry-run a rule change: who would be added and removed" once \
  '^\{"added":\[\],"removed":\["u2"\],"added_count":0,"removed_count":1,"access":\{\}\}$'
expect "blacklist u2 from engaged, then list the blacklist" once \
  '^\{"group":"engaged","member":"u2"\}$' '^\{"items":\[\{"group":"engaged","member":"u2"\}\],"next_cursor":""\}$'
expect "explain: why u2 is not in engaged" once \
  '"in_group":false,"eligible":true,"blacklisted":true' '"matched_count":1'
expect "remove the blacklist entry, then list the group's members" once \
  '^\{"items":\[' '"member":"u1"' '"member":"u2"' '"member":"u3"'

# --- the README's blocks ----------------------------------------------------
mkdir -p "$work/blocks"
awk -v dir="$work/blocks" '
  /^## / {
    sub(/^## /, "")
    in_section = ($0 == "Producing input" || $0 == "Consuming memberships" || $0 == "Writing rules")
    next
  }
  in_section && !in_block && /^```sh$/ { in_block = 1; n++; file = sprintf("%s/%02d.sh", dir, n); next }
  in_block && /^```$/ { in_block = 0; close(file); next }
  in_block { print > file }
' README.md
blocks=("$work"/blocks/*.sh)
[[ -e ${blocks[0]} ]] || fail "no sh block in the README's sections"

declare -A seen=()
for f in "${blocks[@]}"; do
  title=$(head -n 1 "$f")
  [[ $title == "# "* ]] || fail "README block $(basename "$f") does not start with a '# title' line: $title"
  title=${title#\# }
  found=""
  for i in "${!titles[@]}"; do
    [[ ${titles[$i]} == "$title" ]] && found=$i
  done
  [[ -n $found ]] || fail "README block \"$title\" has no entry in $0"
  [[ -z ${seen[$title]:-} ]] || fail "two README blocks are titled \"$title\""
  seen[$title]=$f
done
for t in "${titles[@]}"; do
  [[ -n ${seen[$t]:-} ]] || fail "$0 expects a README block \"$t\", which the README does not have"
done

# --- serve ------------------------------------------------------------------
log "building smartgroups"
go build -o "$work/smartgroups" ./cmd/smartgroups
SMARTGROUPS_API_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
export SMARTGROUPS_API_TOKEN
"$work/smartgroups" serve --data-dir "$work/data" --embedded-broker 127.0.0.1:0 --http 127.0.0.1:0 \
  >"$work/serve.log" 2>&1 &
pid=$!

# The bound addresses are in serve's log.
addr_of() { # addr_of MESSAGE_PREFIX
  sed -n "s/.*msg=\"$1[^\"]*\" addr=\([0-9.]*:[0-9]*\).*/\1/p" "$work/serve.log" | head -n 1
}
broker="" http=""
for _ in $(seq 1 600); do
  kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log" >&2; fail "serve exited"; }
  broker=$(addr_of "embedded Kafka-compatible broker started")
  http=$(addr_of "http listening")
  if [[ -n $broker && -n $http ]] && [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$http/readyz") == 200 ]]; then
    break
  fi
  sleep 0.1
done
[[ -n $broker && -n $http ]] || { cat "$work/serve.log" >&2; fail "serve did not report its addresses"; }
[[ $(curl -s -o /dev/null -w '%{http_code}' "http://$http/readyz") == 200 ]] || fail "serve is not ready after 60s"
log "serve is ready: broker $broker, HTTP $http"

# --- run the blocks ---------------------------------------------------------
run_block() { # run_block FILE: the block with the README's addresses replaced
  sed -e "s/127\.0\.0\.1:9092/$broker/g" -e "s/127\.0\.0\.1:8080/$http/g" "$1" >"$work/run.sh"
  (cd "$root" && bash -euo pipefail "$work/run.sh" 2>&1)
}
matches() { # matches OUTPUT PATTERNS: every newline-separated pattern matches
  local p
  while IFS= read -r p; do
    [[ -z $p ]] && continue
    grep -Eq -- "$p" <<<"$1" || return 1
  done <<<"$2"
}

for f in "${blocks[@]}"; do
  title=$(head -n 1 "$f")
  title=${title#\# }
  for i in "${!titles[@]}"; do
    [[ ${titles[$i]} == "$title" ]] && break
  done
  mode=${modes[$i]} pats=${patterns[$i]}
  log "[$mode] $title"
  case $mode in
  skip) continue ;;
  once | resume)
    out=$(run_block "$f") || { printf '%s\n' "$out" >&2; fail "\"$title\" failed"; }
    matches "$out" "$pats" || { printf '%s\n' "$out" >&2; fail "\"$title\" printed something else than expected:"$'\n'"$pats"; }
    if [[ $mode == resume ]]; then
      again=$(run_block "$f") || { printf '%s\n' "$again" >&2; fail "\"$title\" failed the second time"; }
      [[ -z $again ]] || { printf '%s\n' "$again" >&2; fail "\"$title\" run again did not resume after what it printed"; }
    fi
    ;;
  eventually)
    deadline=$((SECONDS + 60))
    until out=$(run_block "$f") && matches "$out" "$pats"; do
      if ((SECONDS >= deadline)); then
        printf '%s\n' "$out" >&2
        fail "\"$title\" did not print what was expected within 60s:"$'\n'"$pats"
      fi
      sleep 1
    done
    ;;
  *) fail "unknown mode $mode" ;;
  esac
  printf '%s\n' "$out" | sed 's/^/    /' >&2
done

log "all ${#blocks[@]} README blocks ran as expected"
