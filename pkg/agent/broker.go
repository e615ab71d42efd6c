package agent

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

const (
	// maxRetryDelay caps the backoff between connection attempts.
	maxRetryDelay = 5 * time.Second
	// maxDialTimeout bounds one TCP connect and AMQP handshake.
	maxDialTimeout = 10 * time.Second
	// closeTimeout bounds a polite connection close on a broker that stopped answering.
	closeTimeout = 2 * time.Second
)

// misconfiguredError is a failure that retrying cannot fix: the Job should fail at once.
type misconfiguredError struct{ err error }

func (e *misconfiguredError) Error() string { return e.err.Error() }
func (e *misconfiguredError) Unwrap() error { return e.err }

func misconfigured(format string, args ...any) error {
	return &misconfiguredError{err: fmt.Errorf(format, args...)}
}

// unreachableError means the broker could not be reached within the retry budget.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string { return e.err.Error() }
func (e *unreachableError) Unwrap() error { return e.err }

// ackLostError means the command succeeded but its ack did not reach the broker, which will
// deliver the item again.
type ackLostError struct {
	messageID string
	err       error
}

func (e *ackLostError) Error() string {
	return fmt.Sprintf("item %s was processed but its ack did not reach the broker (%v); the broker delivers it again", e.messageID, e.err)
}
func (e *ackLostError) Unwrap() error { return e.err }

// cannotStartError means the command could not be started for a reason of this pod's.
type cannotStartError struct{ err error }

func (e *cannotStartError) Error() string { return e.err.Error() }
func (e *cannotStartError) Unwrap() error { return e.err }

// interruptedError means a signal told the agent to stop.
type interruptedError struct{ signal os.Signal }

func (e *interruptedError) Error() string { return "interrupted by " + signalName(e.signal) }

// session is one connection to the broker with the channel the agent works on.
type session struct {
	conn *amqp.Connection
	ch   *amqp.Channel

	// deliveries and consumerTag are set while a drain-mode consumer is active.
	deliveries  <-chan amqp.Delivery
	consumerTag string
}

func (s *session) close() {
	if s == nil || s.conn == nil {
		return
	}
	_ = s.conn.CloseDeadline(time.Now().Add(closeTimeout))
}

// connect opens a session, retrying with backoff while the broker cannot be reached, for up to
// the connect budget. Refusals that retrying cannot fix (credentials, vhost, missing queue) end
// it at once, and so does a signal.
func (a *agent) connect() (*session, error) {
	budget := a.cfg.ConnectBudget
	deadline := time.Now().Add(budget)
	delay := 250 * time.Millisecond
	ambiguousRefusals := 0
	for attempt := 1; ; attempt++ {
		s, err := a.dialInterruptibly(time.Until(deadline))
		if err == nil {
			if attempt > 1 {
				a.logf("connected to the broker at %s", a.redact.url)
			}
			return s, nil
		}
		var interrupted *interruptedError
		if errors.As(err, &interrupted) {
			return nil, err
		}
		if refusal := a.permanentRefusal(err); refusal != nil {
			// A broker that drops the socket during the handshake looks like a credentials
			// refusal to the client library; give it one more try before believing it.
			if !isAmbiguousRefusal(err) || ambiguousRefusals > 0 {
				return nil, refusal
			}
			ambiguousRefusals++
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return nil, &unreachableError{err: fmt.Errorf(
				"cannot reach the broker at %s within %s: %w; check that the broker is running and that BROKER_URL names its host and port",
				a.redact.url, budget, err)}
		}
		switch {
		case ambiguousRefusals == 1 && isAmbiguousRefusal(err):
			a.logf("the broker at %s closed the connection during login; trying once more", a.redact.url)
		case attempt == 1:
			a.logf("broker at %s not reachable yet (%v); retrying for up to %s", a.redact.url, err, budget)
		}
		select {
		case <-time.After(min(delay, remaining)):
		case sig := <-a.cfg.Signals:
			a.logf("stopped by %s while connecting to the broker", signalName(sig))
			return nil, &interruptedError{signal: sig}
		}
		delay = min(2*delay, maxRetryDelay)
	}
}

// dialInterruptibly dials in the background so that a signal does not wait for a slow connect.
func (a *agent) dialInterruptibly(remaining time.Duration) (*session, error) {
	type dialed struct {
		s   *session
		err error
	}
	result := make(chan dialed, 1)
	go func() {
		s, err := a.dial(min(max(remaining, time.Second), maxDialTimeout))
		result <- dialed{s, err}
	}()
	select {
	case r := <-result:
		return r.s, r.err
	case sig := <-a.cfg.Signals:
		go func() {
			if r := <-result; r.s != nil {
				r.s.close()
			}
		}()
		a.logf("stopped by %s while connecting to the broker", signalName(sig))
		return nil, &interruptedError{signal: sig}
	}
}

func (a *agent) dial(timeout time.Duration) (*session, error) {
	properties := amqp.NewConnectionProperties()
	properties.SetClientConnectionName(a.connectionName)
	conn, err := amqp.DialConfig(a.cfg.BrokerURL, amqp.Config{
		Heartbeat:  10 * time.Second,
		Locale:     "en_US",
		Dial:       amqp.DefaultDial(timeout),
		Properties: properties,
	})
	if err != nil {
		return nil, err
	}
	s := &session{conn: conn}
	if s.ch, err = conn.Channel(); err != nil {
		s.close()
		return nil, err
	}
	// Prefetch 1: a busy agent holds no item that another pod could be working on.
	if err := s.ch.Qos(1, 0, false); err != nil {
		s.close()
		return nil, err
	}
	// Passive: the agent never creates a queue (a typo would otherwise wait forever on a new,
	// empty queue); it only checks that the queue is there.
	if _, err := s.ch.QueueDeclarePassive(a.cfg.Queue, true, false, false, false, nil); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// permanentRefusal turns a broker refusal that retrying cannot fix into a misconfiguredError
// that says what to do; it returns nil for anything worth retrying.
func (a *agent) permanentRefusal(err error) error {
	var amqpErr *amqp.Error
	if !errors.As(err, &amqpErr) {
		return nil
	}
	switch {
	case errors.Is(err, amqp.ErrSASL):
		return misconfigured("the broker at %s offers no login mechanism the agent supports (PLAIN or AMQPLAIN)", a.redact.url)
	case amqpErr == amqp.ErrCredentials || (amqpErr.Code == amqp.AccessRefused && isLoginRefusal(amqpErr)):
		return misconfigured("the broker at %s refused the login in BROKER_URL (%s): check the user name and password (RabbitMQ admits the guest user only from localhost unless loopback_users is changed)",
			a.redact.url, amqpErr.Reason)
	case amqpErr.Code == amqp.NotAllowed && isPassingRefusal(amqpErr):
		return nil
	case amqpErr == amqp.ErrVhost || amqpErr.Code == amqp.NotAllowed || amqpErr.Code == amqp.InvalidPath:
		return misconfigured("the broker at %s did not let the user into vhost %q (%s): check the vhost in BROKER_URL or grant the user access to it",
			a.redact.url, a.vhost, amqpErr.Reason)
	case amqpErr.Code == amqp.NotFound:
		return misconfigured("queue %q does not exist in vhost %q on the broker at %s: check QUEUE (or --queue), or declare and fill the queue first (kubectl workqueue fill)",
			a.cfg.Queue, a.vhost, a.redact.url)
	case amqpErr.Code == amqp.AccessRefused:
		return misconfigured("the broker at %s refused access to queue %q (%s): grant the user read and write permissions on it",
			a.redact.url, a.cfg.Queue, amqpErr.Reason)
	}
	return nil
}

// isPassingRefusal tells the 530 NOT_ALLOWED replies that waiting can fix, a user's or vhost's
// connection limit reached or a vhost that is restarting, from those that it cannot (no access
// to the vhost, no such vhost).
func isPassingRefusal(err *amqp.Error) bool {
	reason := strings.ToLower(err.Reason)
	return strings.Contains(reason, "limit") || strings.Contains(reason, "is down")
}

func isLoginRefusal(err *amqp.Error) bool {
	return strings.Contains(strings.ToLower(err.Reason), "login")
}

// isAmbiguousRefusal reports a refusal that the client library inferred from a closed socket
// rather than one the broker stated.
func isAmbiguousRefusal(err error) bool {
	var amqpErr *amqp.Error
	return errors.As(err, &amqpErr) && !amqpErr.Server
}

// isPermanent reports whether err is a broker refusal that retrying cannot fix.
func (a *agent) isPermanent(err error) bool {
	var amqpErr *amqp.Error
	if !errors.As(err, &amqpErr) || !amqpErr.Server {
		return false
	}
	return a.permanentRefusal(err) != nil
}

// redactor hides the broker password from everything the agent prints: BROKER_URL usually comes
// from a Secret, and pod logs and termination messages are readable by far more people.
type redactor struct {
	url       string   // BROKER_URL with the password replaced, for messages
	rawURL    string   // BROKER_URL as given
	passwords []string // the password as written, unescaped and quoted
}

const redactedPassword = "xxxxx"

func newRedactor(rawURL string) redactor {
	r := redactor{url: redactURL(rawURL), rawURL: rawURL}
	if password := rawPassword(rawURL); password != "" {
		r.passwords = append(r.passwords, password)
		if unescaped, err := url.PathUnescape(password); err == nil && unescaped != password {
			r.passwords = append(r.passwords, unescaped)
		}
		if quoted := strconv.Quote(password); quoted[1:len(quoted)-1] != password {
			r.passwords = append(r.passwords, quoted[1:len(quoted)-1])
		}
	}
	return r
}

// redact replaces the URL and the password wherever they appear in s.
func (r redactor) redact(s string) string {
	if r.rawURL != "" {
		s = strings.ReplaceAll(s, r.rawURL, r.url)
	}
	for _, password := range r.passwords {
		s = strings.ReplaceAll(s, password, redactedPassword)
	}
	return s
}

// redactURL returns the URL with its password replaced, for messages.
func redactURL(rawURL string) string {
	if rawURL == "" {
		return "(empty URL)"
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		scheme, rest, found := strings.Cut(rawURL, "://")
		if !found {
			return "(unparseable URL)"
		}
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			user, _, _ := strings.Cut(rest[:at], ":")
			return scheme + "://" + user + ":" + redactedPassword + "@" + rest[at+1:]
		}
		return rawURL
	}
	return u.Redacted()
}

// rawPassword extracts the password as written in the URL, without trusting the URL to parse:
// a password with an unescaped '/' or '@' is a common mistake, and the parser's error then
// quotes the whole URL.
func rawPassword(rawURL string) string {
	_, rest, found := strings.Cut(rawURL, "://")
	if !found {
		return ""
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return ""
	}
	_, password, found := strings.Cut(rest[:at], ":")
	if !found {
		return ""
	}
	return password
}
