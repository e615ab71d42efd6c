package plugin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/tail"
)

// LogsOptions holds what `kubectl workqueue logs` needs.
type LogsOptions struct {
	queueRef
	Follow     bool
	Since      time.Duration
	Tail       int64
	Timestamps bool

	getter ClientGetter
	genericiooptions.IOStreams
}

// NewCmdLogs builds `kubectl workqueue logs`.
func NewCmdLogs(streams genericiooptions.IOStreams, getter ClientGetter) *cobra.Command {
	o := &LogsOptions{IOStreams: streams, getter: getter, Tail: -1}
	cmd := &cobra.Command{
		Use:   "logs QUEUE",
		Short: "Print the logs of a queue's pods, prefixed with the pod",
		Long: longDesc(`
			Print the worker logs of every pod of the queue's Job, oldest pod first, each line
			prefixed with [POD]. With -f, follow them all at once, picking up pods as they start,
			until the Job has finished and every log has ended.`),
		Example: examples(`
			# What every pod of job1 printed
			kubectl workqueue logs job1

			# Follow a running Job, with the time of each line
			kubectl workqueue logs job1 -f --timestamps

			# The last 20 lines of each pod, from the last hour
			kubectl workqueue logs job1 --tail 20 --since 1h`),
		Args:              exactArgs("QUEUE"),
		ValidArgsFunction: completeQueues(getter),
		RunE: func(cmd *cobra.Command, args []string) error {
			return completeValidateRun(func() error { return o.Complete(args) }, o.Validate, func() error { return o.Run(cmd.Context()) })
		},
	}
	f := cmd.Flags()
	o.addNameFlag(cmd)
	f.BoolVarP(&o.Follow, "follow", "f", false, "Follow the logs until the Job has finished")
	f.DurationVar(&o.Since, "since", 0, "Only lines newer than this, e.g. 10m or 2h")
	f.Int64Var(&o.Tail, "tail", o.Tail, "Only the last lines of each pod's log (-1 for all)")
	f.BoolVar(&o.Timestamps, "timestamps", false, "Start each line with its time (RFC3339)")
	return cmd
}

// Complete reads the queue and the namespace.
func (o *LogsOptions) Complete(args []string) error {
	return o.completeQueue(args, o.getter)
}

// Validate checks the flags.
func (o *LogsOptions) Validate() error {
	if o.Since < 0 {
		return errors.New("--since must not be negative")
	}
	if o.Tail < -1 {
		return errors.New("--tail must be -1 (all lines) or more")
	}
	return queue.ValidateName(o.Queue)
}

// Run prints the logs.
func (o *LogsOptions) Run(ctx context.Context) error {
	client, err := o.getter.KubernetesClientSet()
	if err != nil {
		return err
	}
	opts := tail.LogOptions{Container: constants.ContainerName, Follow: o.Follow, Since: o.Since, Tail: o.Tail, Timestamps: o.Timestamps}
	return tail.JobLogs(ctx, client, o.namespace, o.Name, opts, func(l tail.LogLine) {
		if l.Err != nil {
			fmt.Fprintf(o.ErrOut, "[%s] (%v)\n", l.Pod, l.Err)
			return
		}
		fmt.Fprintf(o.Out, "[%s] %s\n", l.Pod, l.Line)
	})
}
