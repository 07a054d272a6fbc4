#!/usr/bin/env bash
# Lists the packages whose tests talk to Kafka (they use KAFKA_BROKERS when
# set and the embedded broker otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
grep -rl --include='*_test.go' 'KAFKA_BROKERS' . | xargs -r -n1 dirname | sort -u | sed 's|^\./|./|'
