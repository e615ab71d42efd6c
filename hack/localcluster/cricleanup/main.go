// Command cricleanup stops and removes every pod sandbox of a CRI runtime,
// the way the kubelet would: stopping a sandbox through the CRI also tears
// down its network (CNI DEL frees the IP, deletes the veth and unmounts the
// network namespace), which killing processes would leave behind.
//
// Usage: cricleanup -endpoint unix:///path/to/containerd.sock
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func main() {
	endpoint := flag.String("endpoint", "", "CRI endpoint, e.g. unix:///run/containerd/containerd.sock")
	timeout := flag.Duration("timeout", 60*time.Second, "give up after this long")
	flag.Parse()
	if *endpoint == "" {
		fmt.Fprintln(os.Stderr, "cricleanup: -endpoint is required")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	removed, err := removeAllSandboxes(ctx, *endpoint)
	fmt.Fprintf(os.Stderr, "cricleanup: removed %d pod sandbox(es)\n", removed)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cricleanup:", err)
		os.Exit(1)
	}
}

func removeAllSandboxes(ctx context.Context, endpoint string) (int, error) {
	conn, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, fmt.Errorf("connecting to %s: %w", endpoint, err)
	}
	defer conn.Close()
	client := runtimeapi.NewRuntimeServiceClient(conn)
	list, err := client.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return 0, fmt.Errorf("listing pod sandboxes: %w", err)
	}
	removed := 0
	var errs []error
	for _, sandbox := range list.GetItems() {
		id := sandbox.GetId()
		if _, err := client.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			errs = append(errs, fmt.Errorf("stopping sandbox %s: %w", id, err))
			continue
		}
		if _, err := client.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			errs = append(errs, fmt.Errorf("removing sandbox %s: %w", id, err))
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}
