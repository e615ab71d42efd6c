package queue

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/kubectl-workqueue/kubectl-workqueue/internal/testbroker"
)

// A vhost the user may not enter is a refusal retrying cannot fix: Dial says so at once, rather
// than have Retry wait out its whole budget.
func TestDialDoesNotRetryAVhostRefusal(t *testing.T) {
	u, err := url.Parse(testbroker.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/no-such-vhost-for-workqueue-tests"
	calls := 0
	start := time.Now()
	err = DefaultRetry.Do(t.Context(), func(context.Context) error {
		calls++
		_, err := Dial(u.String())
		return err
	})
	refusal := AsRefusal(err)
	var permanent *PermanentError
	if !errors.As(err, &permanent) || refusal == nil || refusal.What != RefusedVhost || calls != 1 {
		t.Fatalf("after %d attempts in %s: %v", calls, time.Since(start), err)
	}
	if refusal.Broker != Redact(u.String()) {
		t.Errorf("refusal names broker %q, want %q", refusal.Broker, Redact(u.String()))
	}
}

func TestConsumerGetsConsumesCancelsAndCounts(t *testing.T) {
	name := testbroker.QueueName(t, "queue")
	if _, err := Declare(connect(t), Spec{Name: name, Type: Quorum, MaxAttempts: 3}); err != nil {
		t.Fatal(err)
	}
	testbroker.Publish(t, name, testbroker.Message{ID: "a", Body: []byte("a")}, testbroker.Message{ID: "b", Body: []byte("b")}, testbroker.Message{ID: "c", Body: []byte("c")})

	c, err := DialConsumer(testbroker.URL(t), name, 1, WithCoalescing(false), WithConnectionName("queue test consumer"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ready, err := c.Ready(); err != nil || ready != 3 {
		t.Fatalf("Ready = %d, %v; want 3", ready, err)
	}
	d, ok, err := c.Get()
	if err != nil || !ok || d.MessageId != "a" {
		t.Fatalf("Get = %q %v %v", d.MessageId, ok, err)
	}
	if err := d.Ack(false); err != nil {
		t.Fatal(err)
	}
	deliveries, err := c.Consume("queue-test")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-deliveries:
		if d.MessageId != "b" {
			t.Fatalf("consumed %q, want b", d.MessageId)
		}
		if err := c.Cancel("queue-test"); err != nil {
			t.Fatal(err)
		}
		if err := d.Reject(true); err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10s")
	}
	for range deliveries { // prefetch 1: nothing else was on its way
		t.Error("a delivery after the cancel")
	}
	// A message given back takes a moment to be counted as ready again.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ready, err := c.Ready()
		if err == nil && ready == 2 {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("Ready = %d, %v; want 2 (b given back, c never delivered)", ready, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestConsumerOfAMissingQueueIsARefusal(t *testing.T) {
	name := testbroker.QueueName(t, "queue") // never declared
	_, err := DialConsumer(testbroker.URL(t), name, 1)
	refusal := AsRefusal(Refusal(err, name, "/"))
	if refusal == nil || refusal.What != RefusedNoQueue {
		t.Fatalf("got %v", err)
	}
}
