package queue

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kubectl-workqueue/kubectl-workqueue/internal/testbroker"
)

// deadLetter fills a fresh work queue whose items get one attempt, and rejects every item, so
// that the broker itself dead-letters them to NAME.failed with its x-death headers.
func deadLetter(t *testing.T, n int) string {
	t.Helper()
	conn := connect(t)
	name := testbroker.QueueName(t, "move")
	if _, err := Declare(conn, Spec{Name: name, Type: Quorum, MaxAttempts: 1}); err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for i := range n {
		bodies = append(bodies, fmt.Sprintf("item-%d", i))
	}
	if _, err := Publish(context.Background(), conn, name, &sliceSource{bodies: bodies}, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	ch := testbroker.Channel(t)
	for range n {
		d, ok, err := ch.Get(name, false)
		if err != nil || !ok {
			t.Fatalf("get: %v %v", ok, err)
		}
		if err := d.Reject(false); err != nil {
			t.Fatal(err)
		}
	}
	waitReady(t, DeadLetterName(name), n)
	return name
}

func waitReady(t *testing.T, queue string, want int) {
	t.Helper()
	for range 100 {
		if testbroker.Ready(t, queue) == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s holds %d messages, want %d", queue, testbroker.Ready(t, queue), want)
}

func TestMoveBringsDeadLettersBackAsNewItems(t *testing.T) {
	name := deadLetter(t, 150)
	conn := connect(t)

	moved, err := Move(context.Background(), conn, DeadLetterName(name), name, 20)
	if err != nil || moved != 20 {
		t.Fatalf("moved %d (%v), want 20", moved, err)
	}
	waitReady(t, name, 20)
	waitReady(t, DeadLetterName(name), 130)

	moved, err = Move(context.Background(), conn, DeadLetterName(name), name, -1)
	if err != nil || moved != 130 {
		t.Fatalf("moved %d (%v), want the other 130", moved, err)
	}
	got := testbroker.Drain(t, name)
	ids := map[string]bool{}
	for _, d := range got {
		ids[d.MessageId] = true
		if _, ok := d.Headers["x-death"]; ok {
			t.Fatalf("message %s kept the broker's x-death header", d.MessageId)
		}
		if count, ok := d.Headers["x-delivery-count"]; ok && count != int64(0) {
			t.Fatalf("message %s comes back as attempt %v, not as a new item", d.MessageId, count)
		}
	}
	if len(got) != 150 || len(ids) != 150 {
		t.Fatalf("%d messages with %d ids came back, want 150 of each", len(got), len(ids))
	}
	if _, ok := ids[MessageID(1, []byte("item-0"))]; !ok {
		t.Error("the message ids of fill were not kept")
	}
	if n := testbroker.Ready(t, DeadLetterName(name)); n != 0 {
		t.Errorf("%d dead letters left", n)
	}
	if moved, err := Move(context.Background(), conn, DeadLetterName(name), name, -1); err != nil || moved != 0 {
		t.Errorf("moving from an empty queue: %d %v", moved, err)
	}
}

func TestMoveAndPurgeNameAMissingQueue(t *testing.T) {
	conn := connect(t)
	name := testbroker.QueueName(t, "move")
	if _, err := Move(context.Background(), conn, DeadLetterName(name), name, -1); !errors.Is(err, ErrNoQueue) {
		t.Errorf("move from a missing queue: %v", err)
	}
	if _, err := Purge(conn, name); !errors.Is(err, ErrNoQueue) {
		t.Errorf("purge a missing queue: %v", err)
	}
}

func TestPurge(t *testing.T) {
	name := deadLetter(t, 5)
	n, err := Purge(connect(t), DeadLetterName(name))
	if err != nil || n != 5 {
		t.Fatalf("purged %d (%v), want 5", n, err)
	}
	waitReady(t, DeadLetterName(name), 0)
}

// Moving stopped at any point (here by its context, as Ctrl-C does) loses no item: each is in
// one queue or the other, and at most the few in flight are in both.
func TestMoveInterruptedLosesNothing(t *testing.T) {
	const n = 400
	name := deadLetter(t, n)
	conn := connect(t)
	midway := false
	for _, after := range []time.Duration{5 * time.Millisecond, 30 * time.Millisecond, 80 * time.Millisecond, 200 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(context.Background(), after)
		moved, err := Move(ctx, conn, DeadLetterName(name), name, -1)
		cancel()
		t.Logf("stopped after %s: %d moved (%v)", after, moved, err)
		midway = midway || (err != nil && moved > 0)
	}
	if !midway {
		t.Log("no move was stopped midway this time: the check below still holds, but proves less")
	}
	ids := map[string]int{}
	for _, q := range []string{name, DeadLetterName(name)} {
		for _, d := range testbroker.Drain(t, q) {
			ids[d.MessageId]++
		}
	}
	duplicates := 0
	for _, count := range ids {
		duplicates += count - 1
	}
	if len(ids) != n || duplicates > 3*moveWindow {
		t.Fatalf("%d distinct items of %d, %d duplicates", len(ids), n, duplicates)
	}
}
