package agent

import (
	"fmt"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
)

// runner runs the command for one item; runCommand in production, a fake in tests.
type runner interface {
	run(it item) commandResult
}

type execRunner struct{ a *agent }

func (r execRunner) run(it item) commandResult { return r.a.runCommand(it) }

// process runs the command for one item and settles the delivery: ack when the command exited
// 0, requeue otherwise. With results on, a record of the attempt goes to the results queue
// first, and the item is settled only once the broker confirmed it. The error is non-nil when the agent must stop (a signal, a command that
// cannot start) or when the ack, or the record before it, was lost with the connection (an
// ackLostError: the broker delivers the item again). A command that exits 0 although a signal
// came is acked: its work is done; the agent stops after it.
func (a *agent) process(it item) (outcome.Outcome, error) {
	run := a.runner.run(it)
	o := outcome.Outcome{
		Item:       it.preview,
		MessageID:  it.messageID,
		Attempt:    it.attempt,
		DurationMS: run.duration.Milliseconds(),
	}
	if run.started {
		code := run.exitCode
		o.ExitCode = &code
	}
	subject := it.subject()

	var stop error
	if run.signal != nil {
		stop = &interruptedError{signal: run.signal}
	}
	if stop != nil || !run.started {
		// The agent stops after this item: no other item must come in its place.
		a.stopConsuming()
	} else {
		a.adaptPrefetch(run.duration)
	}
	switch {
	case run.exitedZero():
		if err := a.publishRecord(it, run, outcome.ResultDone, ""); err != nil {
			return a.recordFailed(o, it, subject, "done in "+formatDuration(run.duration), err, stop)
		}
		if err := it.delivery.Ack(false); err != nil {
			lost := &ackLostError{messageID: it.messageID, err: err}
			if reason := a.channelClosedByBroker(); reason != nil {
				lost.err, lost.brokerDropsIt = reason, true
			}
			a.logf("%s: done in %s, but the ack did not reach the broker (%v); the broker will deliver the item again", subject, formatDuration(run.duration), lost.err)
			a.dropSession()
			o.Result = outcome.ResultError
			o.Error = a.redact.Redact(lost.Error())
			if stop != nil {
				return o, stop
			}
			return o, lost
		}
		o.Result = outcome.ResultDone
		if stop != nil {
			a.logf("%s: done in %s, although %s came meanwhile; stopping", subject, formatDuration(run.duration), signalName(run.signal))
			return o, stop
		}
		a.logf("%s: done in %s", subject, formatDuration(run.duration))
		return o, nil

	case run.signal != nil:
		o.Result = outcome.ResultInterrupted
		a.requeue(it)
		a.logf("%s: interrupted by %s after %s, requeued", subject, signalName(run.signal), formatDuration(run.duration))
		return o, &interruptedError{signal: run.signal}

	case !run.started:
		o.Result = outcome.ResultError
		o.Error = a.redact.Redact(run.err.Error())
		a.requeue(it)
		if cannotEverStart(run.err) {
			return o, misconfigured("%s: %w; requeued", subject, run.err)
		}
		return o, &cannotStartError{err: fmt.Errorf("%s: %w; requeued for another pod", subject, run.err)}

	case run.timedOut:
		o.Result = outcome.ResultFailed
		o.Error = fmt.Sprintf("timed out after %s", a.cfg.Timeout)
		if err := a.publishRecord(it, run, o.Result, o.Error); err != nil {
			return a.recordFailed(o, it, subject, o.Error, err, nil)
		}
		a.requeue(it)
		a.logf("%s: timed out after %s (killed), requeued", subject, a.cfg.Timeout)
		return o, nil

	default:
		o.Result = outcome.ResultFailed
		o.Error = run.err.Error()
		if err := a.publishRecord(it, run, o.Result, o.Error); err != nil {
			return a.recordFailed(o, it, subject, "failed ("+shortFailure(run)+")", err, nil)
		}
		a.requeue(it)
		a.logf("%s: failed (%s) after %s, requeued", subject, shortFailure(run), formatDuration(run.duration))
		return o, nil
	}
}

// channelClosedByBroker is the broker's reason for closing the consumer's channel under a
// connection that stays up, or nil.
func (a *agent) channelClosedByBroker() error {
	if a.sess == nil {
		return nil
	}
	if reason := a.sess.src.ChannelClosedByBroker(); reason != nil {
		return reason
	}
	return nil
}

// requeue gives the item back to the broker. It rejects rather than nacks: from RabbitMQ 4.3 a
// quorum queue counts basic.reject toward its delivery limit but not basic.nack, so a nacked
// item that always fails would come back forever instead of being dead-lettered. If that
// fails, the connection is gone and the broker requeues the item by itself.
func (a *agent) requeue(it item) {
	if err := it.delivery.Reject(true); err != nil {
		a.logf("cannot requeue item %s (%v); the broker requeues it when the connection closes", it.messageID, err)
		a.dropSession()
	}
}
