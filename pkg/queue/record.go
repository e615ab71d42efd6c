package queue

import (
	"context"
	"errors"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Recorder publishes single messages to one existing queue through the default exchange, each
// persistent and mandatory, and waits for the broker's confirm before Publish returns: what the
// agent needs to publish a result record before it settles the item the record is about.
type Recorder struct {
	conn    *amqp.Connection
	ch      *amqp.Channel
	queue   string
	returns chan amqp.Return
	closed  chan *amqp.Error
	// closeErr is why the broker closed the channel, once known.
	closeErr *amqp.Error
}

// NotStoredError says that the broker is reachable but did not store a message: it returned it
// because no queue took it (the queue was deleted), or closed the channel over it. Retrying on a
// new connection cannot fix that.
type NotStoredError struct {
	Queue  string
	Reason string
}

func (e *NotStoredError) Error() string {
	return fmt.Sprintf("the broker did not store the message in queue %q: %s", e.Queue, e.Reason)
}

// NewRecorder opens a channel of its own on conn in confirm mode, after checking that queueName
// exists: an error wrapping ErrNoQueue says it does not (a queue whose node is down is not
// reported so: see QueueUnavailable). Other errors are the client library's.
func NewRecorder(conn *amqp.Connection, queueName string) (*Recorder, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	if _, err := ch.QueueDeclarePassive(queueName, true, false, false, false, nil); err != nil {
		_ = ch.Close()
		var amqpErr *amqp.Error
		if errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound && !QueueUnavailable(err) {
			return nil, fmt.Errorf("queue %q: %w", queueName, ErrNoQueue)
		}
		return nil, err
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, err
	}
	r := &Recorder{conn: conn, ch: ch, queue: queueName}
	// Buffered: the client hands a return over before it processes the confirm that follows it,
	// and one message is in flight at a time, so Publish finds its return here once confirmed.
	r.returns = ch.NotifyReturn(make(chan amqp.Return, 4))
	r.closed = ch.NotifyClose(make(chan *amqp.Error, 1))
	return r, nil
}

// Recorder opens a Recorder for queueName on the Consumer's connection.
func (c *Consumer) Recorder(queueName string) (*Recorder, error) {
	return NewRecorder(c.conn, queueName)
}

// Publish sends msg to the Recorder's queue, persistent and mandatory, and returns once the broker
// has confirmed it. The error is a *NotStoredError when the broker, still connected, refused the
// message; any other error (a lost connection, ctx ending before the confirm) leaves unknown
// whether the message was stored.
func (r *Recorder) Publish(ctx context.Context, msg amqp.Publishing) error {
	msg.DeliveryMode = amqp.Persistent
	confirm, err := r.ch.PublishWithDeferredConfirmWithContext(ctx, "", r.queue, true, false, msg)
	if err != nil {
		return r.failure(fmt.Errorf("publish to queue %q: %w", r.queue, err))
	}
	acked, err := confirm.WaitContext(ctx)
	if err != nil {
		return fmt.Errorf("no confirm from the broker for the message to queue %q: %w", r.queue, err)
	}
	if ret, ok := r.returned(msg.MessageId); ok {
		return &NotStoredError{Queue: r.queue, Reason: fmt.Sprintf("no queue took it (%d %s)", ret.ReplyCode, ret.ReplyText)}
	}
	if !acked {
		return r.failure(errors.New("nack or closed channel"))
	}
	return nil
}

// returned takes the return of the message with that id, if the broker sent one; returns of
// earlier messages are dropped. The client closes the returns channel with the connection.
func (r *Recorder) returned(messageID string) (amqp.Return, bool) {
	for {
		select {
		case ret, open := <-r.returns:
			if !open {
				return amqp.Return{}, false
			}
			if ret.MessageId == messageID {
				return ret, true
			}
		default:
			return amqp.Return{}, false
		}
	}
}

// failure tells a refusal of a broker that is still connected from a lost connection.
func (r *Recorder) failure(err error) error {
	if r.conn.IsClosed() {
		return fmt.Errorf("the connection to the broker was lost: %w", err)
	}
	if r.closeErr == nil {
		select {
		case amqpErr, ok := <-r.closed:
			if ok {
				r.closeErr = amqpErr
			}
		default:
		}
	}
	if r.closeErr != nil {
		if !r.closeErr.Server {
			return fmt.Errorf("the connection to the broker was lost: %w", r.closeErr)
		}
		return &NotStoredError{Queue: r.queue, Reason: "the broker closed the channel: " + r.closeErr.Reason}
	}
	if r.ch.IsClosed() {
		return fmt.Errorf("the channel to the broker was closed: %w", err)
	}
	return &NackedError{Queue: r.queue}
}

// NackedError says the broker nacked a message: RabbitMQ does so when the queue cannot take it
// for now, as while a quorum queue has no leader (its node shutting down, an election). Unlike a
// NotStoredError it may pass on a new connection.
type NackedError struct {
	Queue string
}

func (e *NackedError) Error() string {
	return fmt.Sprintf("the broker nacked the message for queue %q (it does so while the queue cannot take messages, e.g. as its node shuts down)", e.Queue)
}

// Close closes the Recorder's channel.
func (r *Recorder) Close() {
	_ = r.ch.Close()
}
