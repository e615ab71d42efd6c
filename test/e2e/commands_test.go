//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestVersionAsAKubectlPlugin(t *testing.T) {
	c := newCluster(t)
	if out := c.workqueue("", "version"); !strings.HasPrefix(out, "kubectl-workqueue ") {
		t.Fatalf("version printed %q", out)
	}
	out := c.workqueue("", "--help")
	if !strings.Contains(out, "kubectl workqueue [command]") || !strings.Contains(out, "--kubeconfig") {
		t.Fatalf("help does not read as a kubectl command with kubeconfig flags:\n%s", out)
	}
}

// status, run --dry-run=server, run --detach, status --watch and delete, on one queue.
func TestStatusDryRunDetachWatchAndDelete(t *testing.T) {
	c := newCluster(t)
	c.deployBroker()
	c.fillItems("life", []string{"a", "b", "c"})

	out := c.workqueue("", "status", "life")
	if !strings.Contains(out, "Queue life: 3 ready, 0 in life.failed") || !strings.Contains(out, "Job life: none") {
		t.Fatalf("status before run:\n%s", out)
	}
	out = c.workqueue("", "status", "life", "-o", "yaml")
	for _, want := range []string{"kind: QueueStatus", "ready: 3", "deadLetters: 0", "job: null"} {
		if !strings.Contains(out, want) {
			t.Fatalf("status -o yaml lacks %q:\n%s", want, out)
		}
	}

	// Dry runs of what changes a queue read and check, and change nothing.
	out = c.workqueue("d\ne\n", "fill", "life", "--dry-run")
	if !strings.Contains(out, "published 2 items to queue life (dry run: all read and checked, none sent)") {
		t.Fatalf("fill --dry-run printed:\n%s", out)
	}
	out = c.workqueue("", "purge", "life", "--dry-run")
	if !strings.Contains(out, "queue life purged (3 items) (dry run)") {
		t.Fatalf("purge --dry-run printed:\n%s", out)
	}
	if ready := c.queueReady("life", 3); ready != 3 {
		t.Fatalf("after fill and purge dry runs the queue holds %d items, want 3", ready)
	}

	// The API server itself accepts the generated Job, and nothing is created.
	out = c.workqueue("", "run", "life", "--image", busyboxImage, "--image-pull-policy", "Never", "--agent-image", agentImage,
		"--dry-run=server", "-o", "yaml", "--", "cat")
	if !strings.Contains(out, "kind: Job") || !strings.Contains(out, "completions: 3") || strings.Contains(out, "guest") {
		t.Fatalf("server dry run printed:\n%s", out)
	}
	if _, err := c.client.BatchV1().Jobs(c.namespace).Get(context.Background(), "life", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a dry run created the Job: %v", err)
	}

	out = c.workqueue("", "run", "life", "--detach", "--image", busyboxImage, "--image-pull-policy", "Never", "--agent-image", agentImage, "--", "cat")
	if !strings.Contains(out, "job.batch/life created") || !strings.Contains(out, "kubectl workqueue status life --watch") {
		t.Fatalf("run --detach printed:\n%s", out)
	}
	// A second run while the first is going is refused, and says what to do.
	if _, stderr, err := c.run(context.Background(), "", "workqueue", "run", "life", "--image", busyboxImage, "--", "cat"); err == nil || !strings.Contains(stderr, "still running") {
		t.Fatalf("a second run was not refused: %v %s", err, stderr)
	}

	out = c.workqueue("", "status", "life", "--watch")
	if !strings.Contains(out, "Job life: Complete") || !strings.Contains(out, "all items of queue life processed") {
		t.Fatalf("status --watch:\n%s", out)
	}
	out = c.workqueue("", "status", "life")
	if !strings.Contains(out, "Queue life: 0 ready") || !strings.Contains(out, "Job life: Complete; pods 0 active, 3 succeeded") {
		t.Fatalf("status after the run:\n%s", out)
	}
	// Finished: a rerun needs --replace.
	if _, stderr, err := c.run(context.Background(), "", "workqueue", "run", "life", "--image", busyboxImage, "--allow-empty", "--", "cat"); err == nil || !strings.Contains(stderr, "--replace") {
		t.Fatalf("a rerun of a finished Job without --replace: %v %s", err, stderr)
	}

	// The results of the run are still there: delete asks, and without a terminal needs --yes.
	if _, stderr, err := c.run(context.Background(), "", "workqueue", "delete", "life"); exitCode(err) != 2 || !strings.Contains(stderr, "3 in life.results") {
		t.Fatalf("delete of a queue holding results, without --yes: %v %s", err, stderr)
	}
	out = c.workqueue("", "delete", "life", "--dry-run")
	if !strings.Contains(out, "job.batch/life deleted (dry run)") || !strings.Contains(out, "queue life.results deleted (3 messages) (dry run)") {
		t.Fatalf("delete --dry-run printed:\n%s", out)
	}
	if _, err := c.client.BatchV1().Jobs(c.namespace).Get(context.Background(), "life", metav1.GetOptions{}); err != nil {
		t.Fatalf("delete --dry-run removed the Job: %v", err)
	}
	out = c.workqueue("", "delete", "life", "--yes")
	for _, want := range []string{"job.batch/life deleted", "queue life deleted (0 messages)", "queue life.failed deleted", "queue life.results deleted (3 messages)"} {
		if !strings.Contains(out, want) {
			t.Fatalf("delete printed:\n%s", out)
		}
	}
	if _, err := c.client.CoreV1().Secrets(c.namespace).Get(context.Background(), "life-broker-url", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the Job's broker Secret survived delete: %v", err)
	}
	if _, stderr, err := c.run(context.Background(), "", "workqueue", "delete", "life"); err == nil || !strings.Contains(stderr, "nothing to delete") {
		t.Fatalf("deleting twice: %v %s", err, stderr)
	}
}
