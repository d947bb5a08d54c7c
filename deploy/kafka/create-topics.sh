#!/usr/bin/env bash
# Creates OpenV's topics (idempotent). Runs in the apache/kafka image (compose: kafka-init).
# Partition counts match openv_contracts.topics.DEFAULT_PARTITIONS: the partitions of a topic are
# the most consumers of one group that can share its load.
set -euo pipefail

BOOTSTRAP="${KAFKA_BOOTSTRAP:-kafka:9092}"
REPLICATION="${KAFKA_REPLICATION_FACTOR:-1}"
TOPICS_BIN="${KAFKA_TOPICS_BIN:-/opt/kafka/bin/kafka-topics.sh}"

create() {
  local topic="$1" partitions="$2"
  shift 2
  "$TOPICS_BIN" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
    --topic "$topic" --partitions "$partitions" --replication-factor "$REPLICATION" "$@"
}

create openv.commands 4
create openv.video-events 4
create openv.runpod-events 4
create openv.storage-events 4
# Poison messages wait here for an operator: keep them for 30 days.
create openv.dead-letter 1 --config retention.ms=2592000000

"$TOPICS_BIN" --bootstrap-server "$BOOTSTRAP" --describe --topic 'openv\..*' | grep -v '^\s*Topic:.*Partition:' || true
