#!/usr/bin/env bash
# `make bench-e2e`: benchmarks on a real cluster, each comparison in one run, ratios printed
# (test/benche2e, build tag benche2e; BENCHMARKS.md records the figures):
#   - N items of ~10 ms work with 4 workers: the Kubernetes example's Job (completions = N, one
#     pod per item running amqp-consume -c 1), `run --mode one` and `run --mode drain`;
#   - run's follow latency (pod end seen by a watch of its own -> run's line), peak RSS and API
#     requests (-v=6) on its mode-one run;
#   - fill through its own port-forward against amqp-publish -l through kubectl port-forward.
# The cluster is the one named by WORKQUEUE_E2E_KUBECONFIG; otherwise (root on Linux) the local
# cluster of hack/localcluster, started here (or reused when it is up) and stopped afterwards if
# this script started it, as hack/test.sh does.
#
# Environment: ITEMS (default 1000), PARALLELISM (4), WORK_SECONDS (0.01), JOBS (the scenarios,
# default example,one,drain; also floor, one-baked, one-seed, drain-noresults, drain-fast and
# drain-floor), ROUNDS (2 mirrors the order), FILL_ITEMS
# (100000), BENCH (go test -bench pattern, default: all). A one-pod-per-item scenario runs at
# 0.3-0.6 pods/s on the project's 2-CPU machine (measured under load): ITEMS=1000 then takes 30 to
# 60 minutes per scenario, so use ITEMS=200 or less there.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=hack/lib.sh
source hack/lib.sh

stop_cluster=""
cleanup() {
	if [ -n "$stop_cluster" ]; then
		hack/localcluster/cluster.sh down || true
	fi
}
trap cleanup EXIT

if ! command -v amqp-publish >/dev/null; then
	echo "installing amqp-tools (amqp-publish)" >&2
	apt_install amqp-tools
fi

if [ -z "${WORKQUEUE_E2E_KUBECONFIG:-}" ]; then
	if [ "$(id -u)" != 0 ] || [ "$(uname -s)" != Linux ]; then
		echo "no cluster: set WORKQUEUE_E2E_KUBECONFIG (and WORKQUEUE_E2E_KUBECTL), or run as root on Linux for the local cluster" >&2
		exit 1
	fi
	hack/localcluster/cluster.sh build
	if ! hack/localcluster/cluster.sh kubeconfig >/dev/null 2>&1; then
		stop_cluster=yes
	fi
	WORKQUEUE_E2E_KUBECONFIG="$(hack/localcluster/cluster.sh up | tail -n 1)"
	export WORKQUEUE_E2E_KUBECONFIG
	hack/localcluster/cluster.sh load-agent >&2
	WORKQUEUE_E2E_KUBECTL="$(hack/localcluster/cluster.sh kubectl-path)"
	export WORKQUEUE_E2E_KUBECTL
	export WORKQUEUE_E2E_AGENT_IMAGE=localhost/workqueue/agent:e2e
fi

# The test package builds kubectl-workqueue itself; the agent image is the cluster's.
go test -tags benche2e -run '^$' -bench "${BENCH:-.}" -benchtime 1x -timeout 3h ./test/benche2e/
