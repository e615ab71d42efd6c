package workqueue

import (
	"context"
	"errors"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/kubectl-workqueue/kubectl-workqueue/pkg/queue"
)

// Deleted says what Delete removed.
type Deleted struct {
	Job    bool
	Queues []DeletedQueue
}

// DeletedQueue is a queue that was deleted and how many messages went with it.
type DeletedQueue struct {
	Name     string
	Messages int
}

// Delete removes what the plugin made for a queue: its Job (waiting until the pods are gone, so
// that none takes items from a queue that is going away), the Job's Secret, and, when conn is
// not nil, the queue, its dead-letter queue and its results queue. It reports what it removed until it stopped.
func Delete(ctx context.Context, client kubernetes.Interface, conn *amqp.Connection, namespace, queueName, jobName string) (Deleted, error) {
	var deleted Deleted
	found, err := DeleteJobAndWait(ctx, client, namespace, jobName)
	if err != nil {
		return deleted, err
	}
	deleted.Job = found
	// The Job owns it, but it may outlive a Job that was never created. A Secret of that name
	// that run did not make for this Job is someone else's.
	secrets := client.CoreV1().Secrets(namespace)
	secretName := BrokerSecretName(jobName)
	if secret, err := secrets.Get(ctx, secretName, metav1.GetOptions{}); err == nil && isJobSecret(secret, jobName) {
		if err := secrets.Delete(ctx, secretName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return deleted, fmt.Errorf("delete Secret %s: %w", secretName, err)
		}
	}
	if conn == nil {
		return deleted, nil
	}
	for _, name := range []string{queueName, queue.DeadLetterName(queueName), queue.ResultsName(queueName)} {
		messages, err := queue.Delete(conn, name)
		switch {
		case errors.Is(err, queue.ErrNoQueue):
		case err != nil:
			return deleted, err
		default:
			deleted.Queues = append(deleted.Queues, DeletedQueue{Name: name, Messages: messages})
		}
	}
	return deleted, nil
}

// DeleteJobAndWait deletes a Job with its pods and returns once it is gone, as kubectl delete
// does: a run of the same name right after must not find it still there. It says whether there
// was a Job to delete.
func DeleteJobAndWait(ctx context.Context, client kubernetes.Interface, namespace, name string) (bool, error) {
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
