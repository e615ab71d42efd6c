package queue

import (
	"context"
	"errors"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kubectl-workqueue/kubectl-workqueue/internal/testbroker"
)

func TestRecorderPublishesConfirmedAndNamesARefusal(t *testing.T) {
	conn := connect(t)
	name := testbroker.QueueName(t, "record")
	if _, err := NewRecorder(conn, ResultsName(name)); !errors.Is(err, ErrNoQueue) {
		t.Fatalf("recorder on a missing queue: %v, want ErrNoQueue", err)
	}
	if _, err := DeclareResults(conn, name); err != nil {
		t.Fatal(err)
	}
	r, err := NewRecorder(conn, ResultsName(name))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.Publish(ctx, amqp.Publishing{MessageId: "m1", ContentType: "text/plain", Body: []byte("one")}); err != nil {
		t.Fatal(err)
	}
	got := testbroker.Drain(t, ResultsName(name))
	if len(got) != 1 || got[0].MessageId != "m1" || string(got[0].Body) != "one" || got[0].DeliveryMode != amqp.Persistent || got[0].ContentType != "text/plain" {
		t.Fatalf("results queue holds %+v", got)
	}

	// The queue deleted under the recorder: the broker returns the record, and says so.
	ch := testbroker.Channel(t)
	if _, err := ch.QueueDelete(ResultsName(name), false, false, false); err != nil {
		t.Fatal(err)
	}
	err = r.Publish(ctx, amqp.Publishing{MessageId: "m2", Body: []byte("two")})
	var notStored *NotStoredError
	if !errors.As(err, &notStored) || notStored.Queue != ResultsName(name) {
		t.Fatalf("publish to a deleted queue: %v, want a NotStoredError", err)
	}

	// A lost connection is not a refusal.
	conn.Close()
	err = r.Publish(ctx, amqp.Publishing{MessageId: "m3", Body: []byte("three")})
	if err == nil || errors.As(err, &notStored) {
		t.Fatalf("publish on a closed connection: %v, want an error that is no NotStoredError", err)
	}
}
