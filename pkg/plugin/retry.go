package plugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/workqueue"
)

// RetryOptions holds what `kubectl workqueue retry` needs.
type RetryOptions struct {
	queueRef
	Limit int

	dryRun workqueue.DryRun

	broker brokerFlags
	getter ClientGetter
	genericiooptions.IOStreams
}

// NewCmdRetry builds `kubectl workqueue retry`.
func NewCmdRetry(streams genericiooptions.IOStreams, getter ClientGetter) *cobra.Command {
	o := &RetryOptions{IOStreams: streams, getter: getter, Limit: -1}
	cmd := &cobra.Command{
		Use:   "retry QUEUE",
		Short: "Move the dead letters back into the queue",
		Long: longDesc(`
			Move the dead letters of QUEUE.failed back to QUEUE, where they count as new items
			with every attempt again; run then processes just those.

			Each item keeps its message id, and is removed from QUEUE.failed only once QUEUE has
			confirmed its copy: an interruption loses nothing, and leaves at most the few items
			that were in flight in both queues.`),
		Example: examples(`
			# Fix the worker, then give the failed items another go
			kubectl workqueue retry job1
			kubectl workqueue run job1 --replace --image IMAGE -- ./process.sh

			# Count them first; move only ten
			kubectl workqueue retry job1 --dry-run
			kubectl workqueue retry job1 --limit 10`),
		Args:              exactArgs("QUEUE"),
		ValidArgsFunction: completeQueues(getter),
		RunE: func(cmd *cobra.Command, args []string) error {
			return completeValidateRun(func() error { return o.Complete(cmd, args) }, o.Validate, func() error { return o.Run(cmd.Context()) })
		},
	}
	cmd.Flags().IntVar(&o.Limit, "limit", o.Limit, "Move at most this many items (-1 for all)")
	cmdutil.AddDryRunFlag(cmd)
	o.broker.addFlags(cmd)
	return cmd
}

// Complete reads the queue and the namespace.
func (o *RetryOptions) Complete(cmd *cobra.Command, args []string) error {
	var err error
	if o.dryRun, err = dryRunStrategy(cmd); err != nil {
		return err
	}
	return o.completeQueue(args, o.getter)
}

// Validate checks the flags.
func (o *RetryOptions) Validate() error {
	if o.Limit < -1 {
		return errors.New("--limit must be -1 (all) or more")
	}
	return queue.ValidateName(o.Queue)
}

// Run moves the dead letters and says how many moved.
func (o *RetryOptions) Run(ctx context.Context) error {
	b, err := o.broker.connect(ctx, o.getter, o.namespace, o.ErrOut)
	if err != nil {
		return err
	}
	defer b.Close()
	failed := queue.DeadLetterName(o.Queue)
	if o.dryRun != workqueue.DryRunNone {
		waiting, err := queue.Depth(b.Conn, failed)
		if errors.Is(err, queue.ErrNoQueue) {
			return fmt.Errorf("queue %s has no dead-letter queue %s (a classic queue dead-letters nothing)", o.Queue, failed)
		}
		if err != nil {
			return err
		}
		if o.Limit >= 0 {
			waiting = min(waiting, o.Limit)
		}
		fmt.Fprintf(o.Out, "would move %d %s from %s back to %s (dry run)\n", waiting, plural(waiting, "item"), failed, o.Queue)
		return nil
	}
	moved, err := queue.Move(ctx, b.Conn, failed, o.Queue, o.Limit)
	if err != nil {
		if errors.Is(err, queue.ErrNoQueue) {
			err = fmt.Errorf("%w: fill creates %s and %s", err, o.Queue, failed)
		}
		return fmt.Errorf("moved %d %s from %s back to %s, then stopped: %w", moved, plural(moved, "item"), failed, o.Queue, err)
	}
	fmt.Fprintf(o.Out, "moved %d %s from %s back to %s\n", moved, plural(moved, "item"), failed, o.Queue)
	if moved > 0 {
		fmt.Fprintf(o.ErrOut, "process them with: %s\n", workqueue.Command("run", o.Queue, o.Queue, "--replace --image IMAGE [-- COMMAND]"))
	}
	return nil
}
