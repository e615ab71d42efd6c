//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A broker scaled from one node to three: the nodes form one cluster around the first, which
// keeps its queues; a new queue gets a member on every node; a fill that loses its broker pod
// midway loses no item.
func TestBrokerScaledToThreeNodesLosesNoItemWithANode(t *testing.T) {
	forEachBroker(t, testBrokerScaledToThreeNodesLosesNoItemWithANode)
}

func testBrokerScaledToThreeNodesLosesNoItemWithANode(t *testing.T, image string) {
	c := newCluster(t)
	ctx := context.Background()
	class := c.localVolumes(3, "1Gi")
	install := func(replicas string) []string {
		return []string{"workqueue", "broker", "install", "--replicas", replicas, "--image", image, "--image-pull-policy", "Never",
			"--storage-class", class, "--storage-size", "1Gi", "--timeout", "6m"}
	}
	if out, stderr, err := c.run(ctx, "", install("1")...); err != nil || !strings.Contains(out, "broker ready") {
		t.Fatalf("install: %v\n%s\n%s", err, out, stderr)
	}
	c.fillItems("early", []string{"a", "b", "c"})

	out, stderr, err := c.run(ctx, "", install("3")...)
	if err != nil || !strings.Contains(out, "broker ready") || !strings.Contains(stderr, "cluster of 3 nodes") {
		t.Fatalf("install --replicas 3 over one node: %v\n%s\n%s", err, out, stderr)
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
	var fillErr syncBuffer
	fill.Stderr = &fillErr
	if err := fill.Start(); err != nil {
		t.Fatal(err)
	}
	// Cut a node once the cluster has confirmed some of the items: the fill's own, the worst case.
	// Read from fill's progress, as Debian's rabbitmqctl in the 3.10 image will not run as the
	// broker's uid.
	deadline := time.Now().Add(2 * time.Minute)
	victim, held := "", 0
	for victim == "" {
		progress := fillErr.String()
		pod := regexp.MustCompile(`pod (rabbitmq-\d)`).FindStringSubmatch(progress)
		if confirmed := regexp.MustCompile(`(\d+)/\d+ items confirmed`).FindAllStringSubmatch(progress, -1); pod != nil && confirmed != nil {
			if held, _ = strconv.Atoi(confirmed[len(confirmed)-1][1]); held >= 1000 {
				victim = pod[1]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fill never got going:\n%s", progress)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if held >= n {
		t.Fatalf("the fill was over before a node could be cut (%d items held)", held)
	}
	// Deleted as a drain or an upgrade does, with its grace period; the single-node test kills
	// without grace. A RabbitMQ 3.10.8 node may then hang at boot ("Global hang workaround"),
	// until its startup probe restarts it: brokerNodeReturn allows for that.
	if err := c.client.CoreV1().Pods(c.namespace).Delete(ctx, victim, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("deleted %s, the fill's node, with %d of %d items confirmed", victim, held, n)
	if err := fill.Wait(); err != nil {
		m := regexp.MustCompile(`resume with --skip (\d+)`).FindStringSubmatch(fillErr.String())
		if m == nil {
			t.Fatalf("fill failed without a resume point: %v\n%s", err, fillErr.String())
		}
		skip, _ := strconv.Atoi(m[1])
		t.Logf("fill stopped when %s went; resuming with --skip %d once it is back", victim, skip)
		// Until then a queue whose leader it was may refuse items (RabbitMQ 3.10 nacks them).
		c.waitForPodReady(victim, brokerNodeReturn)
		c.workqueue("", "fill", "spread", "--from-file", items, "--skip", m[1])
	} else {
		t.Logf("fill finished through the loss of %s", victim)
	}

	c.waitForPodReady(victim, brokerNodeReturn)
	if pod, err := c.client.CoreV1().Pods(c.namespace).Get(ctx, victim, metav1.GetOptions{}); err == nil && len(pod.Status.ContainerStatuses) > 0 {
		// A restart here is the startup probe freeing a node that hung at boot.
		t.Logf("%s is back, its broker restarted %d times since", victim, pod.Status.ContainerStatuses[0].RestartCount)
	}
	// RabbitMQ 3.13 and later grow the queues of the first node onto the new ones; 3.10 cannot.
	wantMembers := []string{"Queue early: 3 ready", "members of queue early: 3 of 3 online"}
	if image == rabbitmq3Image {
		wantMembers = []string{"Queue early: 3 ready", "members of queue early: 1 of 1 online", "queue early has no member on rabbitmq-1, rabbitmq-2"}
		if !strings.Contains(stderr, "rabbitmq-queues grow") {
			t.Errorf("install on 3.10 did not say how to grow the existing queues:\n%s", stderr)
		}
	}
	c.waitForStatus("early", time.Minute, wantMembers...)
	t.Logf("status:\n%s", c.waitForStatus("spread", time.Minute, "Broker: 3 nodes, 3 running", "members of queue spread: 3 of 3 online"))

	got := c.drainQueue("spread", n)
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

	// A Job whose queue loses its leader midway finishes, and every item is done.
	c.runThroughBrokerLoss("work", 3000, func() string {
		var status struct {
			Broker struct {
				Members struct{ Leader string } `json:"members"`
			} `json:"broker"`
		}
		if err := json.Unmarshal([]byte(c.workqueue("", "status", "work", "-o", "json")), &status); err != nil {
			t.Fatal(err)
		}
		leader := regexp.MustCompile(`@(rabbitmq-\d)\.`).FindStringSubmatch(status.Broker.Members.Leader)
		if leader == nil {
			t.Fatalf("no leader of queue work in status: %+v", status)
		}
		return leader[1]
	}, nil)

	// A cluster never shrinks by a flag.
	if _, stderr, err := c.run(ctx, "", install("1")...); exitCode(err) == 0 || !strings.Contains(stderr, "cannot shrink") {
		t.Errorf("install --replicas 1 over 3 nodes: %v %s", err, stderr)
	}
}

// brokerNodeReturn bounds how long a deleted broker node takes to be ready again: its start-up
// probe restarts a node that hangs at boot after 5 minutes (RabbitMQ 3.10.8 on Erlang 25 may),
// and the second boot takes about a minute on this machine.
const brokerNodeReturn = 8 * time.Minute

// waitForStatus waits until status QUEUE prints every one of want, and returns what it printed:
// just after a node is back, the management API may still count its queue members as offline.
func (c *cluster) waitForStatus(queue string, timeout time.Duration, want ...string) string {
	c.t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(2 * time.Second) {
		out := c.workqueue("", "status", queue)
		missing := ""
		for _, w := range want {
			if !strings.Contains(out, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return out
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("status %s lacks %q after %s:\n%s", queue, missing, timeout, out)
		}
	}
}

// syncBuffer collects a command's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A Job runs on through the restart of a single broker whose queues are on a volume.
func TestRunRidesThroughABrokerRestart(t *testing.T) {
	forEachBroker(t, testRunRidesThroughABrokerRestart)
}

func testRunRidesThroughABrokerRestart(t *testing.T, image string) {
	c := newCluster(t)
	class := c.localVolume("1Gi")
	if out := c.workqueue("", "broker", "install", "--image", image, "--image-pull-policy", "Never", "--storage-class", class, "--storage-size", "1Gi"); !strings.Contains(out, "broker ready") {
		t.Fatalf("install printed:\n%s", out)
	}
	c.runThroughBrokerLoss("work", 2000, func() string { return "rabbitmq-0" }, new(int64))
}

// runThroughBrokerLoss fills queue with n items, runs a drain Job of three pods over them, and
// deletes the broker pod that victim names once a tenth is done, with the grace period given
// (nil: the pod's own). run must end with exit 0,
// every item done at least once, nothing dead-lettered.
func (c *cluster) runThroughBrokerLoss(queue string, n int, victim func() string, grace *int64) {
	c.t.Helper()
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf("w-%05d", i)
	}
	c.fillItems(queue, items)

	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	run := c.command(ctx, "workqueue", "run", queue, "--image", busyboxImage, "--image-pull-policy", "Never", "--agent-image", agentImage,
		"--mode", "drain", "--parallelism", "3", "--broker-outage", "6m", "--", "cat")
	var runOut syncBuffer
	run.Stdout, run.Stderr = &runOut, &runOut
	if err := run.Start(); err != nil {
		c.t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(time.Second) {
		var status struct {
			Broker struct{ Ready int } `json:"broker"`
		}
		out, err := c.kubectl("workqueue", "status", queue, "-o", "json")
		if err == nil && json.Unmarshal([]byte(out), &status) == nil && status.Broker.Ready <= n*9/10 {
			break
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the Job never got going:\n%s", runOut.String())
		}
	}
	pod := victim()
	if err := c.client.CoreV1().Pods(c.namespace).Delete(ctx, pod, metav1.DeleteOptions{GracePeriodSeconds: grace}); err != nil {
		c.t.Fatal(err)
	}
	c.t.Logf("deleted broker pod %s mid-run", pod)
	if err := run.Wait(); err != nil {
		c.t.Fatalf("run through the loss of %s: %v\n%s", pod, err, runOut.String())
	}

	done := map[string]bool{}
	attempts := 0
	for _, line := range strings.Split(strings.TrimSpace(c.workqueue("", "results", queue, "-o", "json")), "\n") {
		var record struct{ Item, Result string }
		if err := json.Unmarshal([]byte(line), &record); err != nil {
			c.t.Fatalf("results line %q: %v", line, err)
		}
		attempts++
		if record.Result == "done" {
			done[record.Item] = true
		}
	}
	if len(done) != n {
		c.t.Fatalf("%d of %d items done after losing %s (%d records)\n%s", len(done), n, pod, attempts, runOut.String())
	}
	if out := c.workqueue("", "status", queue); !strings.Contains(out, "0 in "+queue+".failed") {
		c.t.Fatalf("items were dead-lettered by the outage:\n%s", out)
	}
	c.t.Logf("all %d items done in %d attempts through the loss of %s; run printed:\n%s", n, attempts, pod, runOut.String())
}
