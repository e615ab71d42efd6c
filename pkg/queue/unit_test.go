package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
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

func TestRedactorHidesThePasswordInEveryForm(t *testing.T) {
	const password = "p@ss/w:rd%"
	raw := "amqp://worker:" + url.QueryEscape(password) + "@broker:5672/vhost"
	r := NewRedactor(raw)
	if strings.Contains(r.URL(), url.QueryEscape(password)) || !strings.Contains(r.URL(), "worker:xxxxx@broker:5672") {
		t.Errorf("redacted URL = %q", r.URL())
	}
	for _, text := range []string{
		"dial " + raw + " failed",
		fmt.Sprintf("parse %q: bad", raw),
		"password is " + password,
		"escaped " + url.QueryEscape(password),
		fmt.Sprintf("quoted %q", password),
		errors.New("x " + raw).Error(),
	} {
		got := r.Redact(text)
		if strings.Contains(got, password) || strings.Contains(got, url.QueryEscape(password)) {
			t.Errorf("redact(%q) = %q still holds the password", text, got)
		}
	}
	// A password that makes the URL unparseable is still found.
	broken := "amqp://u:pa/ss@host/"
	if got := NewRedactor(broken).Redact("bad URL " + broken + " and pa/ss"); strings.Contains(got, "pa/ss") {
		t.Errorf("redact = %q", got)
	}
	if got := NewRedactor("amqp://host/").Redact("amqp://host/ is fine"); got != "amqp://host/ is fine" {
		t.Errorf("redact without a password = %q", got)
	}
}

func TestConnectionLimitsAreWaitedOutNotRefusals(t *testing.T) {
	for reason, permanent := range map[string]bool{
		"NOT_ALLOWED - access to vhost '/' refused for user 'u'":      true,
		"NOT_ALLOWED - vhost /x not found":                            true,
		"NOT_ALLOWED - connection limit (10) is reached":              false,
		"NOT_ALLOWED - vhost '/' is down":                             false,
		"NOT_ALLOWED - user 'u' has reached its connection limit (5)": false,
	} {
		err := &amqp.Error{Code: amqp.NotAllowed, Reason: reason, Server: true}
		if got := Refusal(err, "q", "/") != nil; got != permanent {
			t.Errorf("%q: permanent = %v, want %v", reason, got, permanent)
		}
	}
}

func TestRefusalsSayWhatToChange(t *testing.T) {
	tests := []struct {
		name string
		err  error
		what Refused
		text string
	}{
		{"no mechanism", amqp.ErrSASL, RefusedMechanism, "no login mechanism"},
		{"inferred credentials", amqp.ErrCredentials, RefusedLogin, "refused the login"},
		{"stated credentials", &amqp.Error{Code: amqp.AccessRefused, Reason: "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN", Server: true}, RefusedLogin, "check the user name and password"},
		{"inferred vhost", amqp.ErrVhost, RefusedVhost, `into vhost "/v"`},
		{"stated vhost", &amqp.Error{Code: amqp.NotAllowed, Reason: "NOT_ALLOWED - access to vhost '/v' refused for user 'u'", Server: true}, RefusedVhost, "grant the user access"},
		{"no queue", fmt.Errorf("declare: %w", &amqp.Error{Code: amqp.NotFound, Reason: "NOT_FOUND - no queue 'q'", Server: true}), RefusedNoQueue, `queue "q" does not exist in vhost "/v"`},
		{"queue permissions", &amqp.Error{Code: amqp.AccessRefused, Reason: "ACCESS_REFUSED - access to queue 'q' in vhost '/v' refused", Server: true}, RefusedQueue, "read and write permissions"},
	}
	for _, tt := range tests {
		err := Refusal(tt.err, "q", "/v")
		var permanent *PermanentError
		refusal := AsRefusal(err)
		if !errors.As(err, &permanent) || refusal == nil || refusal.What != tt.what || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("%s: Refusal = %v", tt.name, err)
			continue
		}
		if !errors.Is(err, tt.err) && !errors.Is(err, errors.Unwrap(tt.err)) {
			t.Errorf("%s: %v does not wrap the broker's reply", tt.name, err)
		}
		if strings.Contains(strings.ToLower(err.Error()), "secret") || strings.Contains(err.Error(), "BROKER_URL") {
			t.Errorf("%s: %q names where the caller got the URL", tt.name, err)
		}
	}
	for _, retryable := range []error{errors.New("dial tcp: connection refused"), amqp.ErrClosed, &amqp.Error{Code: amqp.NotFound, Reason: "NOT_FOUND", Server: true}} {
		if err := Refusal(retryable, "", "/"); err != nil {
			t.Errorf("Refusal(%v) = %v, want nil", retryable, err)
		}
	}
	// A classic queue whose node is down, while a cluster node restarts, is there and comes back.
	nodeDown := &amqp.Error{Code: amqp.NotFound, Reason: "NOT_FOUND - home node 'rabbit@rabbitmq-1.rabbitmq-nodes.ns' of durable queue 'q.results' in vhost '/' is down or inaccessible", Server: true}
	stopping := &amqp.Error{Code: amqp.NotFound, Reason: "NOT_FOUND - queue 'q.results' in vhost '/' process is stopped by supervisor", Server: true}
	for _, unavailable := range []*amqp.Error{nodeDown, stopping} {
		if err := Refusal(fmt.Errorf("declare: %w", unavailable), "q.results", "/"); err != nil || !QueueUnavailable(unavailable) {
			t.Errorf("Refusal(%s) = %v, want nil", unavailable.Reason, err)
		}
	}
}
