package agent

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kubectl-workqueue/kubectl-workqueue/internal/testbroker"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
)

// brokerCountsNacks reports whether the test broker counts an item given back with basic.nack
// toward its delivery limit, as every RabbitMQ before 4.3 does (measured on 3.10 and 4.0; 4.3
// and later count only a reject, by the README's table of versions, which this suite has not
// run against).
func brokerCountsNacks(t *testing.T) bool {
	t.Helper()
	version, _ := testbroker.Dial(t).Properties["version"].(string)
	parts := strings.SplitN(version, ".", 3)
	if len(parts) < 2 {
		t.Fatalf("cannot read the broker's version from %q", version)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		t.Fatalf("cannot read the broker's version from %q", version)
	}
	return major < 4 || major == 4 && minor < 3
}

// heldItemCommand runs an item "quick" at once (so that the drain consumer moves to prefetch 2),
// and an item "slow" until SIGTERM, noting in $0 that it started.
var heldItemCommand = `read item
case "$item" in slow)
	trap 'exit 143' TERM
	touch "$0"
	while :; do sleep 0.05; done;;
esac`

// deliveryOf returns what the queue now holds, by message id: every message is taken and acked.
func deliveriesByID(t *testing.T, queue string) map[string]amqp.Delivery {
	t.Helper()
	got := map[string]amqp.Delivery{}
	for _, d := range testbroker.Drain(t, queue) {
		got[d.MessageId] = d
	}
	return got
}

// A drain agent that holds the next item while its command runs gives it back unstarted when a
// signal stops it: the item is ready again at once, and it lost an attempt only where the broker
// counts every give-back (RabbitMQ before 4.3; the agent nacks it, which 4.3 does not count).
// The item that was running is rejected and counts as an attempt on every version. With prefetch
// 1, or told that the queue allows one attempt per item, the agent holds no other item, and the
// consumer is cancelled before the interrupted item is given back, so that the broker sends
// nothing in its place.
func TestDrainGivesBackTheItemItHeldWhenASignalStopsIt(t *testing.T) {
	for _, tc := range []struct {
		name        string
		spec        queueSpec
		maxPrefetch int
		maxAttempts int // what the agent is told of the queue
	}{
		{"quorum", queueSpec{quorum: true, deliveryLimit: 5}, 0, 0},
		{"classic", queueSpec{}, 0, 0},
		{"quorum prefetch 1", queueSpec{quorum: true, deliveryLimit: 5}, 1, 0},
		{"quorum told one attempt per item", queueSpec{quorum: true, deliveryLimit: 5}, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			queue := testQueue(t, tc.spec)
			testbroker.Publish(t, queue, message{ID: "quick", Body: []byte("quick\n")},
				message{ID: "slow", Body: []byte("slow\n")}, message{ID: "held", Body: []byte("held\n")})
			dir := t.TempDir()
			started := filepath.Join(dir, "started")
			termLog := filepath.Join(dir, "termination-log")
			run := startAgent(t, Config{Queue: queue, Mode: constants.ModeDrain, MaxPrefetch: tc.maxPrefetch, MaxAttempts: tc.maxAttempts, TerminationLog: termLog,
				Command: []string{"sh", "-c", heldItemCommand, started}})

			waitForFile(t, started)
			holds := tc.maxPrefetch != 1 && tc.maxAttempts != 1
			if holds {
				eventuallyReady(t, queue, 0) // "held" is the agent's
			}
			run.signals <- syscall.SIGTERM
			result := run.wait(t)

			if result.ExitCode != outcome.ExitInterrupted || result.Outcome.MessageID != "slow" || result.Outcome.Processed != 1 {
				t.Fatalf("exit %d, outcome %+v; log:\n%s", result.ExitCode, result.Outcome, run.log)
			}
			gaveBack := strings.Contains(run.log.String(), `item held "held" attempt 1: not started; given back to the queue`)
			if gaveBack != holds {
				t.Errorf("gave back the held item: %v, want %v; log:\n%s", gaveBack, holds, run.log)
			}
			eventuallyReady(t, queue, 2)
			left := deliveriesByID(t, queue)
			slow, held := left["slow"], left["held"]
			if slow.MessageId == "" || held.MessageId == "" {
				t.Fatalf("the queue holds %v, want slow and held", left)
			}
			if !tc.spec.quorum {
				// A classic queue counts nothing; it marks an item it delivered before.
				if !slow.Redelivered || !held.Redelivered {
					t.Errorf("redelivered: slow %v, held %v; want both", slow.Redelivered, held.Redelivered)
				}
				return
			}
			wantHeld := 0
			if holds && brokerCountsNacks(t) {
				wantHeld = 1
			}
			if n, _ := deliveryCount(slow.Headers["x-delivery-count"]); n != 1 {
				t.Errorf("the interrupted item's delivery count is %d, want 1", n)
			}
			if n, _ := deliveryCount(held.Headers["x-delivery-count"]); int(n) != wantHeld {
				t.Errorf("the held item's delivery count is %d, want %d", n, wantHeld)
			}
		})
	}
}

// A drain agent that stops because its command cannot start any more gives the item it held
// back too.
func TestDrainGivesBackTheItemItHeldWhenTheCommandCannotStart(t *testing.T) {
	queue := testQueue(t, queueSpec{quorum: true, deliveryLimit: 5})
	testbroker.Publish(t, queue, message{ID: "quick", Body: []byte("quick")},
		message{ID: "orphan", Body: []byte("orphan")}, message{ID: "held", Body: []byte("held")})
	dir := t.TempDir()
	// The command removes itself as it runs its first item; the next cannot start.
	program := filepath.Join(dir, "run-once")
	if err := os.WriteFile(program, []byte("#!/bin/sh\nrm -f \"$0\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	result, run := runAgent(t, Config{Queue: queue, Mode: constants.ModeDrain, Command: []string{program}})

	if result.ExitCode != outcome.ExitMisconfigured || result.Outcome.Processed != 1 {
		t.Fatalf("exit %d, outcome %+v; log:\n%s", result.ExitCode, result.Outcome, run.log)
	}
	if !strings.Contains(run.log.String(), `item held "held" attempt 1: not started; given back to the queue`) {
		t.Errorf("log:\n%s", run.log)
	}
	eventuallyReady(t, queue, 2)
	left := deliveriesByID(t, queue)
	if _, ok := left["held"]; !ok {
		t.Errorf("the queue holds %v, want held back", left)
	}
}

// A drain of short commands ends on an idle queue holding nothing: the items that were on their
// way when the consumer was cancelled are processed, not given back.
func TestDrainOfShortCommandsGivesNothingBack(t *testing.T) {
	queue := testQueue(t, queueSpec{quorum: true, deliveryLimit: 5})
	var messages []message
	for i := range 30 {
		messages = append(messages, message{ID: "m" + strconv.Itoa(i), Body: []byte("x")})
	}
	testbroker.Publish(t, queue, messages...)
	begin := time.Now()
	result, run := runAgent(t, Config{Queue: queue, Mode: constants.ModeDrain, Command: []string{"cat"}})

	if result.ExitCode != outcome.ExitOK || result.Outcome.Processed != len(messages) {
		t.Fatalf("exit %d, outcome %+v after %s; log:\n%s", result.ExitCode, result.Outcome, time.Since(begin), run.log)
	}
	if strings.Contains(run.log.String(), "given back") || strings.Contains(run.log.String(), "attempt 2") {
		t.Errorf("log:\n%s", run.log)
	}
	if n := testbroker.Ready(t, queue); n != 0 {
		t.Errorf("%d items left", n)
	}
}

// A drain agent that loses its connection while it holds the next item loses it with the
// connection: the broker takes back what the connection held, and counts a delivery for each
// item on every version, the held one as the one that was running. After reconnecting, the agent
// runs both again, the held one as its second attempt.
func TestDrainLosesAnAttemptOfTheItemItHeldWithAConnection(t *testing.T) {
	queue := testQueue(t, queueSpec{quorum: true, deliveryLimit: 5})
	testbroker.Publish(t, queue, message{ID: "quick", Body: []byte("quick\n")},
		message{ID: "slow", Body: []byte("slow\n")}, message{ID: "held", Body: []byte("held\n")})
	proxiedURL, proxy := proxiedBroker(t)
	dir := t.TempDir()
	started, cut, runs := filepath.Join(dir, "started"), filepath.Join(dir, "cut"), filepath.Join(dir, "runs")
	// "slow", until the cut, waits for it; after it, and every other item, ends at once.
	script := `read item; echo "$item#$WORKQUEUE_ATTEMPT" >> "$0/runs"
[ "$item" = slow ] && [ ! -e "$0/cut" ] || exit 0
touch "$0/started"; while [ ! -e "$0/cut" ]; do sleep 0.05; done`
	run := startAgent(t, Config{BrokerURL: proxiedURL, Queue: queue, Mode: constants.ModeDrain, Command: []string{"sh", "-c", script, dir},
		BrokerOutage: time.Minute})

	waitForFile(t, started)
	eventuallyReady(t, queue, 0) // "held" is the agent's
	proxy.cut()
	time.Sleep(500 * time.Millisecond)
	if err := os.WriteFile(cut, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	result := run.wait(t)

	if result.ExitCode != outcome.ExitOK || result.Outcome.Processed != 3 {
		t.Fatalf("exit %d, outcome %+v; log:\n%s", result.ExitCode, result.Outcome, run.log)
	}
	data, _ := os.ReadFile(runs)
	got := strings.Fields(string(data))
	slices.Sort(got)
	if strings.Join(got, " ") != "held#2 quick#1 slow#1 slow#2" {
		t.Errorf("ran %q, want held#2 quick#1 slow#1 slow#2 (the held item lost one attempt with the connection); log:\n%s", got, run.log)
	}
	eventuallyReady(t, queue, 0)
	eventuallyReady(t, queue+".failed", 0)
}

// With one attempt per item (x-delivery-limit 0), an item a drain agent held when a signal
// stopped it goes to QUEUE.failed without having run, where the broker counts the nack (before
// RabbitMQ 4.3); the README says so. The interrupted item goes there on every version.
func TestDrainWithOneAttemptDeadLettersTheHeldItemWhereNacksCount(t *testing.T) {
	queue := testQueue(t, queueSpec{quorum: true, maxAttemptsOne: true})
	testbroker.Publish(t, queue, message{ID: "quick", Body: []byte("quick\n")},
		message{ID: "slow", Body: []byte("slow\n")}, message{ID: "held", Body: []byte("held\n")})
	started := filepath.Join(t.TempDir(), "started")
	run := startAgent(t, Config{Queue: queue, Mode: constants.ModeDrain, Command: []string{"sh", "-c", heldItemCommand, started}})
	waitForFile(t, started)
	eventuallyReady(t, queue, 0) // "held" is the agent's
	run.signals <- syscall.SIGTERM
	if result := run.wait(t); result.ExitCode != outcome.ExitInterrupted {
		t.Fatalf("exit %d, outcome %+v; log:\n%s", result.ExitCode, result.Outcome, run.log)
	}
	wantFailed, wantReady := 2, 0
	if !brokerCountsNacks(t) {
		wantFailed, wantReady = 1, 1
	}
	eventuallyReady(t, queue+".failed", wantFailed)
	eventuallyReady(t, queue, wantReady)
}
