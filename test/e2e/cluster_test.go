//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A broker of three nodes: install forms one cluster, a queue gets a member on every node, and
// a fill that loses a broker pod midway loses no item.
func TestBrokerClusterOfThreeLosesNoItemWithANode(t *testing.T) {
	c := newCluster(t)
	ctx := context.Background()
	class := c.localVolumes(3, "1Gi")
	install := []string{"broker", "install", "--replicas", "3", "--image", rabbitmqImage, "--image-pull-policy", "Never",
		"--storage-class", class, "--storage-size", "1Gi", "--timeout", "6m"}
	out, stderr, err := c.run(ctx, "", append([]string{"workqueue"}, install...)...)
	if err != nil || !strings.Contains(out, "broker ready") || !strings.Contains(stderr, "cluster of 3 nodes") {
		t.Fatalf("install --replicas 3: %v\n%s\n%s", err, out, stderr)
	}
	for _, applied := range []string{"service/rabbitmq-nodes applied", "poddisruptionbudget.policy/rabbitmq applied"} {
		if !strings.Contains(out, applied) {
			t.Errorf("install did not say %q:\n%s", applied, out)
		}
	}

	const n = 300_000
	var input strings.Builder
	for i := range n {
		fmt.Fprintf(&input, "item-%06d\n", i)
	}
	items := writeFile(t, "items.txt", input.String())

	fillCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	fill := c.command(fillCtx, "workqueue", "fill", "spread", "--from-file", items)
	var fillErr strings.Builder
	fill.Stderr = &fillErr
	if err := fill.Start(); err != nil {
		t.Fatal(err)
	}
	// Cut a node once the cluster holds some of the items: the fill's own, the worst case.
	deadline := time.Now().Add(2 * time.Minute)
	victim, held := "", 0
	for victim == "" {
		if m := regexp.MustCompile(`pod (rabbitmq-\d)`).FindStringSubmatch(fillErr.String()); m != nil {
			out, _ := c.kubectl("exec", "rabbitmq-0", "--", "rabbitmqctl", "-q", "list_queues", "name", "messages")
			if count := regexp.MustCompile(`(?m)^spread\s+(\d+)`).FindStringSubmatch(out); count != nil {
				if held, _ = strconv.Atoi(count[1]); held >= 1000 {
					victim = m[1]
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fill never got going:\n%s", fillErr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if held >= n {
		t.Fatalf("the fill was over before a node could be cut (%d items held)", held)
	}
	if err := c.client.CoreV1().Pods(c.namespace).Delete(ctx, victim, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	t.Logf("deleted %s, the fill's node, with %d of %d items in the queue", victim, held, n)
	if err := fill.Wait(); err != nil {
		m := regexp.MustCompile(`resume with --skip (\d+)`).FindStringSubmatch(fillErr.String())
		if m == nil {
			t.Fatalf("fill failed without a resume point: %v\n%s", err, fillErr.String())
		}
		skip, _ := strconv.Atoi(m[1])
		t.Logf("fill stopped when %s went; resuming with --skip %d", victim, skip)
		c.workqueue("", "fill", "spread", "--from-file", items, "--skip", m[1])
	} else {
		t.Logf("fill finished through the loss of %s", victim)
	}

	c.waitForPodReady(victim, 3*time.Minute)
	out = c.workqueue("", "status", "spread")
	t.Logf("status:\n%s", out)
	for _, want := range []string{"3 nodes, 3 running", "members of queue spread: 3"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}

	got := c.drainQueue("spread")
	seen := map[string]bool{}
	for _, body := range got {
		seen[body] = true
	}
	missing := 0
	for i := range n {
		if !seen[fmt.Sprintf("item-%06d", i)] {
			missing++
		}
	}
	if missing > 0 || len(seen) != n {
		t.Fatalf("%d of %d items missing after losing %s (%d delivered, %d distinct)", missing, n, victim, len(got), len(seen))
	}
	t.Logf("%d items delivered, %d distinct: none lost", len(got), len(seen))

	// A cluster never shrinks by a flag.
	if _, stderr, err := c.run(ctx, "", append([]string{"workqueue"}, append(install[:2], "--replicas", "1", "--image", rabbitmqImage, "--image-pull-policy", "Never", "--storage-class", class)...)...); exitCode(err) == 0 || !strings.Contains(stderr, "cannot shrink") {
		t.Errorf("install --replicas 1 over 3 nodes: %v %s", err, stderr)
	}
}
