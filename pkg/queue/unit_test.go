package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"amqp://guest:guest@rabbitmq-service:5672/": "amqp://guest:xxxxx@rabbitmq-service:5672/",
		"amqp://user@host/vhost":                    "amqp://user@host/vhost",
		"amqps://u:p%40ss@h:5671/v":                 "amqps://u:xxxxx@h:5671/v",
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Redact("amqp://u:pa ss\x7f@h"); strings.Contains(got, "pa ss") {
		t.Errorf("unparsable URL leaked: %q", got)
	}
}

func TestInvalidURLIsPermanentAndHidesPassword(t *testing.T) {
	_, err := Dial("http://u:topsecret@h/")
	var permanent *PermanentError
	if !errors.As(err, &permanent) || strings.Contains(err.Error(), "topsecret") {
		t.Fatalf("got %v", err)
	}
}

func TestWithHostKeepsCredentialsAndVhost(t *testing.T) {
	got, err := WithHost("amqp://u:p@rabbitmq-service.default.svc:5672/vh", "127.0.0.1:40000")
	if err != nil || got != "amqp://u:p@127.0.0.1:40000/vh" {
		t.Fatalf("%q %v", got, err)
	}
}

func TestBuildURLEscapes(t *testing.T) {
	if got := BuildURL("us er", "p@ss/word", "h:1"); got != "amqp://us%20er:p%40ss%2Fword@h:1" {
		t.Fatalf("%q", got)
	}
}

func TestRetry(t *testing.T) {
	r := Retry{Attempts: 3, Initial: time.Millisecond, Max: time.Millisecond}
	calls := 0
	err := r.Do(context.Background(), func(context.Context) error { calls++; return errors.New("down") })
	if err == nil || calls != 3 {
		t.Fatalf("calls %d err %v", calls, err)
	}
	calls = 0
	err = r.Do(context.Background(), func(context.Context) error { calls++; return &PermanentError{Err: errors.New("bad password")} })
	if err == nil || calls != 1 {
		t.Fatalf("a permanent error must not be retried: calls %d", calls)
	}
	calls = 0
	err = r.Do(context.Background(), func(context.Context) error {
		calls++
		if calls < 2 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Fatalf("calls %d err %v", calls, err)
	}
}

func TestValidateName(t *testing.T) {
	for _, bad := range []string{"", "amq.x", strings.Repeat("a", 256), "a\nb", "\xff"} {
		if ValidateName(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, good := range []string{"job1", "a.b-c_d", "ünï", strings.Repeat("a", 255)} {
		if err := ValidateName(good); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
}

func TestMessageIDIsStable(t *testing.T) {
	a, b := MessageID(3, []byte("x")), MessageID(3, []byte("x"))
	if a != b || a == MessageID(4, []byte("x")) || a == MessageID(3, []byte("y")) || !strings.HasPrefix(a, "3-") {
		t.Fatalf("%s %s", a, b)
	}
}

func TestCoalescingConnDeliversEverythingInOrder(t *testing.T) {
	client, server := net.Pipe()
	conn := newCoalescingConn(client)
	received := make(chan []byte)
	go func() {
		data, _ := io.ReadAll(server)
		received <- data
	}()
	var want bytes.Buffer
	for i := range 5000 {
		chunk := []byte(fmt.Sprintf("frame-%d;", i))
		want.Write(chunk)
		if _, err := conn.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	if got := <-received; !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("got %d bytes, want %d", len(got), want.Len())
	}
}

func TestCoalescingConnFlushesAloneWithinTheDelay(t *testing.T) {
	client, server := net.Pipe()
	conn := newCoalescingConn(client)
	defer conn.Close()
	go conn.Write([]byte("heartbeat"))
	buf := make([]byte, 64)
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := server.Read(buf)
	if err != nil || string(buf[:n]) != "heartbeat" {
		t.Fatalf("%q %v", buf[:n], err)
	}
}

// Within bounds the whole retry, whatever the attempts left: no attempt starts after it.
func TestRetryWithinBoundsTheTime(t *testing.T) {
	r := Retry{Attempts: 1000, Initial: 20 * time.Millisecond, Max: 20 * time.Millisecond, Within: 100 * time.Millisecond}
	calls := 0
	err := r.Do(context.Background(), func(context.Context) error { calls++; return errors.New("connection refused") })
	var timeout *TimeoutError
	if !errors.As(err, &timeout) || timeout.After != r.Within || !strings.Contains(err.Error(), "connection refused (gave up after 100ms)") {
		t.Fatalf("got %v", err)
	}
	if calls < 2 || calls > 6 {
		t.Errorf("%d attempts in 100ms at 20ms apart", calls)
	}
}
