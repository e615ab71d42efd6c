#!/usr/bin/env bash
# `make demo`: Kubernetes' "coarse parallel processing using a work queue" example, end to end,
# with the plugin, on the local cluster of hack/localcluster (started here if it is not running).
# It only ever talks to that cluster, through its own kubeconfig: never to the user's clusters.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=hack/lib.sh
source hack/lib.sh
namespace=workqueue-demo
say() { printf '\n\033[1m# %s\033[0m\n' "$*" >&2; }

say "starting the local cluster (the first time builds Kubernetes: 20 to 30 minutes on 2 cores)"
kubeconfig=$(hack/localcluster/cluster.sh up | tail -n 1)
kubectl_bin=$(hack/localcluster/cluster.sh kubectl-path)

say "building kubectl-workqueue and putting it on kubectl's PATH"
make --no-print-directory build >&2
export PATH="$PWD/bin:$PATH"
k() { "$kubectl_bin" --kubeconfig "$kubeconfig" -n "$namespace" "$@"; }
# kubectl takes no flags before a plugin's name: they go after it.
wq() { "$kubectl_bin" workqueue --kubeconfig "$kubeconfig" -n "$namespace" "$@"; }

say "a fresh namespace $namespace with the seed's broker (Service rabbitmq-service + StatefulSet)"
"$kubectl_bin" --kubeconfig "$kubeconfig" delete namespace "$namespace" --ignore-not-found --wait >&2
"$kubectl_bin" --kubeconfig "$kubeconfig" create namespace "$namespace" >&2
k apply -f hack/demo/rabbitmq-service.yaml -f hack/demo/rabbitmq-statefulset.yaml >&2
k rollout status statefulset/rabbitmq --timeout=180s >&2

say "kubectl workqueue fill job1 --from-file hack/demo/items.txt"
wq fill job1 --from-file hack/demo/items.txt

say "kubectl workqueue run job1 --image localhost/workqueue/seed-worker:1 --parallelism 2   (the seed's image: amqp-consume -c 1 /worker.py)"
wq run job1 --image localhost/workqueue/seed-worker:1 --image-pull-policy Never --parallelism 2

say "the same items through the agent: each one on a command's stdin, its result recorded"
hack/localcluster/cluster.sh load-agent >&2
wq fill job2 --from-file hack/demo/items.txt
# shellcheck disable=SC2016 # the pod's shell expands $item, not this one
wq run job2 --image localhost/workqueue/busybox:1 --image-pull-policy Never --agent-image localhost/workqueue/agent:e2e \
	--parallelism 2 -- sh -c 'read -r item; echo "$item has ${#item} letters"'

say "kubectl workqueue results job2   (what each item's command printed, taken from job2.results)"
wq results job2

say "kubectl workqueue list   (the example's broker has no management API: in flight shows ?)"
wq list

say "done. Look around with: $kubectl_bin --kubeconfig $kubeconfig -n $namespace get jobs,pods"
say "stop the local cluster with: make cluster-down"
