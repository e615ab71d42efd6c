package agent

import (
	"errors"
	"fmt"
	"time"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
)

// one takes at most one item.
func (a *agent) one() Result {
	deadline := time.Now().Add(a.cfg.EmptyWait)
	for {
		if err := a.ensureSession(); err != nil {
			return a.errorResult(err)
		}
		delivery, ok, err := a.sess.src.Get()
		if err != nil {
			if err := a.sessionFailed(err); err != nil {
				return a.errorResult(err)
			}
			continue
		}
		a.sessionFailures = 0
		if ok {
			o, err := a.process(newItem(delivery))
			// Done means acked: the pod did its one item, even when told to stop as it finished.
			if o.Result == outcome.ResultDone {
				return Result{ExitCode: outcome.ExitOK, Outcome: o}
			}
			if err != nil {
				return a.errorResultWith(o, err)
			}
			return Result{ExitCode: outcome.ExitItemFailed, Outcome: o}
		}
		if !time.Now().Before(deadline) {
			a.logf("queue %s is empty; nothing to do", a.cfg.Queue)
			return Result{ExitCode: outcome.ExitOK, Outcome: outcome.Outcome{Result: outcome.ResultEmpty}}
		}
		select {
		case <-time.After(emptyPollInterval):
		case sig := <-a.cfg.Signals:
			a.logf("stopped by %s while waiting for an item", signalName(sig))
			return a.errorResult(&interruptedError{signal: sig})
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
				if err := a.sessionFailed(errors.New("the broker closed the connection or cancelled the consumer")); err != nil {
					return a.errorResult(err)
				}
				continue
			}
			it := newItem(delivery)
			if a.retriesForever(it) {
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
	if cancelErr := a.sess.src.Cancel(a.sess.consumerTag); cancelErr != nil {
		return false, a.sessionFailed(cancelErr)
	}
	deliveries := a.sess.deliveries
	a.sess.deliveries = nil
	arrived := false
	for delivery := range deliveries {
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
	return ready == 0, nil
}

func (a *agent) processCounted(it item) error {
	o, err := a.process(it)
	a.last = o
	var lost *ackLostError
	if errors.As(err, &lost) {
		// The broker delivers the item again, here or to another pod. Twice for the same item
		// means the broker drops the channel while the command runs, and would go on doing so.
		if a.lostAcks[it.messageID] {
			return &unreachableError{err: fmt.Errorf("%w, for the second time: the broker closes the channel while the command runs, as RabbitMQ does when an item takes longer than its consumer_timeout (30 minutes by default); raise consumer_timeout or set --item-timeout below it", lost)}
		}
		if a.lostAcks == nil {
			a.lostAcks = make(map[string]bool)
		}
		a.lostAcks[it.messageID] = true
		return nil
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
