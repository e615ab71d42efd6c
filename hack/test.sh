#!/usr/bin/env bash
# The one test command (`make test`): on a fresh machine it installs and starts everything the
# tests need, then runs every test.
#   1. static checks: gofmt, go vet, go mod tidy, shellcheck on every tracked shell script
#   2. unit and integration tests against two real local brokers, RabbitMQ 3.10 and 4.0
#      (hack/rabbitmq.sh)
#   3. the release packaging on this machine's platform (hack/release-check.sh --host-only:
#      goreleaser snapshot, krew manifest, krew install, version and completion through krew)
#   4. end-to-end tests that run the built binary as `kubectl workqueue ...` on a real cluster:
#      the one named by WORKQUEUE_E2E_KUBECONFIG, else the local cluster of hack/localcluster,
#      brought up here (and torn down again if this script started it).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=hack/lib.sh
source hack/lib.sh

step() { printf '\n=== %s\n' "$*" >&2; }

# goreleaser and krew are built once and cached; on a new machine that takes minutes, so it runs
# alongside the steps below and is waited for before the release check.
release_tools_log=$(mktemp)
hack/release-check.sh --tools-only >"$release_tools_log" 2>&1 &
release_tools_pid=$!

stop_cluster=""
cleanup() {
  kill "$release_tools_pid" 2>/dev/null || true
  rm -f "$release_tools_log"
  if [ -n "$stop_cluster" ]; then
    hack/localcluster/cluster.sh down || true
  fi
}
trap cleanup EXIT

step "static checks"
mapfile -t go_files < <(git ls-files '*.go')
unformatted=$(gofmt -l "${go_files[@]}")
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi
go vet ./...
# The end-to-end tests and the cluster benchmarks build only with their tags.
go vet -tags e2e,benche2e ./test/...
go mod tidy -diff
if ! command -v shellcheck >/dev/null; then
  echo "installing shellcheck" >&2
  apt_install shellcheck
fi
# --external-sources: follow the `# shellcheck source=` of each script, run from the repository's root.
git ls-files -z '*.sh' | xargs -0 -r shellcheck --external-sources

local_cluster=""
if [ -z "${WORKQUEUE_E2E_KUBECONFIG:-}" ] && [ "$(id -u)" = 0 ] && [ "$(uname -s)" = Linux ]; then
  local_cluster=yes
  # Cached after the first run. On a new machine this builds Kubernetes and, alongside it, the
  # RabbitMQ 4 root that the next step needs too, so the two slow parts overlap.
  step "the local cluster's parts"
  hack/localcluster/cluster.sh build
fi

step "local RabbitMQ 3.10 and 4.0"
hack/rabbitmq.sh start

# Every test that needs a broker runs: a missing one fails the run instead of skipping.
export WORKQUEUE_TEST_REQUIRE_BROKER=1

step "unit tests, and integration tests on RabbitMQ 3.10"
WORKQUEUE_TEST_AMQP_URL="$(hack/rabbitmq.sh url 3)" go test -count=1 ./...

step "integration tests on RabbitMQ 4.0"
# Only the packages that talk to a broker; the rest ran above.
WORKQUEUE_TEST_AMQP_URL="$(hack/rabbitmq.sh url 4)" \
	WORKQUEUE_TEST_CONSUMER_TIMEOUT="$(hack/rabbitmq.sh consumer-timeout 4)" \
	go test -count=1 ./pkg/queue ./pkg/agent ./pkg/plugin ./pkg/workqueue ./cmd/workqueue-agent

step "release packaging, this machine's archives"
if ! wait "$release_tools_pid"; then
  cat "$release_tools_log" >&2
  echo "building goreleaser and krew failed (output above)" >&2
  exit 1
fi
if [ -n "$local_cluster" ]; then
  # krew runs as a kubectl plugin: a fresh machine's kubectl is the one built with the cluster.
  PATH="$PATH:$(dirname "$(hack/localcluster/cluster.sh kubectl-path)")" hack/release-check.sh --host-only
else
  hack/release-check.sh --host-only
fi

step "end-to-end tests"
if [ -z "${WORKQUEUE_E2E_KUBECONFIG:-}" ]; then
  if [ -n "$local_cluster" ]; then
    if ! hack/localcluster/cluster.sh kubeconfig >/dev/null 2>&1; then
      stop_cluster=yes
    fi
    WORKQUEUE_E2E_KUBECONFIG="$(hack/localcluster/cluster.sh up | tail -n 1)"
    export WORKQUEUE_E2E_KUBECONFIG
    hack/localcluster/cluster.sh load-agent >&2
    WORKQUEUE_E2E_KUBECTL="$(hack/localcluster/cluster.sh kubectl-path)"
    export WORKQUEUE_E2E_KUBECTL
    export WORKQUEUE_E2E_AGENT_IMAGE=localhost/workqueue/agent:e2e
  else
    echo "no cluster: the end-to-end tests will report themselves skipped (need root on Linux, or WORKQUEUE_E2E_KUBECONFIG)" >&2
  fi
fi
# Two tests at a time: each has a namespace of its own and spends most of its time waiting for pods.
go test -count=1 -tags e2e -timeout 45m -parallel 2 -v ./test/e2e/
