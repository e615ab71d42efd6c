// Package agent is the in-pod worker that takes items from a RabbitMQ queue and runs a command
// for each: what amqp-consume does in the Kubernetes work-queue pattern, with the gaps closed.
//
// For every message the command runs directly (no shell: an item is data, never code) with the
// body on stdin and WORKQUEUE_QUEUE, WORKQUEUE_MESSAGE_ID and WORKQUEUE_ATTEMPT in its
// environment. Exit 0 acks the message; anything else (including --timeout) requeues it, so the
// queue's delivery limit retries it and finally dead-letters it. A signal is forwarded to the
// command, which gets a grace period before it is killed; its item is requeued.
//
// Processing is at-least-once: nothing is acked before the command succeeded, and if the broker
// connection is lost while the command runs, the broker delivers the item again (to this agent
// after it reconnects, or to another pod), even if the command finished it.
//
// The agent never declares the queue, and never passes BROKER_URL on to the command.
package agent

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
)

// Defaults for the zero values of Config.
const (
	DefaultIdle           = 5 * time.Second
	DefaultGrace          = 25 * time.Second
	DefaultConnectBudget  = 30 * time.Second
	DefaultEmptyWait      = time.Second
	DefaultTerminationLog = "/dev/termination-log"
)

// emptyPollInterval is how often one mode looks at an empty queue again within EmptyWait.
const emptyPollInterval = 250 * time.Millisecond

// maxSessionFailures bounds how many times in a row a freshly opened session may fail before
// the agent gives up, so that a broker that accepts connections but keeps closing channels
// cannot keep the agent busy forever.
const maxSessionFailures = 5

// Config is everything the agent needs; main fills it from flags and the environment.
type Config struct {
	BrokerURL string // amqp://USER:PASSWORD@HOST:PORT/VHOST; never printed unredacted
	Queue     string
	Mode      constants.Mode // constants.ModeOne when empty
	Command   []string       // the program and its arguments, run once per item

	Timeout time.Duration // per item; 0 means none
	Idle    time.Duration // drain mode: how long the queue must stay empty; DefaultIdle when 0
	Grace   time.Duration // how long the command may take to stop after a signal; DefaultGrace when 0

	// ConnectBudget is how long the agent keeps trying to reach the broker; DefaultConnectBudget when 0.
	ConnectBudget time.Duration
	// EmptyWait is how long one mode gives an empty queue before exiting; DefaultEmptyWait when 0.
	EmptyWait time.Duration

	// TerminationLog is the file the outcome JSON is written to before Run returns; empty for none.
	// A file that cannot be written is reported and otherwise ignored.
	TerminationLog string

	// Signals delivers the signals that tell the agent to stop (main relays SIGTERM and SIGINT).
	Signals <-chan os.Signal

	// Stdout and Stderr receive the command's output; os.Stdout and os.Stderr when nil.
	Stdout, Stderr io.Writer
	// Log receives the agent's own one-line messages; os.Stderr when nil.
	Log io.Writer
}

// Result is how a run of the agent ended: the process exit code and the termination message.
type Result struct {
	ExitCode int
	Outcome  outcome.Outcome
}

type agent struct {
	cfg            Config
	redact         redactor
	vhost          string
	commandPath    string
	env            []string // the command's environment, without the per-item variables
	connectionName string

	sess            *session
	sessionFailures int

	// Drain-mode tallies and the last item's outcome.
	processed, failed int
	last              outcome.Outcome
	consumerSeq       int
	// failedIDs remembers items that failed in this process, to notice a queue that hands the
	// same failed item back with no delivery limit to end it.
	failedIDs map[string]bool
	// lostAcks remembers items whose ack was lost with the connection, to notice a broker that
	// drops the channel every time the item runs.
	lostAcks map[string]bool
}

// Run takes items from the queue and runs the command for each, as cfg.Mode says, writes the
// outcome to cfg.TerminationLog, and returns the exit code main should exit with.
//
// Run makes the process the reaper of orphans its commands leave behind (see adoptOrphans), and
// reaps them between items: it must not run beside other code of the process that waits for
// child processes.
func Run(cfg Config) Result {
	adoptOrphans()
	a := newAgent(cfg)
	var result Result
	if err := a.validate(); err != nil {
		result = a.errorResult(err)
	} else if a.cfg.Mode == constants.ModeDrain {
		result = a.drain()
	} else {
		result = a.one()
	}
	a.dropSession()
	if a.cfg.TerminationLog != "" {
		err := WriteTerminationLog(a.cfg.TerminationLog, result.Outcome)
		if err != nil && !(a.cfg.TerminationLog == DefaultTerminationLog && errors.Is(err, os.ErrNotExist)) {
			a.logf("cannot write the outcome to the termination log: %v", err)
		}
	}
	return result
}

func newAgent(cfg Config) *agent {
	if cfg.Mode == "" {
		cfg.Mode = constants.ModeOne
	}
	if cfg.Idle <= 0 {
		cfg.Idle = DefaultIdle
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.ConnectBudget <= 0 {
		cfg.ConnectBudget = DefaultConnectBudget
	}
	if cfg.EmptyWait <= 0 {
		cfg.EmptyWait = DefaultEmptyWait
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if cfg.Log == nil {
		cfg.Log = os.Stderr
	}
	hostname, _ := os.Hostname()
	return &agent{
		cfg:            cfg,
		redact:         newRedactor(cfg.BrokerURL),
		env:            commandEnv(os.Environ()),
		connectionName: strings.TrimSpace("workqueue-agent " + hostname),
	}
}

// commandEnv is the agent's environment minus BROKER_URL: the command processes data and has no
// business with the broker's password (or printing it).
func commandEnv(environ []string) []string {
	env := make([]string, 0, len(environ))
	for _, kv := range environ {
		if !strings.HasPrefix(kv, constants.EnvBrokerURL+"=") {
			env = append(env, kv)
		}
	}
	return env
}

func (a *agent) validate() error {
	switch {
	case a.cfg.BrokerURL == "":
		return misconfigured("BROKER_URL is not set: pass the broker's URL (amqp://USER:PASSWORD@HOST:5672/VHOST) in the environment, for example from a Secret")
	case a.cfg.Queue == "":
		return misconfigured("no queue given: set QUEUE in the environment or pass --queue")
	case len(a.cfg.Command) == 0 || a.cfg.Command[0] == "":
		return misconfigured("no command given: put the command to run for each item after --, as in: workqueue-agent -- /app/process-item")
	case a.cfg.Mode != constants.ModeOne && a.cfg.Mode != constants.ModeDrain:
		return misconfigured("unknown mode %q: use one or drain", a.cfg.Mode)
	}
	uri, err := amqp.ParseURI(a.cfg.BrokerURL)
	if err != nil {
		// The URL parser quotes fragments of the URL, the password included, so only its
		// own checks (scheme, whitespace, options) are worth repeating.
		var parseErr *url.Error
		reason := err.Error()
		if errors.As(err, &parseErr) {
			reason = "it does not parse as a URL"
		}
		return misconfigured("BROKER_URL is not a valid AMQP URL (%s): expected amqp://USER:PASSWORD@HOST:PORT/VHOST, with characters such as / @ : %% in the password percent-encoded", reason)
	}
	a.vhost = uri.Vhost
	path, err := exec.LookPath(a.cfg.Command[0])
	if err != nil {
		return misconfigured("cannot run the command %q: %v: check that the image contains it and that it is executable", a.cfg.Command[0], err)
	}
	a.commandPath = path
	return nil
}

// one takes at most one item.
func (a *agent) one() Result {
	deadline := time.Now().Add(a.cfg.EmptyWait)
	for {
		if err := a.ensureSession(); err != nil {
			return a.errorResult(err)
		}
		delivery, ok, err := a.sess.ch.Get(a.cfg.Queue, false)
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
	if cancelErr := a.sess.ch.Cancel(a.sess.consumerTag, false); cancelErr != nil {
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
	queue, inspectErr := a.sess.ch.QueueDeclarePassive(a.cfg.Queue, true, false, false, false, nil)
	if inspectErr != nil {
		return false, a.sessionFailed(inspectErr)
	}
	return queue.Messages == 0, nil
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

// process runs the command for one item and settles the delivery: ack when the command exited
// 0, requeue otherwise. The error is non-nil when the agent must stop (a signal, a command that
// cannot start) or when the ack was lost with the connection (an ackLostError: the broker
// delivers the item again). A command that exits 0 although a signal came is acked: its work
// is done; the agent stops after it.
func (a *agent) process(it item) (outcome.Outcome, error) {
	run := a.runCommand(it)
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
	subject := fmt.Sprintf("item %s attempt %d", it.messageID, it.attempt)
	if it.preview != "" {
		subject = fmt.Sprintf("item %s %q attempt %d", it.messageID, it.preview, it.attempt)
	}

	var stop error
	if run.signal != nil {
		stop = &interruptedError{signal: run.signal}
	}
	switch {
	case run.exitedZero():
		if err := it.delivery.Ack(false); err != nil {
			a.logf("%s: done in %s, but the ack did not reach the broker (%v); the broker will deliver the item again", subject, formatDuration(run.duration), err)
			a.dropSession()
			lost := &ackLostError{messageID: it.messageID, err: err}
			o.Result = outcome.ResultError
			o.Error = a.redact.redact(lost.Error())
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
		o.Error = a.redact.redact(run.err.Error())
		a.requeue(it)
		if cannotEverStart(run.err) {
			return o, misconfigured("%s: %v; requeued", subject, run.err)
		}
		return o, &cannotStartError{err: fmt.Errorf("%s: %w; requeued for another pod", subject, run.err)}

	case run.timedOut:
		o.Result = outcome.ResultFailed
		o.Error = fmt.Sprintf("timed out after %s", a.cfg.Timeout)
		a.requeue(it)
		a.logf("%s: timed out after %s (killed), requeued", subject, a.cfg.Timeout)
		return o, nil

	default:
		o.Result = outcome.ResultFailed
		o.Error = run.err.Error()
		a.requeue(it)
		a.logf("%s: failed (%s) after %s, requeued", subject, shortFailure(run), formatDuration(run.duration))
		return o, nil
	}
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
	a.consumerSeq++
	tag := fmt.Sprintf("%s %d", a.connectionName, a.consumerSeq)
	deliveries, err := a.sess.ch.Consume(a.cfg.Queue, tag, false, false, false, false, nil)
	if err != nil {
		if err := a.sessionFailed(err); err != nil {
			return err
		}
		return a.ensureConsumer()
	}
	a.sess.deliveries, a.sess.consumerTag = deliveries, tag
	a.sessionFailures = 0
	return nil
}

// sessionFailed drops a session that stopped working so the next step reconnects. It returns an
// error when the agent should stop instead: the broker refused something for good, or sessions
// keep failing right after they open.
func (a *agent) sessionFailed(err error) error {
	a.dropSession()
	if a.isPermanent(err) {
		return a.permanentRefusal(err)
	}
	a.sessionFailures++
	if a.sessionFailures > maxSessionFailures {
		return &unreachableError{err: fmt.Errorf("the broker at %s keeps closing the connection: %w", a.redact.url, err)}
	}
	a.logf("lost the broker connection (%v); reconnecting", err)
	return nil
}

func (a *agent) dropSession() {
	if a.sess != nil {
		a.sess.close()
		a.sess = nil
	}
}

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
	message := a.redact.redact(err.Error())
	a.logf("%s", message)
	o.Result = outcome.ResultError
	o.Error = message
	var mis *misconfiguredError
	var cannotStart *cannotStartError
	switch {
	case errors.As(err, &mis):
		return Result{ExitCode: outcome.ExitMisconfigured, Outcome: o}
	case errors.As(err, &cannotStart):
		return Result{ExitCode: outcome.ExitCannotStart, Outcome: o}
	}
	return Result{ExitCode: outcome.ExitBrokerUnreachable, Outcome: o}
}

// logf writes one line to the agent's log, with the broker password redacted.
func (a *agent) logf(format string, args ...any) {
	line := a.redact.redact(fmt.Sprintf(format, args...))
	fmt.Fprintf(a.cfg.Log, "workqueue-agent: %s\n", line)
}

// WriteTerminationLog writes the outcome where the kubelet picks it up as the container's
// termination message.
func WriteTerminationLog(path string, o outcome.Outcome) error {
	flags := os.O_WRONLY | os.O_TRUNC | os.O_CREATE
	if path == DefaultTerminationLog {
		// The kubelet creates this file in a pod; outside one, do not litter /dev.
		flags &^= os.O_CREATE
	}
	f, err := os.OpenFile(path, flags, 0o644)
	if err != nil {
		return err
	}
	_, writeErr := f.Write(o.Encode())
	return errors.Join(writeErr, f.Close())
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
