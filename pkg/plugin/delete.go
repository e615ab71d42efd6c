package plugin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
)

// DeleteOptions holds what `kubectl workqueue delete` needs.
type DeleteOptions struct {
	Queue     string
	Name      string
	KeepQueue bool

	broker    brokerFlags
	namespace string
	getter    ClientGetter
	genericiooptions.IOStreams
}

// NewCmdDelete builds `kubectl workqueue delete`.
func NewCmdDelete(streams genericiooptions.IOStreams, getter ClientGetter) *cobra.Command {
	o := &DeleteOptions{IOStreams: streams, getter: getter}
	cmd := &cobra.Command{
		Use:   "delete QUEUE",
		Short: "Delete what the plugin made for a queue: its Job and pods, the queue and its dead-letter queue",
		Example: examples(`
			# Remove the Job, its pods and Secret, and the queues job1 and job1.failed
			kubectl workqueue delete job1

			# Remove only the Job, keeping the items
			kubectl workqueue delete job1 --keep-queue`),
		Args: exactArgs("QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Queue = args[0]
			if o.Name == "" {
				o.Name = o.Queue
			}
			if err := queue.ValidateName(o.Queue); err != nil {
				return err
			}
			namespace, _, err := o.getter.ToRawKubeConfigLoader().Namespace()
			if err != nil {
				return err
			}
			o.namespace = namespace
			return o.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&o.Name, "name", "", "The Job's name (default: the queue's name)")
	cmd.Flags().BoolVar(&o.KeepQueue, "keep-queue", false, "Keep the queue and its dead-letter queue")
	o.broker.addFlags(cmd)
	return cmd
}

// Run deletes the Job first, so no pod takes items from a queue that is going away.
func (o *DeleteOptions) Run(ctx context.Context) error {
	var b *broker
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
	deleted := 0
	switch found, err := deleteJobAndWait(ctx, client, o.namespace, o.Name); {
	case err != nil:
		return err
	case found:
		deleted++
		fmt.Fprintf(o.Out, "job.batch/%s deleted\n", o.Name)
	}
	// The Job owns it, but it may outlive a Job that was never created. A Secret of that name
	// that run did not make for this Job is someone else's.
	secrets := client.CoreV1().Secrets(o.namespace)
	secretName := brokerSecretName(o.Name)
	if secret, err := secrets.Get(ctx, secretName, metav1.GetOptions{}); err == nil && isJobSecret(secret, o.Name) {
		if err := secrets.Delete(ctx, secretName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete Secret %s: %w", secretName, err)
		}
	}
	if b != nil {
		for _, name := range []string{o.Queue, queue.DeadLetterName(o.Queue)} {
			messages, err := queue.Delete(b.Conn, name)
			switch {
			case errors.Is(err, queue.ErrNoQueue):
			case err != nil:
				return err
			default:
				deleted++
				fmt.Fprintf(o.Out, "queue %s deleted (%d %s)\n", name, messages, plural(messages, "message"))
			}
		}
	}
	if deleted == 0 {
		return fmt.Errorf("nothing to delete: no Job %s and no queue %s in namespace %s", o.Name, o.Queue, o.namespace)
	}
	return nil
}

// deleteJobAndWait deletes a Job with its pods and returns once it is gone, as kubectl delete
// does: a run of the same name right after must not find it still there. It says whether there
// was a Job to delete.
func deleteJobAndWait(ctx context.Context, client kubernetes.Interface, namespace, name string) (bool, error) {
	jobs := client.BatchV1().Jobs(namespace)
	policy := metav1.DeletePropagationForeground
	switch err := jobs.Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &policy}); {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("delete Job %s: %w", name, err)
	}
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		_, err := jobs.Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		return true, fmt.Errorf("Job %s is still being deleted (its pods are stopping): %w", name, err)
	}
	return true, nil
}
