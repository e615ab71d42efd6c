#!/usr/bin/env bash
# Compares the agent's drain rate with amqp-consume's on the local RabbitMQ: both start one
# process per item with prefetch 1, on the same broker and the same items, in one invocation.
# Prints items/s for both and the ratio (agent / amqp-consume; the target is at least 1.0).
#
#   hack/bench-agent.sh                      1000 items per round, command: cat
#   ITEMS=5000 ROUNDS=3 hack/bench-agent.sh
#   COMMAND="sleep 0.01" hack/bench-agent.sh  any command, split on spaces, no shell
set -euo pipefail
cd "$(dirname "$0")/.."

hack/rabbitmq.sh start
export WORKQUEUE_TEST_AMQP_URL="${WORKQUEUE_TEST_AMQP_URL:-$(hack/rabbitmq.sh url)}"
export WORKQUEUE_BENCH_ITEMS="${ITEMS:-1000}"
export WORKQUEUE_BENCH_COMMAND="${COMMAND:-cat}"

go test -run '^$' -bench 'BenchmarkDrainRateVersusAmqpConsume' -benchtime "${ROUNDS:-1}x" -count 1 ./pkg/agent |
  grep -E 'items/s|^(ok|FAIL)'
