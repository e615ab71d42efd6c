package agent

import (
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestAttemptCountsFromOne(t *testing.T) {
	tests := []struct {
		name     string
		delivery amqp.Delivery
		want     int
	}{
		{"first delivery", amqp.Delivery{}, 1},
		{"classic redelivery", amqp.Delivery{Redelivered: true}, 2},
		{"quorum first", amqp.Delivery{Headers: amqp.Table{"x-delivery-count": int64(0)}}, 1},
		{"quorum third", amqp.Delivery{Redelivered: true, Headers: amqp.Table{"x-delivery-count": int64(2)}}, 3},
		{"quorum int32", amqp.Delivery{Headers: amqp.Table{"x-delivery-count": int32(4)}}, 5},
		{"garbage header", amqp.Delivery{Redelivered: true, Headers: amqp.Table{"x-delivery-count": "two"}}, 2},
	}
	for _, tt := range tests {
		if got := attempt(tt.delivery); got != tt.want {
			t.Errorf("%s: attempt = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestMessageIDFallsBackToAStableHashOfTheBody(t *testing.T) {
	if got := messageID(amqp.Delivery{MessageId: "id-1", Body: []byte("x")}); got != "id-1" {
		t.Errorf("messageID = %q", got)
	}
	a := messageID(amqp.Delivery{Body: []byte("apple")})
	b := messageID(amqp.Delivery{Body: []byte("banana")})
	if a == b || a != messageID(amqp.Delivery{Body: []byte("apple")}) || !strings.HasPrefix(a, "sha256:") || len(a) != len("sha256:")+16 {
		t.Errorf("hash ids %q, %q", a, b)
	}
}

func TestPreviewIsAShortPrintableFirstLine(t *testing.T) {
	tests := map[string]string{
		"apple\nbanana":                      "apple",
		"  padded\t value \r\nnext":          "padded  value",
		"bell\x07 nul\x00 esc\x1b[31m":       "bell\uFFFD nul\uFFFD esc\uFFFD[31m",
		"bad utf8 \xff\xfe end":              "bad utf8 \uFFFD\uFFFD end",
		"":                                   "",
		"\nsecond":                           "",
		strings.Repeat("é", 100):             strings.Repeat("é", maxPreviewRunes) + "…",
		strings.Repeat("x", maxPreviewRunes): strings.Repeat("x", maxPreviewRunes),
	}
	for body, want := range tests {
		if got := preview([]byte(body)); got != want {
			t.Errorf("preview(%q) = %q, want %q", body, got, want)
		}
	}
}

func TestOnlyStartFailuresOfEveryPodAreMisconfigurations(t *testing.T) {
	for errno, want := range map[syscall.Errno]bool{
		syscall.ENOEXEC: true, syscall.EACCES: true, syscall.ENOENT: true,
		syscall.EAGAIN: false, syscall.ENOMEM: false, syscall.EMFILE: false, syscall.ENFILE: false,
	} {
		err := &os.PathError{Op: "fork/exec", Path: "/app/run", Err: errno}
		if got := cannotEverStart(fmt.Errorf("cannot start run: %w", err)); got != want {
			t.Errorf("%v: cannotEverStart = %v, want %v", errno, got, want)
		}
	}
}

// recordingAcknowledger stands in for the broker channel and records how each delivery was settled.
type recordingAcknowledger struct{ settled []string }

func (r *recordingAcknowledger) Ack(tag uint64, multiple bool) error {
	r.settled = append(r.settled, fmt.Sprintf("ack multiple=%v", multiple))
	return nil
}
func (r *recordingAcknowledger) Nack(tag uint64, multiple, requeue bool) error {
	r.settled = append(r.settled, fmt.Sprintf("nack multiple=%v requeue=%v", multiple, requeue))
	return nil
}
func (r *recordingAcknowledger) Reject(tag uint64, requeue bool) error {
	r.settled = append(r.settled, fmt.Sprintf("reject requeue=%v", requeue))
	return nil
}

// From RabbitMQ 4.3 only basic.reject counts toward a quorum queue's delivery limit, so every
// path that gives back an item the command ran (or tried to) must reject it; a nack would bring a
// failing item back forever. Only an item never started is nacked (see TestDecisionPerItem).
func TestEveryGiveBackIsAReject(t *testing.T) {
	cases := []struct {
		name    string
		command []string
		timeout time.Duration
		path    string // replaces the command's path after validation, to make it fail to start
		want    string
	}{
		{name: "success", command: []string{"true"}, want: "ack multiple=false"},
		{name: "failure", command: []string{"false"}, want: "reject requeue=true"},
		{name: "timeout", command: []string{"sleep", "5"}, timeout: 100 * time.Millisecond, want: "reject requeue=true"},
		{name: "cannot start", command: []string{"true"}, path: "/nonexistent/program", want: "reject requeue=true"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := newAgent(Config{BrokerURL: "amqp://u:p@broker:5672/", Queue: "q", Command: tc.command, Timeout: tc.timeout, Log: io.Discard, Stdout: io.Discard, Stderr: io.Discard})
			if err := a.validate(); err != nil {
				t.Fatal(err)
			}
			if tc.path != "" {
				a.commandPath = tc.path
			}
			ack := &recordingAcknowledger{}
			a.process(newItem(amqp.Delivery{Acknowledger: ack, DeliveryTag: 1, MessageId: "m", Body: []byte("x")}))
			if len(ack.settled) != 1 || ack.settled[0] != tc.want {
				t.Fatalf("settled %v, want [%s]", ack.settled, tc.want)
			}
		})
	}
}
