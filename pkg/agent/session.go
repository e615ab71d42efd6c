package agent

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
)

const (
	// maxRetryDelay caps the backoff between connection attempts.
	maxRetryDelay = 5 * time.Second
	// maxDialTimeout bounds one TCP connect and AMQP handshake.
	maxDialTimeout = queue.DefaultDialTimeout
)

// source is where the agent takes items from: a *queue.Consumer on the broker, or a fake in the
// table tests. Its errors are the client library's, which queue.Refusal classifies.
type source interface {
	Get() (amqp.Delivery, bool, error)
	// SetPrefetch sets the prefetch of the consumers started after it.
	SetPrefetch(prefetch int) error
	Consume(tag string) (<-chan amqp.Delivery, error)
	Cancel(tag string) error
	Ready() (int, error)
	// ChannelClosedByBroker is the broker's reason for closing the channel while the connection
	// stayed up, or nil.
	ChannelClosedByBroker() *amqp.Error
	Close()
}

// session is one open source, with the drain-mode consumer while one is active, and the
// recorder of result records when results are on.
type session struct {
	src     source
	records recorder
	// prefetch is the channel's, which the next consumer starts with (1 when the session opens).
	prefetch int
	// deliveries, consumerTag and consumerPrefetch are the drain consumer's while one is
	// active. cancelled: the agent cancelled it, and cancelConfirmed: the broker confirmed that;
	// its channel still yields what was on its way, then closes.
	deliveries       <-chan amqp.Delivery
	consumerTag      string
	consumerPrefetch int
	cancelled        bool
	cancelConfirmed  bool
}

func (s *session) close() {
	if s == nil {
		return
	}
	if s.records != nil {
		s.records.Close()
	}
	if s.src != nil {
		s.src.Close()
	}
}

// dialBroker opens the production source, with prefetch 1: a busy agent holds no item that another
// pod could be working on; the drain consumer raises it while commands are short (see
// wantPrefetch). No write coalescing: the agent settles one item at a time, and would only
// wait the coalescing delay for every ack.
func (a *agent) dialBroker(timeout time.Duration) (source, error) {
	c, err := queue.DialConsumer(a.cfg.BrokerURL, a.cfg.Queue, 1,
		queue.WithConnectionName(a.connectionName), queue.WithDialTimeout(timeout), queue.WithCoalescing(false),
		queue.WithRetryNotice(func(err error) {
			// During an outage, connect has said that it waits; a line per attempt would bury it.
			if !a.worked {
				a.logf("the broker at %s closed the connection during login (%v); trying once more", a.redact.URL(), err)
			}
		}))
	if err != nil {
		return nil, err
	}
	return c, nil
}

// connect opens a session, retrying with backoff while the broker cannot be reached.
// Refusals that retrying cannot fix (credentials, vhost, missing queue) end it at once, and so
// does a signal. Before the agent has worked with the broker it tries for the connect budget: a
// broker never reached is more likely a wrong URL than a restart. Once it has, a lost broker is
// an outage, waited for up to the outage bound; a refusal the client only inferred from a socket
// closed during the login is then a broker going down or starting up, not wrong credentials.
func (a *agent) connect() (*session, error) {
	outage := a.worked
	budget, since := a.cfg.ConnectBudget, time.Now()
	if outage {
		budget = a.cfg.BrokerOutage
		if !a.lostSince.IsZero() {
			since = a.lostSince
		}
	}
	deadline := since.Add(budget)
	delay := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		s, err := a.openInterruptibly(time.Until(deadline))
		if err == nil {
			switch {
			case outage && attempt > 1:
				a.logf("the broker at %s is back after %s; carrying on", a.redact.URL(), formatDuration(time.Since(since)))
			case outage && a.sessionFailures <= 1: // the sessions after are retries, which fail at once
				a.logf("reconnected to the broker at %s", a.redact.URL())
			case attempt > 1:
				a.logf("connected to the broker at %s", a.redact.URL())
			}
			return s, nil
		}
		var interrupted *interruptedError
		var mis *misconfiguredError
		if errors.As(err, &interrupted) || errors.As(err, &mis) {
			return nil, err
		}
		if refusal := a.refusal(err); refusal != nil && !(outage && queue.Inferred(err)) {
			return nil, refusal
		}
		remaining := time.Until(deadline)
		switch {
		case remaining <= 0 && outage:
			return nil, &brokerLostError{err: fmt.Errorf(
				"lost the broker at %s, and it did not come back within %s (--broker-outage): %w; the items this pod held go back to the queue",
				a.redact.URL(), budget, err)}
		case remaining <= 0:
			return nil, &unreachableError{err: fmt.Errorf(
				"cannot reach the broker at %s within %s: %w; check that the broker is running and that BROKER_URL names its host and port",
				a.redact.URL(), budget, err)}
		case attempt == 1 && outage:
			a.logf("the broker at %s is unreachable (%v); waiting up to %s for it to come back", a.redact.URL(), err, budget)
		case attempt == 1:
			a.logf("broker at %s not reachable yet (%v); retrying for up to %s", a.redact.URL(), err, budget)
		}
		if err := a.pause(min(jitter(delay), remaining), "connecting to the broker"); err != nil {
			return nil, err
		}
		delay = min(2*delay, maxRetryDelay)
	}
}

// jitter spreads the retries of the many pods that lose the broker at the same moment, so that
// they do not all knock at once while it starts up.
func jitter(d time.Duration) time.Duration {
	return d*3/4 + rand.N(d/2+1)
}

// pause waits, unless a signal comes first.
func (a *agent) pause(d time.Duration, doing string) error {
	select {
	case <-time.After(d):
		return nil
	case sig := <-a.cfg.Signals:
		a.logf("stopped by %s while %s", signalName(sig), doing)
		return &interruptedError{signal: sig}
	}
}

// openInterruptibly opens in the background so that a signal does not wait for a slow connect.
func (a *agent) openInterruptibly(remaining time.Duration) (*session, error) {
	result := make(chan opened, 1)
	go func() {
		result <- a.openSession(min(max(remaining, time.Second), maxDialTimeout))
	}()
	select {
	case r := <-result:
		if r.err != nil {
			return nil, r.err
		}
		return r.session, nil
	case sig := <-a.cfg.Signals:
		go func() {
			if r := <-result; r.session != nil {
				r.session.close()
			}
		}()
		a.logf("stopped by %s while connecting to the broker", signalName(sig))
		return nil, &interruptedError{signal: sig}
	}
}

type opened struct {
	session *session
	err     error
}

// openSession opens a source and, when results are on, the recorder beside it.
func (a *agent) openSession(timeout time.Duration) opened {
	src, err := a.open(timeout)
	if err != nil {
		return opened{err: err}
	}
	s := &session{src: src, prefetch: 1}
	if a.cfg.Results != "" {
		if s.records, err = a.openRecorder(src, a.cfg.Results); err != nil {
			src.Close()
			return opened{err: a.recorderError(err)}
		}
	}
	return opened{session: s}
}

// refusal turns an error that retrying cannot fix into a misconfiguredError that says where the
// agent got what the broker refused; it returns nil for anything worth retrying. queue.Dial has
// already tried a refusal that the client only inferred once more, so every refusal that
// reaches the agent is believed.
func (a *agent) refusal(err error) error {
	if queue.AsRefusal(err) == nil {
		if permanent := queue.Refusal(err, a.cfg.Queue, a.vhost); permanent != nil {
			err = permanent
		}
	}
	refused := queue.AsRefusal(err)
	if refused == nil {
		var permanent *queue.PermanentError
		if errors.As(err, &permanent) {
			return &misconfiguredError{err: err}
		}
		return nil
	}
	refused.Broker = a.redact.URL()
	switch refused.What {
	case queue.RefusedNoQueue:
		return misconfigured("%w: check QUEUE (or --queue), or declare and fill the queue first (kubectl workqueue fill)", refused)
	case queue.RefusedQueue:
		return &misconfiguredError{err: refused}
	default:
		return misconfigured("%w; the URL comes from BROKER_URL", refused)
	}
}

func (a *agent) ensureSession() error {
	if a.sess != nil {
		return nil
	}
	s, err := a.connect()
	if err != nil {
		return err
	}
	a.sess = s
	return nil
}

func (a *agent) ensureConsumer() error {
	if err := a.ensureSession(); err != nil {
		return err
	}
	if a.sess.deliveries != nil {
		return nil
	}
	prefetch := a.wantPrefetch()
	err := error(nil)
	if a.sess.prefetch != prefetch {
		if err = a.sess.src.SetPrefetch(prefetch); err == nil {
			a.sess.prefetch = prefetch
		}
	}
	a.consumerSeq++
	tag := fmt.Sprintf("%s %d", a.connectionName, a.consumerSeq)
	var deliveries <-chan amqp.Delivery
	if err == nil {
		deliveries, err = a.sess.src.Consume(tag)
	}
	if err != nil {
		if err := a.sessionFailed(err); err != nil {
			return err
		}
		return a.ensureConsumer()
	}
	a.sess.deliveries, a.sess.consumerTag, a.sess.consumerPrefetch = deliveries, tag, prefetch
	a.sess.cancelled, a.sess.cancelConfirmed = false, false
	a.sessionWorks()
	return nil
}

// sessionFailed drops a session that stopped working so the next step reconnects. It returns an
// error when the agent should stop instead: the broker refused something for good, or sessions
// keep failing right after they open. Only refusals the broker stated count here: a channel
// that closes under a working session is a lost connection, not a refusal.
//
// Sessions that fail right after they open are bounded by their number before the agent has
// worked with the broker, and by the outage bound after: a broker that is up but cannot serve the
// queue yet (a quorum queue electing a leader) is part of an outage.
func (a *agent) sessionFailed(err error) error {
	a.dropSession()
	if !queue.Inferred(err) {
		if refusal := a.refusal(err); refusal != nil {
			return refusal
		}
	}
	a.sessionFailures++
	if a.lostSince.IsZero() {
		a.lostSince = time.Now()
	}
	switch {
	case !a.worked && a.sessionFailures > maxSessionFailures:
		return &unreachableError{err: fmt.Errorf("the broker at %s keeps closing the connection: %w", a.redact.URL(), err)}
	case a.worked && a.sessionFailures > 1:
		if time.Since(a.lostSince) > a.cfg.BrokerOutage {
			return &brokerLostError{err: fmt.Errorf("the broker at %s keeps closing the connection, for more than %s now (--broker-outage): %w",
				a.redact.URL(), a.cfg.BrokerOutage, err)}
		}
		return a.pause(jitter(min(250*time.Millisecond<<min(a.sessionFailures-2, 5), maxRetryDelay)), "reconnecting to the broker")
	}
	a.logf("lost the broker connection (%v); reconnecting", err)
	return nil
}

// sessionWorks notes a session that took an item or started a consumer: whatever was lost is
// back, and from now on a lost broker is an outage.
func (a *agent) sessionWorks() {
	a.sessionFailures = 0
	a.lostSince = time.Time{}
	a.worked = true
}

// dropSession closes the session; what its consumer delivered and the agent did not start goes
// back to the queue first (see giveBackUnstarted).
func (a *agent) dropSession() {
	if a.sess != nil {
		a.giveBackUnstarted()
		a.sess.close()
		a.sess = nil
	}
}
