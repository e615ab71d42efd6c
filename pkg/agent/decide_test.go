package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
)

// fakeMessage is one message on the fakeBroker's queue.
type fakeMessage struct {
	id       string
	returned int // how many times it was given back
}

// fakeBroker stands in for a queue on RabbitMQ, as far as the agent can tell: the prefetch the
// agent sets, requeue at the head, quorum delivery counts (or a classic queue's redelivered flag)
// and dead-lettering at a delivery limit. As on RabbitMQ before 4.3, every give-back counts
// toward the limit: a reject, a nack, a closed channel.
type fakeBroker struct {
	mu            sync.Mutex
	ready         []*fakeMessage
	classic       bool
	deliveryLimit int // a message given back this many times is dead-lettered; 0 for never

	// loseAcks: acks of these ids fail this many times, the broker closing the channel under a
	// connection that stays up, as RabbitMQ does past its consumer_timeout.
	loseAcks map[string]int
	// cutAcks: acks of these ids fail this many times, the connection going away under them.
	cutAcks  map[string]int
	cutAfter string  // the connection goes away once this id is acked
	outage   []error // after the connection went away, the next opens fail with these in turn
	// lostElsewhere: the item whose connection went away under it goes to another consumer.
	lostElsewhere bool
	// heldForTheLostConnection: the broker notices late that the connection went away, and gives
	// its item back only after the next look at the queue (Get or Ready) found it empty.
	heldForTheLostConnection bool
	held                     *fakeMessage
	// prefetches are those of the consumers the agent started, in turn.
	prefetches []int
	// closedWith are the messages the sessions held when they closed or were cut.
	closedWith []string
	// failingSessions: after the connection went away, this many sessions fail at their first Get
	// or Consume.
	failingSessions int
	wasCut          bool  // the connection went away once
	openErr         error // every open fails with it
	getErr          error // every Get and Consume fails with it
	opens           int
	settled         []string

	resultsMissing  bool             // the results queue does not exist
	recordErrs      map[string]error // publishing the record of these ids fails with it, once
	recordErrsAgain bool             // every time
	records         []outcome.Record
	dead            []string
	session         *fakeSession
}

func newFakeBroker(ids ...string) *fakeBroker {
	b := &fakeBroker{loseAcks: map[string]int{}, cutAcks: map[string]int{}, recordErrs: map[string]error{}}
	for _, id := range ids {
		b.ready = append(b.ready, &fakeMessage{id: id})
	}
	return b
}

func (b *fakeBroker) open(time.Duration) (source, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.opens++
	if b.openErr != nil {
		return nil, b.openErr
	}
	if b.wasCut && len(b.outage) > 0 {
		err := b.outage[0]
		b.outage = b.outage[1:]
		return nil, err
	}
	b.session = &fakeSession{b: b, failing: b.wasCut && b.failingSessions > 0}
	if b.session.failing {
		b.failingSessions--
	}
	return b.session, nil
}

// openRecorder stands in for queue.Recorder: a passive declare of the results queue, then
// records that are confirmed, or fail as recordErrs says.
func (b *fakeBroker) openRecorder(src source, name string) (recorder, error) {
	if b.resultsMissing {
		return nil, fmt.Errorf("queue %q: %w", name, queue.ErrNoQueue)
	}
	return &fakeRecorder{s: src.(*fakeSession), queue: name}, nil
}

type fakeRecorder struct {
	s     *fakeSession
	queue string
}

func (r *fakeRecorder) Publish(_ context.Context, msg amqp.Publishing) error {
	b := r.s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if r.s.closed {
		return amqp.ErrClosed
	}
	if err := b.recordErrs[msg.MessageId]; err != nil {
		if !b.recordErrsAgain {
			delete(b.recordErrs, msg.MessageId)
		}
		b.settled = append(b.settled, "record lost "+msg.MessageId)
		return err
	}
	if msg.ContentType != outcome.ContentTypeRecord {
		return fmt.Errorf("content type %q", msg.ContentType)
	}
	rec, err := outcome.DecodeRecord(msg.Body)
	if err != nil {
		return err
	}
	b.records = append(b.records, rec)
	b.settled = append(b.settled, fmt.Sprintf("record %s#%d %s", rec.MessageID, rec.Attempt, rec.Result))
	return nil
}

func (r *fakeRecorder) Close() {}

type fakeSession struct {
	b             *fakeBroker
	closed        bool
	failing       bool // fails at its first Get or Consume
	channelClosed bool // by the broker, under a connection that stays up
	prefetch      int  // of the next consumer; 1 when 0
	consumer      chan amqp.Delivery
	consumerLimit int            // the active consumer's prefetch
	inflight      []*fakeMessage // delivered, not settled
}

// returnLocked puts a message given back at the head of the queue, or dead-letters it at the
// delivery limit.
func (b *fakeBroker) returnLocked(m *fakeMessage) {
	if b.deliveryLimit > 0 && !b.classic && m.returned+1 >= b.deliveryLimit {
		m.returned++
		b.dead = append(b.dead, m.id)
		return
	}
	b.requeueLocked(m)
}

// requeueLocked puts a message back at the head of the queue, counting the delivery. (RabbitMQ
// dead-letters at the limit here too; the fake leaves that to returnLocked.)
func (b *fakeBroker) requeueLocked(m *fakeMessage) {
	m.returned++
	b.ready = append([]*fakeMessage{m}, b.ready...)
}

// settleLocked removes m from what the session holds.
func (s *fakeSession) settleLocked(m *fakeMessage) {
	s.inflight = slices.DeleteFunc(s.inflight, func(held *fakeMessage) bool { return held == m })
}

// cutLocked is the connection going away: what the session held goes back to the queue (or to
// another consumer), and whatever the agent does on it next fails.
func (s *fakeSession) cutLocked() {
	s.closed, s.b.wasCut = true, true
	for i, m := range slices.Backward(s.inflight) {
		switch {
		case s.b.heldForTheLostConnection && i == 0:
			s.b.held = m
		case !s.b.lostElsewhere || i > 0:
			s.b.closedWith = append(s.b.closedWith, m.id)
			s.b.requeueLocked(m)
		}
	}
	s.inflight = nil
	if s.consumer != nil {
		// amqp091-go drops the deliveries it has not handed over when the connection closes.
		for len(s.consumer) > 0 {
			<-s.consumer
		}
		close(s.consumer)
		s.consumer = nil
	}
}

func (s *fakeSession) ChannelClosedByBroker() *amqp.Error {
	if !s.channelClosed {
		return nil
	}
	return &amqp.Error{Code: amqp.PreconditionFailed, Reason: "PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out", Server: true}
}

// deliver hands out the head of the queue, up to limit unsettled messages; the caller holds b.mu.
func (s *fakeSession) deliverLocked(limit int) (amqp.Delivery, bool) {
	b := s.b
	if len(b.ready) == 0 || len(s.inflight) >= limit {
		return amqp.Delivery{}, false
	}
	m := b.ready[0]
	b.ready = b.ready[1:]
	s.inflight = append(s.inflight, m)
	d := amqp.Delivery{Acknowledger: &fakeAcknowledger{s: s, m: m, attempt: m.returned + 1}, MessageId: m.id, Body: []byte("body of " + m.id), Redelivered: m.returned > 0}
	if !b.classic {
		d.Headers = amqp.Table{"x-delivery-count": int64(m.returned)}
	}
	return d, true
}

// feedLocked keeps the active consumer supplied, up to its prefetch.
func (s *fakeSession) feedLocked() {
	if s.consumer == nil || s.closed {
		return
	}
	for {
		d, ok := s.deliverLocked(s.consumerLimit)
		if !ok {
			return
		}
		s.consumer <- d
	}
}

func (s *fakeSession) Get() (amqp.Delivery, bool, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.b.getErr != nil {
		return amqp.Delivery{}, false, s.b.getErr
	}
	if s.closed || s.failing {
		return amqp.Delivery{}, false, amqp.ErrClosed
	}
	d, ok := s.deliverLocked(1)
	if !ok {
		s.b.giveBackHeldLocked()
	}
	return d, ok, nil
}

func (s *fakeSession) SetPrefetch(prefetch int) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.closed {
		return amqp.ErrClosed
	}
	s.prefetch = prefetch
	return nil
}

func (s *fakeSession) Consume(string) (<-chan amqp.Delivery, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.b.getErr != nil {
		return nil, s.b.getErr
	}
	if s.closed || s.failing {
		return nil, amqp.ErrClosed
	}
	s.consumerLimit = max(s.prefetch, 1)
	s.b.prefetches = append(s.b.prefetches, s.consumerLimit)
	s.consumer = make(chan amqp.Delivery, s.consumerLimit)
	s.feedLocked()
	return s.consumer, nil
}

func (s *fakeSession) Cancel(string) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.closed {
		return amqp.ErrClosed
	}
	if s.consumer != nil {
		close(s.consumer)
		s.consumer = nil
	}
	return nil
}

func (s *fakeSession) Ready() (int, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.closed {
		return 0, amqp.ErrClosed
	}
	ready := len(s.b.ready)
	s.b.giveBackHeldLocked()
	return ready, nil
}

func (b *fakeBroker) giveBackHeldLocked() {
	if b.held != nil {
		b.held.returned++
		b.ready = append([]*fakeMessage{b.held}, b.ready...)
		b.held = nil
	}
}

// Close gives back what the session held, as the broker does when a connection closes.
func (s *fakeSession) Close() {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	for _, m := range slices.Backward(s.inflight) {
		s.b.closedWith = append(s.b.closedWith, m.id)
		s.b.requeueLocked(m)
	}
	s.inflight = nil
}

type fakeAcknowledger struct {
	s       *fakeSession
	m       *fakeMessage
	attempt int
}

func (f *fakeAcknowledger) Ack(uint64, bool) error {
	b := f.s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case f.s.closed:
		b.settled = append(b.settled, "ack lost "+f.m.id)
		return amqp.ErrClosed
	case b.loseAcks[f.m.id] > 0:
		b.loseAcks[f.m.id]--
		b.settled = append(b.settled, "ack lost "+f.m.id)
		f.s.channelClosed = true
		return amqp.ErrClosed
	case b.cutAcks[f.m.id] > 0:
		b.cutAcks[f.m.id]--
		b.settled = append(b.settled, "ack lost "+f.m.id)
		f.s.cutLocked()
		return amqp.ErrClosed
	}
	b.settled = append(b.settled, "ack "+f.m.id)
	f.s.settleLocked(f.m)
	if f.m.id == b.cutAfter {
		f.s.cutLocked()
		return nil
	}
	f.s.feedLocked()
	return nil
}

// Nack is how the agent gives back an item it did not start; the runner checks that it never ran
// a nacked delivery (from RabbitMQ 4.3 a nack does not count toward the delivery limit).
func (f *fakeAcknowledger) Nack(_ uint64, multiple, requeue bool) error {
	b := f.s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if f.s.closed {
		return amqp.ErrClosed
	}
	b.settled = append(b.settled, fmt.Sprintf("nack %s#%d requeue=%v", f.m.id, f.attempt, requeue))
	if multiple || !requeue {
		return errors.New("the agent nacks one item at a time, with requeue")
	}
	f.s.settleLocked(f.m)
	b.returnLocked(f.m)
	f.s.feedLocked()
	return nil
}

func (f *fakeAcknowledger) Reject(_ uint64, requeue bool) error {
	b := f.s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if f.s.closed {
		return amqp.ErrClosed
	}
	b.settled = append(b.settled, fmt.Sprintf("reject %s requeue=%v", f.m.id, requeue))
	f.s.settleLocked(f.m)
	b.returnLocked(f.m)
	f.s.feedLocked()
	return nil
}

// fakeRunner returns a scripted result per message id (the last one repeats) and records runs.
type fakeRunner struct {
	results map[string][]commandResult
	ran     []string
	// signalAfter: once the command of this id ran, a SIGTERM comes, while the agent waits.
	signalAfter string
	signals     chan os.Signal
}

func (r *fakeRunner) run(it item) commandResult {
	r.ran = append(r.ran, fmt.Sprintf("%s#%d", it.messageID, it.attempt))
	if it.messageID == r.signalAfter {
		r.signals <- syscall.SIGTERM
	}
	script := r.results[it.messageID]
	if len(script) == 0 {
		return exited(0)
	}
	result := script[0]
	if len(script) > 1 {
		r.results[it.messageID] = script[1:]
	}
	return result
}

func exited(code int) commandResult {
	r := commandResult{started: true, exitCode: code, duration: time.Millisecond}
	if code != 0 {
		r.err = fmt.Errorf("command exited with status %d", code)
	}
	return r
}

func exitedAfter(code int, d time.Duration) commandResult {
	r := exited(code)
	r.duration = d
	return r
}

func signalled(code int) commandResult {
	r := exited(code)
	r.signal = syscall.SIGTERM
	return r
}

func timedOut() commandResult {
	r := exited(128 + int(syscall.SIGKILL))
	r.timedOut = true
	r.err = errors.New("command killed by SIGKILL")
	return r
}

func cannotStart(errno syscall.Errno) commandResult {
	return commandResult{err: fmt.Errorf("cannot start run: %w", &os.PathError{Op: "fork/exec", Path: "/app/run", Err: errno})}
}

// Every way an item can end, decided with fakes for the broker and the command: how the item is
// settled, whether the agent goes on, and the exit code and outcome it reports.
func TestDecisionPerItem(t *testing.T) {
	loginRefused := &queue.PermanentError{Err: &queue.RefusalError{What: queue.RefusedLogin, Err: amqp.ErrCredentials}}
	// While a broker goes down or starts up: the port is closed, or the socket closes during the
	// login, which the client takes for a refusal of the credentials (amqp.ErrCredentials).
	connRefused := errors.New("cannot connect to the broker: dial tcp: connect: connection refused")
	loginInferred := loginRefused
	loginStated := &queue.PermanentError{Err: &queue.RefusalError{What: queue.RefusedLogin,
		Err: &amqp.Error{Code: amqp.AccessRefused, Reason: "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN", Server: true}}}
	tests := []struct {
		name    string
		mode    constants.Mode
		records bool // --results q.results
		broker  func() *fakeBroker
		results map[string][]commandResult

		wantExit    int
		wantResult  string
		wantSettled []string
		wantRan     []string
		wantDead    []string
		wantError   string // in the outcome's error
		wantCounts  [2]int // drain: processed, failed
		maxPrefetch int    // Config.MaxPrefetch
		maxAttempts int    // Config.MaxAttempts
		signalAfter string // a SIGTERM comes once this item's command ran, while the agent waits
		// wantPrefetches: the prefetch of each drain consumer started; wantClosedWith: the items
		// sessions held when they closed or were cut; each checked when not nil.
		wantPrefetches []int
		wantClosedWith []string
		wantLog        []string
		outageBound    time.Duration // BrokerOutage; 2s when 0
	}{
		{name: "one: exit 0 acks", mode: constants.ModeOne, broker: func() *fakeBroker { return newFakeBroker("m1", "m2") },
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone, wantSettled: []string{"ack m1"}, wantRan: []string{"m1#1"}},
		{name: "one: non-zero requeues", mode: constants.ModeOne, broker: func() *fakeBroker { return newFakeBroker("m1") },
			results:  map[string][]commandResult{"m1": {exited(2)}},
			wantExit: outcome.ExitItemFailed, wantResult: outcome.ResultFailed, wantSettled: []string{"reject m1 requeue=true"}, wantRan: []string{"m1#1"}, wantError: "status 2"},
		{name: "one: timeout requeues", mode: constants.ModeOne, broker: func() *fakeBroker { return newFakeBroker("m1") },
			results:  map[string][]commandResult{"m1": {timedOut()}},
			wantExit: outcome.ExitItemFailed, wantResult: outcome.ResultFailed, wantSettled: []string{"reject m1 requeue=true"}, wantRan: []string{"m1#1"}, wantError: "timed out"},
		{name: "one: command missing is a misconfiguration", mode: constants.ModeOne, broker: func() *fakeBroker { return newFakeBroker("m1") },
			results:  map[string][]commandResult{"m1": {cannotStart(syscall.ENOENT)}},
			wantExit: outcome.ExitMisconfigured, wantResult: outcome.ResultError, wantSettled: []string{"reject m1 requeue=true"}, wantRan: []string{"m1#1"}, wantError: "no such file"},
		{name: "one: no processes left cannot start here", mode: constants.ModeOne, broker: func() *fakeBroker { return newFakeBroker("m1") },
			results:  map[string][]commandResult{"m1": {cannotStart(syscall.EAGAIN)}},
			wantExit: outcome.ExitCannotStart, wantResult: outcome.ResultError, wantSettled: []string{"reject m1 requeue=true"}, wantRan: []string{"m1#1"}, wantError: "another pod"},
		{name: "one: signal during the command requeues", mode: constants.ModeOne, broker: func() *fakeBroker { return newFakeBroker("m1") },
			results:  map[string][]commandResult{"m1": {signalled(143)}},
			wantExit: outcome.ExitInterrupted, wantResult: outcome.ResultInterrupted, wantSettled: []string{"reject m1 requeue=true"}, wantRan: []string{"m1#1"}},
		{name: "one: exit 0 despite a signal acks", mode: constants.ModeOne, broker: func() *fakeBroker { return newFakeBroker("m1") },
			results:  map[string][]commandResult{"m1": {signalled(0)}},
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone, wantSettled: []string{"ack m1"}, wantRan: []string{"m1#1"}},
		{name: "drain: exit 0 despite a signal acks, then stops", mode: constants.ModeDrain, broker: func() *fakeBroker { return newFakeBroker("m1", "m2") },
			results:  map[string][]commandResult{"m1": {signalled(0)}},
			wantExit: outcome.ExitInterrupted, wantResult: outcome.ResultInterrupted, wantSettled: []string{"ack m1"}, wantRan: []string{"m1#1"}, wantCounts: [2]int{1, 0}},
		{name: "one: a lost ack is not a success: the item is taken again", mode: constants.ModeOne, broker: func() *fakeBroker { b := newFakeBroker("m1"); b.loseAcks["m1"] = 1; return b },
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone, wantSettled: []string{"ack lost m1", "ack m1"}, wantRan: []string{"m1#1", "m1#2"}},
		{name: "one: the same ack lost twice by a closed channel stops", mode: constants.ModeOne, broker: func() *fakeBroker { b := newFakeBroker("m1"); b.loseAcks["m1"] = 2; return b },
			wantExit: outcome.ExitBrokerUnreachable, wantResult: outcome.ResultError, wantSettled: []string{"ack lost m1", "ack lost m1"}, wantRan: []string{"m1#1", "m1#2"}, wantError: "consumer_timeout"},
		{name: "drain: one lost ack is redelivered and done", mode: constants.ModeDrain, broker: func() *fakeBroker { b := newFakeBroker("m1"); b.loseAcks["m1"] = 1; return b },
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone, wantSettled: []string{"ack lost m1", "ack m1"}, wantRan: []string{"m1#1", "m1#2"}, wantCounts: [2]int{1, 0}},
		{name: "drain: the same ack lost twice stops", mode: constants.ModeDrain, broker: func() *fakeBroker { b := newFakeBroker("m1"); b.loseAcks["m1"] = 2; return b },
			wantExit: outcome.ExitBrokerUnreachable, wantResult: outcome.ResultError, wantSettled: []string{"ack lost m1", "ack lost m1"}, wantRan: []string{"m1#1", "m1#2"}, wantError: "for the second time"},
		{name: "one: empty queue", mode: constants.ModeOne, broker: func() *fakeBroker { return newFakeBroker() },
			wantExit: outcome.ExitOK, wantResult: outcome.ResultEmpty},
		{name: "drain: empty queue", mode: constants.ModeDrain, broker: func() *fakeBroker { return newFakeBroker() },
			wantExit: outcome.ExitOK, wantResult: outcome.ResultEmpty},
		{name: "drain: every item, then idle", mode: constants.ModeDrain, broker: func() *fakeBroker { return newFakeBroker("m1", "m2", "m3") },
			results: map[string][]commandResult{"m2": {exited(1), exited(0)}},
			// m3 is held beside m2 (the commands are short), so it runs before m2 comes back.
			wantExit: outcome.ExitItemFailed, wantResult: outcome.ResultFailed, wantSettled: []string{"ack m1", "reject m2 requeue=true", "ack m3", "ack m2"}, wantRan: []string{"m1#1", "m2#1", "m3#1", "m2#2"}, wantCounts: [2]int{3, 1}},
		{name: "drain: the delivery limit dead-letters", mode: constants.ModeDrain, broker: func() *fakeBroker { b := newFakeBroker("m1"); b.deliveryLimit = 2; return b },
			results:  map[string][]commandResult{"m1": {exited(1)}},
			wantExit: outcome.ExitItemFailed, wantResult: outcome.ResultFailed, wantSettled: []string{"reject m1 requeue=true", "reject m1 requeue=true"}, wantRan: []string{"m1#1", "m1#2"}, wantDead: []string{"m1"}, wantCounts: [2]int{0, 2}},
		{name: "drain: a classic queue would retry forever", mode: constants.ModeDrain, broker: func() *fakeBroker { b := newFakeBroker("m1"); b.classic = true; return b },
			results:  map[string][]commandResult{"m1": {exited(1)}},
			wantExit: outcome.ExitItemFailed, wantResult: outcome.ResultFailed, wantSettled: []string{"reject m1 requeue=true", "reject m1 requeue=true"}, wantRan: []string{"m1#1"}, wantCounts: [2]int{0, 1}},
		{name: "one: sessions that keep failing", mode: constants.ModeOne, broker: func() *fakeBroker { b := newFakeBroker("m1"); b.getErr = amqp.ErrClosed; return b },
			wantExit: outcome.ExitBrokerUnreachable, wantResult: outcome.ResultError, wantError: "keeps closing the connection"},
		{name: "drain: consumers that keep failing", mode: constants.ModeDrain, broker: func() *fakeBroker { b := newFakeBroker("m1"); b.getErr = amqp.ErrClosed; return b },
			wantExit: outcome.ExitBrokerUnreachable, wantResult: outcome.ResultError, wantError: "keeps closing the connection"},
		{name: "missing queue is a misconfiguration", mode: constants.ModeOne,
			broker: func() *fakeBroker {
				b := newFakeBroker()
				b.openErr = &amqp.Error{Code: amqp.NotFound, Reason: "NOT_FOUND - no queue 'q'", Server: true}
				return b
			},
			wantExit: outcome.ExitMisconfigured, wantResult: outcome.ResultError, wantError: `queue "q" does not exist`},
		{name: "refused login is a misconfiguration", mode: constants.ModeDrain, broker: func() *fakeBroker { b := newFakeBroker(); b.openErr = loginRefused; return b },
			wantExit: outcome.ExitMisconfigured, wantResult: outcome.ResultError, wantError: "refused the login"},
		{name: "refused queue access mid-session is a misconfiguration", mode: constants.ModeDrain,
			broker: func() *fakeBroker {
				b := newFakeBroker("m1")
				b.getErr = &amqp.Error{Code: amqp.AccessRefused, Reason: "ACCESS_REFUSED - access to queue 'q' refused", Server: true}
				return b
			},
			wantExit: outcome.ExitMisconfigured, wantResult: outcome.ResultError, wantError: "read and write permissions"},
		{name: "results: exit 0 publishes the record, then acks", mode: constants.ModeOne, records: true, broker: func() *fakeBroker { return newFakeBroker("m1", "m2") },
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone, wantSettled: []string{"record m1#1 done", "ack m1"}, wantRan: []string{"m1#1"}},
		{name: "results: non-zero publishes the record, then requeues", mode: constants.ModeOne, records: true, broker: func() *fakeBroker { return newFakeBroker("m1") },
			results:  map[string][]commandResult{"m1": {exited(2)}},
			wantExit: outcome.ExitItemFailed, wantResult: outcome.ResultFailed, wantSettled: []string{"record m1#1 failed", "reject m1 requeue=true"}, wantRan: []string{"m1#1"}, wantError: "status 2"},
		{name: "results: timeout publishes the record, then requeues", mode: constants.ModeOne, records: true, broker: func() *fakeBroker { return newFakeBroker("m1") },
			results:  map[string][]commandResult{"m1": {timedOut()}},
			wantExit: outcome.ExitItemFailed, wantResult: outcome.ResultFailed, wantSettled: []string{"record m1#1 failed", "reject m1 requeue=true"}, wantRan: []string{"m1#1"}, wantError: "timed out"},
		{name: "results: exit 0 despite a signal publishes the record, then acks", mode: constants.ModeOne, records: true, broker: func() *fakeBroker { return newFakeBroker("m1") },
			results:  map[string][]commandResult{"m1": {signalled(0)}},
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone, wantSettled: []string{"record m1#1 done", "ack m1"}, wantRan: []string{"m1#1"}},
		{name: "results: no record for an interrupted command", mode: constants.ModeOne, records: true, broker: func() *fakeBroker { return newFakeBroker("m1") },
			results:  map[string][]commandResult{"m1": {signalled(143)}},
			wantExit: outcome.ExitInterrupted, wantResult: outcome.ResultInterrupted, wantSettled: []string{"reject m1 requeue=true"}, wantRan: []string{"m1#1"}},
		{name: "results: no record for a command that cannot start", mode: constants.ModeOne, records: true, broker: func() *fakeBroker { return newFakeBroker("m1") },
			results:  map[string][]commandResult{"m1": {cannotStart(syscall.EAGAIN)}},
			wantExit: outcome.ExitCannotStart, wantResult: outcome.ResultError, wantSettled: []string{"reject m1 requeue=true"}, wantRan: []string{"m1#1"}, wantError: "another pod"},
		{name: "results: no record for an empty queue", mode: constants.ModeDrain, records: true, broker: func() *fakeBroker { return newFakeBroker() },
			wantExit: outcome.ExitOK, wantResult: outcome.ResultEmpty},
		{name: "results: a lost record is not a success, and the item is not acked but taken again", mode: constants.ModeOne, records: true,
			broker:   func() *fakeBroker { b := newFakeBroker("m1"); b.recordErrs["m1"] = amqp.ErrClosed; return b },
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone, wantSettled: []string{"record lost m1", "record m1#2 done", "ack m1"}, wantRan: []string{"m1#1", "m1#2"},
			wantLog: []string{"result record did not reach the broker"}},
		{name: "results: a record unconfirmed twice on a live connection stops", mode: constants.ModeOne, records: true,
			broker: func() *fakeBroker {
				b := newFakeBroker("m1")
				b.recordErrs["m1"] = fmt.Errorf("no confirm from the broker: %w", context.DeadlineExceeded)
				b.recordErrsAgain = true
				return b
			},
			wantExit: outcome.ExitBrokerUnreachable, wantResult: outcome.ResultError, wantSettled: []string{"record lost m1", "record lost m1"}, wantRan: []string{"m1#1", "m1#2"}, wantError: "for the second time"},
		{name: "results: drain: a lost record is redelivered and done", mode: constants.ModeDrain, records: true,
			broker:   func() *fakeBroker { b := newFakeBroker("m1"); b.recordErrs["m1"] = amqp.ErrClosed; return b },
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone, wantSettled: []string{"record lost m1", "record m1#2 done", "ack m1"}, wantRan: []string{"m1#1", "m1#2"}, wantCounts: [2]int{1, 0}},
		{name: "results: drain: a failure's lost record is not a reject", mode: constants.ModeDrain, records: true,
			broker:   func() *fakeBroker { b := newFakeBroker("m1"); b.recordErrs["m1"] = amqp.ErrClosed; return b },
			results:  map[string][]commandResult{"m1": {exited(1), exited(0)}},
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone, wantSettled: []string{"record lost m1", "record m1#2 done", "ack m1"}, wantRan: []string{"m1#1", "m1#2"}, wantCounts: [2]int{1, 0}},
		{name: "results: a record the broker refuses is a misconfiguration", mode: constants.ModeDrain, records: true,
			broker: func() *fakeBroker {
				b := newFakeBroker("m1", "m2")
				b.recordErrs["m1"] = &queue.NotStoredError{Queue: "q.results", Reason: "no queue took it (312 NO_ROUTE)"}
				return b
			},
			wantExit: outcome.ExitMisconfigured, wantResult: outcome.ResultError, wantSettled: []string{"record lost m1"}, wantRan: []string{"m1#1"}, wantError: "kubectl workqueue run` declares it", wantCounts: [2]int{0, 0}},
		{name: "results: drain: a record the broker nacks (its node shutting down) is redelivered and done", mode: constants.ModeDrain, records: true,
			broker: func() *fakeBroker {
				b := newFakeBroker("m1")
				b.recordErrs["m1"] = &queue.NackedError{Queue: "q.results"}
				return b
			},
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone, wantSettled: []string{"record lost m1", "record m1#2 done", "ack m1"}, wantRan: []string{"m1#1", "m1#2"}, wantCounts: [2]int{1, 0}},
		{name: "results: a missing results queue is a misconfiguration", mode: constants.ModeOne, records: true,
			broker:   func() *fakeBroker { b := newFakeBroker("m1"); b.resultsMissing = true; return b },
			wantExit: outcome.ExitMisconfigured, wantResult: outcome.ResultError, wantError: `results queue "q.results" does not exist`},
		{name: "unreachable broker", mode: constants.ModeOne, broker: func() *fakeBroker {
			b := newFakeBroker()
			b.openErr = errors.New("dial tcp: connection refused")
			return b
		},
			wantExit: outcome.ExitBrokerUnreachable, wantResult: outcome.ResultError, wantError: "cannot reach the broker"},
		{name: "outage: drain: the broker goes away between items and comes back", mode: constants.ModeDrain,
			broker: func() *fakeBroker {
				b := newFakeBroker("m1", "m2", "m3")
				b.cutAfter, b.outage = "m1", []error{connRefused, connRefused}
				return b
			},
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone, wantSettled: []string{"ack m1", "ack m2", "ack m3"}, wantRan: []string{"m1#1", "m2#1", "m3#1"}, wantCounts: [2]int{3, 0},
			wantLog: []string{"lost the broker connection", "waiting up to 2s for it to come back", "is back after"}},
		{name: "outage: drain: a broker back at once is reconnected", mode: constants.ModeDrain,
			broker:   func() *fakeBroker { b := newFakeBroker("m1", "m2"); b.cutAfter = "m1"; return b },
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone, wantSettled: []string{"ack m1", "ack m2"}, wantRan: []string{"m1#1", "m2#1"}, wantCounts: [2]int{2, 0},
			wantLog: []string{"reconnected to the broker"}},
		{name: "outage: drain: acks lost with the connection, however often, are not failures", mode: constants.ModeDrain,
			broker: func() *fakeBroker {
				b := newFakeBroker("m1", "m2")
				b.deliveryLimit, b.cutAcks["m1"], b.outage = 2, 3, []error{connRefused}
				return b
			},
			// m2, held beside m1 from the second session on (m1's command is short), goes back with
			// each lost connection too, which counts it as a delivery: on RabbitMQ every give-back does.
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone, wantSettled: []string{"ack lost m1", "ack lost m1", "ack lost m1", "ack m1", "ack m2"},
			wantRan: []string{"m1#1", "m1#2", "m1#3", "m1#4", "m2#3"}, wantCounts: [2]int{2, 0}, wantClosedWith: []string{"m1", "m2", "m1", "m2", "m1"}},
		{name: "outage: drain: prefetch 1: acks lost with the connection cost no other item a delivery", mode: constants.ModeDrain, maxPrefetch: 1,
			broker: func() *fakeBroker {
				b := newFakeBroker("m1", "m2")
				b.deliveryLimit, b.cutAcks["m1"], b.outage = 2, 3, []error{connRefused}
				return b
			},
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone, wantSettled: []string{"ack lost m1", "ack lost m1", "ack lost m1", "ack m1", "ack m2"},
			wantRan: []string{"m1#1", "m1#2", "m1#3", "m1#4", "m2#1"}, wantCounts: [2]int{2, 0}, wantPrefetches: []int{1, 1, 1, 1}, wantClosedWith: []string{"m1", "m1", "m1"}},
		{name: "prefetch: 2 after a short command, 1 after a long one", mode: constants.ModeDrain,
			broker:  func() *fakeBroker { return newFakeBroker("m1", "m2", "m3", "m4", "m5", "m6") },
			results: map[string][]commandResult{"m3": {exitedAfter(0, shortItem)}, "m4": {exitedAfter(0, time.Second)}},
			// m1 is short: its consumer is cancelled before m1 is acked, and the next one has
			// prefetch 2. m3 is long: m4, held meanwhile, runs, and is long too, so the next
			// consumer has prefetch 1; after m5, short again, 2.
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone, wantSettled: []string{"ack m1", "ack m2", "ack m3", "ack m4", "ack m5", "ack m6"},
			wantRan: []string{"m1#1", "m2#1", "m3#1", "m4#1", "m5#1", "m6#1"}, wantCounts: [2]int{6, 0}, wantPrefetches: []int{1, 2, 1, 2}, wantClosedWith: []string{}},
		{name: "prefetch: 1 when the agent is told so", mode: constants.ModeDrain, maxPrefetch: 1,
			broker:   func() *fakeBroker { return newFakeBroker("m1", "m2", "m3") },
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone, wantSettled: []string{"ack m1", "ack m2", "ack m3"},
			wantRan: []string{"m1#1", "m2#1", "m3#1"}, wantCounts: [2]int{3, 0}, wantPrefetches: []int{1}, wantClosedWith: []string{}},
		{name: "prefetch: 1 when the queue allows one attempt per item", mode: constants.ModeDrain, maxAttempts: 1,
			broker:   func() *fakeBroker { return newFakeBroker("m1", "m2", "m3") },
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone, wantSettled: []string{"ack m1", "ack m2", "ack m3"},
			wantRan: []string{"m1#1", "m2#1", "m3#1"}, wantCounts: [2]int{3, 0}, wantPrefetches: []int{1}, wantClosedWith: []string{}},
		{name: "prefetch: 2 when the queue allows two attempts per item", mode: constants.ModeDrain, maxAttempts: 2,
			broker:   func() *fakeBroker { return newFakeBroker("m1", "m2", "m3") },
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone, wantSettled: []string{"ack m1", "ack m2", "ack m3"},
			wantRan: []string{"m1#1", "m2#1", "m3#1"}, wantCounts: [2]int{3, 0}, wantPrefetches: []int{1, 2}, wantClosedWith: []string{}},
		{name: "prefetch: idle: the drain ends holding nothing, and gives nothing back", mode: constants.ModeDrain,
			broker: func() *fakeBroker { return newFakeBroker("m1", "m2", "m3") },
			// The consumer of prefetch 2 is cancelled at the idle check; no nack, no item closed with the session.
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone, wantSettled: []string{"ack m1", "ack m2", "ack m3"},
			wantRan: []string{"m1#1", "m2#1", "m3#1"}, wantCounts: [2]int{3, 0}, wantPrefetches: []int{1, 2}, wantClosedWith: []string{}},
		{name: "prefetch: the connection lost while an item is held: it goes back with the connection, an attempt spent", mode: constants.ModeDrain,
			broker: func() *fakeBroker { b := newFakeBroker("m1", "m2", "m3", "m4"); b.cutAfter = "m2"; return b },
			// m3, held while m2 ran, is not run from the dead session: it comes back as its second
			// delivery, to a consumer of prefetch 2 at once (the commands are still short).
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone, wantSettled: []string{"ack m1", "ack m2", "ack m3", "ack m4"},
			wantRan: []string{"m1#1", "m2#1", "m3#2", "m4#1"}, wantCounts: [2]int{4, 0}, wantPrefetches: []int{1, 2, 2}, wantClosedWith: []string{"m3"},
			wantLog: []string{"reconnected to the broker"}},
		{name: "prefetch: a signal while idle: nothing held, nothing given back", mode: constants.ModeDrain, signalAfter: "m2",
			broker:   func() *fakeBroker { return newFakeBroker("m1", "m2") },
			wantExit: outcome.ExitInterrupted, wantResult: outcome.ResultInterrupted, wantSettled: []string{"ack m1", "ack m2"},
			wantRan: []string{"m1#1", "m2#1"}, wantCounts: [2]int{2, 0}, wantPrefetches: []int{1, 2}, wantClosedWith: []string{}},
		{name: "prefetch: a signal during a command: the held item is given back unstarted", mode: constants.ModeDrain,
			broker:  func() *fakeBroker { return newFakeBroker("m1", "m2", "m3", "m4") },
			results: map[string][]commandResult{"m3": {signalled(143)}},
			// The consumer is cancelled before m3 is rejected, so that m3's place is not filled.
			wantExit: outcome.ExitInterrupted, wantResult: outcome.ResultInterrupted, wantSettled: []string{"ack m1", "ack m2", "reject m3 requeue=true", "nack m4#1 requeue=true"},
			wantRan: []string{"m1#1", "m2#1", "m3#1"}, wantCounts: [2]int{2, 0}, wantPrefetches: []int{1, 2}, wantClosedWith: []string{},
			wantLog: []string{`item m4 "body of m4" attempt 1: not started; given back to the queue`}},
		{name: "prefetch: exit 0 despite a signal: the held item is given back unstarted", mode: constants.ModeDrain,
			broker:   func() *fakeBroker { return newFakeBroker("m1", "m2", "m3", "m4") },
			results:  map[string][]commandResult{"m3": {signalled(0)}},
			wantExit: outcome.ExitInterrupted, wantResult: outcome.ResultInterrupted, wantSettled: []string{"ack m1", "ack m2", "ack m3", "nack m4#1 requeue=true"},
			wantRan: []string{"m1#1", "m2#1", "m3#1"}, wantCounts: [2]int{3, 0}, wantClosedWith: []string{}},
		{name: "prefetch: 1: a signal during a command leaves no item to give back", mode: constants.ModeDrain, maxPrefetch: 1,
			broker:   func() *fakeBroker { return newFakeBroker("m1", "m2", "m3") },
			results:  map[string][]commandResult{"m2": {signalled(143)}},
			wantExit: outcome.ExitInterrupted, wantResult: outcome.ResultInterrupted, wantSettled: []string{"ack m1", "reject m2 requeue=true"},
			wantRan: []string{"m1#1", "m2#1"}, wantCounts: [2]int{1, 0}, wantClosedWith: []string{}},
		{name: "prefetch: a command that cannot start: the held item is given back unstarted", mode: constants.ModeDrain,
			broker:   func() *fakeBroker { return newFakeBroker("m1", "m2", "m3", "m4") },
			results:  map[string][]commandResult{"m3": {cannotStart(syscall.ENOENT)}},
			wantExit: outcome.ExitMisconfigured, wantResult: outcome.ResultError, wantSettled: []string{"ack m1", "ack m2", "reject m3 requeue=true", "nack m4#1 requeue=true"},
			wantRan: []string{"m1#1", "m2#1", "m3#1"}, wantCounts: [2]int{2, 0}, wantClosedWith: []string{}, wantError: "no such file"},
		{name: "prefetch: a classic queue that would retry forever: the held item is given back unstarted", mode: constants.ModeDrain,
			broker:   func() *fakeBroker { b := newFakeBroker("m1", "m2", "m3", "m4"); b.classic = true; return b },
			results:  map[string][]commandResult{"m2": {exited(1)}},
			wantExit: outcome.ExitItemFailed, wantResult: outcome.ResultFailed,
			wantSettled: []string{"ack m1", "reject m2 requeue=true", "ack m3", "reject m2 requeue=true", "nack m4#1 requeue=true"},
			wantRan:     []string{"m1#1", "m2#1", "m3#1"}, wantCounts: [2]int{2, 1}, wantClosedWith: []string{}},
		{name: "prefetch: a record the broker refuses: the held item is given back unstarted", mode: constants.ModeDrain, records: true,
			broker: func() *fakeBroker {
				b := newFakeBroker("m1", "m2", "m3", "m4")
				b.recordErrs["m3"] = &queue.NotStoredError{Queue: "q.results", Reason: "no queue took it (312 NO_ROUTE)"}
				return b
			},
			// m3 ran; its record was not stored, so it is left unsettled, to come back with the closed connection.
			wantExit: outcome.ExitMisconfigured, wantResult: outcome.ResultError,
			wantSettled: []string{"record m1#1 done", "ack m1", "record m2#1 done", "ack m2", "record lost m3", "nack m4#1 requeue=true"},
			wantRan:     []string{"m1#1", "m2#1", "m3#1"}, wantCounts: [2]int{2, 0}, wantClosedWith: []string{"m3"}, wantError: "kubectl workqueue run` declares it"},
		{name: "prefetch: a lost record on a live connection: the held item is given back unstarted, and the drain goes on", mode: constants.ModeDrain, records: true,
			broker: func() *fakeBroker {
				b := newFakeBroker("m1", "m2", "m3", "m4")
				b.recordErrs["m3"] = &queue.NackedError{Queue: "q.results"}
				return b
			},
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone,
			wantSettled: []string{"record m1#1 done", "ack m1", "record m2#1 done", "ack m2", "record lost m3", "nack m4#1 requeue=true",
				"record m3#2 done", "ack m3", "record m4#2 done", "ack m4"},
			wantRan: []string{"m1#1", "m2#1", "m3#1", "m3#2", "m4#2"}, wantCounts: [2]int{4, 0}, wantClosedWith: []string{"m3"}},
		{name: "outage: one: an ack lost with the connection: the item is taken again", mode: constants.ModeOne,
			broker: func() *fakeBroker {
				b := newFakeBroker("m1")
				b.cutAcks["m1"], b.outage = 1, []error{connRefused}
				return b
			},
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone, wantSettled: []string{"ack lost m1", "ack m1"}, wantRan: []string{"m1#1", "m1#2"}},
		{name: "outage: one: an ack lost, then an empty queue, is no completion", mode: constants.ModeOne,
			broker: func() *fakeBroker {
				b := newFakeBroker("m1")
				b.cutAcks["m1"], b.lostElsewhere = 1, true
				return b
			},
			wantExit: outcome.ExitBrokerLost, wantResult: outcome.ResultError, wantSettled: []string{"ack lost m1"}, wantRan: []string{"m1#1"}, wantError: "the queue stayed empty for 200ms after reconnecting"},
		{name: "outage: one: an ack lost, then an item the broker gives back late", mode: constants.ModeOne,
			broker: func() *fakeBroker {
				b := newFakeBroker("m1")
				b.cutAcks["m1"], b.heldForTheLostConnection = 1, true
				return b
			},
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone, wantSettled: []string{"ack lost m1", "ack m1"}, wantRan: []string{"m1#1", "m1#2"}},
		{name: "outage: drain: an item the broker gives back late is waited for", mode: constants.ModeDrain,
			broker: func() *fakeBroker {
				b := newFakeBroker("m1", "m2")
				b.cutAcks["m1"], b.heldForTheLostConnection = 1, true
				return b
			},
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone, wantSettled: []string{"ack lost m1", "ack m2", "ack m1"}, wantRan: []string{"m1#1", "m2#1", "m1#2"}, wantCounts: [2]int{2, 0},
			wantLog: []string{"the broker has not given back 1 item whose ack was lost"}},
		{name: "outage: drain: an item another pod took is waited for no longer than the bound", mode: constants.ModeDrain,
			broker: func() *fakeBroker {
				b := newFakeBroker("m1", "m2")
				b.cutAcks["m1"], b.lostElsewhere = 1, true
				return b
			},
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone, wantSettled: []string{"ack lost m1", "ack m2"}, wantRan: []string{"m1#1", "m2#1"}, wantCounts: [2]int{1, 0}},
		{name: "outage: drain: a broker away past the bound ends the pod, not counted", mode: constants.ModeDrain, outageBound: 300 * time.Millisecond,
			broker: func() *fakeBroker {
				b := newFakeBroker("m1", "m2")
				b.cutAfter, b.outage = "m1", slices.Repeat([]error{connRefused}, 100)
				return b
			},
			wantExit: outcome.ExitBrokerLost, wantResult: outcome.ResultError, wantSettled: []string{"ack m1"}, wantRan: []string{"m1#1"}, wantCounts: [2]int{1, 0},
			wantError: "did not come back within 300ms (--broker-outage)"},
		{name: "outage: one: a broker away past the bound after a lost ack ends the pod, not counted", mode: constants.ModeOne, outageBound: 300 * time.Millisecond,
			broker: func() *fakeBroker {
				b := newFakeBroker("m1")
				b.cutAcks["m1"], b.outage = 1, slices.Repeat([]error{connRefused}, 100)
				return b
			},
			wantExit: outcome.ExitBrokerLost, wantResult: outcome.ResultError, wantSettled: []string{"ack lost m1"}, wantRan: []string{"m1#1"},
			wantError: "did not come back within 300ms"},
		{name: "outage: a login refusal the client inferred while the broker comes back is waited out", mode: constants.ModeDrain,
			broker: func() *fakeBroker {
				b := newFakeBroker("m1", "m2")
				b.cutAfter, b.outage = "m1", []error{connRefused, loginInferred, loginInferred}
				return b
			},
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone, wantSettled: []string{"ack m1", "ack m2"}, wantRan: []string{"m1#1", "m2#1"}, wantCounts: [2]int{2, 0}},
		{name: "outage: a login refusal the broker stated after an outage is a misconfiguration", mode: constants.ModeDrain,
			broker: func() *fakeBroker {
				b := newFakeBroker("m1", "m2")
				b.cutAfter, b.outage = "m1", []error{connRefused, loginStated}
				return b
			},
			wantExit: outcome.ExitMisconfigured, wantResult: outcome.ResultError, wantSettled: []string{"ack m1"}, wantRan: []string{"m1#1"}, wantCounts: [2]int{1, 0}, wantError: "refused the login"},
		{name: "outage: sessions that fail after an outage are waited for", mode: constants.ModeDrain,
			broker: func() *fakeBroker {
				b := newFakeBroker("m1", "m2")
				b.cutAfter, b.failingSessions = "m1", 3
				return b
			},
			wantExit: outcome.ExitOK, wantResult: outcome.ResultDone, wantSettled: []string{"ack m1", "ack m2"}, wantRan: []string{"m1#1", "m2#1"}, wantCounts: [2]int{2, 0}},
		{name: "outage: sessions that keep failing after an outage end the pod at the bound, not counted", mode: constants.ModeOne, outageBound: 300 * time.Millisecond,
			broker: func() *fakeBroker {
				b := newFakeBroker("m1")
				b.cutAcks["m1"], b.failingSessions = 1, 100
				return b
			},
			wantExit: outcome.ExitBrokerLost, wantResult: outcome.ResultError, wantSettled: []string{"ack lost m1"}, wantRan: []string{"m1#1"}, wantError: "keeps closing the connection, for more than 300ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.broker()
			r := &fakeRunner{results: tt.results, signalAfter: tt.signalAfter, signals: make(chan os.Signal, 1)}
			var log strings.Builder
			a := newAgent(Config{
				BrokerURL: "amqp://u:secret@broker:5672/", Queue: "q", Mode: tt.mode, Command: []string{"true"}, MaxPrefetch: tt.maxPrefetch, MaxAttempts: tt.maxAttempts,
				Idle: 20 * time.Millisecond, EmptyWait: time.Millisecond, ConnectBudget: 300 * time.Millisecond, BrokerOutage: cmp.Or(tt.outageBound, 2*time.Second),
				Log: &log, Stdout: io.Discard, Stderr: io.Discard, Signals: r.signals,
			})
			if tt.records {
				a.cfg.Results = "q.results"
			}
			a.open, a.openRecorder, a.runner = b.open, b.openRecorder, r
			a.lostItemWait = 200 * time.Millisecond

			got := a.run()

			if got.ExitCode != tt.wantExit || got.Outcome.Result != tt.wantResult {
				t.Errorf("exit %d %q, want %d %q; log:\n%s", got.ExitCode, got.Outcome.Result, tt.wantExit, tt.wantResult, log.String())
			}
			if fmt.Sprint(b.settled) != fmt.Sprint(tt.wantSettled) {
				t.Errorf("settled %q, want %q", b.settled, tt.wantSettled)
			}
			if fmt.Sprint(r.ran) != fmt.Sprint(tt.wantRan) {
				t.Errorf("ran %q, want %q", r.ran, tt.wantRan)
			}
			for _, settled := range b.settled {
				if nacked, ok := strings.CutPrefix(settled, "nack "); ok && slices.Contains(r.ran, strings.Fields(nacked)[0]) {
					t.Errorf("%s: the agent nacked a delivery it ran; a run item is rejected", settled)
				}
			}
			if tt.wantPrefetches != nil && fmt.Sprint(b.prefetches) != fmt.Sprint(tt.wantPrefetches) {
				t.Errorf("consumers with prefetch %v, want %v", b.prefetches, tt.wantPrefetches)
			}
			if tt.wantClosedWith != nil && fmt.Sprint(b.closedWith) != fmt.Sprint(tt.wantClosedWith) {
				t.Errorf("sessions closed holding %q, want %q", b.closedWith, tt.wantClosedWith)
			}
			if fmt.Sprint(b.dead) != fmt.Sprint(tt.wantDead) {
				t.Errorf("dead-lettered %q, want %q", b.dead, tt.wantDead)
			}
			if !strings.Contains(got.Outcome.Error, tt.wantError) {
				t.Errorf("outcome error %q, want it to contain %q", got.Outcome.Error, tt.wantError)
			}
			if tt.mode == constants.ModeDrain && [2]int{got.Outcome.Processed, got.Outcome.Failed} != tt.wantCounts {
				t.Errorf("processed, failed = %d, %d, want %v", got.Outcome.Processed, got.Outcome.Failed, tt.wantCounts)
			}
			for _, want := range tt.wantLog {
				if !strings.Contains(log.String(), want) {
					t.Errorf("the log lacks %q:\n%s", want, log.String())
				}
			}
			if strings.Contains(log.String()+got.Outcome.Error, "secret") {
				t.Errorf("the password leaked:\n%s", log.String())
			}
			if !tt.records && len(b.records) > 0 {
				t.Errorf("results are off, yet records were published: %+v", b.records)
			}
			for _, rec := range b.records {
				if rec.Queue != "q" || rec.Pod != a.hostname || rec.Item != "body of "+rec.MessageID || rec.ExitCode == nil || rec.FinishedAt.Location() != time.UTC {
					t.Errorf("record %+v: want queue q, pod %q, the item's preview, an exit code and a UTC time", rec, a.hostname)
				}
			}
		})
	}
}
