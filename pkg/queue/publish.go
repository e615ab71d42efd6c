package queue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/items"
)

// Source yields items; io.EOF ends it.
type Source interface {
	Next() (items.Item, error)
}

// PublishOptions tunes Publish.
type PublishOptions struct {
	ContentType string
	// Offset is the number of input items skipped before the first one given: message ids keep
	// the items' positions in the whole input, so a resumed fill gives the same ids.
	Offset int
	// Window bounds the messages awaiting a confirm: it keeps the pipe full while memory stays flat.
	Window int
	// Progress, when set, is called from the publishing goroutine after each confirm.
	Progress func(confirmed int)
}

// Result counts what the broker took responsibility for.
type Result struct {
	Published int // sent to the broker
	Confirmed int // acknowledged by the broker, the only ones that are safe
	// Prefix is the length of the longest run of confirmed items from the start of the input:
	// resuming with that many items skipped loses nothing.
	Prefix int
}

// MessageID is the id an item gets: its position and a digest of its body, so the same input
// gives the same ids when filled again.
func MessageID(position int, body []byte) string {
	sum := sha256.Sum256(body)
	return strconv.Itoa(position) + "-" + hex.EncodeToString(sum[:8])
}

type inFlight struct {
	position int
	item     items.Item
	confirm  *amqp.DeferredConfirmation
}

// Publish sends every item of src to the queue through the default exchange, persistent and
// mandatory, with publisher confirms. It stops at the first item the broker refuses (a nack, or a
// return because no queue took it) or cannot be read, and reports exactly what was confirmed.
func Publish(ctx context.Context, conn *amqp.Connection, queueName string, src Source, opts PublishOptions) (result Result, err error) {
	defer func() {
		logOp("publish", err, "queue", queueName, "published", result.Published, "confirmed", result.Confirmed)
	}()
	if opts.Window <= 0 {
		opts.Window = 1024
	}
	ch, err := conn.Channel()
	if err != nil {
		return Result{}, fmt.Errorf("open a channel: %w", err)
	}
	if err := ch.Confirm(false); err != nil {
		ch.Close()
		return Result{}, fmt.Errorf("enable publisher confirms: %w", err)
	}
	returns := newReturnTracker(ch, opts.Offset)
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))

	p := &publisher{ch: ch, queue: queueName, opts: opts, returns: returns, closed: closed}
	runErr := p.run(ctx, src)
	if runErr != nil {
		// Count what the broker confirmed before the failure, so the report and --skip are exact.
		p.collectSettled()
	}

	// Closing the channel closes the return notifications: after it, every return the broker
	// sent is known, so the counts below are final.
	ch.Close()
	returns.wait()
	return p.finish(runErr)
}

type publisher struct {
	ch      *amqp.Channel
	queue   string
	opts    PublishOptions
	returns *returnTracker
	closed  chan *amqp.Error

	pending []inFlight
	// acked counts settled messages. Messages are settled strictly in publishing order and the
	// first nack stops everything, so the acked ones are exactly positions 1..acked.
	acked     int
	published int
}

func (p *publisher) run(ctx context.Context, src Source) error {
	for {
		if err := p.returns.firstError(); err != nil {
			return err
		}
		item, err := src.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			// Count what was already sent, so the report says exactly where to resume.
			return errors.Join(err, p.settleAll(ctx))
		}
		for len(p.pending) >= p.opts.Window {
			if err := p.settleOldest(ctx); err != nil {
				return err
			}
		}
		position := p.published + 1
		id := MessageID(p.opts.Offset+position, item.Body)
		p.returns.expect(position, item)
		confirm, err := p.ch.PublishWithDeferredConfirmWithContext(ctx, "", p.queue, true, false, amqp.Publishing{
			DeliveryMode: amqp.Persistent,
			ContentType:  p.opts.ContentType,
			MessageId:    id,
			Body:         item.Body,
		})
		if err != nil {
			return p.channelError(fmt.Errorf("publish %s: %w", item.Where(), err))
		}
		p.published = position
		p.pending = append(p.pending, inFlight{position: position, item: item, confirm: confirm})
		p.collectSettled()
	}
	return p.settleAll(ctx)
}

// collectSettled takes the confirms that have already arrived, oldest first, without waiting:
// progress then moves with a slow producer too. A nack is left for settleOldest to report.
func (p *publisher) collectSettled() {
	for len(p.pending) > 0 {
		confirm := p.pending[0].confirm
		select {
		case <-confirm.Done():
		default:
			return
		}
		if !confirm.Acked() {
			return
		}
		p.settled()
	}
}

func (p *publisher) settleAll(ctx context.Context) error {
	for len(p.pending) > 0 {
		if err := p.settleOldest(ctx); err != nil {
			return err
		}
	}
	return nil
}

// settleOldest waits for the confirm of the oldest message in flight. Confirms may arrive out of
// order, but waiting in order is enough to keep the window bounded.
func (p *publisher) settleOldest(ctx context.Context) error {
	oldest := p.pending[0]
	acked, err := oldest.confirm.WaitContext(ctx)
	if err != nil {
		return fmt.Errorf("waiting for the broker to confirm %s: %w", oldest.item.Where(), err)
	}
	if !acked {
		return p.channelError(fmt.Errorf("the broker did not store %s (nack or lost channel)", oldest.item.Where()))
	}
	p.settled()
	return nil
}

// settled records the oldest message in flight as stored by the broker.
func (p *publisher) settled() {
	oldest := p.pending[0]
	p.pending = p.pending[1:]
	p.acked = oldest.position
	p.returns.forget(oldest.position - p.opts.Window)
	if p.opts.Progress != nil {
		p.opts.Progress(p.acked)
	}
}

// channelError prefers the broker's reason for closing the channel, which says more than a nack.
func (p *publisher) channelError(err error) error {
	select {
	case amqpErr, ok := <-p.closed:
		if ok && amqpErr != nil {
			hint := ""
			if amqpErr.Code == amqp.PreconditionFailed || amqpErr.Code == amqp.FrameError {
				hint = " (is the item larger than the broker's max_message_size?)"
			}
			return fmt.Errorf("%w: the broker closed the channel: %s%s", err, amqpErr.Reason, hint)
		}
	default:
	}
	return err
}

// finish takes returned messages out of the counts: the broker acks a returned message too.
func (p *publisher) finish(runErr error) (Result, error) {
	result := Result{Published: p.published, Confirmed: p.acked, Prefix: p.acked}
	for _, r := range p.returns.all() {
		if r.position <= p.acked {
			result.Confirmed--
		}
		result.Prefix = min(result.Prefix, r.position-1)
	}
	if runErr == nil {
		runErr = p.returns.firstError()
	}
	return result, runErr
}

// returnTracker records mandatory returns, which come back on their own notification channel.
type returnTracker struct {
	mu       sync.Mutex
	where    map[int]string // position → where the item came from, for recent positions
	returned []returnedItem
	done     chan struct{}
	offset   int
}

type returnedItem struct {
	position int
	where    string
	reason   string
}

func newReturnTracker(ch *amqp.Channel, offset int) *returnTracker {
	t := &returnTracker{where: map[int]string{}, done: make(chan struct{}), offset: offset}
	// Unbuffered on purpose: the client hands a return over before it processes the ack that
	// follows it, so no return can be missed once the channel is closed.
	returns := ch.NotifyReturn(make(chan amqp.Return))
	go func() {
		defer close(t.done)
		for r := range returns {
			t.record(r)
		}
	}()
	return t
}

func (t *returnTracker) expect(position int, item items.Item) {
	t.mu.Lock()
	t.where[position] = item.Where()
	t.mu.Unlock()
}

// forget drops names of positions long settled, so memory stays flat.
func (t *returnTracker) forget(position int) {
	t.mu.Lock()
	delete(t.where, position)
	t.mu.Unlock()
}

func (t *returnTracker) record(r amqp.Return) {
	position, _ := strconv.Atoi(strings.SplitN(r.MessageId, "-", 2)[0])
	position -= t.offset
	t.mu.Lock()
	defer t.mu.Unlock()
	where, ok := t.where[position]
	if !ok {
		where = fmt.Sprintf("item #%d", position)
	}
	t.returned = append(t.returned, returnedItem{position: position, where: where, reason: fmt.Sprintf("%d %s", r.ReplyCode, r.ReplyText)})
}

func (t *returnTracker) firstError() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.returned) == 0 {
		return nil
	}
	r := t.returned[0]
	return fmt.Errorf("the broker returned %s: no queue took it (%s); was the queue deleted while filling?", r.where, r.reason)
}

func (t *returnTracker) wait() { <-t.done }

func (t *returnTracker) all() []returnedItem {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.returned
}
