package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/constants"
	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
)

// StatusOptions holds what `kubectl workqueue status` needs.
type StatusOptions struct {
	Queue string
	Name  string
	Watch bool
	Logs  bool

	broker    brokerFlags
	namespace string
	getter    ClientGetter
	stderrTTY func() bool
	genericiooptions.IOStreams
}

// NewCmdStatus builds `kubectl workqueue status`.
func NewCmdStatus(streams genericiooptions.IOStreams, getter ClientGetter) *cobra.Command {
	o := &StatusOptions{IOStreams: streams, getter: getter, stderrTTY: func() bool { return isTerminal(streams.ErrOut) }}
	cmd := &cobra.Command{
		Use:   "status QUEUE",
		Short: "Show a queue's items and its Job's pods; --watch follows the Job to its end",
		Example: examples(`
			kubectl workqueue status job1
			kubectl workqueue status job1 --watch`),
		Args: exactArgs("QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Queue = args[0]
			if o.Name == "" {
				o.Name = o.Queue
			}
			namespace, _, err := o.getter.ToRawKubeConfigLoader().Namespace()
			if err != nil {
				return err
			}
			o.namespace = namespace
			if err := queue.ValidateName(o.Queue); err != nil {
				return err
			}
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&o.Name, "name", "", "The Job's name (default: the queue's name)")
	cmd.Flags().BoolVarP(&o.Watch, "watch", "w", false, "Follow the Job until it finishes, then report as run does (and exit non-zero the same way)")
	cmd.Flags().BoolVar(&o.Logs, "logs", false, "With --watch, stream the pods' logs")
	o.broker.addFlags(cmd)
	return cmd
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
		w := &jobWatcher{job: o.Name, queue: o.Queue, namespace: o.namespace, logs: o.Logs,
			broker: o.broker, getter: o.getter, tty: o.stderrTTY(), IOStreams: o.IOStreams}
		return w.follow(ctx, client, queueState{ready: -1, failedBefore: deadLettersBefore(j)})
	}

	b, brokerErr := o.broker.connect(ctx, o.getter, o.namespace, io.Discard)
	if brokerErr == nil {
		defer b.Close()
		state, err := inspectQueue(b, o.Queue)
		switch {
		case err != nil:
			fmt.Fprintf(o.Out, "Queue %s: %v\n", o.Queue, err)
		default:
			failed := "no dead-letter queue"
			if state.failedBefore >= 0 {
				failed = fmt.Sprintf("%d in %s", state.failedBefore, queue.DeadLetterName(o.Queue))
			}
			fmt.Fprintf(o.Out, "Queue %s: %d ready, %s\n", o.Queue, state.ready, failed)
		}
	} else {
		fmt.Fprintf(o.Out, "Queue %s: cannot reach the broker: %v\n", o.Queue, brokerErr)
	}

	if j == nil {
		fmt.Fprintf(o.Out, "Job %s: none (start one with `kubectl workqueue run %s --image IMAGE`)\n", o.Name, o.Queue)
	} else {
		fmt.Fprintf(o.Out, "Job %s: %s\n", o.Name, describeJobStatus(j))
	}
	if brokerErr != nil {
		return errors.New("the broker could not be reached")
	}
	return nil
}

func describeJobStatus(j *batchv1.Job) string {
	state := "Running"
	for _, c := range j.Status.Conditions {
		if c.Status != "True" {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			state = "Complete"
		case batchv1.JobFailed:
			state = "Failed (" + c.Reason + ": " + c.Message + ")"
		case batchv1.JobSuspended:
			state = "Suspended"
		}
	}
	completions := "none (drain)"
	if j.Spec.Completions != nil {
		completions = fmt.Sprint(*j.Spec.Completions)
	}
	age := ""
	if j.Status.StartTime != nil {
		age = fmt.Sprintf(", started %s ago", time.Since(j.Status.StartTime.Time).Round(time.Second))
	}
	return fmt.Sprintf("%s; pods %d active, %d succeeded, %d failed; completions %s, parallelism %d%s",
		state, j.Status.Active, j.Status.Succeeded, j.Status.Failed, completions, ptrOr(j.Spec.Parallelism, 1), age)
}

func ptrOr(p *int32, fallback int32) int32 {
	if p == nil {
		return fallback
	}
	return *p
}

// deadLettersBefore is what QUEUE.failed held when run made the Job; for a Job made otherwise,
// every dead letter counts as this Job's.
func deadLettersBefore(j *batchv1.Job) int {
	n, err := strconv.Atoi(j.Annotations[constants.AnnotationDeadLettersBefore])
	if err != nil || n < 0 {
		return 0
	}
	return n
}
