# kubectl-workqueue. `make test` and `make demo` set up everything they need on a fresh machine.
VERSION ?= dev
LDFLAGS := -s -w -X main.version=$(VERSION)
export CGO_ENABLED := 0
export PATH := $(PATH):/usr/local/go/bin

.PHONY: build test demo bench bench-e2e release-check cluster-up cluster-down clean

build:
	go build -trimpath -ldflags "$(LDFLAGS)" -o bin/kubectl-workqueue ./cmd/kubectl-workqueue
	go build -trimpath -ldflags "$(LDFLAGS)" -o bin/workqueue-agent ./cmd/workqueue-agent
	install -m 0755 kubectl_complete-workqueue bin/kubectl_complete-workqueue

## Every test: static checks, unit and integration tests on a local RabbitMQ, end-to-end tests on a real local cluster.
test:
	hack/test.sh

## The seed's example end to end on the local cluster: broker, fill with 8 fruits, run with parallelism 2.
demo:
	hack/demo.sh

## Benchmarks against the seed's own tools, figures printed as ratios.
bench:
	hack/bench.sh

## Benchmarks on the local cluster: the example's Job against run's modes, run's follow latency and cost, fill through a port-forward.
bench-e2e:
	hack/bench-e2e.sh

## The release packaging of every platform: goreleaser snapshot, krew manifest, krew install (test runs this machine's only).
release-check:
	hack/release-check.sh

cluster-up:
	hack/localcluster/cluster.sh up

cluster-down:
	hack/localcluster/cluster.sh down

clean:
	rm -rf bin dist
