package queue

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Type is a RabbitMQ queue type.
type Type string

const (
	// Quorum queues count deliveries, which is what bounds retries and dead-letters poison items.
	Quorum Type = "quorum"
	// Classic is the seed's `amqp-declare-queue -d`: durable, but with no delivery limit.
	Classic Type = "classic"
)

// FailedSuffix names the dead-letter queue of a work queue.
const FailedSuffix = ".failed"

// DeadLetterName is the queue that receives the items of name that ran out of attempts.
func DeadLetterName(name string) string { return name + FailedSuffix }

// DefaultConsumerTimeout is how long one item may run before the broker takes it back, unless
// the caller asks for another bound. RabbitMQ's own default (30 minutes) would hand a long item
// to a second worker while the first still runs it; the agent's --item-timeout and the Job's
// deadline are the real bounds on a stuck item, and a dead worker's connection gives its item
// back at once anyway.
const DefaultConsumerTimeout = 24 * time.Hour

// Spec describes the queue to use or create.
type Spec struct {
	Name        string
	Type        Type
	MaxAttempts int // deliveries before an item is dead-lettered (quorum only); at least 1
	// ConsumerTimeout is how long a delivery may stay unacknowledged before the broker closes the
	// channel and requeues it (the queue's x-consumer-timeout, honoured from RabbitMQ 3.12 on;
	// older brokers apply their global consumer_timeout). DefaultConsumerTimeout when 0.
	ConsumerTimeout time.Duration
	// Strict means the caller chose Type and MaxAttempts explicitly, so an existing queue must
	// have them; otherwise an existing queue is used as it is.
	Strict bool
}

// Declared reports what Declare found or made.
type Declared struct {
	Name    string
	Created bool
	Ready   int // messages ready for delivery (not counting unacked ones)
}

// ValidateName checks a queue name against RabbitMQ's rules before anything is sent.
func ValidateName(name string) error {
	switch {
	case name == "":
		return errors.New("the queue name is empty")
	case len(name) > 255:
		return fmt.Errorf("the queue name is %d bytes long; RabbitMQ allows at most 255", len(name))
	case !utf8.ValidString(name):
		return errors.New("the queue name is not valid UTF-8")
	case strings.HasPrefix(name, "amq."):
		return fmt.Errorf("queue name %q starts with \"amq.\", which RabbitMQ reserves: choose another name", name)
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("queue name %q contains control characters", name)
	}
	return nil
}

func (s Spec) arguments() amqp.Table {
	timeout := s.ConsumerTimeout
	if timeout <= 0 {
		timeout = DefaultConsumerTimeout
	}
	args := amqp.Table{
		"x-queue-type":       string(s.Type),
		"x-consumer-timeout": timeout.Milliseconds(),
	}
	if s.Type == Quorum {
		args["x-delivery-limit"] = int64(s.MaxAttempts - 1) // a limit of N allows N+1 deliveries
		args["x-dead-letter-exchange"] = ""
		args["x-dead-letter-routing-key"] = DeadLetterName(s.Name)
		// At-least-once: the broker keeps a dead letter in this queue until QUEUE.failed has
		// confirmed it, so a restart in between cannot lose it. RabbitMQ honours it only with
		// reject-publish, and falls back to at-most-once without a word otherwise.
		args["x-dead-letter-strategy"] = "at-least-once"
		args["x-overflow"] = "reject-publish"
	}
	return args
}

// sideQueueArguments make QUEUE.failed and QUEUE.results quorum queues, replicated as the work
// queue is: a classic queue lives on one node, and while that node is down a cluster could store
// no dead letter and no result record, which stalls every worker. Whoever inspects or replays
// their messages may take and give them back any number of times: RabbitMQ 4.0 and later need a
// delivery limit of -1 for that (their default is 20), which 3.x would read as "none", and 3.x
// has no limit unless told.
func sideQueueArguments(conn *amqp.Connection) amqp.Table {
	args := amqp.Table{"x-queue-type": string(Quorum)}
	if atLeastVersion(conn, 4, 0) {
		args["x-delivery-limit"] = int64(-1)
	}
	return args
}

// atLeastVersion tells whether the broker says it is version major.minor or later.
func atLeastVersion(conn *amqp.Connection, major, minor int) bool {
	version, _ := conn.Properties["version"].(string)
	var gotMajor, gotMinor int
	if _, err := fmt.Sscanf(version, "%d.%d", &gotMajor, &gotMinor); err != nil {
		return false
	}
	return gotMajor > major || (gotMajor == major && gotMinor >= minor)
}

// Declare makes sure the work queue exists. A queue that exists is used as it is unless Strict;
// a new one is durable, and a quorum one gets a delivery limit and its dead-letter queue.
// A refused declare leaves nothing behind that it created.
func Declare(conn *amqp.Connection, spec Spec) (declared Declared, err error) {
	defer func() {
		logOp("queue.declare", err, "queue", spec.Name, "type", spec.Type, "strict", spec.Strict, "created", declared.Created, "ready", declared.Ready)
	}()
	if err := ValidateName(spec.Name); err != nil {
		return Declared{}, err
	}
	switch spec.Type {
	case Quorum, Classic:
	default:
		return Declared{}, fmt.Errorf("unknown queue type %q: use quorum or classic", spec.Type)
	}
	if spec.MaxAttempts < 1 {
		return Declared{}, fmt.Errorf("max attempts must be at least 1, got %d", spec.MaxAttempts)
	}
	before, err := Depth(conn, spec.Name)
	if err != nil && !errors.Is(err, ErrNoQueue) {
		return Declared{}, err
	}
	if err == nil && !spec.Strict {
		return Declared{Name: spec.Name, Ready: before}, nil
	}

	ch, err := conn.Channel()
	if err != nil {
		return Declared{}, fmt.Errorf("open a channel: %w", err)
	}
	defer ch.Close()
	madeFailed := ""
	if spec.Type == Quorum {
		failed := DeadLetterName(spec.Name)
		// An existing dead-letter queue is kept as it is, whatever its type: it may hold items.
		if _, err := Depth(conn, failed); errors.Is(err, ErrNoQueue) {
			if _, err := ch.QueueDeclare(failed, true, false, false, false, sideQueueArguments(conn)); err != nil {
				return Declared{}, explainDeclareError(failed, err)
			}
			madeFailed = failed
		} else if err != nil {
			return Declared{}, err
		}
	}
	q, err := ch.QueueDeclare(spec.Name, true, false, false, false, spec.arguments())
	if err != nil {
		err = explainDeclareError(spec.Name, err)
		if madeFailed != "" {
			if _, cleanupErr := deleteIfEmpty(conn, madeFailed); cleanupErr != nil {
				err = fmt.Errorf("%w (and the dead-letter queue %s it made could not be removed: %v)", err, madeFailed, cleanupErr)
			}
		}
		if before >= 0 && spec.Type == Quorum {
			if differs, probeErr := typeDiffers(conn, spec.Name, spec.Type); probeErr == nil && differs {
				return Declared{}, fmt.Errorf("queue %q already exists and is not a %s queue: leave out --queue-type and --max-attempts to use it as it is, or delete it first with `kubectl workqueue delete %s`", spec.Name, spec.Type, spec.Name)
			}
		}
		return Declared{}, err
	}
	return Declared{Name: spec.Name, Created: before < 0, Ready: q.Messages}, nil
}

// typeDiffers tells whether an existing queue is of another type than want. RabbitMQ names the
// first argument that differs, and for a classic queue redeclared as quorum that is the
// dead-letter exchange, not the type: a redeclare that gives the type alone settles it.
func typeDiffers(conn *amqp.Connection, name string, want Type) (bool, error) {
	ch, err := conn.Channel()
	if err != nil {
		return false, err
	}
	defer ch.Close()
	_, err = ch.QueueDeclare(name, true, false, false, false, amqp.Table{"x-queue-type": string(want)})
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp.PreconditionFailed {
		m := inequivalentArg.FindStringSubmatch(amqpErr.Reason)
		return m != nil && m[1] == "x-queue-type", nil
	}
	return false, err
}

// deleteIfEmpty removes a queue that holds no message. It reads the depth first rather than
// asking the broker for an if-empty delete, which quorum queues refuse: RabbitMQ 3.x answers it
// by closing the whole connection.
func deleteIfEmpty(conn *amqp.Connection, name string) (int, error) {
	ready, err := Depth(conn, name)
	if err != nil {
		return 0, err
	}
	if ready > 0 {
		return 0, fmt.Errorf("queue %s holds %d messages", name, ready)
	}
	ch, err := conn.Channel()
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	return ch.QueueDelete(name, false, false, false)
}

// ErrNoQueue is returned (wrapped) when a queue does not exist.
var ErrNoQueue = errors.New("no such queue")

// Depth returns the number of ready messages in a queue, or an error wrapping ErrNoQueue (and
// -1) when it does not exist.
func Depth(conn *amqp.Connection, name string) (ready int, err error) {
	defer func() { logOp("queue.declare passive", err, "queue", name, "ready", ready) }()
	ch, err := conn.Channel()
	if err != nil {
		return -1, fmt.Errorf("open a channel: %w", err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
	if err != nil {
		var amqpErr *amqp.Error
		if errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound {
			return -1, fmt.Errorf("queue %q: %w", name, ErrNoQueue)
		}
		return -1, fmt.Errorf("inspect queue %q: %w", name, err)
	}
	return q.Messages, nil
}

var inequivalentArg = regexp.MustCompile(`inequivalent arg '([^']+)' for queue '[^']*' in vhost '[^']*': received (.+) but current is (.+)$`)

var argValue = regexp.MustCompile(`^the value (.*) of type '[^']*'$`)

// describeArg turns RabbitMQ's "the value 'quorum' of type 'longstr'" into "quorum".
func describeArg(s string) string {
	if s == "none" {
		return "unset"
	}
	if m := argValue.FindStringSubmatch(s); m != nil {
		s = m[1]
	}
	return strings.Trim(s, "'")
}

// explainDeclareError turns RabbitMQ's PRECONDITION_FAILED into what differs and what to do.
func explainDeclareError(name string, err error) error {
	var amqpErr *amqp.Error
	if !errors.As(err, &amqpErr) {
		return fmt.Errorf("declare queue %q: %w", name, err)
	}
	switch amqpErr.Code {
	case amqp.PreconditionFailed:
		what := amqpErr.Reason
		if m := inequivalentArg.FindStringSubmatch(amqpErr.Reason); m != nil {
			what = fmt.Sprintf("%s is %s there, this command asks for %s", m[1], describeArg(m[3]), describeArg(m[2]))
		}
		return fmt.Errorf("queue %q already exists with other settings (%s): leave out --queue-type and --max-attempts to use it as it is, or delete it first with `kubectl workqueue delete %s`", name, what, name)
	case amqp.AccessRefused:
		return fmt.Errorf("the broker user may not declare queue %q: %s", name, amqpErr.Reason)
	}
	return fmt.Errorf("declare queue %q: %w", name, err)
}

// Delete removes a queue and returns how many messages it held, or an error wrapping ErrNoQueue.
func Delete(conn *amqp.Connection, name string) (int, error) {
	return onExistingQueue(conn, name, "delete", func(ch *amqp.Channel) (int, error) {
		return ch.QueueDelete(name, false, false, false)
	})
}

// Purge removes every ready message of a queue and returns how many went, or an error wrapping
// ErrNoQueue.
func Purge(conn *amqp.Connection, name string) (int, error) {
	return onExistingQueue(conn, name, "purge", func(ch *amqp.Channel) (int, error) {
		return ch.QueuePurge(name, false)
	})
}

// onExistingQueue does one operation on a queue that must exist: a missing one is ErrNoQueue,
// not whatever the broker says after closing the channel.
func onExistingQueue(conn *amqp.Connection, name, verb string, op func(*amqp.Channel) (int, error)) (n int, err error) {
	defer func() { logOp("queue."+verb, err, "queue", name, "messages", n) }()
	if _, err := Depth(conn, name); err != nil {
		return 0, err
	}
	ch, err := conn.Channel()
	if err != nil {
		return 0, fmt.Errorf("open a channel: %w", err)
	}
	defer ch.Close()
	n, err = op(ch)
	if err != nil {
		return 0, fmt.Errorf("%s queue %q: %w", verb, name, err)
	}
	return n, nil
}
