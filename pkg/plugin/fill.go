package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/items"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/workqueue"
)

var fillExample = examples(`
	# Kubernetes' work-queue example: a message per line of items.txt into queue job1
	kubectl workqueue fill job1 --from-file items.txt

	# Items from a pipe, or given one by one
	seq 1 1000 | kubectl workqueue fill numbers
	kubectl workqueue fill job1 --item apple --item banana

	# JSON documents, one per line, to a broker outside the cluster
	kubectl workqueue fill events --json-lines --from-file events.jsonl --broker-url amqp://user:pass@mq.example:5672/

	# Resume a fill that stopped after 40000 items were confirmed
	kubectl workqueue fill job1 --from-file items.txt --skip 40000`)

// FillOptions holds what `kubectl workqueue fill` needs.
type FillOptions struct {
	Queue       string
	Files       []string
	Items       []string
	Null        bool
	JSONLines   bool
	AllowEmpty  bool
	Skip        int
	Quiet       bool
	MaxItemSize string
	QueueType   string
	MaxAttempts int
	// ConsumerTimeout bounds how long one item may run before the broker takes it back.
	ConsumerTimeout time.Duration

	broker      brokerFlags
	dryRun      workqueue.DryRun
	strict      bool
	maxItemSize int
	namespace   string
	getter      ClientGetter
	stdinIsTTY  func() bool
	stderrIsTTY func() bool
	genericiooptions.IOStreams
}

// NewCmdFill builds `kubectl workqueue fill`.
func NewCmdFill(streams genericiooptions.IOStreams, getter ClientGetter) *cobra.Command {
	o := &FillOptions{
		IOStreams:       streams,
		getter:          getter,
		MaxItemSize:     "16Mi",
		QueueType:       string(queue.Quorum),
		MaxAttempts:     3,
		ConsumerTimeout: queue.DefaultConsumerTimeout,
		stdinIsTTY:      func() bool { return isTerminal(streams.In) },
		stderrIsTTY:     func() bool { return isTerminal(streams.ErrOut) },
	}
	cmd := &cobra.Command{
		Use:               "fill QUEUE [--from-file FILE | --item ITEM | < FILE]",
		Short:             "Publish one message per item, with publisher confirms",
		Long:              "Publish one message per item to a RabbitMQ queue, reached through a port-forward to the broker's Service. The queue is created when missing (a durable quorum queue with a retry limit and a QUEUE.failed dead-letter queue). Every message is persistent and confirmed by the broker: the command succeeds only when all items are stored.",
		Example:           fillExample,
		Args:              exactArgs("QUEUE"),
		ValidArgsFunction: completeQueues(getter),
		RunE: func(cmd *cobra.Command, args []string) error {
			return completeValidateRun(func() error { return o.Complete(cmd, args) }, o.Validate, func() error { return o.Run(cmd.Context()) })
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.Files, "from-file", "f", nil, "Read items from FILE, one per line (repeatable; - for stdin)")
	f.StringArrayVar(&o.Items, "item", nil, "An item, as it is (repeatable)")
	f.BoolVarP(&o.Null, "null", "0", false, "Items are separated by NUL bytes, not lines (as find -print0 writes them)")
	f.BoolVar(&o.JSONLines, "json-lines", false, "Each line is a JSON document; a line that is not valid JSON is an error")
	f.BoolVar(&o.AllowEmpty, "allow-empty", false, "Succeed when there are no items")
	f.IntVar(&o.Skip, "skip", 0, "Skip the first N items (to resume a fill that stopped)")
	f.BoolVarP(&o.Quiet, "quiet", "q", false, "Print no progress")
	f.StringVar(&o.MaxItemSize, "max-item-size", o.MaxItemSize, "Refuse items larger than this (RabbitMQ's own default limit is 16Mi from 4.0, 128Mi before)")
	f.StringVar(&o.QueueType, "queue-type", o.QueueType, "Type of a queue that does not exist yet: quorum (retries and dead-lettering) or classic")
	f.IntVar(&o.MaxAttempts, "max-attempts", o.MaxAttempts, "Attempts per item before it moves to QUEUE.failed (quorum queues)")
	f.DurationVar(&o.ConsumerTimeout, "consumer-timeout", o.ConsumerTimeout, "Of a queue that does not exist yet: how long one item may run before the broker takes it back and hands it out again (RabbitMQ 3.12+; older brokers apply their consumer_timeout, 30m by default)")
	cmdutil.AddDryRunFlag(cmd)
	o.broker.addFlags(cmd)
	return cmd
}

// Complete fills in what the flags imply.
func (o *FillOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Queue = args[0]
	var err error
	if o.dryRun, err = dryRunStrategy(cmd); err != nil {
		return err
	}
	o.strict = cmd.Flags().Changed("queue-type") || cmd.Flags().Changed("max-attempts")
	namespace, _, err := o.getter.ToRawKubeConfigLoader().Namespace()
	if err != nil && o.broker.URL == "" {
		return err
	}
	o.namespace = namespace
	if q, err := resource.ParseQuantity(o.MaxItemSize); err != nil || q.Value() < 1 {
		return fmt.Errorf("--max-item-size %q is not a size such as 16Mi or 1000000", o.MaxItemSize)
	} else {
		o.maxItemSize = int(q.Value())
	}
	return nil
}

// Validate checks everything that can be checked before touching the broker.
func (o *FillOptions) Validate() error {
	if err := queue.ValidateName(o.Queue); err != nil {
		return err
	}
	if o.Null && o.JSONLines {
		return errors.New("--null and --json-lines do not go together: pick one input format")
	}
	if o.Skip < 0 {
		return errors.New("--skip must not be negative")
	}
	if o.MaxAttempts < 1 {
		return errors.New("--max-attempts must be at least 1")
	}
	if o.ConsumerTimeout < time.Second {
		return fmt.Errorf("--consumer-timeout %s is too short: give how long the longest item may run, such as 2h", o.ConsumerTimeout)
	}
	if t := queue.Type(o.QueueType); t != queue.Quorum && t != queue.Classic {
		return fmt.Errorf("--queue-type %q is not quorum or classic", o.QueueType)
	}
	if len(o.Files) == 0 && len(o.Items) == 0 && o.stdinIsTTY() {
		return errors.New("no items: pass --from-file FILE, --item ITEM, or pipe items on stdin")
	}
	return o.inputSpec().Validate()
}

func (o *FillOptions) inputSpec() items.InputSpec {
	format := items.Lines
	switch {
	case o.Null:
		format = items.NULs
	case o.JSONLines:
		format = items.JSONLines
	}
	return items.InputSpec{Format: format, MaxSize: o.maxItemSize, Literals: o.Items, Files: o.Files, Stdin: o.In}
}

// Run publishes the items and reports exactly what the broker confirmed.
func (o *FillOptions) Run(ctx context.Context) error {
	spec := o.inputSpec()
	input, err := items.Open(ctx, spec)
	if err != nil {
		return badInput(err)
	}
	defer input.Close()
	if err := input.Skip(o.Skip); err != nil {
		return badInput(err)
	}
	first, err := input.Next()
	if err == io.EOF {
		if o.AllowEmpty {
			fmt.Fprintf(o.Out, "published 0 items to queue %s (the input is empty)\n", o.Queue)
			return nil
		}
		return badInput(errors.New("no items to publish: the input is empty (pass --allow-empty to accept that)"))
	}
	if err != nil {
		return badInput(err)
	}

	progress := o.ErrOut
	if o.Quiet {
		progress = io.Discard
	}
	if o.dryRun != workqueue.DryRunNone {
		return o.dryRunFill(ctx, input, progress)
	}
	b, err := o.broker.connect(ctx, o.getter, o.namespace, progress)
	if err != nil {
		return err
	}
	defer b.Close()
	if !o.Quiet {
		// Which broker pod holds the connection matters to whoever watches a cluster's nodes.
		fmt.Fprintf(o.ErrOut, "connected to %s\n", b.Via)
	}
	declared, err := queue.Declare(b.Conn, queue.Spec{Name: o.Queue, Type: queue.Type(o.QueueType), MaxAttempts: o.MaxAttempts, ConsumerTimeout: o.ConsumerTimeout, Strict: o.strict})
	if err != nil {
		return err
	}
	if !o.Quiet {
		if declared.Created {
			if queue.Type(o.QueueType) == queue.Classic {
				fmt.Fprintf(o.ErrOut, "created classic queue %s (no delivery limit: a failing item is retried until it succeeds)\n", o.Queue)
			} else {
				fmt.Fprintf(o.ErrOut, "created %s queue %s (dead letters go to %s)\n", o.QueueType, o.Queue, queue.DeadLetterName(o.Queue))
			}
		} else if declared.Ready > 0 {
			fmt.Fprintf(o.ErrOut, "queue %s already holds %d %s; adding to them\n", o.Queue, declared.Ready, plural(declared.Ready, "item"))
		}
	}

	var confirmed atomic.Int64
	stopProgress := o.startProgress(&confirmed, input.Total, input.TotalKnown)
	result, err := queue.Publish(ctx, b.Conn, o.Queue, &items.Peeked{First: &first, Rest: input}, queue.PublishOptions{
		ContentType: spec.Format.ContentType(),
		Offset:      o.Skip,
		Progress:    func(n int) { confirmed.Store(int64(n)) },
	})
	stopProgress()
	if err == nil && ctx.Err() != nil {
		// Ctrl-C kills a producer piping into fill too, so its end of input proves nothing.
		err = errors.New("interrupted; the input may have ended early")
	}
	if err != nil {
		return o.describeFailure(result, err)
	}
	note := ""
	if empty := input.EmptyRecords(); empty > 0 {
		note = fmt.Sprintf("; %d empty %s skipped", empty, plural(empty, "record"))
	}
	fmt.Fprintf(o.Out, "published %d %s to queue %s (all confirmed%s)\n", result.Confirmed, plural(result.Confirmed, "item"), o.Queue, note)
	return nil
}

// dryRunFill reads and checks every item, publishing none; on the server side it also reads
// the queue from the broker.
func (o *FillOptions) dryRunFill(ctx context.Context, input *items.Input, progress io.Writer) error {
	n := 1 // the first item, already read
	for {
		_, err := input.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return badInput(err)
		}
		n++
	}
	where := ""
	if o.dryRun == workqueue.DryRunServer {
		b, err := o.broker.connect(ctx, o.getter, o.namespace, progress)
		if err != nil {
			return err
		}
		defer b.Close()
		switch ready, err := queue.Depth(b.Conn, o.Queue); {
		case errors.Is(err, queue.ErrNoQueue):
			where = fmt.Sprintf(", a %s queue fill would create", o.QueueType)
		case err != nil:
			return err
		default:
			where = fmt.Sprintf(", which holds %d %s", ready, plural(ready, "item"))
		}
	}
	fmt.Fprintf(o.Out, "published %d %s to queue %s%s (dry run: all read and checked, none sent)\n", n, plural(n, "item"), o.Queue, where)
	return nil
}

func (o *FillOptions) describeFailure(result queue.Result, cause error) error {
	resume := o.Skip + result.Prefix
	msg := fmt.Sprintf("fill stopped: %v; %d of %d items sent were confirmed", strings.TrimSpace(cause.Error()), result.Confirmed, result.Published)
	if result.Confirmed > result.Prefix {
		msg += fmt.Sprintf(" (the first %d in order)", result.Prefix)
	}
	return fmt.Errorf("%s; once the cause is fixed, resume with --skip %d (items after those may be sent twice, none is lost)", msg, resume)
}

// startProgress reports confirms on stderr: a bar on a terminal, a line every few seconds
// otherwise, nothing with --quiet.
func (o *FillOptions) startProgress(confirmed *atomic.Int64, total int, totalKnown bool) (stop func()) {
	if o.Quiet {
		return func() {}
	}
	tty := o.stderrIsTTY()
	interval := 5 * time.Second
	if tty {
		interval = 200 * time.Millisecond
	}
	start := time.Now()
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				if tty {
					fmt.Fprint(o.ErrOut, "\r\033[K")
				}
				return
			case <-ticker.C:
				line := progressLine(int(confirmed.Load()), total, totalKnown, time.Since(start))
				if tty {
					fmt.Fprint(o.ErrOut, "\r\033[K"+line)
				} else {
					fmt.Fprintln(o.ErrOut, line)
				}
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

func progressLine(done, total int, totalKnown bool, elapsed time.Duration) string {
	rate := float64(done) / max(elapsed.Seconds(), 0.001)
	if !totalKnown || total <= 0 {
		return fmt.Sprintf("%d items confirmed (%.0f/s)", done, rate)
	}
	const width = 30
	filled := min(width, done*width/total)
	eta := "?"
	if rate > 0 {
		eta = (time.Duration(float64(total-done)/rate) * time.Second).Round(time.Second).String()
	}
	return fmt.Sprintf("[%s%s] %d/%d items confirmed (%.0f/s, ETA %s)", strings.Repeat("=", filled), strings.Repeat(" ", width-filled), done, total, rate, eta)
}
