package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kubectl-workqueue/kubectl-workqueue/internal/testbroker"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/items"
)

// connect dials the test broker with the code under test.
func connect(t testing.TB) *amqp.Connection {
	t.Helper()
	conn, err := Dial(testbroker.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

type sliceSource struct {
	bodies []string
	next   int
}

func (s *sliceSource) Next() (items.Item, error) {
	if s.next == len(s.bodies) {
		return items.Item{}, io.EOF
	}
	s.next++
	return items.Item{Body: []byte(s.bodies[s.next-1]), Source: "test", Record: s.next}, nil
}

func TestFillThenConsumeWithAmqpConsumeByteForByte(t *testing.T) {
	conn := connect(t)
	name := testbroker.QueueName(t, "queue")
	if _, err := Declare(conn, Spec{Name: name, Type: Quorum, MaxAttempts: 3}); err != nil {
		t.Fatal(err)
	}
	const n = 2_000
	var input bytes.Buffer
	for i := range n {
		fmt.Fprintf(&input, "item %05d 'quoted' \"double\" $HOME `tick` ünïcode\n", i)
	}
	src := items.NewReader(items.Lines, 1<<20, items.Named{Name: "input", Reader: bytes.NewReader(input.Bytes())})
	result, err := Publish(context.Background(), conn, name, src, PublishOptions{ContentType: items.Lines.ContentType()})
	if err != nil {
		t.Fatal(err)
	}
	if result != (Result{Published: n, Confirmed: n, Prefix: n}) {
		t.Fatalf("result %+v", result)
	}
	if depth, err := Depth(conn, name); err != nil || depth != n {
		t.Fatalf("depth %d, %v", depth, err)
	}

	// The seed's own consumer: one process per message, body on stdin. awk adds back the newline
	// that fill strips, so the output must equal the input exactly.
	cmd := exec.Command("amqp-consume", "--url", testbroker.URL(t), "-q", name, "-c", fmt.Sprint(n), "-p", "100", "awk", "1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("amqp-consume: %v", err)
	}
	if !bytes.Equal(out, input.Bytes()) {
		t.Fatalf("amqp-consume saw %d bytes, want %d; first line %q", len(out), input.Len(), strings.SplitN(string(out), "\n", 2)[0])
	}
}

func TestMessagesArePersistentWithIDAndContentType(t *testing.T) {
	conn := connect(t)
	name := testbroker.QueueName(t, "queue")
	if _, err := Declare(conn, Spec{Name: name, Type: Quorum, MaxAttempts: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := Publish(context.Background(), conn, name, &sliceSource{bodies: []string{`{"a":1}`}}, PublishOptions{ContentType: "application/json"}); err != nil {
		t.Fatal(err)
	}
	ch, _ := conn.Channel()
	defer ch.Close()
	msg, ok, err := ch.Get(name, true)
	if err != nil || !ok {
		t.Fatalf("get: %v %v", ok, err)
	}
	if msg.DeliveryMode != amqp.Persistent || msg.ContentType != "application/json" || msg.MessageId != MessageID(1, []byte(`{"a":1}`)) {
		t.Fatalf("got mode %d type %q id %q", msg.DeliveryMode, msg.ContentType, msg.MessageId)
	}
}

func TestDeclareCreatesQuorumQueueWithDeadLetterQueue(t *testing.T) {
	conn := connect(t)
	name := testbroker.QueueName(t, "queue")
	declared, err := Declare(conn, Spec{Name: name, Type: Quorum, MaxAttempts: 2})
	if err != nil || !declared.Created {
		t.Fatalf("%+v %v", declared, err)
	}
	if _, err := Depth(conn, DeadLetterName(name)); err != nil {
		t.Fatalf("dead-letter queue: %v", err)
	}
	// The arguments are what we meant if a strict redeclare with them is accepted.
	if _, err := Declare(conn, Spec{Name: name, Type: Quorum, MaxAttempts: 2, Strict: true}); err != nil {
		t.Fatalf("redeclare with the same settings: %v", err)
	}
	// And a message rejected twice lands in the dead-letter queue (limit 1 = 2 deliveries).
	if _, err := Publish(context.Background(), conn, name, &sliceSource{bodies: []string{"poison"}}, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	ch, _ := conn.Channel()
	defer ch.Close()
	for attempt := 1; attempt <= 2; attempt++ {
		msg, ok, err := ch.Get(name, false)
		if err != nil || !ok {
			t.Fatalf("attempt %d: %v %v", attempt, ok, err)
		}
		msg.Nack(false, true)
	}
	waitFor(t, func() bool { d, _ := Depth(conn, DeadLetterName(name)); return d == 1 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSeedClassicQueueIsReusedAsIs(t *testing.T) {
	conn := connect(t)
	name := testbroker.QueueName(t, "queue")
	out, err := exec.Command("amqp-declare-queue", "--url", testbroker.URL(t), "-q", name, "-d").CombinedOutput()
	if err != nil {
		t.Fatalf("amqp-declare-queue: %v %s", err, out)
	}
	declared, err := Declare(conn, Spec{Name: name, Type: Quorum, MaxAttempts: 3})
	if err != nil || declared.Created {
		t.Fatalf("an existing queue must be used as it is: %+v %v", declared, err)
	}
	if _, err := Depth(conn, DeadLetterName(name)); !errors.Is(err, ErrNoQueue) {
		t.Fatalf("nothing else may be declared for an existing queue: %v", err)
	}
	if _, err := Publish(context.Background(), conn, name, &sliceSource{bodies: []string{"a", "b"}}, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	// amqp-get, the seed's tool, reads what we put there.
	got, err := exec.Command("amqp-get", "--url", testbroker.URL(t), "-q", name).Output()
	if err != nil || string(got) != "a" {
		t.Fatalf("amqp-get: %q %v", got, err)
	}
}

func TestStrictDeclareExplainsWhatDiffers(t *testing.T) {
	conn := connect(t)
	name := testbroker.QueueName(t, "queue")
	if _, err := Declare(conn, Spec{Name: name, Type: Quorum, MaxAttempts: 3}); err != nil {
		t.Fatal(err)
	}
	_, err := Declare(conn, Spec{Name: name, Type: Quorum, MaxAttempts: 5, Strict: true})
	if err == nil {
		t.Fatal("want an error")
	}
	msg := err.Error()
	for _, want := range []string{"already exists with other settings", "x-delivery-limit is 2 there, this command asks for 4", "kubectl workqueue delete"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "PRECONDITION_FAILED") {
		t.Errorf("raw broker error leaked: %q", msg)
	}
}

// The seed's queue is classic. RabbitMQ names the dead-letter exchange as what differs, which
// would send the user hunting for the wrong setting; and the refused declare must not leave an
// empty QUEUE.failed behind.
func TestStrictQuorumOverAClassicQueueNamesTheTypeAndLeavesNothing(t *testing.T) {
	conn := connect(t)
	name := testbroker.QueueName(t, "queue")
	if out, err := exec.Command("amqp-declare-queue", "--url", testbroker.URL(t), "-q", name, "-d").CombinedOutput(); err != nil {
		t.Fatalf("amqp-declare-queue: %v %s", err, out)
	}
	_, err := Declare(conn, Spec{Name: name, Type: Quorum, MaxAttempts: 3, Strict: true})
	if err == nil || !strings.Contains(err.Error(), "already exists and is not a quorum queue") || strings.Contains(err.Error(), "dead-letter") {
		t.Fatalf("want an error naming the queue type, got %v", err)
	}
	if _, err := Depth(conn, DeadLetterName(name)); !errors.Is(err, ErrNoQueue) {
		t.Fatalf("the refused declare left %s behind: %v", DeadLetterName(name), err)
	}
}

// From RabbitMQ 4.0 a quorum queue without a delivery limit gets one of 20 and drops the message
// after it. Whoever inspects the dead letters takes them and gives them back: none may go.
// QUEUE.failed and QUEUE.results are quorum queues, so that a cluster keeps them while a node is
// down, and keep a message that a reader takes and gives back more often than RabbitMQ 4's
// default delivery limit of 20.
func TestSideQueuesAreQuorumAndKeepAMessageGivenBackManyTimes(t *testing.T) {
	conn := connect(t)
	name := testbroker.QueueName(t, "queue")
	if _, err := Declare(conn, Spec{Name: name, Type: Quorum, MaxAttempts: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := DeclareResults(conn, name); err != nil {
		t.Fatal(err)
	}
	for _, side := range []string{DeadLetterName(name), ResultsName(name)} {
		if differs, err := typeDiffers(conn, side, Quorum); err != nil || differs {
			t.Errorf("%s is not a quorum queue (%v)", side, err)
		}
	}
	if _, err := Publish(context.Background(), conn, name, &sliceSource{bodies: []string{"poison"}}, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	msg, ok, err := ch.Get(name, false)
	if err != nil || !ok {
		t.Fatalf("get: %v %v", ok, err)
	}
	if err := msg.Reject(true); err != nil { // MaxAttempts 1: the first give-back dead-letters it
		t.Fatal(err)
	}
	giveBackManyTimes(t, ch, DeadLetterName(name), "poison")

	if _, err := Publish(context.Background(), conn, ResultsName(name), &sliceSource{bodies: []string{"record"}}, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	giveBackManyTimes(t, ch, ResultsName(name), "record")
}

// giveBackManyTimes takes the one message of queue and gives it back 25 times with a reject, which
// RabbitMQ 4 counts towards a delivery limit, then acks it.
func giveBackManyTimes(t *testing.T, ch *amqp.Channel, queue, body string) {
	t.Helper()
	const givenBack = 25
	for i := 0; i <= givenBack; i++ {
		var msg amqp.Delivery
		var ok bool
		var err error
		for deadline := time.Now().Add(10 * time.Second); !ok && time.Now().Before(deadline); {
			if msg, ok, err = ch.Get(queue, false); err != nil {
				t.Fatalf("get %d from %s: %v", i, queue, err)
			} else if !ok {
				time.Sleep(50 * time.Millisecond)
			}
		}
		if !ok {
			t.Fatalf("%s lost its message after it was given back %d times", queue, i)
		}
		if string(msg.Body) != body {
			t.Fatalf("got %q from %s", msg.Body, queue)
		}
		if i < givenBack {
			err = msg.Reject(true)
		} else {
			err = msg.Ack(false)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// A dead letter must survive a broker restart between the work queue and QUEUE.failed: the broker
// keeps it in the work queue until QUEUE.failed confirms it (at-least-once dead-lettering). A
// redeclare that asks for the default strategy is refused, which shows what the queue holds.
func TestWorkQueueDeadLettersAtLeastOnce(t *testing.T) {
	conn := connect(t)
	name := testbroker.QueueName(t, "queue")
	spec := Spec{Name: name, Type: Quorum, MaxAttempts: 3}
	if _, err := Declare(conn, spec); err != nil {
		t.Fatal(err)
	}
	for key, value := range map[string]string{"x-dead-letter-strategy": "at-most-once", "x-overflow": "drop-head"} {
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		args := spec.arguments()
		args[key] = value
		_, err = ch.QueueDeclare(name, true, false, false, false, args)
		want := fmt.Sprintf("inequivalent arg '%s'", key)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("redeclare with %s=%s: got %v, want %s", key, value, err, want)
		}
	}
}

// An item that runs longer than the broker's own consumer timeout must not be taken back while it
// runs: the queue's x-consumer-timeout overrides the broker's. The test broker's global timeout
// is short (WORKQUEUE_TEST_CONSUMER_TIMEOUT, hack/rabbitmq.sh); a queue declared without the
// argument shows that the broker does enforce it.
func TestLongItemOutlivesTheBrokersConsumerTimeout(t *testing.T) {
	conn := connect(t)
	if !atLeastVersion(conn, 3, 12) {
		t.Skipf("RabbitMQ %v has no per-queue consumer timeout (3.12 and later do): nothing to test on this broker", conn.Properties["version"])
	}
	brokerTimeout, err := time.ParseDuration(os.Getenv("WORKQUEUE_TEST_CONSUMER_TIMEOUT"))
	if err != nil {
		t.Skip("WORKQUEUE_TEST_CONSUMER_TIMEOUT does not give this broker's consumer_timeout (make test sets it for the RabbitMQ 4 broker, which it starts with a short one)")
	}
	held := brokerTimeout + 5*time.Second // the broker looks once a second in the test setup

	ours := testbroker.QueueName(t, "queue")
	if _, err := Declare(conn, Spec{Name: ours, Type: Quorum, MaxAttempts: 3}); err != nil {
		t.Fatal(err)
	}
	plain := testbroker.QueueName(t, "queue")
	setup, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := setup.QueueDeclare(plain, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatal(err)
	}
	setup.Close()

	results := make(chan error, 2)
	go func() { results <- holdAnItem(conn, ours, held, false) }()
	go func() { results <- holdAnItem(conn, plain, held, true) }()
	for range 2 {
		if err := <-results; err != nil {
			t.Error(err)
		}
	}
	if depth, err := Depth(conn, ours); err != nil || depth != 0 {
		t.Errorf("queue %s holds %d items after the long item was acked (%v)", ours, depth, err)
	}
}

// holdAnItem takes one item of q and keeps it unacknowledged for held, then acks it. It says
// whether the broker took the item back meanwhile (closing the channel) as expected.
func holdAnItem(conn *amqp.Connection, q string, held time.Duration, expectTakenBack bool) error {
	if _, err := Publish(context.Background(), conn, q, &sliceSource{bodies: []string{"long item"}}, PublishOptions{}); err != nil {
		return err
	}
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	defer ch.Close()
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	msg, ok, err := ch.Get(q, false)
	if err != nil || !ok {
		return fmt.Errorf("get from %s: %v %v", q, ok, err)
	}
	select {
	case amqpErr := <-closed:
		if expectTakenBack {
			return nil
		}
		return fmt.Errorf("queue %s: the broker took the item back before %s: %v", q, held, amqpErr)
	case <-time.After(held):
	}
	if expectTakenBack {
		return fmt.Errorf("queue %s: the broker left the item alone for %s, so its consumer timeout is not the one the test was told", q, held)
	}
	return msg.Ack(false)
}

// withPassword returns the broker URL with another password, whatever the test broker's user.
func withPassword(t testing.TB, rawURL, password string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String()
}

func TestMandatoryReturnIsAnErrorNamingTheItem(t *testing.T) {
	conn := connect(t)
	name := testbroker.QueueName(t, "queue") // never declared: nothing can route to it
	src := &sliceSource{bodies: []string{"lost-1", "lost-2", "lost-3"}}
	result, err := Publish(context.Background(), conn, name, src, PublishOptions{})
	if err == nil || !strings.Contains(err.Error(), "test:1") || !strings.Contains(err.Error(), "NO_ROUTE") {
		t.Fatalf("want a return naming test:1, got %v", err)
	}
	if result.Confirmed != 0 || result.Prefix != 0 {
		t.Fatalf("nothing was stored, but result says %+v", result)
	}
}

func TestNackStopsAndCountsExactly(t *testing.T) {
	conn := connect(t)
	name := testbroker.QueueName(t, "queue")
	ch, _ := conn.Channel()
	// A full queue that rejects publishes makes the broker nack.
	if _, err := ch.QueueDeclare(name, true, false, false, false, amqp.Table{"x-queue-type": "classic", "x-max-length": int64(5), "x-overflow": "reject-publish"}); err != nil {
		t.Fatal(err)
	}
	ch.Close()
	bodies := make([]string, 50)
	for i := range bodies {
		bodies[i] = fmt.Sprint("n", i)
	}
	result, err := Publish(context.Background(), conn, name, &sliceSource{bodies: bodies}, PublishOptions{Window: 1})
	if err == nil || !strings.Contains(err.Error(), "test:6") {
		t.Fatalf("want a nack naming test:6, got %v", err)
	}
	if result.Confirmed != 5 || result.Prefix != 5 {
		t.Fatalf("result %+v, want 5 confirmed", result)
	}
	if depth, _ := Depth(conn, name); depth != 5 {
		t.Fatalf("depth %d", depth)
	}
}

func TestBadCredentialsNeverShowThePassword(t *testing.T) {
	bad := withPassword(t, testbroker.URL(t), "s3cr3t-pw")
	_, err := Dial(bad)
	var permanent *PermanentError
	if err == nil || !errors.As(err, &permanent) {
		t.Fatalf("want a permanent error, got %v", err)
	}
	if strings.Contains(err.Error(), "s3cr3t-pw") || !strings.Contains(err.Error(), "refused the login") {
		t.Fatalf("error %q", err)
	}
}

func TestUnreachableBrokerErrorHidesPassword(t *testing.T) {
	_, err := Dial("amqp://guest:hunter2@127.0.0.1:1/")
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("error %v", err)
	}
}

// interruptedSource yields its items, then waits as a slow producer does while the user presses
// Ctrl-C, and ends.
type interruptedSource struct {
	sliceSource
	cancel context.CancelFunc
}

func (s *interruptedSource) Next() (items.Item, error) {
	if s.next == len(s.bodies) {
		time.Sleep(500 * time.Millisecond)
		s.cancel()
		return items.Item{}, io.EOF
	}
	return s.sliceSource.Next()
}

// Confirms that arrived before an interruption count, although the window never filled up: the
// report and the --skip it suggests are exact.
func TestInterruptionCountsTheConfirmsThatArrived(t *testing.T) {
	conn := connect(t)
	name := testbroker.QueueName(t, "queue")
	if _, err := Declare(conn, Spec{Name: name, Type: Classic, MaxAttempts: 3}); err != nil {
		t.Fatal(err)
	}
	for range 5 { // the race it guards against is lost only now and then
		ctx, cancel := context.WithCancel(context.Background())
		var progress []int
		src := &interruptedSource{sliceSource: sliceSource{bodies: []string{"a", "b", "c"}}, cancel: cancel}
		result, _ := Publish(ctx, conn, name, src, PublishOptions{Progress: func(n int) { progress = append(progress, n) }})
		if result.Published != 3 || result.Confirmed != 3 || result.Prefix != 3 {
			t.Fatalf("result %+v, want all 3 confirmed", result)
		}
		if len(progress) == 0 || progress[len(progress)-1] != 3 {
			t.Errorf("progress %v", progress)
		}
	}
}
