#!/usr/bin/env bash
# Runs every fuzz target for a short time (default 15s each).
#
# Go's fuzzing coordinator can fail a target with a bare "context deadline
# exceeded" when a starved worker misses the end of -fuzztime, writing no
# failing input. A target that fails without a new file under
# testdata/fuzz/<target>/ is run once more; a failure that writes an input,
# or a second failure, fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-15s}"
# count prints how many files a corpus directory holds (0 when it has none).
count() { if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi; }
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "-- $pkg $f"
    corpus="$dir/testdata/fuzz/$f"
    before=$(count "$corpus")
    if go test "$pkg" -run '^$' -fuzz "^${f}\$" -fuzztime "$t"; then
      continue
    fi
    after=$(count "$corpus")
    if [ "$after" -ne "$before" ]; then
      echo "fuzz: $f wrote a failing input under $corpus" >&2
      exit 1
    fi
    echo "fuzz: $f failed without a failing input (the coordinator's deadline race); running it once more" >&2
    go test "$pkg" -run '^$' -fuzz "^${f}\$" -fuzztime "$t"
  done
done
