package queue

import (
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// closeTimeout bounds a polite connection close on a broker that stopped answering.
const closeTimeout = 2 * time.Second

// Consumer takes messages from one existing queue on a channel of its own. It never declares the
// queue: a typo in its name would otherwise wait forever on a new, empty queue. Errors are the
// client library's; Refusal tells which of them retrying cannot fix.
type Consumer struct {
	conn  *amqp.Connection
	owned bool // Close closes conn too
	ch    *amqp.Channel
	queue string
	// closes hears why the channel closed; closeReason keeps it once heard.
	closes      chan *amqp.Error
	closeReason *amqp.Error
}

// NewConsumer opens a channel on conn with the given prefetch and checks that queueName exists.
func NewConsumer(conn *amqp.Connection, queueName string, prefetch int) (*Consumer, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	c := &Consumer{conn: conn, ch: ch, queue: queueName, closes: ch.NotifyClose(make(chan *amqp.Error, 1))}
	if err := ch.Qos(prefetch, 0, false); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := c.Ready(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// DialConsumer dials rawURL (see Dial) and opens a Consumer that owns the connection: closing
// the Consumer closes it. Errors are as from Dial and NewConsumer, unclassified by Refusal for the
// channel steps, and never hold the password.
func DialConsumer(rawURL, queueName string, prefetch int, opts ...DialOption) (*Consumer, error) {
	conn, err := Dial(rawURL, opts...)
	if err != nil {
		return nil, err
	}
	c, err := NewConsumer(conn, queueName, prefetch)
	if err != nil {
		_ = conn.CloseDeadline(time.Now().Add(closeTimeout))
		return nil, scrub(err, rawURL)
	}
	c.owned = true
	return c, nil
}

// Get takes one message without waiting, unacknowledged; ok is false when the queue is empty.
func (c *Consumer) Get() (d amqp.Delivery, ok bool, err error) {
	return c.ch.Get(c.queue, false)
}

// SetPrefetch sets how many unacknowledged messages the consumers started after it may hold at
// once; a consumer already started keeps the prefetch it started with.
func (c *Consumer) SetPrefetch(prefetch int) error {
	return c.ch.Qos(prefetch, 0, false)
}

// Consume delivers messages as they arrive, unacknowledged, up to the prefetch at a time, under
// the consumer tag given. The channel closes when the consumer is cancelled or the connection
// is lost.
func (c *Consumer) Consume(tag string) (<-chan amqp.Delivery, error) {
	return c.ch.Consume(c.queue, tag, false, false, false, false, nil)
}

// Cancel stops the consumer of that tag. Messages already on their way still arrive before its
// delivery channel closes, and must be settled.
func (c *Consumer) Cancel(tag string) error {
	return c.ch.Cancel(tag, false)
}

// Ready counts the messages ready for delivery, not those held unacknowledged by consumers.
func (c *Consumer) Ready() (int, error) {
	q, err := c.ch.QueueDeclarePassive(c.queue, true, false, false, false, nil)
	return q.Messages, err
}

// ChannelClosedByBroker returns the broker's reason for closing the channel while the connection
// stays up, as RabbitMQ does to a consumer that holds a message past its consumer_timeout, and
// nil when the channel is open or went with the connection (the broker or the network went
// away). The client tells the channel's listeners before it fails an operation on the closed
// channel, so after such a failure the reason is known.
func (c *Consumer) ChannelClosedByBroker() *amqp.Error {
	if c.closeReason == nil {
		select {
		case reason := <-c.closes:
			c.closeReason = reason
		default:
		}
	}
	// A connection.close from the broker reaches the channel as the broker's reason too; the
	// client marks the connection closed before it closes the channels.
	if c.closeReason == nil || !c.closeReason.Server || c.conn.IsClosed() {
		return nil
	}
	return c.closeReason
}

// Close closes the channel, and the connection when the Consumer owns it, without waiting long
// for a broker that stopped answering. Unacknowledged messages go back to the queue.
func (c *Consumer) Close() {
	if c.owned {
		_ = c.conn.CloseDeadline(time.Now().Add(closeTimeout))
		return
	}
	_ = c.ch.Close()
}
