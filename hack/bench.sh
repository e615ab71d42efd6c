#!/usr/bin/env bash
# Benchmarks against the seed's own tools, each in one run on the same local broker, printed as
# ratios: fill vs amqp-publish, and the agent vs amqp-consume (hack/bench-agent.sh); and what
# following a Job's finished pods holds in memory against whole pods (pkg/tail).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=hack/lib.sh
source hack/lib.sh
hack/rabbitmq.sh start 3
WORKQUEUE_TEST_AMQP_URL="$(hack/rabbitmq.sh url)"
export WORKQUEUE_TEST_AMQP_URL
go test -run '^$' -bench . -benchtime 1x -timeout 30m ./test/bench/
go test -run '^$' -bench BenchmarkFollowMemory -benchtime 1x ./pkg/tail/
hack/bench-agent.sh
