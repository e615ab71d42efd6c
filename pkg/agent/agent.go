// Package agent is the in-pod worker that takes items from a RabbitMQ queue and runs a command
// for each: what amqp-consume does in the Kubernetes work-queue pattern, with the gaps closed.
//
// For every message the command runs directly (no shell: an item is data, never code) with the
// body on stdin and WORKQUEUE_QUEUE, WORKQUEUE_MESSAGE_ID and WORKQUEUE_ATTEMPT in its
// environment. Exit 0 acks the message; anything else (including --timeout) requeues it, so the
// queue's delivery limit retries it and finally dead-letters it. A signal is forwarded to the
// command, which gets a grace period before it is killed; its item is requeued.
//
// Drain mode keeps the next item ready (prefetch 2) while the commands are short, instead of
// waiting a broker round trip for it after each ack; an item held but not started when the agent
// stops goes back to the queue with basic.nack (see prefetch.go). One mode takes one item.
//
// Processing is at-least-once: nothing is acked before the command succeeded, and if the broker
// connection is lost while the command runs, the broker delivers the item again (to this agent
// after it reconnects, or to another pod), even if the command finished it.
//
// A broker lost once the agent has worked with it (its pod restarted, a cluster node gone) is an
// outage: the agent reconnects, waiting up to Config.BrokerOutage, and carries on. A broker that
// does not come back ends the run with outcome.ExitBrokerLost, which the Job does not count
// against its backoff limit; one never reached ends it after Config.ConnectBudget with
// outcome.ExitBrokerUnreachable, which it does, since that is more likely a wrong URL. An item
// whose ack was lost with the connection is no failure of the item's, however often it happens;
// the agent does not take an empty queue for finished until the broker has had time to give
// such an item back (lostItemWait).
//
// With Config.Results (--results QUEUE.results), every attempt settled because the command ran
// (exit 0, a non-zero exit, a --timeout kill) first publishes an outcome.Record to that queue with
// publisher confirms; the item is acked or given back only after the confirm, and a record that
// does not reach the broker leaves the item unsettled, as a lost ack does. The command then also
// gets WORKQUEUE_RESULT_FILE, a path in a private directory made for the item, whose content
// becomes the record's output; without it, the end of the command's stdout does.
//
// The agent never declares a queue, and never passes BROKER_URL on to the command.
package agent

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
)

// Defaults for the zero values of Config.
const (
	DefaultIdle          = 5 * time.Second
	DefaultGrace         = 25 * time.Second
	DefaultConnectBudget = 30 * time.Second
	// DefaultBrokerOutage covers a RabbitMQ pod restarting in place (a node boots in 10 to
	// 30 s) and one rescheduled to another node with its volume (a minute or two), with room to
	// spare; waiting costs an idle pod that holds no item.
	DefaultBrokerOutage   = 5 * time.Minute
	DefaultEmptyWait      = time.Second
	DefaultTerminationLog = "/dev/termination-log"
	// MaxResultSize is the largest Config.ResultSize: a record waits in the broker's memory, and
	// RabbitMQ's default max_message_size is 16 MiB.
	MaxResultSize = 16 << 20
)

// emptyPollInterval is how often one mode looks at an empty queue again within EmptyWait.
const emptyPollInterval = 250 * time.Millisecond

// lostItemWait is how long after losing an item's ack the agent waits for the broker to give
// the item back before it takes an empty queue for finished. A restarted broker has it ready at
// once; one that was cut off from the agent holds it for the old connection until it notices that
// connection is dead, by missed heartbeats: the client asks for 10 s heartbeats and RabbitMQ
// gives up on a peer after two missed ones, which took 15 s (RabbitMQ 4.0) to 30 s (3.10) in
// the tests.
const lostItemWait = 45 * time.Second

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
	// BrokerOutage is how long the agent waits for a broker it has worked with to come back
	// after losing it; DefaultBrokerOutage when 0.
	BrokerOutage time.Duration
	// EmptyWait is how long one mode gives an empty queue before exiting; DefaultEmptyWait when 0.
	EmptyWait time.Duration
	// MaxPrefetch is how many items a drain consumer may hold: 1, or 2 to keep the next item
	// ready while commands are short (see wantPrefetch); DefaultMaxPrefetch when 0.
	MaxPrefetch int
	// MaxAttempts is the queue's delivery attempts per item as the user gave them to run; 0 when
	// not known. At 1 a drain consumer holds one item at a time: before RabbitMQ 4.3 an item
	// held unstarted and given back would spend its only attempt, and be dead-lettered unrun.
	MaxAttempts int

	// Results is the queue that gets a result record for every attempt the agent settles
	// because the command ran (normally QUEUE.results); empty for none. See publishRecord.
	Results string
	// ResultSize bounds the output a record holds, 1 to MaxResultSize bytes;
	// outcome.DefaultResultSize when 0.
	ResultSize int

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
	redact         queue.Redactor
	vhost          string
	commandPath    string
	env            []string // the command's environment, without the per-item variables
	hostname       string
	connectionName string

	// open, openRecorder and runner are the agent's seams: where items come from, where their
	// records go and what runs them. Tests replace them with fakes to table-test the decision
	// taken for each item.
	open         func(timeout time.Duration) (source, error)
	openRecorder func(src source, name string) (recorder, error)
	runner       runner

	logMu sync.Mutex // a dial in the background may log while the agent stops

	sess            *session
	sessionFailures int
	// worked: a session of this agent took an item or started a consumer, so the URL, the
	// credentials and the queue are right; a broker lost from then on is an outage, waited for
	// up to BrokerOutage. lostSince is when the current outage began, zero when there is none.
	worked    bool
	lostSince time.Time

	// Drain-mode tallies and the last item's outcome.
	processed, failed int
	last              outcome.Outcome
	consumerSeq       int
	// lastShort: the last command ran shorter than shortItem (see wantPrefetch).
	lastShort bool
	// failedIDs remembers items that failed in this process, to notice a queue that hands the
	// same failed item back with no delivery limit to end it.
	failedIDs map[string]bool
	// lostAcks remembers items whose ack the broker dropped with the channel, to notice a broker
	// that drops it every time the item runs.
	lostAcks map[string]bool
	// awaiting holds the items whose ack was lost (the last at lostAt) and that have not come back
	// to this agent since: a drain does not end on an empty queue while the broker may still give
	// them back (see mayGetLostItemBack), nor does one mode before lostItemWait.
	awaiting     map[string]bool
	lostAt       time.Time
	lostItemWait time.Duration
	awaitingSaid bool
	// resultDirReported: the agent said once that no directory for result files can be made.
	resultDirReported bool
}

// Run takes items from the queue and runs the command for each, as cfg.Mode says, writes the
// outcome to cfg.TerminationLog, and returns the exit code main should exit with.
//
// Run makes the process the reaper of orphans its commands leave behind (see adoptOrphans), and
// reaps them between items: it must not run beside other code of the process that waits for
// child processes.
func Run(cfg Config) Result {
	adoptOrphans()
	return newAgent(cfg).run()
}

func (a *agent) run() Result {
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
	if cfg.BrokerOutage <= 0 {
		cfg.BrokerOutage = DefaultBrokerOutage
	}
	if cfg.EmptyWait <= 0 {
		cfg.EmptyWait = DefaultEmptyWait
	}
	if cfg.ResultSize == 0 {
		cfg.ResultSize = outcome.DefaultResultSize
	}
	if cfg.MaxPrefetch == 0 {
		cfg.MaxPrefetch = DefaultMaxPrefetch
	}
	if cfg.MaxAttempts == 1 {
		cfg.MaxPrefetch = 1
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
	a := &agent{
		cfg:            cfg,
		redact:         queue.NewRedactor(cfg.BrokerURL),
		env:            commandEnv(os.Environ()),
		hostname:       hostname,
		connectionName: strings.TrimSpace("workqueue-agent " + hostname),
		lostItemWait:   lostItemWait,
	}
	a.open = a.dialBroker
	a.openRecorder = brokerRecorder
	a.runner = execRunner{a}
	return a
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
	case a.cfg.ResultSize < 1 || a.cfg.ResultSize > MaxResultSize:
		return misconfigured("the result size %d is out of range: it must be 1 to %d bytes", a.cfg.ResultSize, MaxResultSize)
	case a.cfg.MaxPrefetch < 1 || a.cfg.MaxPrefetch > 2:
		return misconfigured("the prefetch %d is out of range: it must be 1 or 2", a.cfg.MaxPrefetch)
	}
	if a.cfg.Results != "" {
		if err := queue.ValidateName(a.cfg.Results); err != nil {
			return misconfigured("invalid results queue (--results): %w", err)
		}
		if a.cfg.Results == a.cfg.Queue {
			return misconfigured("the results queue (--results) is the queue the items come from, %q: records would come back as items; use %q", a.cfg.Queue, queue.ResultsName(a.cfg.Queue))
		}
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
		return misconfigured("cannot run the command %q: %w: check that the image contains it and that it is executable", a.cfg.Command[0], err)
	}
	a.commandPath = path
	return nil
}

// logf writes one line to the agent's log, with the broker password redacted.
func (a *agent) logf(format string, args ...any) {
	line := a.redact.Redact(fmt.Sprintf(format, args...))
	a.logMu.Lock()
	defer a.logMu.Unlock()
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
