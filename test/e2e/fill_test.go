//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/portforward"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
)

var fruits = []string{"apple", "banana", "cherry", "date", "fig", "grape", "lemon", "melon"}

// The seed's own step, done by the plugin: fill job1 with the 8 fruits from the laptop through a
// port-forward, then check from inside the cluster, with the seed worker image's amqp tools, that
// they are there and persistent: they survive the broker's restart. The classic queue (the seed's
// `amqp-declare-queue -d`) proves the messages themselves are persistent, since a classic queue
// drops transient messages on restart; quorum queues (the default) keep everything.
func TestFillSeedFruitsThroughPortForward(t *testing.T) {
	c := newCluster(t)
	c.deployDurableBroker()
	items := writeFile(t, "items.txt", strings.Join(fruits, "\n")+"\n")

	out := c.workqueue("", "fill", "job1", "--from-file", items)
	if !strings.Contains(out, "published 8 items to queue job1 (all confirmed)") {
		t.Fatalf("fill said:\n%s", out)
	}
	c.workqueue("", "fill", "classic", "--queue-type", "classic", "--from-file", items)
	if ready := c.queueReady("job1", 8); ready != 8 {
		t.Fatalf("the broker holds %d ready messages in job1, want 8", ready)
	}

	c.restartBroker()
	script := `for q in job1 classic; do for i in 1 2 3 4 5 6 7 8; do amqp-get --url="$BROKER_URL" -q $q; echo; done; amqp-get --url="$BROKER_URL" -q $q; echo "$q empty: exit $?"; done`
	logs := c.runPod("check", seedWorkerImage, map[string]string{"BROKER_URL": c.inClusterURL()}, "/bin/sh", "-c", script)
	list := strings.Join(fruits, "\n") + "\n"
	if want := list + "job1 empty: exit 2\n" + list + "classic empty: exit 2\n"; logs != want {
		t.Fatalf("after a broker restart, in-cluster amqp-get read:\n%q\nwant:\n%q", logs, want)
	}
}

func TestFillErrorsAreOneLineAndNameTheFix(t *testing.T) {
	c := newCluster(t)
	for _, tc := range []struct {
		args []string
		want string
		code int // 2 bad input, 5 broker unreachable
	}{
		{[]string{"fill", "job1", "--item", "a"}, `service "rabbitmq-service" not found`, 5},
		{[]string{"fill", "job1", "--item", "a", "--service", "nope"}, `pass --service NAME`, 5},
		{[]string{"fill", "amq.bad", "--item", "a"}, `reserves`, 2},
		{[]string{"fill", "job1", "--frobnicate"}, `unknown flag`, 2},
	} {
		_, stderr, err := c.run(context.Background(), "", append([]string{"workqueue"}, tc.args...)...)
		if exitCode(err) != tc.code || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: exit %d (%v), stderr %q (want exit %d and one line containing %q)", tc.args, exitCode(err), err, stderr, tc.code, tc.want)
		}
	}
}

// A fill cut off mid-way (the broker pod deleted) exits non-zero, says how many items were
// confirmed, and a fill resumed from there loses nothing. The broker keeps its data on the node
// here, as a real deployment would on a volume, so what it confirmed survives the restart.
func TestFillCutMidwayResumesWithoutLoss(t *testing.T) {
	c := newCluster(t)
	c.deployDurableBroker()

	const n = 300_000
	var input strings.Builder
	for i := range n {
		fmt.Fprintf(&input, "item-%06d\n", i)
	}
	items := writeFile(t, "items.txt", input.String())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	fill := c.command(ctx, "workqueue", "fill", "big", "--from-file", items)
	var stderr strings.Builder
	fill.Stderr = &stderr
	if err := fill.Start(); err != nil {
		t.Fatal(err)
	}
	// Cut it once the broker holds some of the items.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if out, _ := c.kubectl("exec", "rabbitmq-0", "--", "rabbitmqctl", "-q", "list_queues", "name", "messages"); regexp.MustCompile(`(?m)^big\s+[1-9]\d{3,}`).MatchString(out) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the fill never got going")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := c.client.CoreV1().Pods(c.namespace).Delete(ctx, "rabbitmq-0", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	err := fill.Wait()
	if err == nil {
		t.Fatalf("fill succeeded although the broker went away mid-way:\n%s", stderr.String())
	}
	m := regexp.MustCompile(`(\d+) of (\d+) items sent were confirmed.*resume with --skip (\d+)`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("fill did not say how many items were confirmed:\n%s", stderr.String())
	}
	skip, _ := strconv.Atoi(m[3])
	t.Logf("cut after %s confirmed; resuming with --skip %d", m[1], skip)
	if skip <= 0 || skip >= n {
		t.Fatalf("resume point %d: the cut was not mid-way", skip)
	}

	c.waitForPodReady("rabbitmq-0", 3*time.Minute)
	c.workqueue("", "fill", "big", "--from-file", items, "--skip", strconv.Itoa(skip))

	// Every item must be there (a few items sent but unconfirmed when the pod died may be there twice).
	got := c.drainQueue("big", n)
	seen := map[string]bool{}
	for _, body := range got {
		seen[body] = true
	}
	var missing []string
	for i := range n {
		if item := fmt.Sprintf("item-%06d", i); !seen[item] {
			missing = append(missing, item)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		t.Fatalf("%d items lost, e.g. %v", len(missing), missing[:min(5, len(missing))])
	}
	t.Logf("%d messages for %d items (%d duplicates from the cut)", len(got), n, len(got)-n)
}

// drainQueue takes every message of a queue, which holds at least atLeast, through a
// port-forward made with the plugin's own packages.
func (c *cluster) drainQueue(name string, atLeast int) []string {
	c.t.Helper()
	ctx := context.Background()
	target, err := portforward.ResolveService(ctx, c.client, c.namespace, "rabbitmq-service", "")
	if err != nil {
		c.t.Fatal(err)
	}
	session, err := portforward.Forward(ctx, c.config, c.client, target)
	if err != nil {
		c.t.Fatal(err)
	}
	defer session.Close()
	username, password := "guest", "guest"
	// A broker of `broker install` has no guest: its Secret holds the login.
	if secret, err := c.client.CoreV1().Secrets(c.namespace).Get(ctx, "workqueue-broker", metav1.GetOptions{}); err == nil {
		username, password = string(secret.Data["username"]), string(secret.Data["password"])
	}
	amqpConn, err := queue.Dial(queue.BuildURL(username, password, session.Addr()))
	if err != nil {
		c.t.Fatal(err)
	}
	defer amqpConn.Close()
	// A quorum queue member that restarted moments ago may answer the count from its own state
	// before it has caught up (seen on 3.10 right after a node restart: 0 of 300,000): wait, up
	// to a minute, for the count the test knows to be at least there.
	total := 0
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(2 * time.Second) {
		if total, err = queue.Depth(amqpConn, name); err != nil {
			c.t.Fatal(err)
		}
		if total >= atLeast {
			break
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("queue %s: the broker counts %d messages, fewer than the %d filled", name, total, atLeast)
		}
	}
	ch, err := amqpConn.Channel()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := ch.Qos(2000, 0, false); err != nil {
		c.t.Fatal(err)
	}
	// Acknowledged in batches rather than auto-acked: prefetch then bounds what the broker holds
	// for this consumer, and a broker that goes away is noticed instead of read as empty bodies.
	deliveries, err := ch.Consume(name, "", false, false, false, false, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	bodies := make([]string, 0, total)
	for len(bodies) < total {
		select {
		case d, ok := <-deliveries:
			if !ok {
				c.t.Fatalf("queue %s: the broker closed the channel after %d of %d messages", name, len(bodies), total)
			}
			bodies = append(bodies, string(d.Body))
			if len(bodies)%1000 == 0 || len(bodies) == total {
				if err := d.Ack(true); err != nil {
					c.t.Fatal(err)
				}
			}
		case <-time.After(30 * time.Second):
			c.t.Fatalf("queue %s: only %d of %d messages arrived", name, len(bodies), total)
		}
	}
	return bodies
}
