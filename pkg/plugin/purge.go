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

// PurgeOptions holds what `kubectl workqueue purge` needs.
type PurgeOptions struct {
	queueRef
	Failed  bool
	Results bool
	Yes     bool

	dryRun workqueue.DryRun

	confirmer
	broker brokerFlags
	getter ClientGetter
}

// NewCmdPurge builds `kubectl workqueue purge`.
func NewCmdPurge(streams genericiooptions.IOStreams, getter ClientGetter) *cobra.Command {
	o := &PurgeOptions{getter: getter, confirmer: confirmer{IOStreams: streams, terminal: func() bool { return isTerminal(streams.In) }}}
	cmd := &cobra.Command{
		Use:   "purge QUEUE",
		Short: "Remove the waiting items, dead letters or results",
		Long: longDesc(`
			Remove every item waiting in QUEUE (items a pod is working on stay), or with --failed
			every dead letter of QUEUE.failed. It asks first on a terminal; elsewhere it needs
			--yes.`),
		Example: examples(`
			# Drop the items nobody should process any more
			kubectl workqueue purge job1

			# Drop the dead letters, in a script
			kubectl workqueue purge job1 --failed --yes`),
		Args:              exactArgs("QUEUE"),
		ValidArgsFunction: completeQueues(getter),
		RunE: func(cmd *cobra.Command, args []string) error {
			return completeValidateRun(func() error { return o.Complete(cmd, args) }, o.Validate, func() error { return o.Run(cmd.Context()) })
		},
	}
	cmd.Flags().BoolVar(&o.Failed, "failed", false, "Purge QUEUE.failed, the dead letters, instead of QUEUE")
	cmd.Flags().BoolVar(&o.Results, "results", false, "Purge QUEUE.results, the result records, instead of QUEUE")
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "Do not ask")
	cmdutil.AddDryRunFlag(cmd)
	o.broker.addFlags(cmd)
	return cmd
}

// Complete reads the queue and the namespace.
func (o *PurgeOptions) Complete(cmd *cobra.Command, args []string) error {
	o.yes = o.Yes
	var err error
	if o.dryRun, err = dryRunStrategy(cmd); err != nil {
		return err
	}
	return o.completeQueue(args, o.getter)
}

// Validate checks the queue's name.
func (o *PurgeOptions) Validate() error {
	if o.Failed && o.Results {
		return errors.New("--failed and --results name two queues: purge one at a time")
	}
	return queue.ValidateName(o.Queue)
}

// Run counts, asks and purges.
func (o *PurgeOptions) Run(ctx context.Context) error {
	b, err := o.broker.connect(ctx, o.getter, o.namespace, o.ErrOut)
	if err != nil {
		return err
	}
	defer b.Close()
	name := o.Queue
	switch {
	case o.Failed:
		name = queue.DeadLetterName(o.Queue)
	case o.Results:
		name = queue.ResultsName(o.Queue)
	}
	waiting, err := queue.Depth(b.Conn, name)
	if errors.Is(err, queue.ErrNoQueue) {
		return fmt.Errorf("there is no queue %s on the broker (%s)", name, b.Via)
	}
	if err != nil {
		return err
	}
	if waiting == 0 {
		fmt.Fprintf(o.Out, "queue %s holds no waiting item; nothing to purge\n", name)
		return nil
	}
	if o.dryRun != workqueue.DryRunNone {
		fmt.Fprintf(o.Out, "queue %s purged (%d %s) (dry run)\n", name, waiting, plural(waiting, "item"))
		return nil
	}
	if err := o.confirm(fmt.Sprintf("remove the %d %s waiting in queue %s", waiting, plural(waiting, "item"), name)); err != nil {
		return err
	}
	purged, err := queue.Purge(b.Conn, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "queue %s purged (%d %s)\n", name, purged, plural(purged, "item"))
	return nil
}
