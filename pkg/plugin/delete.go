package plugin

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/rabbitmq"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/workqueue"
)

// DeleteOptions holds what `kubectl workqueue delete` needs.
type DeleteOptions struct {
	queueRef
	KeepQueue bool
	Yes       bool

	dryRun workqueue.DryRun
	confirmer
	broker brokerFlags
	getter ClientGetter
}

// NewCmdDelete builds `kubectl workqueue delete`.
func NewCmdDelete(streams genericiooptions.IOStreams, getter ClientGetter) *cobra.Command {
	o := &DeleteOptions{getter: getter, confirmer: confirmer{IOStreams: streams, terminal: func() bool { return isTerminal(streams.In) }}}
	cmd := &cobra.Command{
		Use:   "delete QUEUE",
		Short: "Delete a queue's Job, the queue and its companions",
		Long: longDesc(`
			Delete the queue's Job with its pods and Secret, then the queue, QUEUE.failed and
			QUEUE.results.
			When the queues still hold items, it asks first on a terminal; elsewhere it needs
			--yes (or --keep-queue, which deletes only the Job).`),
		Example: examples(`
			# Remove the Job, its pods and Secret, and the queues job1, job1.failed and job1.results
			kubectl workqueue delete job1

			# Remove only the Job, keeping the items
			kubectl workqueue delete job1 --keep-queue`),
		Args:              exactArgs("QUEUE"),
		ValidArgsFunction: completeQueues(getter),
		RunE: func(cmd *cobra.Command, args []string) error {
			return completeValidateRun(func() error { return o.Complete(cmd, args) }, o.Validate, func() error { return o.Run(cmd.Context()) })
		},
	}
	o.addNameFlag(cmd)
	cmd.Flags().BoolVar(&o.KeepQueue, "keep-queue", false, "Keep the queue and its dead-letter queue")
	cmd.Flags().BoolVarP(&o.Yes, "yes", "y", false, "Do not ask before deleting queues that hold items")
	cmdutil.AddDryRunFlag(cmd)
	o.broker.addFlags(cmd)
	return cmd
}

// Complete reads the queue and the namespace.
func (o *DeleteOptions) Complete(cmd *cobra.Command, args []string) error {
	o.yes = o.Yes
	var err error
	if o.dryRun, err = dryRunStrategy(cmd); err != nil {
		return err
	}
	return o.completeQueue(args, o.getter)
}

// Validate checks the queue's name.
func (o *DeleteOptions) Validate() error { return queue.ValidateName(o.Queue) }

// Run connects to the broker first, so that nothing is deleted when the queues cannot be.
func (o *DeleteOptions) Run(ctx context.Context) error {
	var b *rabbitmq.Broker
	if !o.KeepQueue {
		var err error
		if b, err = o.broker.connect(ctx, o.getter, o.namespace, o.ErrOut); err != nil {
			return fmt.Errorf("%w (pass --keep-queue to delete only the Job)", err)
		}
		defer b.Close()
	}
	client, err := o.getter.KubernetesClientSet()
	if err != nil {
		return err
	}
	if o.dryRun != workqueue.DryRunNone {
		return o.printDryRun(ctx, client, b)
	}
	if b != nil {
		if err := o.confirmLosses(b); err != nil {
			return err
		}
	}
	var deleted workqueue.Deleted
	if b != nil {
		deleted, err = workqueue.Delete(ctx, client, b.Conn, o.namespace, o.Queue, o.Name)
	} else {
		deleted, err = workqueue.Delete(ctx, client, nil, o.namespace, o.Queue, o.Name)
	}
	if deleted.Job {
		fmt.Fprintf(o.Out, "job.batch/%s deleted\n", o.Name)
	}
	for _, q := range deleted.Queues {
		fmt.Fprintf(o.Out, "queue %s deleted (%d %s)\n", q.Name, q.Messages, plural(q.Messages, "message"))
	}
	if err != nil {
		return err
	}
	if !deleted.Job && len(deleted.Queues) == 0 {
		return fmt.Errorf("nothing to delete: no Job %s and no queue %s in namespace %s", o.Name, o.Queue, o.namespace)
	}
	return nil
}

// confirmLosses asks before deleting queues that still hold items.
func (o *DeleteOptions) confirmLosses(b *rabbitmq.Broker) error {
	counts, err := workqueue.CountQueue(b.Conn, o.Queue)
	if err != nil {
		return err
	}
	var held []string
	if counts.Ready > 0 {
		held = append(held, fmt.Sprintf("%d %s in %s", counts.Ready, plural(counts.Ready, "item"), o.Queue))
	}
	if counts.DeadLetters != nil && *counts.DeadLetters > 0 {
		held = append(held, fmt.Sprintf("%d in %s", *counts.DeadLetters, queue.DeadLetterName(o.Queue)))
	}
	if counts.Results != nil && *counts.Results > 0 {
		held = append(held, fmt.Sprintf("%d in %s", *counts.Results, queue.ResultsName(o.Queue)))
	}
	if len(held) == 0 {
		return nil
	}
	return o.confirm("delete the queues with the items they hold (" + strings.Join(held, ", ") + ")")
}

// printDryRun says what delete would remove, reading only.
func (o *DeleteOptions) printDryRun(ctx context.Context, client kubernetes.Interface, b *rabbitmq.Broker) error {
	found := false
	if _, err := client.BatchV1().Jobs(o.namespace).Get(ctx, o.Name, metav1.GetOptions{}); err == nil {
		found = true
		fmt.Fprintf(o.Out, "job.batch/%s deleted (dry run)\n", o.Name)
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("read Job %s: %w", o.Name, err)
	}
	if b != nil {
		counts, err := workqueue.CountQueue(b.Conn, o.Queue)
		if err != nil {
			return err
		}
		queues := []struct {
			name     string
			messages *int
		}{{o.Queue, nil}, {queue.DeadLetterName(o.Queue), counts.DeadLetters}, {queue.ResultsName(o.Queue), counts.Results}}
		if counts.Exists {
			queues[0].messages = &counts.Ready
		}
		for _, q := range queues {
			if q.messages != nil {
				found = true
				fmt.Fprintf(o.Out, "queue %s deleted (%d %s) (dry run)\n", q.name, *q.messages, plural(*q.messages, "message"))
			}
		}
	}
	if !found {
		return fmt.Errorf("nothing to delete: no Job %s and no queue %s in namespace %s", o.Name, o.Queue, o.namespace)
	}
	return nil
}
