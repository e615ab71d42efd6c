#!/usr/bin/env bash
# Compares the agent's drain rate with amqp-consume's on the local RabbitMQ, in one invocation,
# on the same broker and the same items, in mirrored rounds: amqp-consume -p 1 (the reference),
# amqp-consume with its default prefetch, the Go floor (hack/agentfloor), the agent with prefetch 1
# and the agent as it is (prefetch 2 while commands are short). All start one process per item.
# Prints items/s for each and its ratio to amqp-consume -p 1 (the agent's target is at least 1.0).
#
# By default it measures two commands: `cat`, the cheapest possible command, so the ratio shows
# each tool's own per-item cost, and the seed's worker.py without its sleep (hack/bench-worker.py),
# a small real worker.
#
#   hack/bench-agent.sh                       both commands
#   ITEMS=5000 ROUNDS=3 COMMAND=cat hack/bench-agent.sh
#   COMMAND="sleep 0.01" hack/bench-agent.sh  any command, split on spaces, no shell
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=hack/lib.sh
source hack/lib.sh

hack/rabbitmq.sh start 3
export WORKQUEUE_TEST_AMQP_URL="${WORKQUEUE_TEST_AMQP_URL:-$(hack/rabbitmq.sh url)}"

bench() { # ITEMS COMMAND
  WORKQUEUE_BENCH_ITEMS="$1" WORKQUEUE_BENCH_COMMAND="$2" \
    go test -run '^$' -bench 'BenchmarkDrainRateVersusAmqpConsume' -benchtime "${ROUNDS:-1}x" -count 1 ./pkg/agent |
    grep -E 'queue, |items/s|^(ok|FAIL)' | grep -v '^Benchmark'
}

if [ -n "${COMMAND:-}" ]; then
  bench "${ITEMS:-1000}" "$COMMAND"
  exit
fi
bench "${ITEMS:-1000}" cat
python="$(command -v /usr/bin/python3 || command -v python3)"
bench "${ITEMS:-200}" "$python $PWD/hack/bench-worker.py"
