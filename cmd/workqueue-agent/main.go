// Command workqueue-agent runs inside a work-queue pod: it takes items from a RabbitMQ queue and
// runs a command for each, with the exit codes and termination message of pkg/outcome.
//
//	workqueue-agent [--mode one|drain] [--queue Q] [--timeout 0] [--idle 5s] [--grace 25s]
//	                [--broker-outage 5m] [--results Q.results] [--result-size 4096]
//	                [--termination-log /dev/termination-log] -- COMMAND [ARGS...]
//	workqueue-agent copy-self DEST
//	workqueue-agent probe HOST:PORT
//	workqueue-agent version
//
// The broker URL comes only from the environment (BROKER_URL), never from a flag, because it
// holds a password. QUEUE and WORKQUEUE_MODE give the defaults of --queue and --mode.
//
// With --results, every attempt the agent settles because the command ran (exit 0, a non-zero
// exit, a --timeout kill) first publishes a result record (pkg/outcome.Record) to that queue
// with publisher confirms; the item is acked or given back only once the broker confirmed the
// record. The record holds what the command wrote to $WORKQUEUE_RESULT_FILE, else the end of its
// standard output, up to --result-size bytes.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/agent"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/outcome"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

// maxPrefetch, set at build time with -ldflags "-X main.maxPrefetch=1", builds an agent whose
// drain consumer never holds more than one item (agent.Config.MaxPrefetch): the baseline of
// BenchmarkDrainRateVersusAmqpConsume. A release leaves it empty; it is no interface of the agent's.
var maxPrefetch string

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version":
			fmt.Fprintln(stdout, version)
			return outcome.ExitOK
		case "probe":
			return runProbe(args[1:], stdout, stderr)
		case "copy-self":
			if len(args) != 2 {
				fmt.Fprintln(stderr, "workqueue-agent: usage: workqueue-agent copy-self DEST")
				return outcome.ExitMisconfigured
			}
			if err := copySelf(args[1]); err != nil {
				fmt.Fprintf(stderr, "workqueue-agent: %v\n", err)
				return outcome.ExitMisconfigured
			}
			return outcome.ExitOK
		}
	}

	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return outcome.ExitOK
	}
	if err != nil {
		// The flag package has already printed what was wrong with the arguments.
		message := outcome.Outcome{Result: outcome.ResultError, Error: err.Error()}
		_ = agent.WriteTerminationLog(cfg.TerminationLog, message)
		return outcome.ExitMisconfigured
	}

	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	cfg.Signals = signals
	return agent.Run(cfg).ExitCode
}

func parseFlags(args []string, stderr io.Writer) (agent.Config, error) {
	cfg := agent.Config{BrokerURL: os.Getenv(constants.EnvBrokerURL), TerminationLog: agent.DefaultTerminationLog}
	flags := flag.NewFlagSet("workqueue-agent", flag.ContinueOnError)
	flags.SetOutput(stderr)
	mode := flags.String("mode", envOr(constants.EnvMode, string(constants.ModeOne)),
		"one: take at most one item; drain: take items until the queue stays empty for --idle; WORKQUEUE_MODE sets the default")
	flags.StringVar(&cfg.Queue, "queue", os.Getenv(constants.EnvQueue), "the queue to take items from; QUEUE sets the default")
	flags.DurationVar(&cfg.Timeout, "timeout", 0, "kill the command and requeue its item after this long (0: no limit)")
	flags.DurationVar(&cfg.Idle, "idle", agent.DefaultIdle, "drain mode: exit once the queue has stayed empty this long")
	flags.DurationVar(&cfg.Grace, "grace", agent.DefaultGrace, "after SIGTERM, how long the command may take to stop before it is killed")
	flags.DurationVar(&cfg.BrokerOutage, "broker-outage", agent.DefaultBrokerOutage,
		"once the agent has worked with the broker, how long it waits for a lost broker to come back before it exits 8")
	flags.IntVar(&cfg.MaxAttempts, "max-attempts", 0,
		"the queue's delivery attempts per item (0: not known); at 1, drain mode never holds an item it has not started")
	flags.StringVar(&cfg.Results, "results", "", "publish a result record per settled attempt to this queue, normally QUEUE"+constants.ResultsSuffix+" (empty: no records)")
	flags.IntVar(&cfg.ResultSize, "result-size", outcome.DefaultResultSize, fmt.Sprintf("with --results: the most bytes of output a record holds (1 to %d)", agent.MaxResultSize))
	flags.StringVar(&cfg.TerminationLog, "termination-log", agent.DefaultTerminationLog, "file to write the JSON outcome to")
	flags.Usage = func() {
		fmt.Fprint(stderr, `Usage: workqueue-agent [flags] -- COMMAND [ARGS...]
       workqueue-agent copy-self DEST
       workqueue-agent version

Takes items from the RabbitMQ queue and runs COMMAND for each, with the item on stdin and
WORKQUEUE_QUEUE, WORKQUEUE_MESSAGE_ID and WORKQUEUE_ATTEMPT in its environment.
Exit 0 acks the item; anything else gives it back to the queue (basic.reject), which retries it
up to its delivery limit. In drain mode, while commands take less than 0.1s, the next item is kept
ready (not with --max-attempts 1); one not started when the agent stops goes back with basic.nack.
BROKER_URL must be set in the environment.

With --results QUEUE.results, each attempt that ends with the command's exit (or its --timeout)
first publishes a result record to that queue, confirmed by the broker before the item is acked
or given back. The record holds what the command wrote to the file named by
WORKQUEUE_RESULT_FILE, else the end of its stdout, up to --result-size bytes.

A broker lost once the agent has worked with it is waited for up to --broker-outage, and the
agent carries on when it is back; an item whose ack was lost with it is delivered again.

Exit codes: 0 done or queue empty, 3 an item failed, 4 interrupted, 5 misconfigured,
6 broker unreachable from the start (within 30s), or it closes the channel under the same item
twice, 7 the command could not start in this pod (too many processes, no memory), 8 the broker
was lost and did not come back within --broker-outage.

Flags:
`)
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		return cfg, err
	}
	cfg.Mode = constants.Mode(*mode)
	cfg.Command = flags.Args()
	if maxPrefetch == "1" {
		cfg.MaxPrefetch = 1
	}
	if cfg.Timeout < 0 || cfg.Idle <= 0 || cfg.Grace <= 0 || cfg.BrokerOutage <= 0 {
		err := errors.New("--timeout must not be negative; --idle, --grace and --broker-outage must be positive")
		fmt.Fprintf(stderr, "workqueue-agent: %v\n", err)
		return cfg, err
	}
	if cfg.MaxAttempts < 0 {
		err := errors.New("--max-attempts must not be negative: give the queue's attempts per item, or 0 when not known")
		fmt.Fprintf(stderr, "workqueue-agent: %v\n", err)
		return cfg, err
	}
	if cfg.ResultSize < 1 || cfg.ResultSize > agent.MaxResultSize {
		err := fmt.Errorf("--result-size must be 1 to %d bytes", agent.MaxResultSize)
		fmt.Fprintf(stderr, "workqueue-agent: %v\n", err)
		return cfg, err
	}
	return cfg, nil
}

func envOr(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

// copySelf copies this executable to dest: an init container puts the agent into a shared
// emptyDir this way, since the agent's image has no shell and no cp.
func copySelf(dest string) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find my own executable: %w", err)
	}
	if info, err := os.Stat(dest); err == nil && info.IsDir() {
		dest = filepath.Join(dest, "workqueue-agent")
	}
	in, err := os.Open(self)
	if err != nil {
		return fmt.Errorf("cannot read my own executable: %w", err)
	}
	defer in.Close()

	// Write next to dest and rename, so that dest is never a half-written executable.
	tmp, err := os.CreateTemp(filepath.Dir(dest), ".workqueue-agent-*")
	if err != nil {
		return fmt.Errorf("cannot copy the agent to %s: %w", dest, err)
	}
	defer os.Remove(tmp.Name())
	_, copyErr := io.Copy(tmp, in)
	if err := errors.Join(copyErr, tmp.Chmod(0o755), tmp.Close()); err != nil {
		return fmt.Errorf("cannot copy the agent to %s: %w", dest, err)
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return fmt.Errorf("cannot copy the agent to %s: %w", dest, err)
	}
	return nil
}
