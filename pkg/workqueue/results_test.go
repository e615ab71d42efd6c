package workqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kubectl-workqueue/kubectl-workqueue/internal/testbroker"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
)

func publishRecords(t *testing.T, q string, n int) {
	t.Helper()
	var messages []testbroker.Message
	for i := 1; i <= n; i++ {
		body, _ := json.Marshal(outcome.Record{Queue: q, MessageID: fmt.Sprintf("%d-x", i), Item: fmt.Sprintf("item %d", i), Attempt: 1, Result: outcome.ResultDone})
		messages = append(messages, testbroker.Message{ID: fmt.Sprintf("%d-x", i), Body: body})
	}
	testbroker.Publish(t, queue.ResultsName(q), messages...)
}

func TestReadResultsAcksOnlyWhatWasWrittenOut(t *testing.T) {
	conn, err := amqp.Dial(testbroker.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q := testbroker.QueueName(t, "results")
	if _, err := ReadResults(context.Background(), conn, ResultsRequest{Queue: q, Limit: -1}, nil); err == nil || !strings.Contains(err.Error(), "has no results queue") {
		t.Fatalf("no results queue: %v", err)
	}
	if created, err := queue.DeclareResults(conn, q); err != nil || !created {
		t.Fatalf("declare: %v %v", created, err)
	}
	publishRecords(t, q, 10)

	// The reader fails on the fourth record: three are gone, the rest are still there.
	var written []string
	write := func(r outcome.Record, _ []byte) error {
		if len(written) == 3 {
			return errors.New("disk full")
		}
		written = append(written, r.MessageID)
		return nil
	}
	taken, err := ReadResults(context.Background(), conn, ResultsRequest{Queue: q, Limit: -1}, write)
	if err == nil || taken != 3 || strings.Join(written, ",") != "1-x,2-x,3-x" {
		t.Fatalf("taken %d %q, %v", taken, written, err)
	}
	written = nil
	taken, err = ReadResults(context.Background(), conn, ResultsRequest{Queue: q, Limit: 5}, func(r outcome.Record, _ []byte) error {
		written = append(written, r.MessageID)
		return nil
	})
	if err != nil || taken != 5 || written[0] != "4-x" {
		t.Fatalf("the next read: %d %q %v", taken, written, err)
	}
	taken, err = ReadResults(context.Background(), conn, ResultsRequest{Queue: q, Limit: -1}, func(outcome.Record, []byte) error { return nil })
	if err != nil || taken != 2 {
		t.Fatalf("the rest: %d %v", taken, err)
	}
	if n := testbroker.Ready(t, queue.ResultsName(q)); n != 0 {
		t.Fatalf("%d records left", n)
	}
}
