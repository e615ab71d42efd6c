package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/items"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
)

var fillExample = examples(`
	# The seed's example: one message per line of items.txt into queue job1
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
		Use:     "fill QUEUE [--from-file FILE | --item ITEM | < FILE]",
		Short:   "Publish one message per item to a work queue in the cluster, with publisher confirms",
		Long:    "Publish one message per item to a RabbitMQ queue, reached through a port-forward to the broker's Service. The queue is created when missing (a durable quorum queue with a retry limit and a QUEUE.failed dead-letter queue). Every message is persistent and confirmed by the broker: the command succeeds only when all items are stored.",
		Example: fillExample,
		Args:    exactArgs("QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Complete(cmd, args); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(cmd.Context())
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
	o.broker.addFlags(cmd)
	return cmd
}

// Complete fills in what the flags imply.
func (o *FillOptions) Complete(cmd *cobra.Command, args []string) error {
	o.Queue = args[0]
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
	stdinUses := 0
	for _, f := range o.Files {
		if f == "-" {
			stdinUses++
		}
	}
	if stdinUses > 1 {
		return errors.New("--from-file - (stdin) can be given only once")
	}
	for i, item := range o.Items {
		switch {
		case item == "":
			return fmt.Errorf("--item number %d is empty: an item needs at least one byte", i+1)
		case o.JSONLines && !json.Valid([]byte(item)):
			return fmt.Errorf("--item %q is not valid JSON (with --json-lines every item must be one JSON document)", item)
		}
	}
	return nil
}

func (o *FillOptions) format() items.Format {
	switch {
	case o.Null:
		return items.NULs
	case o.JSONLines:
		return items.JSONLines
	}
	return items.Lines
}

// inputs opens every input. Files are checked whole first (readable, well-formed, counted) so a
// bad line fails the command before anything is published; stdin can only be checked as it streams.
func (o *FillOptions) inputs() (named []items.Named, total int, totalKnown bool, closeAll func(), err error) {
	var files []*os.File
	closeAll = func() {
		for _, f := range files {
			f.Close()
		}
	}
	totalKnown = true
	for _, item := range o.Items {
		if len(item) > o.maxItemSize {
			return nil, 0, false, closeAll, fmt.Errorf("--item %.20q...: longer than --max-item-size (%d bytes)", item, o.maxItemSize)
		}
	}
	useStdin := len(o.Files) == 0 && len(o.Items) == 0
	for _, name := range o.Files {
		if name == "-" {
			useStdin = true
			continue
		}
		f, err := os.Open(name)
		if err != nil {
			closeAll()
			return nil, 0, false, func() {}, fmt.Errorf("cannot read --from-file %s: %w", name, errors.Unwrap(err))
		}
		files = append(files, f)
		count, err := countItems(o.format(), o.maxItemSize, name, f)
		if err != nil {
			closeAll()
			return nil, 0, false, func() {}, err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			// Not seekable (a named pipe): it can only be read once, as it streams.
			closeAll()
			return nil, 0, false, func() {}, fmt.Errorf("--from-file %s cannot be read twice; pipe it on stdin instead", name)
		}
		total += count
	}
	// Inputs in order: files as given (stdin where "-" stands), then stdin if nothing else.
	fileIndex := 0
	for _, name := range o.Files {
		if name == "-" {
			named = append(named, items.Named{Name: "stdin", Reader: o.In})
			totalKnown = false
			continue
		}
		named = append(named, items.Named{Name: name, Reader: files[fileIndex]})
		fileIndex++
	}
	if useStdin && len(o.Files) == 0 {
		named = append(named, items.Named{Name: "stdin", Reader: o.In})
		totalKnown = false
	}
	return named, total + len(o.Items), totalKnown, closeAll, nil
}

func countItems(format items.Format, maxSize int, name string, r io.Reader) (int, error) {
	reader := items.NewReader(format, maxSize, items.Named{Name: name, Reader: r})
	n := 0
	for {
		_, err := reader.Next()
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
		n++
	}
}

// literalThenReader yields the --item values, then the items of the inputs.
type literalThenReader struct {
	literals []string
	next     int
	reader   *items.Reader
}

func (s *literalThenReader) Next() (items.Item, error) {
	if s.next < len(s.literals) {
		s.next++
		return items.Item{Body: []byte(s.literals[s.next-1]), Source: "--item", Record: s.next}, nil
	}
	return s.reader.Next()
}

// interruptibleSource reads items ahead in a goroutine, so that Ctrl-C is noticed while stdin (a
// pipe or a terminal) has nothing to give. Items read ahead are not lost when it stops: fill
// reports what was confirmed, and --skip resumes from there.
type interruptibleSource struct {
	ctx   context.Context
	ahead chan sourceResult
}

type sourceResult struct {
	item items.Item
	err  error
}

func newInterruptibleSource(ctx context.Context, src queue.Source) *interruptibleSource {
	s := &interruptibleSource{ctx: ctx, ahead: make(chan sourceResult, 256)}
	go func() {
		for {
			item, err := src.Next()
			select {
			case s.ahead <- sourceResult{item, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return s
}

func (s *interruptibleSource) Next() (items.Item, error) {
	select {
	case r := <-s.ahead:
		return r.item, r.err
	case <-s.ctx.Done():
		return items.Item{}, errors.New("interrupted while waiting for input")
	}
}

// peeked lets Run look at the first item before connecting, so empty input fails fast.
type peeked struct {
	first *items.Item
	src   queue.Source
}

func (p *peeked) Next() (items.Item, error) {
	if p.first != nil {
		item := *p.first
		p.first = nil
		return item, nil
	}
	return p.src.Next()
}

// Run publishes the items and reports exactly what the broker confirmed.
func (o *FillOptions) Run(ctx context.Context) error {
	named, total, totalKnown, closeAll, err := o.inputs()
	defer closeAll()
	if err != nil {
		return err
	}
	reader := items.NewReader(o.format(), o.maxItemSize, named...)
	var src queue.Source = &literalThenReader{literals: o.Items, reader: reader}
	if !totalKnown {
		src = newInterruptibleSource(ctx, src)
	}
	for skipped := 0; skipped < o.Skip; skipped++ {
		if _, err := src.Next(); err == io.EOF {
			return fmt.Errorf("--skip %d is more than the %d items in the input", o.Skip, skipped)
		} else if err != nil {
			return err
		}
	}
	first, err := src.Next()
	if err == io.EOF {
		if o.AllowEmpty {
			fmt.Fprintf(o.Out, "published 0 items to queue %s (the input is empty)\n", o.Queue)
			return nil
		}
		return errors.New("no items to publish: the input is empty (pass --allow-empty to accept that)")
	}
	if err != nil {
		return err
	}
	if totalKnown {
		total -= o.Skip
	}

	progress := o.ErrOut
	if o.Quiet {
		progress = io.Discard
	}
	b, err := o.broker.connect(ctx, o.getter, o.namespace, progress)
	if err != nil {
		return err
	}
	defer b.Close()
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
	stopProgress := o.startProgress(&confirmed, total, totalKnown)
	result, err := queue.Publish(ctx, b.Conn, o.Queue, &peeked{first: &first, src: src}, queue.PublishOptions{
		ContentType: o.format().ContentType(),
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
	if reader.Skipped > 0 {
		note = fmt.Sprintf("; %d empty %s skipped", reader.Skipped, plural(reader.Skipped, "record"))
	}
	fmt.Fprintf(o.Out, "published %d %s to queue %s (all confirmed%s)\n", result.Confirmed, plural(result.Confirmed, "item"), o.Queue, note)
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

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
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

// examples indents an example block the way kubectl prints them.
func examples(s string) string {
	lines := strings.Split(strings.Trim(s, "\n"), "\n")
	for i, line := range lines {
		lines[i] = "  " + strings.TrimLeft(line, "\t")
	}
	return strings.Join(lines, "\n")
}

// exactArgs names the missing argument instead of cobra's "accepts 1 arg(s)".
func exactArgs(name string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) == 0:
			return fmt.Errorf("%s is required: %s", name, cmd.UseLine())
		case len(args) > 1:
			return fmt.Errorf("only one %s is accepted, got %d arguments: %q (a command to run goes after --)", name, len(args), args)
		}
		return nil
	}
}
