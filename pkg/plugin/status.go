package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/job"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/rabbitmq"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/workqueue"
)

// StatusOptions holds what `kubectl workqueue status` needs.
type StatusOptions struct {
	queueRef
	Watch  bool
	Logs   bool
	Output string

	broker    brokerFlags
	getter    ClientGetter
	stderrTTY func() bool
	genericiooptions.IOStreams
}

// NewCmdStatus builds `kubectl workqueue status`.
func NewCmdStatus(streams genericiooptions.IOStreams, getter ClientGetter) *cobra.Command {
	o := &StatusOptions{IOStreams: streams, getter: getter, stderrTTY: func() bool { return isTerminal(streams.ErrOut) }}
	cmd := &cobra.Command{
		Use:   "status QUEUE",
		Short: "Show a queue and its Job; --watch follows the Job",
		Example: examples(`
			kubectl workqueue status job1
			kubectl workqueue status job1 --watch

			# For scripts: the queue's counts and the Job's state as one document
			kubectl workqueue status job1 -o json`),
		Args:              exactArgs("QUEUE"),
		ValidArgsFunction: completeQueues(getter),
		RunE: func(cmd *cobra.Command, args []string) error {
			return completeValidateRun(func() error { return o.Complete(args) }, o.Validate, func() error { return o.Run(cmd.Context()) })
		},
	}
	o.addNameFlag(cmd)
	cmd.Flags().BoolVarP(&o.Watch, "watch", "w", false, "Follow the Job until it finishes, then report as run does (and exit non-zero the same way)")
	cmd.Flags().BoolVar(&o.Logs, "logs", false, "With --watch, stream the pods' logs")
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "json or yaml: print one document (with --watch, the final report as run -o prints it)")
	o.broker.addFlags(cmd)
	return cmd
}

// Complete reads the queue and the namespace.
func (o *StatusOptions) Complete(args []string) error {
	return o.completeQueue(args, o.getter)
}

// Validate checks the queue's name.
func (o *StatusOptions) Validate() error {
	switch o.Output {
	case "", "json", "yaml":
	default:
		return fmt.Errorf("-o %s: status prints json or yaml", o.Output)
	}
	if o.Logs && !o.Watch {
		return errors.New("--logs streams the pods' logs while following the Job: add --watch")
	}
	return queue.ValidateName(o.Queue)
}

// Run prints the queue and the Job, or follows the Job with --watch.
func (o *StatusOptions) Run(ctx context.Context) error {
	client, err := o.getter.KubernetesClientSet()
	if err != nil {
		return err
	}
	j, err := client.BatchV1().Jobs(o.namespace).Get(ctx, o.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		j = nil
	} else if err != nil {
		return fmt.Errorf("read Job %s: %w", o.Name, err)
	}

	if o.Watch {
		if j == nil {
			return fmt.Errorf("there is no Job %s to watch: start one with `kubectl workqueue run %s --image IMAGE`", o.Name, o.Queue)
		}
		w := &jobWatcher{job: o.Name, queue: o.Queue, namespace: o.namespace, logs: o.Logs, output: o.Output,
			consumesItself: job.ConsumesItself(j), broker: o.broker, getter: o.getter, tty: o.stderrTTY(), IOStreams: o.IOStreams}
		return w.follow(ctx, client, workqueue.QueueState{Ready: -1, DeadLetters: workqueue.DeadLettersBefore(j)})
	}

	if o.Output != "" {
		return o.printDocument(ctx, j)
	}
	brokerErr := o.printQueue(ctx)
	o.printJob(j)
	if brokerErr != nil {
		return withExitCode(ExitUnreachable, errors.New("the broker could not be reached"))
	}
	return nil
}

// printQueue prints the queue's line; it returns an error only when the broker is unreachable.
func (o *StatusOptions) printQueue(ctx context.Context) error {
	b, err := o.broker.connect(ctx, o.getter, o.namespace, io.Discard)
	if err != nil {
		fmt.Fprintf(o.Out, "Queue %s: cannot reach the broker: %v\n", o.Queue, err)
		return err
	}
	defer b.Close()
	counts, err := o.counts(ctx, b)
	switch {
	case err != nil:
		fmt.Fprintf(o.Out, "Queue %s: %v\n", o.Queue, err)
		return nil
	case !counts.Exists:
		fmt.Fprintf(o.Out, "Queue %s: does not exist on the broker (%s): fill it first with `kubectl workqueue fill %s`\n", o.Queue, b.Via, o.Queue)
		return nil
	}
	line := fmt.Sprintf("Queue %s: %d ready, no dead-letter queue", o.Queue, counts.Ready)
	if counts.DeadLetters != nil {
		line = fmt.Sprintf("Queue %s: %d ready, %d in %s", o.Queue, counts.Ready, *counts.DeadLetters, queue.DeadLetterName(o.Queue))
	}
	if counts.InFlight != nil {
		line += fmt.Sprintf(", %d in flight", *counts.InFlight)
	}
	if counts.Results != nil {
		line += fmt.Sprintf(", %d %s waiting in %s", *counts.Results, plural(*counts.Results, "result"), queue.ResultsName(o.Queue))
	}
	fmt.Fprintln(o.Out, line)
	if counts.Members != nil && len(counts.Members.Members) > 0 {
		fmt.Fprintf(o.Out, "  members of queue %s: %d of %d online, leader %s\n", o.Queue, len(counts.Members.Online), len(counts.Members.Members), shortNodeName(counts.Members.Leader))
	}
	if len(counts.Nodes) > 0 {
		running := 0
		var states []string
		for _, n := range counts.Nodes {
			state := "stopped"
			if n.Running {
				running++
				state = "running"
			}
			states = append(states, shortNodeName(n.Name)+" "+state)
		}
		fmt.Fprintf(o.Out, "Broker: %d %s, %d running (%s)\n", len(counts.Nodes), plural(len(counts.Nodes), "node"), running, strings.Join(states, ", "))
	}
	if missing := nodesWithoutMember(counts.Nodes, counts.Members); len(missing) > 0 {
		fmt.Fprintf(o.Out, "  hint: queue %s has no member on %s, so it survives the loss of fewer nodes: run `kubectl workqueue broker install` again with the same flags to grow it (RabbitMQ 3.13 and later)\n", o.Queue, strings.Join(missing, ", "))
	}
	return nil
}

// nodesWithoutMember names the nodes that hold no member of a quorum queue: RabbitMQ gives a
// queue declared while a node was away no member there, and never adds one by itself.
func nodesWithoutMember(nodes []rabbitmq.Node, members *rabbitmq.Members) []string {
	if members == nil || len(members.Members) == 0 {
		return nil
	}
	var missing []string
	for _, n := range nodes {
		if !slices.Contains(members.Members, n.Name) {
			missing = append(missing, shortNodeName(n.Name))
		}
	}
	return missing
}

// counts reads the queue over AMQP, and what is in flight from the management API when the
// broker has it.
func (o *StatusOptions) counts(ctx context.Context, b *rabbitmq.Broker) (workqueue.QueueCounts, error) {
	counts, err := workqueue.CountQueue(b.Conn, o.Queue)
	if err != nil || !counts.Exists {
		return counts, err
	}
	client, err := o.getter.KubernetesClientSet()
	if err != nil {
		return counts, nil
	}
	config, err := o.getter.ToRESTConfig()
	if err != nil {
		return counts, nil
	}
	queues, err := b.Queues(ctx, client, config)
	if err != nil {
		return counts, nil // no management API: the rest would not answer either
	}
	for _, q := range queues {
		if q.Name == o.Queue {
			counts.InFlight, counts.Consumers = &q.InFlight, &q.Consumers
		}
	}
	if nodes, err := b.Nodes(ctx, client, config); err == nil {
		counts.Nodes = nodes
	}
	if members, err := b.QueueMembers(ctx, client, config, o.Queue); err == nil && len(members.Members) > 0 {
		counts.Members = &members
	}
	return counts, nil
}

func (o *StatusOptions) printJob(j *batchv1.Job) {
	if j == nil {
		fmt.Fprintf(o.Out, "Job %s: none (start one with `kubectl workqueue run %s --image IMAGE`)\n", o.Name, o.Queue)
		return
	}
	fmt.Fprintf(o.Out, "Job %s: %s\n", o.Name, workqueue.DescribeJob(j, time.Now()))
}

// printDocument prints the queue and its Job as one document; an unreachable broker is in the
// document and in the exit code.
func (o *StatusOptions) printDocument(ctx context.Context, j *batchv1.Job) error {
	doc := workqueue.QueueStatus{APIVersion: workqueue.APIVersion, Kind: "QueueStatus", Namespace: o.namespace, Queue: o.Queue}
	if j != nil {
		doc.Job = workqueue.JobStatusOf(j)
	}
	b, brokerErr := o.broker.connect(ctx, o.getter, o.namespace, io.Discard)
	if brokerErr == nil {
		defer b.Close()
		counts, err := o.counts(ctx, b)
		if err != nil {
			return err
		}
		doc.Broker = &counts
	} else {
		doc.BrokerError = brokerErr.Error()
	}
	if err := printDocument(o.Out, o.Output, doc); err != nil {
		return err
	}
	if brokerErr != nil {
		return withExitCode(ExitUnreachable, errors.New("the broker could not be reached"))
	}
	return nil
}

// shortNodeName reads rabbit@rabbitmq-0.rabbitmq-nodes.ns as rabbitmq-0, its pod's name; -o json
// keeps the node's full name.
func shortNodeName(node string) string {
	_, host, found := strings.Cut(node, "@")
	if !found {
		return node
	}
	pod, _, _ := strings.Cut(host, ".")
	return pod
}
