package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kubectl-workqueue/kubectl-workqueue/internal/testbroker"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
)

// outageItems fills a quorum queue (with its .failed queue and a delivery limit, so that a
// lost ack counted as a failure would show) with n items.
func outageItems(t *testing.T, n int) string {
	t.Helper()
	queue := testQueue(t, queueSpec{quorum: true, deliveryLimit: 3})
	messages := make([]message, n)
	for i := range messages {
		messages[i] = message{ID: fmt.Sprintf("item-%03d", i), Body: []byte(fmt.Sprint(i))}
	}
	testbroker.Publish(t, queue, messages...)
	return queue
}

// ranCommand appends each item's message id to the file ran, then takes about 10 ms.
func ranCommand(ran string) []string {
	return []string{"sh", "-c", `echo "$WORKQUEUE_MESSAGE_ID" >> "$0"; sleep 0.01`, ran}
}

func ranLines(t *testing.T, ran string) []string {
	t.Helper()
	data, err := os.ReadFile(ran)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Fields(string(data))
}

// waitForRuns waits until the command has run at least n times.
func waitForRuns(t *testing.T, ran string, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for len(ranLines(t, ran)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the command ran %d times within a minute, want %d", len(ranLines(t, ran)), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var backAfter = regexp.MustCompile(`is back after ([0-9.]+m?s)`)

// A broker that goes away mid-drain (its pod deleted and restarted: the connection is cut, new
// ones are refused for a while, then closed at the login while it starts) is waited for, for
// longer than the connect budget that bounds the first connection: every item is processed,
// none fails or is dead-lettered.
func TestDrainRidesThroughABrokerOutage(t *testing.T) {
	const total = 200
	queue := outageItems(t, total)
	proxiedURL, proxy := proxiedBroker(t)
	ran := filepath.Join(t.TempDir(), "ran")
	run := startAgent(t, Config{BrokerURL: proxiedURL, Queue: queue, Mode: constants.ModeDrain, Command: ranCommand(ran),
		ConnectBudget: time.Second, BrokerOutage: time.Minute})

	waitForRuns(t, ran, 50)
	proxy.down()
	const refused, loginsDropped = 1500 * time.Millisecond, 3 * time.Second // past the connect budget
	time.Sleep(refused)
	proxy.upDroppingLogins(t)
	time.Sleep(loginsDropped)
	proxy.up(t)
	outage := refused + loginsDropped
	result := run.wait(t)

	if result.ExitCode != outcome.ExitOK || result.Outcome.Result != outcome.ResultDone {
		t.Fatalf("exit %d, outcome %+v; log:\n%s", result.ExitCode, result.Outcome, run.log)
	}
	lines := ranLines(t, ran)
	seen := map[string]bool{}
	for _, id := range lines {
		seen[id] = true
	}
	if len(seen) != total || result.Outcome.Processed != total || result.Outcome.Failed != 0 {
		t.Errorf("%d distinct items ran (%d runs), %d processed, %d failed; want all %d processed, none failed",
			len(seen), len(lines), result.Outcome.Processed, result.Outcome.Failed, total)
	}
	log := run.log.String()
	if !strings.Contains(log, "waiting up to 1m0s for it to come back") {
		t.Errorf("the log does not say that the agent waits for the broker:\n%s", log)
	}
	if m := backAfter.FindStringSubmatch(log); m == nil {
		t.Errorf("the log does not say that the broker is back:\n%s", log)
	} else {
		t.Logf("the broker was away for %s; the agent waited %s; %d runs for %d items", outage, m[1], len(lines), total)
	}
	eventuallyReady(t, queue, 0)
	eventuallyReady(t, queue+".failed", 0)
}

// A broker that stays away past the outage bound ends the pod with ExitBrokerLost, which the
// Job ignores, and with every item not acked back in the queue.
func TestDrainGivesUpWhenTheBrokerStaysAwayPastTheOutageBound(t *testing.T) {
	const total = 200
	queue := outageItems(t, total)
	proxiedURL, proxy := proxiedBroker(t)
	ran := filepath.Join(t.TempDir(), "ran")
	termLog := filepath.Join(t.TempDir(), "termination-log")
	run := startAgent(t, Config{BrokerURL: proxiedURL, Queue: queue, Mode: constants.ModeDrain, Command: ranCommand(ran),
		ConnectBudget: time.Second, BrokerOutage: 3 * time.Second, TerminationLog: termLog})

	waitForRuns(t, ran, 20)
	proxy.down()
	down := time.Now()
	result := run.wait(t)
	waited := time.Since(down)

	if result.ExitCode != outcome.ExitBrokerLost || result.Outcome.Result != outcome.ResultError {
		t.Fatalf("exit %d, outcome %+v; log:\n%s", result.ExitCode, result.Outcome, run.log)
	}
	if waited < 3*time.Second || waited > 20*time.Second {
		t.Errorf("gave up %s after the broker went away, want a little over the 3s bound", waited)
	}
	t.Logf("gave up %s after the broker went away", waited)
	o := readTerminationLog(t, termLog)
	if !strings.Contains(o.Error, "did not come back within 3s") || o.Processed == 0 || o.Failed != 0 {
		t.Errorf("termination message %+v", o)
	}
	eventuallyReady(t, queue, total-o.Processed)
	eventuallyReady(t, queue+".failed", 0)
}

// The connection cut twice under the same item is an outage each time, not the broker closing
// the item's channel as it does past its consumer_timeout: the drain goes on and does the item.
func TestAConnectionCutTwiceUnderTheSameItemIsNoReasonToStop(t *testing.T) {
	queue := testQueue(t, queueSpec{})
	testbroker.Publish(t, queue, message{ID: "long", Body: []byte("x")}, message{ID: "next", Body: []byte("y")})
	proxiedURL, proxy := proxiedBroker(t)
	dir := t.TempDir()
	script := `echo x >> "$0/$WORKQUEUE_MESSAGE_ID"
[ "$WORKQUEUE_MESSAGE_ID" = long ] || exit 0
n=$(ls "$0" | grep -c '^run'); touch "$0/run$n"; [ "$n" -ge 2 ] && exit 0
while [ ! -e "$0/cut$n" ]; do sleep 0.05; done`
	run := startAgent(t, Config{BrokerURL: proxiedURL, Queue: queue, Mode: constants.ModeDrain, Command: []string{"sh", "-c", script, dir}})

	for n := range 2 {
		waitForFile(t, filepath.Join(dir, fmt.Sprintf("run%d", n)))
		proxy.cut()
		time.Sleep(500 * time.Millisecond)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("cut%d", n)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	result := run.wait(t)
	if result.ExitCode != outcome.ExitOK || result.Outcome.Processed != 2 {
		t.Fatalf("exit %d, outcome %+v; log:\n%s", result.ExitCode, result.Outcome, run.log)
	}
	for id, want := range map[string]int{"long": 3, "next": 1} {
		data, _ := os.ReadFile(filepath.Join(dir, id))
		if got := strings.Count(string(data), "x"); got != want {
			t.Errorf("item %s ran %d times, want %d", id, got, want)
		}
	}
	eventuallyReady(t, queue, 0)
}

// A broker cut off from the agent without hearing of it (the network failed between them) holds
// the item whose ack was lost for the old connection until it misses the client's heartbeats.
// The drain must not end on the queue that looks empty meanwhile and leave the item behind.
func TestDrainWaitsForAnItemTheBrokerHoldsForTheLostConnection(t *testing.T) {
	queue := testQueue(t, queueSpec{})
	testbroker.Publish(t, queue, message{ID: "held", Body: []byte("x")})
	proxiedURL, proxy := proxiedBroker(t)
	dir := t.TempDir()
	script := `echo x >> "$0/runs"; [ -e "$0/cut-done" ] && exit 0
touch "$0/cutting"; while [ ! -e "$0/cut-done" ]; do sleep 0.05; done`
	run := startAgent(t, Config{BrokerURL: proxiedURL, Queue: queue, Mode: constants.ModeDrain, Command: []string{"sh", "-c", script, dir}})

	waitForFile(t, filepath.Join(dir, "cutting"))
	proxy.cutClientSide()
	cut := time.Now()
	time.Sleep(500 * time.Millisecond)
	if err := os.WriteFile(filepath.Join(dir, "cut-done"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	result := run.wait(t)

	if result.ExitCode != outcome.ExitOK || result.Outcome.Processed != 1 {
		t.Fatalf("exit %d, outcome %+v; log:\n%s", result.ExitCode, result.Outcome, run.log)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "runs"))
	if runs := strings.Count(string(data), "x"); runs != 2 {
		t.Fatalf("the item ran %d times, want 2: the drain ended before the broker gave it back; log:\n%s", runs, run.log)
	}
	t.Logf("the drain ended %s after the cut", time.Since(cut).Round(100*time.Millisecond))
	eventuallyReady(t, queue, 0)
}

// In one mode, the broker going away under the item's command is waited for too, past the
// connect budget; the pod then does its item (here the same one, delivered again) and exits 0.
func TestOneModeRidesThroughABrokerOutage(t *testing.T) {
	queue := testQueue(t, queueSpec{quorum: true, deliveryLimit: 3})
	testbroker.Publish(t, queue, message{ID: "only", Body: []byte("x")})
	proxiedURL, proxy := proxiedBroker(t)
	dir := t.TempDir()
	script := `echo x >> "$0/runs"; [ -e "$0/back" ] && exit 0
touch "$0/running"; while [ ! -e "$0/back" ]; do sleep 0.05; done`
	run := startAgent(t, Config{BrokerURL: proxiedURL, Queue: queue, Mode: constants.ModeOne, Command: []string{"sh", "-c", script, dir},
		ConnectBudget: time.Second, BrokerOutage: time.Minute})

	waitForFile(t, filepath.Join(dir, "running"))
	proxy.down()
	time.Sleep(500 * time.Millisecond)
	if err := os.WriteFile(filepath.Join(dir, "back"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // past the connect budget
	proxy.up(t)
	result := run.wait(t)

	if result.ExitCode != outcome.ExitOK || result.Outcome.Result != outcome.ResultDone || result.Outcome.MessageID != "only" {
		t.Fatalf("exit %d, outcome %+v; log:\n%s", result.ExitCode, result.Outcome, run.log)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "runs")); strings.Count(string(data), "x") != 2 {
		t.Errorf("the item ran %d times, want 2", strings.Count(string(data), "x"))
	}
	eventuallyReady(t, queue, 0)
	eventuallyReady(t, queue+".failed", 0)
}
