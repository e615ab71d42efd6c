package agent

import (
	"time"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
)

// A drain consumer with prefetch 1 waits a broker round trip for every item: from the ack to the
// next delivery. With prefetch 2 the next item is already here when the command exits, which
// matters for short commands only (about 0.2 ms per item on a local broker, 10–15% of an item
// of `cat`, nothing against an item of a second). Holding an item the agent has not started has
// two costs, both bounded by keeping it to short commands:
//   - another pod that finds the queue empty idles while the item waits here behind the running
//     command: at most one item per pod, for as long as that command runs;
//   - an item given back unstarted when the agent stops (a signal, an error) counts toward the
//     queue's delivery limit, as every give-back does on RabbitMQ before 4.3 (basic.nack
//     included; from 4.3 a nack does not count, and the agent nacks it).
//
// So the consumer starts with prefetch 1, moves to 2 after a command that took less than
// shortItem, and back to 1 after one that took longer. Each move cancels the consumer and starts
// a new one: three round trips, once per change.
const shortItem = 100 * time.Millisecond

// DefaultMaxPrefetch is Config.MaxPrefetch when 0: a drain consumer keeps the next item ready
// while commands are short.
const DefaultMaxPrefetch = 2

// giveBackTimeout bounds how long an agent that drops its session waits for the broker to stop
// its consumer and for the deliveries already on their way, which it gives back.
const giveBackTimeout = 2 * time.Second

// wantPrefetch is the prefetch for the next drain consumer: 2 after a short command, 1 before the
// first command and after a long one, and 1 whenever Config.MaxPrefetch says so.
func (a *agent) wantPrefetch() int {
	if a.cfg.Mode == constants.ModeDrain && a.lastShort && a.cfg.MaxPrefetch > 1 {
		return a.cfg.MaxPrefetch
	}
	return 1
}

// adaptPrefetch notes how long a command ran, and cancels the drain consumer when its prefetch
// is not the one wanted now; the drain loop starts a new one once the cancelled one has yielded
// what was on its way. It runs before the item is settled, so that the broker, which fills the
// place of a settled item at once, sends nothing more to the cancelled consumer. A consumer
// that cannot be cancelled went with its channel: the settling fails next, and the session is
// dropped there.
func (a *agent) adaptPrefetch(ran time.Duration) {
	a.lastShort = ran < shortItem
	if s := a.sess; s != nil && s.deliveries != nil && !s.cancelled && s.consumerPrefetch != a.wantPrefetch() {
		_ = a.cancelConsumer()
	}
}

// cancelConsumer stops the drain consumer: the broker delivers nothing more to it, and its
// delivery channel closes once it has yielded what was already on its way.
func (a *agent) cancelConsumer() error {
	s := a.sess
	if s == nil || s.deliveries == nil || s.cancelled {
		return nil
	}
	s.cancelled = true
	err := s.src.Cancel(s.consumerTag)
	s.cancelConfirmed = err == nil
	return err
}

// stopConsuming cancels the drain consumer before the agent settles an item and stops, so that
// the broker does not hand it another item in the item's place, which it would have to give back
// unstarted. It waits at most giveBackTimeout; a consumer it cannot cancel went with its channel,
// and the broker takes back what that held by itself.
func (a *agent) stopConsuming() {
	s := a.sess
	if s == nil || s.deliveries == nil || s.cancelled {
		return
	}
	s.cancelled = true
	done := make(chan error, 1)
	go func() { done <- s.src.Cancel(s.consumerTag) }()
	select {
	case err := <-done:
		s.cancelConfirmed = err == nil
	case <-time.After(giveBackTimeout):
	}
}

// giveBackUnstarted gives back, before the session closes, every item its drain consumer
// delivered that the agent has not started: it cancels the consumer, then nacks with requeue what
// was delivered. A nack, not a reject: from RabbitMQ 4.3 a quorum queue does not count a nack
// toward the delivery limit, and the item never ran. Earlier versions count it as they would
// count the closed channel. Only once the broker confirmed the cancel: to a live consumer, an
// item nacked would come straight back. Without that confirmation, or with the channel gone, the
// items go back with the closed connection.
func (a *agent) giveBackUnstarted() {
	s := a.sess
	if s.deliveries == nil {
		return
	}
	a.stopConsuming()
	if !s.cancelConfirmed {
		return
	}
	deadline := time.NewTimer(giveBackTimeout)
	defer deadline.Stop()
	for {
		select {
		case delivery, ok := <-s.deliveries:
			if !ok {
				s.deliveries = nil
				return
			}
			it := newItem(delivery)
			if err := delivery.Nack(false, true); err != nil {
				a.logf("%s: not started; cannot give it back (%v); the broker takes it back when the connection closes", it.subject(), err)
				return
			}
			a.logf("%s: not started; given back to the queue", it.subject())
		case <-deadline.C:
			return
		}
	}
}
