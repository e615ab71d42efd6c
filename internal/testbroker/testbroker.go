// Package testbroker gives tests the real RabbitMQ that the test command starts
// (hack/rabbitmq.sh): its URL, fresh queues that are removed afterwards, and small helpers to
// publish and take messages with the plain client, independently of the code under test.
//
// Without WORKQUEUE_TEST_AMQP_URL a test that needs the broker is skipped, so that `go test`
// works anywhere; the test command sets WORKQUEUE_TEST_REQUIRE_BROKER, which turns every such
// skip into a failure: a run of the real suite never counts a skipped broker test as passed.
package testbroker

import (
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Environment variables the test command sets.
const (
	EnvURL             = "WORKQUEUE_TEST_AMQP_URL"
	EnvRequire         = "WORKQUEUE_TEST_REQUIRE_BROKER"
	EnvConsumerTimeout = "WORKQUEUE_TEST_CONSUMER_TIMEOUT"
)

// URL returns the test broker's URL, or skips the test (fails it under the test command).
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		unavailable(t, EnvURL+" is not set: no RabbitMQ to test against (run `make test`, or hack/rabbitmq.sh start and "+EnvURL+"=$(hack/rabbitmq.sh url))")
	}
	return u
}

// ConsumerTimeout is the broker's global consumer_timeout when the test command configured
// one, or 0.
func ConsumerTimeout(t testing.TB) time.Duration {
	t.Helper()
	value := os.Getenv(EnvConsumerTimeout)
	if value == "" {
		return 0
	}
	d, err := time.ParseDuration(value)
	if err != nil {
		t.Fatalf("%s=%q: %v", EnvConsumerTimeout, value, err)
	}
	return d
}

// ToolURL is URL spelled for amqp-tools, which read an empty vhost from a URL ending in "/"
// where Go clients read "/". It skips the test when the tools are missing (fails it under the
// test command, which installs them).
func ToolURL(t testing.TB) string {
	t.Helper()
	for _, tool := range []string{"amqp-declare-queue", "amqp-publish", "amqp-consume", "amqp-delete-queue"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, tool+" (amqp-tools) is not installed")
		}
	}
	u, err := url.Parse(URL(t))
	if err != nil {
		t.Fatal(err)
	}
	if u.Path == "/" {
		u.Path = ""
	}
	return u.String()
}

func unavailable(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(EnvRequire) != "" {
		t.Fatalf("%s (%s is set: the test command needs every broker test to run)", reason, EnvRequire)
	}
	t.Skip(reason)
}

// Dial connects to the test broker with the plain client; the connection closes after the test.
func Dial(t testing.TB) *amqp.Connection {
	t.Helper()
	conn, err := amqp.Dial(URL(t))
	if err != nil {
		t.Fatalf("connect to the test broker: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Channel opens a channel on a connection of its own, closed after the test.
func Channel(t testing.TB) *amqp.Channel {
	t.Helper()
	ch, err := Dial(t).Channel()
	if err != nil {
		t.Fatalf("open a channel: %v", err)
	}
	return ch
}

// QueueName returns a name no other test uses, and removes the queue of that name and the
// queues the plugin makes beside it (NAME.failed, NAME.results) after the test.
func QueueName(t testing.TB, prefix string) string {
	t.Helper()
	brokerURL := URL(t)
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	test := strings.ToLower(strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()))
	name := prefix + "-" + test + "-" + hex.EncodeToString(suffix)
	t.Cleanup(func() {
		conn, err := amqp.Dial(brokerURL)
		if err != nil {
			return
		}
		defer conn.Close()
		for _, q := range []string{name, name + ".failed", name + ".results"} {
			if ch, err := conn.Channel(); err == nil {
				_, _ = ch.QueueDelete(q, false, false, false)
				ch.Close()
			}
		}
	})
	return name
}

// Message is one message to publish.
type Message struct {
	ID   string
	Body []byte
}

// Publish puts persistent messages on a queue through the default exchange and waits for the
// broker's confirms.
func Publish(t testing.TB, queue string, messages ...Message) {
	t.Helper()
	ch := Channel(t)
	defer ch.Close()
	if err := ch.Confirm(false); err != nil {
		t.Fatalf("confirm mode: %v", err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, len(messages)))
	for _, m := range messages {
		err := ch.Publish("", queue, true, false, amqp.Publishing{DeliveryMode: amqp.Persistent, MessageId: m.ID, Body: m.Body})
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	for range messages {
		select {
		case c := <-confirms:
			if !c.Ack {
				t.Fatalf("the broker did not confirm a message")
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("no publisher confirm within 30s")
		}
	}
}

// Drain takes and acks every ready message of a queue, in order.
func Drain(t testing.TB, queue string) []amqp.Delivery {
	t.Helper()
	ch := Channel(t)
	defer ch.Close()
	var got []amqp.Delivery
	for {
		msg, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatalf("get from %s: %v", queue, err)
		}
		if !ok {
			return got
		}
		got = append(got, msg)
	}
}

// Ready returns how many messages of a queue are ready, failing the test when it is missing.
func Ready(t testing.TB, queue string) int {
	t.Helper()
	ch := Channel(t)
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("inspect %s: %v", queue, err)
	}
	return q.Messages
}
