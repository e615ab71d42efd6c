package workqueue

import (
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
)

// QueueState is what the broker says of a work queue at one moment.
type QueueState struct {
	Ready int // items waiting; -1 when unknown
	// DeadLetters is what QUEUE.failed holds; -1 when there is no dead-letter queue.
	DeadLetters int
}

// UnknownQueueState is the state before the broker was asked.
var UnknownQueueState = QueueState{Ready: -1, DeadLetters: -1}

// ReadQueue reads a work queue and its dead-letter queue. A missing work queue is an error that
// says how to make it.
func ReadQueue(conn *amqp.Connection, name, via string) (QueueState, error) {
	ready, err := queue.Depth(conn, name)
	if errors.Is(err, queue.ErrNoQueue) {
		return QueueState{}, fmt.Errorf("queue %s does not exist on the broker (%s): fill it first with `kubectl workqueue fill %s`", name, via, name)
	}
	if err != nil {
		return QueueState{}, err
	}
	failed, err := queue.Depth(conn, queue.DeadLetterName(name))
	if err != nil && !errors.Is(err, queue.ErrNoQueue) {
		return QueueState{}, err
	}
	return QueueState{Ready: ready, DeadLetters: failed}, nil
}

// CountQueue reads what the broker holds of a queue for QueueStatus; a queue that does not
// exist is counted as such, not an error.
func CountQueue(conn *amqp.Connection, name string) (QueueCounts, error) {
	ready, err := queue.Depth(conn, name)
	if errors.Is(err, queue.ErrNoQueue) {
		return QueueCounts{}, nil
	}
	if err != nil {
		return QueueCounts{}, err
	}
	counts := QueueCounts{Exists: true, Ready: ready}
	if counts.DeadLetters, err = depthIfAny(conn, queue.DeadLetterName(name)); err != nil {
		return QueueCounts{}, err
	}
	if counts.Results, err = depthIfAny(conn, queue.ResultsName(name)); err != nil {
		return QueueCounts{}, err
	}
	return counts, nil
}

// depthIfAny counts a queue's ready messages; nil when there is no such queue.
func depthIfAny(conn *amqp.Connection, name string) (*int, error) {
	n, err := queue.Depth(conn, name)
	switch {
	case errors.Is(err, queue.ErrNoQueue):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return &n, nil
}
