package workqueue

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
)

// resultsPrefetch bounds the records between delivered and written out.
const resultsPrefetch = 256

// ResultsRequest says which records ReadResults takes and when it stops.
type ResultsRequest struct {
	Queue string
	// Limit stops after that many records; below 0 for no limit.
	Limit int
	// Follow keeps reading while the queue is empty, until Done says the records are complete
	// (the Job has finished) and the queue is empty, or ctx ends. Without it, reading stops as
	// soon as no record is left.
	Follow bool
	Done   func(ctx context.Context) (bool, error)
	// Idle is how long no record must arrive before the queue counts as empty; a second when 0.
	Idle time.Duration
}

// ReadResults takes the records of QUEUE.results in order and hands each to write; a record is
// acknowledged, and so removed, only after write returned nil, so an interrupted read loses
// none (the records not acknowledged are read again next time). It returns how many records
// it took.
func ReadResults(ctx context.Context, conn *amqp.Connection, req ResultsRequest, write func(outcome.Record, []byte) error) (int, error) {
	name := queue.ResultsName(req.Queue)
	consumer, err := queue.NewConsumer(conn, name, resultsPrefetch)
	if err != nil {
		if _, depthErr := queue.Depth(conn, name); errors.Is(depthErr, queue.ErrNoQueue) {
			return 0, fmt.Errorf("queue %s has no results queue %s: run makes it when it runs a command after -- with --results (the default)", req.Queue, name)
		}
		return 0, err
	}
	defer consumer.Close()
	deliveries, err := consumer.Consume("")
	if err != nil {
		return 0, err
	}
	idle := req.Idle
	if idle <= 0 {
		idle = time.Second
	}
	taken := 0
	for req.Limit < 0 || taken < req.Limit {
		select {
		case <-ctx.Done():
			return taken, ctx.Err()
		case d, ok := <-deliveries:
			if !ok {
				return taken, fmt.Errorf("the broker closed the channel on %s after %d records", name, taken)
			}
			record, err := outcome.DecodeRecord(d.Body)
			if err != nil {
				// Not ours: left where it is for whoever put it there.
				_ = d.Nack(false, true)
				return taken, fmt.Errorf("message %q in %s: %w", d.MessageId, name, err)
			}
			if err := write(record, d.Body); err != nil {
				return taken, err
			}
			if err := d.Ack(false); err != nil {
				return taken, fmt.Errorf("a record was written out but its ack was lost (%w): it will be read again", err)
			}
			taken++
		case <-time.After(idle):
			ready, err := consumer.Ready()
			if err != nil {
				return taken, err
			}
			if ready > 0 {
				continue
			}
			if !req.Follow {
				return taken, nil
			}
			if req.Done != nil {
				done, err := req.Done(ctx)
				if err != nil {
					return taken, err
				}
				if done {
					return taken, nil
				}
			}
		}
	}
	return taken, nil
}
