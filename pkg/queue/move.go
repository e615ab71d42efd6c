package queue

import (
	"context"
	"fmt"

	amqp "github.com/rabbitmq/amqp091-go"
)

// moveWindow bounds the messages between taken and settled while moving: the most an
// interruption can leave in both queues.
const moveWindow = 64

// brokerHeaders are set by the broker on dead-lettering and delivery; a moved message starts
// afresh without them, so that its attempts are counted again from 1.
var brokerHeaders = []string{"x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason",
	"x-last-death-exchange", "x-last-death-queue", "x-last-death-reason", "x-delivery-count"}

// Move takes up to limit messages (all when limit < 0) that are ready in queue from when it
// starts, and publishes each to queue to, persistent, with its body, message id, content type
// and own headers. Each message is acked in from only once to has confirmed its copy, so an
// interruption at any point loses nothing; at most the few in flight are then in both queues.
// It returns how many messages moved, also with an error.
func Move(ctx context.Context, conn *amqp.Connection, from, to string, limit int) (moved int, err error) {
	defer func() { logOp("move", err, "from", from, "to", to, "moved", moved) }()
	for _, name := range []string{from, to} {
		if _, err := Depth(conn, name); err != nil {
			return 0, err
		}
	}
	source, err := NewConsumer(conn, from, moveWindow)
	if err != nil {
		return 0, err
	}
	defer source.Close()
	want, err := source.Ready()
	if err != nil {
		return 0, err
	}
	if limit >= 0 {
		want = min(want, limit)
	}
	if want == 0 {
		return 0, nil
	}

	target, err := conn.Channel()
	if err != nil {
		return 0, fmt.Errorf("open a channel: %w", err)
	}
	defer target.Close()
	if err := target.Confirm(false); err != nil {
		return 0, fmt.Errorf("enable publisher confirms: %w", err)
	}
	returns := target.NotifyReturn(make(chan amqp.Return, moveWindow))
	deliveries, err := source.Consume("")
	if err != nil {
		return 0, err
	}

	type pending struct {
		delivery amqp.Delivery
		confirm  *amqp.DeferredConfirmation
	}
	var inFlight []pending
	taken := 0
	settleOldest := func() error {
		p := inFlight[0]
		acked, err := p.confirm.WaitContext(ctx)
		if err != nil {
			return err
		}
		select {
		case r, open := <-returns: // closed with the connection: then the confirm says the rest
			if !open {
				break
			}
			return fmt.Errorf("queue %s did not take message %s (%d %s); was it deleted meanwhile?", to, r.MessageId, r.ReplyCode, r.ReplyText)
		default:
		}
		if !acked {
			return fmt.Errorf("the broker did not store message %s in %s", p.delivery.MessageId, to)
		}
		if err := p.delivery.Ack(false); err != nil {
			return fmt.Errorf("message %s is in %s now, but its ack in %s was lost (%w): it is in both queues", p.delivery.MessageId, to, from, err)
		}
		inFlight = inFlight[1:]
		moved++
		return nil
	}
	for taken < want {
		var d amqp.Delivery
		var ok bool
		select {
		case d, ok = <-deliveries:
		case <-ctx.Done():
			return moved, ctx.Err()
		}
		if !ok {
			return moved, fmt.Errorf("the broker closed the channel on queue %s after %d messages moved", from, moved)
		}
		taken++
		confirm, err := target.PublishWithDeferredConfirmWithContext(ctx, "", to, true, false, republished(d))
		if err != nil {
			return moved, fmt.Errorf("publish to %s: %w", to, err)
		}
		inFlight = append(inFlight, pending{delivery: d, confirm: confirm})
		if len(inFlight) >= moveWindow/2 {
			if err := settleOldest(); err != nil {
				return moved, err
			}
		}
	}
	for len(inFlight) > 0 {
		if err := settleOldest(); err != nil {
			return moved, err
		}
	}
	return moved, nil
}

// republished is a delivery as a new message: what its publisher gave it, without what the
// broker added.
func republished(d amqp.Delivery) amqp.Publishing {
	headers := amqp.Table{}
	for k, v := range d.Headers {
		headers[k] = v
	}
	for _, k := range brokerHeaders {
		delete(headers, k)
	}
	return amqp.Publishing{
		Headers: headers, ContentType: d.ContentType, ContentEncoding: d.ContentEncoding,
		DeliveryMode: amqp.Persistent, Priority: d.Priority, CorrelationId: d.CorrelationId,
		ReplyTo: d.ReplyTo, MessageId: d.MessageId, Timestamp: d.Timestamp, Type: d.Type, AppId: d.AppId,
		Body: d.Body,
	}
}
