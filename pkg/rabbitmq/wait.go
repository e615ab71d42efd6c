package rabbitmq

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/kubernetes"
)

// statusInterval is how often WaitReady looks at the broker's pod.
const statusInterval = 2 * time.Second

// WaitReady waits until the broker's pod is ready, telling onProblem each new reason it is not
// (an image being pulled, a pod the API server refused), and stops at once on a reason that
// waiting cannot fix. ctx bounds the wait.
func WaitReady(ctx context.Context, client kubernetes.Interface, s Spec, onProblem func(string)) error {
	// Refusals older than this install were of an earlier one; a few seconds spare the API
	// server's clock running behind ours.
	since := time.Now().Add(-5 * time.Second)
	lastProblem := ""
	for {
		status, err := CheckStatus(ctx, client, s, since)
		if err != nil {
			return err
		}
		if status.Ready {
			return nil
		}
		if status.Problem != "" && status.Problem != lastProblem {
			onProblem(status.Problem)
			lastProblem = status.Problem
		}
		if status.Fatal {
			return fmt.Errorf("the broker cannot start: %s", status.Problem)
		}
		select {
		case <-ctx.Done():
			hint := ""
			if lastProblem != "" {
				hint = " (" + lastProblem + ")"
			}
			return fmt.Errorf("the broker was not ready in time%s: see `kubectl describe pod %s-0`; it keeps starting in the background", hint, s.Name)
		case <-time.After(statusInterval):
		}
	}
}
