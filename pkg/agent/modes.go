package agent

import (
	"errors"
	"fmt"
	"time"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
)

// one takes at most one item. An item whose ack was lost with the connection is not done: the
// agent reconnects and takes an item again, the same one if the broker hands it back here.
func (a *agent) one() Result {
	deadline := time.Now().Add(a.cfg.EmptyWait)
	var lost outcome.Outcome // the last item whose ack was lost, if any
	for {
		if err := a.ensureSession(); err != nil {
			return a.errorResultWith(lost, err)
		}
		delivery, ok, err := a.sess.src.Get()
		if err != nil {
			if err := a.sessionFailed(err); err != nil {
				return a.errorResultWith(lost, err)
			}
			continue
		}
		a.sessionWorks()
		if ok {
			it := newItem(delivery)
			o, err := a.process(it)
			// Done means acked: the pod did its one item, even when told to stop as it finished.
			if o.Result == outcome.ResultDone {
				return Result{ExitCode: outcome.ExitOK, Outcome: o}
			}
			if ackLost := (*ackLostError)(nil); errors.As(err, &ackLost) {
				if err := a.ackLost(it, ackLost); err != nil {
					return a.errorResultWith(o, err)
				}
				lost, deadline = o, time.Now().Add(max(a.cfg.EmptyWait, a.lostItemWait))
				continue
			}
			if err != nil {
				return a.errorResultWith(o, err)
			}
			return Result{ExitCode: outcome.ExitItemFailed, Outcome: o}
		}
		if !time.Now().Before(deadline) {
			if lost.Result != "" {
				// Another pod has the item, or the broker still holds it for the lost connection;
				// either way this pod did no item, and must not count as a completion.
				return a.errorResultWith(lost, &brokerLostError{err: fmt.Errorf(
					"item %s was processed but its ack was lost with the connection, and the queue stayed empty for %s after reconnecting: this pod ends without an item, and the Job starts another",
					lost.MessageID, formatDuration(max(a.cfg.EmptyWait, a.lostItemWait)))})
			}
			a.logf("queue %s is empty; nothing to do", a.cfg.Queue)
			return Result{ExitCode: outcome.ExitOK, Outcome: outcome.Outcome{Result: outcome.ResultEmpty}}
		}
		if err := a.pause(emptyPollInterval, "waiting for an item"); err != nil {
			return a.errorResultWith(lost, err)
		}
	}
}

// drain takes items until the queue has stayed empty for the idle period.
func (a *agent) drain() Result {
	for {
		if err := a.ensureConsumer(); err != nil {
			return a.errorResult(err)
		}
		idle := time.NewTimer(a.cfg.Idle)
		select {
		case delivery, ok := <-a.sess.deliveries:
			idle.Stop()
			if !ok {
				if a.sess.cancelled {
					// Cancelled by adaptPrefetch: the next consumer has another prefetch.
					a.sess.deliveries = nil
					continue
				}
				if err := a.sessionFailed(errors.New("the broker closed the connection or cancelled the consumer")); err != nil {
					return a.errorResult(err)
				}
				continue
			}
			it := newItem(delivery)
			if a.retriesForever(it) {
				a.stopConsuming()
				a.requeue(it)
				return a.drainResult(fmt.Sprintf("item %s failed here before and came back with no delivery count (a classic queue, which has no delivery limit), so it was requeued and draining stops rather than retrying it forever", it.messageID))
			}
			if err := a.processCounted(it); err != nil {
				return a.errorResultWith(a.last, err)
			}
		case <-idle.C:
			done, err := a.confirmEmpty()
			if err != nil {
				return a.errorResultWith(a.last, err)
			}
			if done {
				return a.drainResult(fmt.Sprintf("queue %s stayed empty for %s", a.cfg.Queue, a.cfg.Idle))
			}
		case sig := <-a.cfg.Signals:
			idle.Stop()
			a.logf("stopped by %s while waiting for an item", signalName(sig))
			return a.errorResult(&interruptedError{signal: sig})
		}
	}
}

// confirmEmpty is called when no item arrived for the idle period. It stops the consumer first,
// so that no item can be delivered while the agent decides to exit (an item held by an exiting
// agent goes back to the queue, but on a quorum queue that costs it a delivery attempt), then
// processes whatever arrived meanwhile and checks that no ready message is left.
func (a *agent) confirmEmpty() (done bool, err error) {
	if cancelErr := a.cancelConsumer(); cancelErr != nil {
		return false, a.sessionFailed(cancelErr)
	}
	arrived := false
	for a.sess != nil && a.sess.deliveries != nil {
		delivery, ok := <-a.sess.deliveries
		if !ok {
			a.sess.deliveries = nil
			break
		}
		arrived = true
		it := newItem(delivery)
		if a.retriesForever(it) {
			a.requeue(it) // the drain loop stops when it comes back
			continue
		}
		if err := a.processCounted(it); err != nil {
			return false, err
		}
	}
	if arrived || a.sess == nil {
		return false, nil
	}
	ready, inspectErr := a.sess.src.Ready()
	if inspectErr != nil {
		return false, a.sessionFailed(inspectErr)
	}
	return ready == 0 && !a.mayGetLostItemBack(), nil
}

// mayGetLostItemBack reports items whose ack was lost and that have not come back, while the
// broker may still hold them for the lost connection: until it notices that the connection is
// dead they are neither ready nor anyone's, and a drain that ended now would leave them behind.
func (a *agent) mayGetLostItemBack() bool {
	if len(a.awaiting) == 0 {
		return false
	}
	left := a.lostItemWait - time.Since(a.lostAt)
	if left <= 0 {
		return false
	}
	if !a.awaitingSaid {
		a.awaitingSaid = true
		a.logf("queue %s looks empty, but the broker has not given back %s whose ack was lost (it may still hold it for the lost connection); waiting up to %s for it",
			a.cfg.Queue, items(len(a.awaiting)), formatDuration(left))
	}
	return true
}

func (a *agent) processCounted(it item) error {
	delete(a.awaiting, it.messageID)
	o, err := a.process(it)
	a.last = o
	var lost *ackLostError
	if errors.As(err, &lost) {
		return a.ackLost(it, lost)
	}
	switch o.Result {
	case outcome.ResultDone:
		a.processed++
	case outcome.ResultFailed:
		a.failed++
		if a.failedIDs == nil {
			a.failedIDs = make(map[string]bool)
		}
		a.failedIDs[it.messageID] = true
	}
	return err
}

// ackLost decides whether the agent goes on after an item's ack, or its record, was lost: the
// broker delivers the item again, here or to another pod. An outage says nothing about the item,
// and the agent goes on however often it happens. The broker dropping the item's channel on a
// live connection twice means it does so whenever the item runs, and would go on doing so.
func (a *agent) ackLost(it item, lost *ackLostError) error {
	if a.awaiting == nil {
		a.awaiting = make(map[string]bool)
	}
	a.awaiting[it.messageID], a.lostAt, a.awaitingSaid = true, time.Now(), false
	if !lost.brokerDropsIt {
		return nil
	}
	if a.lostAcks[it.messageID] {
		return &unreachableError{err: fmt.Errorf("%w, for the second time: the broker closes the channel while the command runs, as RabbitMQ does when an item takes longer than its consumer_timeout (30 minutes by default); raise consumer_timeout or set --item-timeout below it", lost)}
	}
	if a.lostAcks == nil {
		a.lostAcks = make(map[string]bool)
	}
	a.lostAcks[it.messageID] = true
	return nil
}

// retriesForever reports an item that already failed in this agent and came back without the
// delivery count that quorum queues keep: its queue has no delivery limit, so draining on would
// run it again and again. Quorum queues count deliveries and dead-letter at their limit.
func (a *agent) retriesForever(it item) bool {
	_, counted := it.delivery.Headers["x-delivery-count"]
	return !counted && a.failedIDs[it.messageID]
}

// drainResult ends a drain for the reason given, with the pod's tallies.
func (a *agent) drainResult(reason string) Result {
	o := a.last
	o.Processed, o.Failed = a.processed, a.failed
	switch {
	case a.failed > 0:
		o.Result = outcome.ResultFailed
		a.logf("%s; %s done, %s of %s failed", reason, items(a.processed), plural(a.failed, "attempt"), items(len(a.failedIDs)))
		return Result{ExitCode: outcome.ExitItemFailed, Outcome: o}
	case a.processed == 0:
		a.logf("queue %s is empty; nothing to do", a.cfg.Queue)
		return Result{ExitCode: outcome.ExitOK, Outcome: outcome.Outcome{Result: outcome.ResultEmpty}}
	default:
		o.Result = outcome.ResultDone
		a.logf("%s; %s done", reason, items(a.processed))
		return Result{ExitCode: outcome.ExitOK, Outcome: o}
	}
}
