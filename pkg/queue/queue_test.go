package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/items"
)

// brokerURL is the real RabbitMQ the test command starts (hack/rabbitmq.sh).
func brokerURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("WORKQUEUE_TEST_AMQP_URL")
	if url == "" {
		t.Skip("WORKQUEUE_TEST_AMQP_URL is not set: run `make test`, which starts a local RabbitMQ")
	}
	return url
}

func connect(t testing.TB) *amqp.Connection {
	t.Helper()
	conn, err := Dial(brokerURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// uniqueQueue returns a fresh queue name and deletes it (and its dead-letter queue) afterwards.
func uniqueQueue(t testing.TB, conn *amqp.Connection) string {
	t.Helper()
	name := fmt.Sprintf("test-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
	t.Cleanup(func() {
		ch, err := conn.Channel()
		if err != nil {
			return
		}
		defer ch.Close()
		ch.QueueDelete(name, false, false, false)
		ch.QueueDelete(DeadLetterName(name), false, false, false)
	})
	return name
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
	name := uniqueQueue(t, conn)
	if _, err := Declare(conn, Spec{Name: name, Type: Quorum, MaxAttempts: 3}); err != nil {
		t.Fatal(err)
	}
	const n = 10_000
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
	cmd := exec.Command("amqp-consume", "--url", brokerURL(t), "-q", name, "-c", fmt.Sprint(n), "-p", "100", "awk", "1")
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
	name := uniqueQueue(t, conn)
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
	name := uniqueQueue(t, conn)
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
	name := uniqueQueue(t, conn)
	out, err := exec.Command("amqp-declare-queue", "--url", brokerURL(t), "-q", name, "-d").CombinedOutput()
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
	got, err := exec.Command("amqp-get", "--url", brokerURL(t), "-q", name).Output()
	if err != nil || string(got) != "a" {
		t.Fatalf("amqp-get: %q %v", got, err)
	}
}

func TestStrictDeclareExplainsWhatDiffers(t *testing.T) {
	conn := connect(t)
	name := uniqueQueue(t, conn)
	if out, err := exec.Command("amqp-declare-queue", "--url", brokerURL(t), "-q", name, "-d").CombinedOutput(); err != nil {
		t.Fatalf("amqp-declare-queue: %v %s", err, out)
	}
	_, err := Declare(conn, Spec{Name: name, Type: Quorum, MaxAttempts: 3, Strict: true})
	if err == nil {
		t.Fatal("want an error")
	}
	msg := err.Error()
	// RabbitMQ names the first argument that differs; the seed's queue has none of ours.
	for _, want := range []string{"already exists with other settings", "is unset there, this command asks for", "kubectl workqueue delete"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if strings.Contains(msg, "PRECONDITION_FAILED") {
		t.Errorf("raw broker error leaked: %q", msg)
	}
}

func TestMandatoryReturnIsAnErrorNamingTheItem(t *testing.T) {
	conn := connect(t)
	name := uniqueQueue(t, conn) // never declared: nothing can route to it
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
	name := uniqueQueue(t, conn)
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
	url := brokerURL(t)
	bad, err := WithHost(strings.Replace(url, "guest:guest", "guest:s3cr3t-pw", 1), "127.0.0.1:5672")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Dial(bad)
	var permanent *PermanentError
	if err == nil || !errors.As(err, &permanent) {
		t.Fatalf("want a permanent error, got %v", err)
	}
	if strings.Contains(err.Error(), "s3cr3t-pw") || !strings.Contains(err.Error(), "refused the credentials") {
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
	name := uniqueQueue(t, conn)
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
