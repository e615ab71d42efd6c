// The image builder for the local test cluster, a module of its own so that
// go-containerregistry's dependencies stay out of the Kubernetes build.
module github.com/kubectl-workqueue/kubectl-workqueue/hack/localcluster/mkimage

go 1.25.0

require github.com/google/go-containerregistry v0.22.1

require (
	github.com/klauspost/compress v1.19.2 // indirect
	github.com/opencontainers/go-digest v1.0.0 // indirect
	github.com/opencontainers/image-spec v1.1.1 // indirect
)
