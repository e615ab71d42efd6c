package agent

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
)

// misconfiguredError is a failure that retrying cannot fix: the Job should fail at once.
type misconfiguredError struct{ err error }

func (e *misconfiguredError) Error() string { return e.err.Error() }
func (e *misconfiguredError) Unwrap() error { return e.err }

func misconfigured(format string, args ...any) error {
	return &misconfiguredError{err: fmt.Errorf(format, args...)}
}

// unreachableError means the broker could not be reached within the connect budget before the
// agent had worked with it, or keeps misbehaving in a way that a new pod may not meet.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string { return e.err.Error() }
func (e *unreachableError) Unwrap() error { return e.err }

// brokerLostError means the broker went away after the agent had worked with it, and did not
// come back within the outage bound. The URL, credentials and queue were right, so this is an
// outage, not a fault of the Job's: the pod's failure should not count against its backoff limit.
type brokerLostError struct{ err error }

func (e *brokerLostError) Error() string { return e.err.Error() }
func (e *brokerLostError) Unwrap() error { return e.err }

// ackLostError means the command ran but its ack, or the result record that goes before it,
// did not reach the broker, which will deliver the item again.
type ackLostError struct {
	messageID string
	err       error
	record    bool // the result record was lost, so the item was not settled at all
	// brokerDropsIt: the loss is the broker's doing on a connection that stays up (it closed
	// the consumer's channel, as RabbitMQ does past its consumer_timeout, or did not confirm the
	// record in time), which the item's next run would meet again; otherwise the connection
	// went away, an outage that says nothing about the item.
	brokerDropsIt bool
}

func (e *ackLostError) Error() string {
	if e.record {
		return fmt.Sprintf("item %s was processed but its result record did not reach the broker (%v), so it was not settled; the broker delivers it again", e.messageID, e.err)
	}
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

// errorResult maps an error that ends the run to its exit code and outcome.
func (a *agent) errorResult(err error) Result {
	return a.errorResultWith(outcome.Outcome{}, err)
}

func (a *agent) errorResultWith(o outcome.Outcome, err error) Result {
	if a.cfg.Mode == constants.ModeDrain {
		o.Processed, o.Failed = a.processed, a.failed
	}
	var interrupted *interruptedError
	if errors.As(err, &interrupted) {
		o.Result = outcome.ResultInterrupted
		return Result{ExitCode: outcome.ExitInterrupted, Outcome: o}
	}
	message := a.redact.Redact(err.Error())
	a.logf("%s", message)
	o.Result = outcome.ResultError
	o.Error = message
	var mis *misconfiguredError
	var cannotStart *cannotStartError
	var lost *brokerLostError
	switch {
	case errors.As(err, &mis):
		return Result{ExitCode: outcome.ExitMisconfigured, Outcome: o}
	case errors.As(err, &cannotStart):
		return Result{ExitCode: outcome.ExitCannotStart, Outcome: o}
	case errors.As(err, &lost):
		return Result{ExitCode: outcome.ExitBrokerLost, Outcome: o}
	}
	return Result{ExitCode: outcome.ExitBrokerUnreachable, Outcome: o}
}

func shortFailure(run commandResult) string {
	if run.exitCode > 128 {
		return run.err.Error()
	}
	return fmt.Sprintf("exit %d", run.exitCode)
}

func formatDuration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

func items(n int) string { return plural(n, "item") }

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
